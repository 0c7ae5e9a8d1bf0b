#!/usr/bin/env python
"""How long does loading (and so validating) a policy take?  A benchmark run by hand, never a test.

    python benchmarks/policy_load.py [--quick] [--markdown] [--clock {wall,cpu}]

`load_policy` reads, checks and compiles a policy: loading *is* validating.  The shipped
binance-usdm includes tiers/binance-usdm-2024-10-24.json, 318 bracket tables (2,529 rows) and 318
markets.  Contenders, each timed as the first load in a process would be (the in-memory copy of
included files cleared before every load; the parser and schema caches of a warmed-up process
kept, as after any first command):

  eager (baseline)     the included file read and every table checked (no verdict kept)
  verdict kept         a verdict of the included file in the cache directory, as from any earlier
                       run: no table is parsed, rows are read on first lookup (the default path)
  in-process           a second load in the same process (a server's reload, a test session)
  first lookup         reading the rows of one lazy table (BTCUSDT), after a verdict load
  huobi-linear-swap    a one-market policy of similar rules, for scale

Times are ms, the median of several interleaved repeats; "x eager" is the ratio to the eager
baseline measured in the same run.  Target: binance-usdm load + validate under 100 ms.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing it

from engine import __version__  # noqa: E402
from engine.policy import includes  # noqa: E402
from engine.policy.load import check_policy  # noqa: E402


def _load(policy: str) -> None:
    found, diagnostics = check_policy(policy)
    assert found is not None, [d.message for d in diagnostics]


def _fresh(policy: str) -> Callable[[], None]:
    def run() -> None:
        includes._MEMORY.clear()
        _load(policy)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats: a smoke run")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    repeats = 3 if args.quick else 15
    with tempfile.TemporaryDirectory() as cache:
        os.environ["LIQPOLICY_CACHE_DIR"] = cache
        _fresh("binance-usdm")()  # warm-up; writes the verdict
        _load("huobi-linear-swap")

        def eager() -> None:
            os.environ["LIQPOLICY_CACHE_DIR"] = ""
            try:
                _fresh("binance-usdm")()
            finally:
                os.environ["LIQPOLICY_CACHE_DIR"] = cache

        lookup_start = 0.0

        def first_lookup() -> None:
            nonlocal lookup_start
            includes._MEMORY.clear()
            found, _ = check_policy("binance-usdm")
            assert found is not None and found.markets["BTCUSDT"].tiers is not None
            lookup_start = clock()
            len(found.markets["BTCUSDT"].tiers.rows)

        contenders: dict[str, Callable[[], None]] = {
            "binance-usdm, eager (baseline)": eager,
            "binance-usdm, verdict kept": _fresh("binance-usdm"),
            "binance-usdm, in-process": lambda: _load("binance-usdm"),
            "huobi-linear-swap (1 market)": lambda: _load("huobi-linear-swap"),
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        times["first lookup of a lazy table"] = []
        for _ in range(repeats):  # interleaved, so a busy moment hits every contender alike
            for name, run in contenders.items():
                start = clock()
                run()
                times[name].append((clock() - start) * 1000)
            first_lookup()
            times["first lookup of a lazy table"].append((clock() - lookup_start) * 1000)
    baseline = statistics.median(times["binance-usdm, eager (baseline)"])
    rows = [(name, statistics.median(values)) for name, values in times.items()]
    print(
        f"liqpolicy {__version__}, Python {platform.python_version()}, {platform.machine()},"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f},"
        f" {datetime.date.today()}, clock {args.clock}, median of {repeats}"
    )
    if args.markdown:
        print("| load | ms | x eager |\n| --- | ---: | ---: |")
        for name, ms in rows:
            print(f"| {name} | {ms:.1f} | {ms / baseline:.2f} |")
    else:
        for name, ms in rows:
            print(f"{name:34} {ms:8.1f} ms  {ms / baseline:5.2f} x eager")


if __name__ == "__main__":
    main()
