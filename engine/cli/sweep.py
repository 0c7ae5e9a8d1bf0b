"""`liqpolicy sweep GRID`: every combination of policies, scenarios, books and parameter values.

Runs on a local Dask cluster (`--workers N`), an existing one (`--scheduler`), or in this
process (`--workers 0`); writes rows.jsonl, rows.csv (rows.parquet with pyarrow) and
report.html into the output directory and resumes from the cells a previous run finished.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from pathlib import Path
from typing import Any, TextIO

from engine.cli.command import Command, Exit, UsageError
from engine.cli.output import Output, plural
from engine.report.sweep_html import render_sweep_html
from engine.source import Diagnostic
from engine.sweep.grid import Grid, load_grid
from engine.sweep.runner import SweepResult, run_sweep

REPORT = "report.html"
SHOWN_FAILURES = 5  # failed cells whose errors are printed; the rows hold them all


class CellProgress:
    """`[#####-----] 12/64 cells, 1 failed`, redrawn in place on a terminal only."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.failed = 0
        self.width = 0

    def __call__(self, row: dict[str, Any], done: int, total: int) -> None:
        self.failed += row["status"] != "ok"
        filled = 30 * done // max(total, 1)
        text = f"[{'#' * filled}{'-' * (30 - filled)}] {done:,}/{total:,} cells"
        if self.failed:
            text += f", {self.failed:,} failed"
        self.width = max(self.width, len(text))
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()

    def clear(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


class _Counter:
    def __init__(self, inner: CellProgress | None) -> None:
        self.inner = inner
        self.done = 0

    def __call__(self, row: dict[str, Any], done: int, total: int) -> None:
        self.done += 1
        if self.inner is not None:
            self.inner(row, done, total)


def default_output_dir(grid_path: str) -> str:
    return f"{Path(grid_path).stem}-sweep"


def shape(grid: Grid) -> str:
    """`2 policies x 2 scenarios x 1 book x 3 x 2`: how the cells multiply."""
    parts = [
        plural(len(grid.policies), "policy").replace("policys", "policies"),
        plural(len(grid.scenarios), "scenario"),
        plural(len(grid.books), "book"),
        *(f"{len(p.values)} {p.name}" for p in grid.parameters),
    ]
    return " x ".join(parts)


def _failure_line(row: dict[str, Any]) -> str:
    values = ", ".join(f"{k} = {v}" for k, v in row["parameters"].items())
    where = f"{row['policy']}, {row['scenario']}, {row['book']}" + (f", {values}" if values else "")
    return f"cell {row['cell']} ({where}) failed:"


def report_failures(output: Output, result: SweepResult) -> None:
    failed = result.failed
    for row in failed[:SHOWN_FAILURES]:
        output.message(_failure_line(row))
        output.message("\n\n".join(error["text"] for error in row["errors"]) + "\n")
    if len(failed) > SHOWN_FAILURES:
        output.message(
            f"... and {len(failed) - SHOWN_FAILURES} more failed cells: their errors are in "
            f"{result.output_dir / 'rows.jsonl'}"
        )


def summary_json(result: SweepResult, report: Path) -> dict[str, Any]:
    return {
        "title": result.grid.title,
        "cells": len(result.rows),
        "ran": result.ran,
        "resumed": result.resumed,
        "ok": len(result.rows) - len(result.failed),
        "failed": len(result.failed),
        "output_dir": str(result.output_dir),
        "files": [str(p) for p in (*result.files, report)],
        "failures": [
            {"cell": row["cell"], "status": row["status"], "errors": row["errors"]}
            for row in result.failed
        ],
        "warnings": [w.as_dict() for w in result.warnings],
    }


def run(args: argparse.Namespace, output: Output) -> int:
    if args.workers is not None and args.workers < 0:
        raise UsageError("--workers must be 0 or more", "0 runs every cell in this process")
    if args.scheduler is not None and args.workers is not None:
        raise UsageError(
            "give either --workers (a local cluster) or --scheduler (an existing one)",
            "an existing cluster has its own workers",
        )
    grid = load_grid(args.grid)
    directory = Path(args.output_dir or default_output_dir(args.grid))
    bar = CellProgress(output.stderr) if _is_terminal(output.stderr) else None
    counter = _Counter(bar)
    try:
        result = run_sweep(
            grid,
            directory,
            workers=args.workers,
            scheduler=args.scheduler,
            fresh=args.fresh,
            on_row=counter,
        )
    except KeyboardInterrupt:
        if bar is not None:
            bar.clear()
        output.message(
            f"liqpolicy sweep: interrupted after {plural(counter.done, 'cell')}; finished cells "
            f"are kept in {directory}: run the same command again to resume"
        )
        return 130
    finally:
        if bar is not None:
            bar.clear()
    report = directory / REPORT
    report.write_text(render_sweep_html(result), encoding="utf-8", newline="\n")
    if args.format == "json":
        output.json(summary_json(result, report))
    else:
        failed = len(result.failed)
        output.line(f"{grid.title}: {plural(len(result.rows), 'cell')} ({shape(grid)})")
        output.line(
            f"  ran {result.ran:,}, resumed {result.resumed:,}; "
            f"{len(result.rows) - failed:,} ok, {failed:,} failed"
        )
        output.line("wrote " + ", ".join(str(p) for p in (*result.files, report)))
        report_failures(output, result)
        _warn(output, result.warnings)
    if any(row["status"] == "internal_error" for row in result.failed):
        return Exit.INTERNAL_ERROR
    return Exit.INVALID_INPUT if result.failed else Exit.OK


def _warn(output: Output, warnings: tuple[Diagnostic, ...]) -> None:
    if warnings:
        output.diagnostics(warnings)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", metavar="GRID", help="grid file (YAML, docs/sweeps.md)")
    parser.add_argument(
        "--output-dir",
        "-o",
        metavar="DIR",
        help="where rows, generated inputs and the report go (default: GRID's name + '-sweep'); "
        "a second run with the same DIR resumes",
    )
    parser.add_argument(
        "--workers",
        "-w",
        type=int,
        metavar="N",
        help=f"local Dask worker processes (default: one per core, {os.cpu_count() or 1} here); "
        "0 runs every cell in this process, without Dask",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (its workers need "
        "liqpolicy installed, nothing else)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="forget the cells a previous run finished in DIR"
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text summary (default), or one JSON document with every failed cell's errors",
    )


COMMAND = Command(
    name="sweep",
    summary="run every combination of policies, scenarios, books and parameter values",
    description=textwrap.dedent("""\
        Run a grid of what-ifs: every combination of the grid file's policies, scenarios,
        books and parameter values is one cell, a full simulation.  Policy parameters are
        applied as generated `extends` children (DIR/policies/), scenario parameters and
        transforms as generated scenarios (DIR/scenarios/): each cell runs ordinary files
        that `liqpolicy simulate` runs alone with the same figures.

        Writes DIR/rows.jsonl and DIR/rows.csv (DIR/rows.parquet when pyarrow is installed),
        one row per cell with its figures, or the located errors of a cell that failed (the
        sweep goes on), and DIR/report.html with the grid's charts.  Cells run on a local Dask
        cluster (`pip install 'liqpolicy[sweep]'`), on an existing one with --scheduler, or in
        this process with --workers 0; the rows are byte-identical either way.  Finished
        cells are journalled at once: an interrupted sweep resumes when run again.  Exit 2
        when a cell's input was invalid, 3 when a cell hit a bug; the outputs are written
        either way."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy sweep grids/fund-vs-crash.yaml",
        "liqpolicy sweep grid.yaml -o out --workers 2",
        "liqpolicy sweep grid.yaml -o out --scheduler tcp://10.0.0.5:8786",
    ),
)
