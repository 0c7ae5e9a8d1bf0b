"""Benchmark: a synthetic book through the 1,440-step flash crash under both shipped policies.

Not a test.  For each book size it generates a deterministic book, runs every policy in its own
process (so the two policies use the two cores, as `--workers 1` shows serially), and prints wall
and CPU time, peak memory per process, and the ratio to a baseline measured in the same run: the
naive approach of evaluating every account's trigger at every step (timed on a sample of steps and
scaled to the whole path), which is what the simulator's time screening avoids.

    python benchmarks/simulate.py                      # 10k, 30k, 100k accounts
    python benchmarks/simulate.py --accounts 10000 --workers 1
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

POLICIES = ("binance-usdm", "huobi-linear-swap")


def _run(policy_id: str, book_path: str, scenario_id: str) -> dict[str, Any]:
    from engine.policy.load import load_policy
    from engine.simulation.book import load_book
    from engine.simulation.scenario import load_scenario
    from engine.simulation.simulate import simulate

    policy = load_policy(policy_id)
    book = load_book(book_path)
    scenario = load_scenario(scenario_id)
    wall, cpu = time.perf_counter(), time.process_time()
    result = simulate(policy, book, scenario)
    summary = result.summary()
    return {
        "policy": policy_id,
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "liquidated": summary["accounts_liquidated"]["total"],
        "conservation_error": summary["conservation_error"],
        "steps": summary["steps"],
    }


def _naive(policy_id: str, book_path: str, scenario_id: str, sample_steps: int) -> float:
    """Seconds to evaluate every position's trigger at every step, scaled from a sample."""
    import decimal

    from engine.mechanics.state import AccountState, Evaluator
    from engine.numbers import DECIMAL_CONTEXT
    from engine.policy.load import load_policy
    from engine.simulation.book import load_book
    from engine.simulation.book_accounts import book_accounts, symbols_by_instrument
    from engine.simulation.scenario import load_scenario

    policy = load_policy(policy_id)
    book = load_book(book_path)
    scenario = load_scenario(scenario_id)
    instruments = symbols_by_instrument(policy)
    market: dict[str, dict[str, Any]] = {s: {} for s in policy.markets}
    states = [AccountState(a, market) for a in book_accounts(policy, book, instruments)]
    times = scenario.times()
    step_indexes = range(0, len(times), max(1, len(times) // sample_steps))[:sample_steps]
    with decimal.localcontext(DECIMAL_CONTEXT):
        evaluator = Evaluator(policy)
        start = time.process_time()
        for index in step_indexes:
            for instrument, path in scenario.paths.items():
                point = path.points[min(index, len(path.points) - 1)]
                for symbol in instruments.get(instrument, ()):
                    market[symbol].clear()
                    market[symbol].update(point.market_data(None))
            evaluator.market_changed()
            for state in states:
                context = evaluator.context(state)
                for position in state.positions:
                    policy.trigger.fast(context.frame_for(position))
        spent = time.process_time() - start
    return spent * len(times) / len(step_indexes)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", default="10000,30000,100000")
    parser.add_argument("--scenario", default="flash-crash-2025-10-10")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--naive-sample", type=int, default=20, help="steps timed for the baseline")
    args = parser.parse_args()

    from engine.simulation.book import write_book_jsonl
    from engine.simulation.generate import generate_book
    from engine.simulation.scenario import load_scenario, start_prices

    scenario = load_scenario(args.scenario)
    prices = start_prices(scenario)
    instruments = {k: v for k, v in prices.items() if k == "BTC/USDT"}
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; scenario {scenario.id} ({len(scenario.times())} steps)"
    )
    rows = []
    for count in (int(n) for n in args.accounts.split(",")):
        with tempfile.TemporaryDirectory() as folder:
            path = str(Path(folder) / "book.jsonl")
            started = time.perf_counter()
            book = generate_book(count, args.seed, instruments=instruments)
            with open(path, "w", encoding="utf-8") as stream:
                write_book_jsonl(book, stream)
            generated = time.perf_counter() - started
            wall = time.perf_counter()
            with concurrent.futures.ProcessPoolExecutor(max_workers=args.workers) as pool:
                runs = list(
                    pool.map(
                        _run, POLICIES, [path] * len(POLICIES), [args.scenario] * len(POLICIES)
                    )
                )
            total_wall = time.perf_counter() - wall
            naive = sum(_naive(p, path, args.scenario, args.naive_sample) for p in POLICIES)
        cpu = sum(r["cpu"] for r in runs)
        rows.append(
            (count, generated, total_wall, cpu, max(r["peak_mb"] for r in runs), naive, runs)
        )
        print(
            f"{count:>7} accounts: book {generated:5.1f} s | both policies wall {total_wall:6.1f} s, "
            f"cpu {cpu:6.1f} s | peak {max(r['peak_mb'] for r in runs):6.0f} MB/process | "
            f"naive baseline {naive:7.1f} s cpu (x{naive / cpu:4.1f}) | "
            + ", ".join(
                f"{r['policy']} {r['wall']:.1f}s {r['liquidated']} liq. err {r['conservation_error']}"
                for r in runs
            ),
            flush=True,
        )
    print()
    print(
        "| accounts | book generation s | wall s (both policies, parallel) | CPU s (sum) | peak MB per process | naive baseline CPU s | speed-up vs naive |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for count, generated, wall, cpu, peak, naive, _ in rows:
        print(
            f"| {count:,} | {generated:.1f} | {wall:.1f} | {cpu:.1f} | {peak:.0f} | {naive:.1f} | {naive / cpu:.1f}x |"
        )
    target = rows[-1]
    print(
        f"\ntarget: under 60 s in total and under 2 GB for 100,000 accounts; measured {target[2]:.1f} s, {target[4]:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
