"""Run a grid: plan its cells, reuse the journal's finished ones, run the rest, write the outputs.

Each finished cell is journalled at once (append + fsync), so an interrupted sweep loses at
most the cells that were running; the next run with the same grid and output directory resumes.
A cell that fails reports its errors in its row and the sweep goes on.  Rows that record a
worker failure or a bug are not journalled: the next run tries those cells again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine._version import __version__
from engine.dsl.check import did_you_mean
from engine.source import Diagnostic
from engine.sweep.cells import CellOutcome
from engine.sweep.execute import dask_client, run_here, run_on_dask
from engine.sweep.grid import Grid, load_grid
from engine.sweep.journal import Journal
from engine.sweep.outputs import columns_of, flat, typed_columns, write_outputs
from engine.sweep.plan import POLICY_FOLDER, SCENARIO_FOLDER, Cell, Plan, plan_sweep

RowCallback = Callable[[dict[str, Any], int, int], None]  # (row, cells done, cells in all)
KEPT = ("ok", "error")  # statuses a resumed run trusts; internal errors are retried


@dataclass(frozen=True, slots=True)
class SweepResult:
    """Every cell's row, in cell order, and what the run did."""

    grid: Grid
    output_dir: Path
    rows: tuple[dict[str, Any], ...]
    ran: int
    resumed: int
    files: tuple[Path, ...]
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def failed(self) -> tuple[dict[str, Any], ...]:
        return tuple(row for row in self.rows if row["status"] != "ok")

    def columns(self) -> list[str]:
        """The flat columns of CSV, Parquet and :meth:`to_pandas`."""
        return columns_of([flat(row) for row in self.rows])

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame (pandas is optional): exact figures as Decimal."""
        try:
            import pandas as pd  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415  # optional dependency
        except ImportError as error:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from error
        data = {name: values for name, _, _, _, values in typed_columns(self.rows)}
        return pd.DataFrame(data)


def make_row(cell: Cell, outcome: CellOutcome) -> dict[str, Any]:
    """The row of one cell: identity, parameters, figures, errors (built here, never by workers)."""
    identity = cell.identity
    return {
        "cell": cell.index,
        "status": outcome.status,
        "policy": identity["policy"],
        "policy_id": outcome.policy_id or identity["policy_id"],
        "policy_digest": outcome.policy_digest,
        "policy_file": identity["policy_file"],
        "scenario": identity["scenario"],
        "scenario_id": outcome.scenario_id or identity["scenario_id"],
        "scenario_file": identity["scenario_file"],
        "book": identity["book"],
        "parameters": dict(cell.parameters),
        "figures": dict(outcome.figures),
        "errors": [dict(error) for error in outcome.errors],
    }


def write_generated(directory: Path, files: Mapping[str, str]) -> None:
    """Write the generated policies and scenarios; drop ones a previous grid left behind."""
    for folder in (POLICY_FOLDER, SCENARIO_FOLDER):
        target = directory / folder
        if target.is_dir():
            for stale in target.glob("*-sweep-*.yaml"):
                if f"{folder}/{stale.name}" not in files:
                    stale.unlink()
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8", newline="\n")


def chart_warnings(grid: Grid, rows: tuple[dict[str, Any], ...]) -> list[Diagnostic]:
    """W004 for a chart whose figure no row has (checked once figures exist)."""
    figures = {name for row in rows for name in row["figures"]}
    if not figures:
        return []
    warnings = []
    for chart in grid.charts:
        if chart.figure not in figures:
            warnings.append(
                Diagnostic(
                    "W004",
                    f"the chart's figure '{chart.figure}' is not a column of the results",
                    chart.span,
                    did_you_mean(chart.figure, figures),
                    severity="warning",
                )
            )
    return warnings


def run_sweep(
    grid: Grid | str | Path,
    output_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    fresh: bool = False,
    on_row: RowCallback | None = None,
) -> SweepResult:
    """Run every cell of `grid`, writing the rows and generated inputs under `output_dir`.

    `workers=0` runs the cells in this process; otherwise a local Dask cluster of `workers`
    processes (default: one per core) runs them, or the cluster of `scheduler` when given.
    `fresh` forgets the cells a previous run finished.
    """
    if not isinstance(grid, Grid):
        grid = load_grid(grid)
    directory = Path(output_dir)
    plan = plan_sweep(grid, directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_generated(directory, plan.files)
    journal = Journal(directory)
    if fresh:
        journal.clear()
    finished = journal.read()
    rows: dict[int, dict[str, Any]] = {}
    pending: list[Cell] = []
    resumed = 0
    for cell in plan.cells:
        if cell.failure is not None:
            rows[cell.index] = make_row(cell, cell.failure)
        elif cell.task is not None and finished.get(cell.task.key, {}).get("status") in KEPT:
            rows[cell.index] = finished[cell.task.key]
            resumed += 1
        else:
            pending.append(cell)
    total = len(plan.cells)
    versions: set[str] = set()
    try:
        for outcome in _execute(plan, pending, workers, scheduler):
            cell = plan.cells[outcome.index]
            row = make_row(cell, outcome)
            versions.add(outcome.version)
            if outcome.status in KEPT and cell.task is not None:
                journal.append(cell.task.key, row)
            rows[cell.index] = row
            if on_row is not None:
                on_row(row, len(rows), total)
    finally:
        journal.close()
    ordered = tuple(rows[index] for index in sorted(rows))
    files = write_outputs(directory, ordered)
    warnings = chart_warnings(grid, ordered)
    others = sorted(versions - {__version__})
    if others:
        warnings.append(
            Diagnostic(
                "W005",
                f"workers run liqpolicy {', '.join(others)}, this process {__version__}",
                path=scheduler or "<workers>",
                hint="install the same version on every worker so cells match `liqpolicy simulate`",
                severity="warning",
            )
        )
    return SweepResult(
        grid, directory, ordered, len(pending), resumed, tuple(files), tuple(warnings)
    )


def _execute(
    plan: Plan, pending: list[Cell], workers: int | None, scheduler: str | None
) -> Iterator[CellOutcome]:
    tasks = [cell.task for cell in pending if cell.task is not None]
    if not tasks:
        return
    if scheduler is None and workers == 0:
        yield from run_here(tasks, plan.books)
        return
    count = workers if workers else (os.cpu_count() or 1)
    with dask_client(count, scheduler) as client:
        yield from run_on_dask(client, tasks, plan.books)
