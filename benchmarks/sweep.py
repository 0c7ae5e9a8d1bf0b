"""Benchmark: a 4 x 4 x 4 sweep on a 10,000-account book, on 1 and on 2 local Dask workers.

Not a test.  Generates a deterministic BTC/USDT book priced for the scenario's start, writes a
grid of 4 policies x 4 crash depths x 4 insurance-fund sizes (64 cells, each a full simulation
through the 1,440-step flash crash), runs it fresh with each worker count, checks that the rows
are byte-identical, and prints wall time, cells per minute and the speed-up against one worker
measured in the same run (the target on 2 cores is at least 1.7x).  Wall time includes starting
the local cluster; `--workers 0` adds an in-process run (no Dask) for the overhead.

    python benchmarks/sweep.py                          # 10,000 accounts, 1 and 2 workers
    python benchmarks/sweep.py --quick                  # 2 x 2 x 2 on 1,000 accounts: a smoke run
    python benchmarks/sweep.py --workers 0 1 2 --markdown
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import textwrap
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

POLICIES = (
    "binance-usdm",
    "huobi-linear-swap",
    "binance-usdm-with-debt",
    "binance-usdm-faq-example",
)
DEPTHS = ("0.5", "1", "1.5", "2")
FUNDS = ("0", "45000", "90000", "180000")
SCENARIO = "flash-crash-2025-10-10"


def write_inputs(folder: Path, accounts: int, size: int) -> Path:
    """The book and the grid file (size x size x size cells) in `folder`; returns the grid."""
    from engine.simulation.book import write_book_jsonl
    from engine.simulation.generate import generate_book
    from engine.simulation.scenario import load_scenario, start_prices

    start = start_prices(load_scenario(SCENARIO))["BTC/USDT"]
    book = generate_book(accounts, 20261121, instruments={"BTC/USDT": Decimal(start)})
    with open(folder / "book.jsonl", "w", encoding="utf-8") as stream:
        write_book_jsonl(book, stream)
    grid = folder / "grid.yaml"
    grid.write_text(
        textwrap.dedent(
            f"""\
            title: Benchmark sweep
            policies: [{", ".join(POLICIES[:size])}]
            scenarios: [{SCENARIO}]
            books: [book.jsonl]
            parameters:
              - {{name: crash_depth, transform: crash_depth, values: [{", ".join(DEPTHS[:size])}]}}
              - {{name: fund, scenario: "insurance_fund.*", values: [{", ".join(FUNDS[:size])}]}}
            """
        ),
        encoding="utf-8",
    )
    return grid


def run(grid: Path, output: Path, workers: int) -> dict[str, Any]:
    from engine.sweep import run_sweep

    wall = time.perf_counter()
    result = run_sweep(grid, output, workers=workers, fresh=True)
    seconds = time.perf_counter() - wall
    return {
        "workers": workers,
        "cells": len(result.rows),
        "failed": len(result.failed),
        "wall": seconds,
        "rows": (output / "rows.jsonl").read_bytes(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=4, choices=(1, 2, 3, 4), help="cells per axis")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="2 x 2 x 2 cells on 1,000 accounts")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()
    if args.quick:
        args.accounts, args.size = 1_000, 2
    with tempfile.TemporaryDirectory(prefix="liqpolicy-sweep-bench-") as temporary:
        folder = Path(temporary)
        grid = write_inputs(folder, args.accounts, args.size)
        results = [run(grid, folder / f"out-{w}", w) for w in args.workers]
    base = next((r for r in results if r["workers"] == 1), results[0])
    identical = all(r["rows"] == base["rows"] for r in results)
    cells = base["cells"]
    print(
        f"# {args.size} x {args.size} x {args.size} = {cells} cells, {args.accounts:,} accounts, "
        f"{SCENARIO}; {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores; rows identical across runs: {identical}"
    )
    header = ("workers", "wall s", "cells/min", "speed-up vs 1 worker", "failed cells")
    rows = [
        (
            str(r["workers"]) + (" (in-process)" if r["workers"] == 0 else ""),
            f"{r['wall']:.1f}",
            f"{r['cells'] / r['wall'] * 60:.1f}",
            f"{base['wall'] / r['wall']:.2f}x",
            str(r["failed"]),
        )
        for r in results
    ]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + " --- |" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
        for row in rows:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
