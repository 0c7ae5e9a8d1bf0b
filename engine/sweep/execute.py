"""Where cells run: in this process, or on Dask distributed (a local cluster or an existing one).

Every executor yields outcomes as cells finish, in any order; the runner journals and sorts them.
Books travel once per worker (`scatter(..., broadcast=True)`), each task only names its book by
digest.  :func:`dask_client` is independent of sweeps: whatever else wants to spread work over
the same workers (e.g. one large simulation's per-account screening) can open its client the
same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from engine.errors import InputError
from engine.source import Diagnostic
from engine.sweep.cells import CellOutcome, CellTask, error_dicts, run_cell

if TYPE_CHECKING:
    from distributed import Client

INSTALL_HINT = (
    "install it with `pip install 'liqpolicy[sweep]'`, or run in this process with --workers 0"
)
CONNECT_TIMEOUT = "30s"


def run_here(tasks: Sequence[CellTask], books: Mapping[str, str]) -> Iterator[CellOutcome]:
    """Run the cells one after the other in this process (no Dask needed)."""
    for task in tasks:
        yield run_cell(task, books[task.book_digest])


@contextmanager
def dask_client(workers: int, scheduler: str | None = None) -> Iterator[Client]:
    """A client of an existing scheduler, or of a new local cluster of `workers` processes.

    The local cluster runs one single-threaded worker process per core asked (the engine is
    pure Python: threads would share one interpreter lock), binds only free ports on 127.0.0.1
    and has no dashboard, so several sweeps (and test runs) can start side by side.
    """
    try:
        from distributed import Client, LocalCluster  # noqa: PLC0415  # optional: the `sweep` extra
    except ImportError as error:
        raise InputError(
            diagnostics=[Diagnostic("E811", "Dask distributed is not installed", hint=INSTALL_HINT)]
        ) from error
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)  # type: ignore[no-untyped-call]  # distributed is untyped
        except (OSError, TimeoutError, ValueError) as error:
            raise InputError(
                diagnostics=[
                    Diagnostic(
                        "E810",
                        f"cannot reach the Dask scheduler at {scheduler}: {error}",
                        path=scheduler,
                        hint="give the address the scheduler prints, e.g. tcp://10.0.0.5:8786",
                    )
                ]
            ) from error
        with client:
            yield client
        return
    with (
        LocalCluster(  # type: ignore[no-untyped-call]  # distributed is untyped
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]  # distributed is untyped
    ):
        yield client


def run_on_dask(
    client: Client, tasks: Sequence[CellTask], books: Mapping[str, str]
) -> Iterator[CellOutcome]:
    """Submit every cell at once and yield outcomes as they finish; cancel the rest on exit."""
    from distributed import as_completed  # noqa: PLC0415  # optional: the `sweep` extra

    if not tasks:
        return
    used = {task.book_digest for task in tasks}
    shipped: dict[str, Any] = {
        digest: client.scatter(text, broadcast=True, hash=False)  # type: ignore[no-untyped-call]  # distributed is untyped
        for digest, text in books.items()
        if digest in used
    }
    futures = {
        client.submit(run_cell, task, shipped[task.book_digest], pure=False): task for task in tasks
    }
    try:
        for future in as_completed(futures):  # type: ignore[no-untyped-call]  # distributed is untyped
            task = futures[future]
            try:
                outcome: CellOutcome = future.result()
            except Exception as error:  # a worker died or the task could not run there
                outcome = lost(task, error)
            yield outcome
    finally:
        client.cancel(list(futures))  # type: ignore[no-untyped-call]  # distributed is untyped


def lost(task: CellTask, error: BaseException) -> CellOutcome:
    """The outcome of a cell whose worker failed it: re-run on resume, never kept."""
    message = f"the cell did not run: {type(error).__name__}: {error}"
    diagnostic = Diagnostic(
        "internal", message, path=task.policy[0][0], hint="run the sweep again to retry it"
    )
    return CellOutcome(index=task.index, status="internal_error", errors=error_dicts([diagnostic]))
