"""What-if sweeps: every combination of policies, scenarios, books and parameter values, one simulation per cell.

:func:`load_grid` reads a grid file (docs/sweeps.md), :func:`run_sweep` runs it in this process
or on Dask distributed and returns a :class:`SweepResult`; the CLI is `liqpolicy sweep`.
"""

from engine.sweep.grid import Grid, load_grid
from engine.sweep.runner import SweepResult, run_sweep

__all__ = ["Grid", "SweepResult", "load_grid", "run_sweep"]
