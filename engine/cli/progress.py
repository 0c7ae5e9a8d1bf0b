"""Progress of simulation runs on stderr: which run, its steps, time elapsed and time left.

One display for every command that runs simulations one after another (`simulate`, `compare`,
sweeps)::

    with run_progress(output, runs=len(policies), noun="policy") as progress:
        for policy in policies:
            simulate(policy, book, scenario, progress=progress.start(policy.id))

:meth:`RunProgress.start` begins the next run and returns the step callback the simulator calls
(:data:`engine.simulation.simulate.Progress`, ``(step, total)``).  The line shows the run's label
and number, a bar and percentage over all runs, the run's steps, the time elapsed and an
estimate of the time left::

    venue-b  policy 2/3  ━━━━━━━━━━━━━━━━╺━━━━━━━━━━━  58%  step 1,081/1,441  0:00:02 elapsed, 0:00:01 left

The estimate assumes runs of the same scenario take about as long as each other.  The display
is drawn only when stderr is a terminal, and removed when the runs end; elsewhere (a pipe, a
file, a test) :func:`run_progress` gives a :class:`NoProgress` whose `start` returns None, and
nothing is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from engine.cli.terminal import is_terminal

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.progress import Progress, ProgressColumn, Task

    from engine.cli.output import Output

StepCallback = Callable[[int, int], None]
REFRESH_SECONDS = 0.1  # redraw at most this often (and at each run's last step)
ESTIMATE_AFTER = 0.02  # share of the work done before the time left is estimated


def clock_text(seconds: float) -> str:
    """`0:01:05` (hours, minutes, seconds)."""
    whole = max(0, int(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class Progressive(Protocol):
    """What commands use: start the next run, get its step callback (None: nothing is shown)."""

    def start(self, label: str) -> StepCallback | None: ...


class NoProgress:
    """No display (stderr is not a terminal): runs get no step callback."""

    def start(self, label: str) -> StepCallback | None:
        del label
        return None


class RunProgress:
    """The progress line of `runs` runs drawn with rich on a terminal (see the module doc)."""

    def __init__(
        self,
        progress: Progress,
        runs: int,
        *,
        noun: str = "run",
        get_time: Callable[[], float] = time.monotonic,
    ) -> None:
        self.progress = progress
        self.runs = max(1, runs)
        self.noun = noun
        self.get_time = get_time
        self.index = -1
        self.last_refresh = -REFRESH_SECONDS
        self.task = progress.add_task("", total=self.runs, run="", steps="")

    def start(self, label: str) -> StepCallback:
        self.index += 1
        index = self.index
        number = f"{self.noun} {min(index + 1, self.runs)}/{self.runs}" if self.runs > 1 else ""
        self.progress.update(self.task, description=label, run=number, completed=index, steps="")
        self._refresh(force=True)

        def step(done: int, total: int) -> None:
            fraction = done / total if total else 1.0
            self.progress.update(
                self.task, completed=index + fraction, steps=f"step {done:,}/{total:,}"
            )
            self._refresh(force=done >= total)

        return step

    def _refresh(self, *, force: bool = False) -> None:
        now = self.get_time()
        if force or now - self.last_refresh >= REFRESH_SECONDS:
            self.last_refresh = now
            self.progress.refresh()


def _columns() -> list[ProgressColumn]:
    from rich.progress import BarColumn, ProgressColumn, TaskProgressColumn, TextColumn  # noqa: PLC0415
    from rich.table import Column  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    class Times(ProgressColumn):
        """`0:00:12 elapsed, 0:00:30 left`: the estimate from the share of all runs done, once
        there is enough of it to go by."""

        def render(self, task: Task) -> RenderableType:
            elapsed = task.elapsed or 0.0
            done = task.completed / task.total if task.total else 0.0
            known = done >= ESTIMATE_AFTER and elapsed > 0
            left = clock_text(elapsed * (1 - done) / done) if known else "-:--:--"
            return Text(f"{clock_text(elapsed)} elapsed, {left} left", style="progress.elapsed")

    def fixed(**options: object) -> Column:
        return Column(no_wrap=True, **options)  # type: ignore[arg-type]  # Column's keywords

    return [
        TextColumn(
            "[bold]{task.description}", table_column=fixed(max_width=32, overflow="ellipsis")
        ),
        TextColumn("{task.fields[run]}", table_column=fixed()),
        BarColumn(bar_width=None),  # takes the width left over
        TaskProgressColumn(table_column=fixed()),
        TextColumn("{task.fields[steps]}", table_column=fixed()),
        Times(table_column=fixed()),
    ]


@contextmanager
def run_progress(
    output: Output,
    runs: int,
    *,
    noun: str = "run",
    get_time: Callable[[], float] = time.monotonic,
) -> Iterator[Progressive]:
    """The progress display of `runs` runs on `output`'s stderr, or no display off a terminal."""
    if not is_terminal(output.stderr):
        yield NoProgress()
        return
    from rich.console import Console  # noqa: PLC0415  # only on a terminal
    from rich.progress import Progress  # noqa: PLC0415

    console = Console(
        file=output.stderr,
        force_terminal=True,
        color_system="auto" if output.colour_errors else None,
        no_color=not output.colour_errors,
    )
    progress = Progress(
        *_columns(),
        console=console,
        auto_refresh=False,  # redrawn from the step callback: no thread
        transient=True,
        expand=True,  # the bar fills the line; the other columns keep their width
        redirect_stdout=False,
        redirect_stderr=False,
        get_time=get_time,
    )
    with progress:
        yield RunProgress(progress, runs, noun=noun, get_time=get_time)
