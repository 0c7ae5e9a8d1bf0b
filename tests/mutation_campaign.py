"""A hand-picked mutation campaign over the simulation and mechanics (a periodic check, not CI).

Each mutant is one textual change to engine code or shipped data that a correct test suite must
notice; the campaign applies it, runs the simulation and mechanics tests, restores the file and
reports killed / SURVIVED / stale (the text to mutate is gone: update the mutant).  The
first occurrence of a mutant's text is changed.  Results and
the reasoning behind each mutant are in docs/testing.md.

    .venv/bin/python tests/mutation_campaign.py            # every mutant
    .venv/bin/python tests/mutation_campaign.py waiver     # the mutants whose name contains it
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = [
    "tests/simulation",
    "tests/mechanics",
    "tests/test_examples_fail.py",
    "tests/test_policy_venues.py",
    "tests/test_schemas.py",
]


@dataclass(frozen=True, slots=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str


MUTANTS = (
    Mutant(
        "screening looks the wrong way (longs screened at the highest prices)",
        "engine/simulation/simulate.py",
        'if side == "long":\n            return {name: extremes.min(start, end)',
        'if side != "long":\n            return {name: extremes.min(start, end)',
    ),
    Mutant(
        "ADL ranking reversed (lowest ranked first)",
        "engine/simulation/adl.py",
        "candidates.sort(key=lambda item: (-item[0], item[1]))",
        "candidates.sort(key=lambda item: (item[0], item[1]))",
    ),
    Mutant(
        "clawback cap dropped",
        "engine/simulation/simulate.py",
        "target = min(uncovered, cap * total) if total > 0 else ZERO",
        "target = uncovered if total > 0 else ZERO",
    ),
    Mutant(
        "after-market-sale ADL quantities rounded down instead of up",
        "engine/simulation/adl.py",
        'closed = min(most, quantize_to_step(closed, step, "up"))',
        'closed = min(most, quantize_to_step(closed, step, "down"))',
    ),
    Mutant(
        "debt waiver threshold exclusive",
        "engine/simulation/waterfall.py",
        "if waive is not None and remaining <= waive:",
        "if waive is not None and remaining < waive:",
    ),
    Mutant(
        "conservation check never fires",
        "engine/simulation/simulate.py",
        "        if difference != 0:\n            raise ConservationError(",
        "        if difference != difference:\n            raise ConservationError(",
    ),
    Mutant(
        "worked-example runner always passes",
        "engine/mechanics/examples.py",
        "return not self.mismatches and self.error is None",
        "return self.error is None",
    ),
    Mutant(
        "interval charges also at t = 0",
        "engine/simulation/simulate.py",
        "time > 0 and charge.every_seconds and time % charge.every_seconds == 0",
        "charge.every_seconds and time % charge.every_seconds == 0",
    ),
    Mutant(
        "the fund affords one contract more than its balance allows",
        "engine/simulation/waterfall.py",
        "return -sale.result(part, sale.fill(part)) <= capacity",
        "return -sale.result(part, sale.fill(part)) <= capacity + 1000",
    ),
    Mutant(
        "a bracket's maintenance amount set to 0 in the shipped tiers (the first 0.5 % row)",
        "policies/tiers/binance-usdm-2024-10-24.json",
        '"maintenance_margin_rate": 0.005, "maintenance_amount": 50}',
        '"maintenance_margin_rate": 0.005, "maintenance_amount": 0}',
    ),
)


def run(mutant: Mutant) -> str:
    target = ROOT / mutant.path
    original = target.read_text(encoding="utf-8")
    if mutant.old not in original:
        return "stale"
    target.write_text(original.replace(mutant.old, mutant.new, 1), encoding="utf-8")
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TESTS],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        target.write_text(original, encoding="utf-8")
    if completed.returncode == 0:
        return "SURVIVED"
    failed = [line for line in completed.stdout.splitlines() if line.startswith("FAILED")]
    return "killed" + (f" by {failed[0].split(' ')[1]}" if failed else "")


def main(selection: list[str]) -> int:
    chosen = [m for m in MUTANTS if not selection or any(s in m.name for s in selection)]
    survivors = 0
    for mutant in chosen:
        started = time.perf_counter()
        verdict = run(mutant)
        survivors += verdict in ("SURVIVED", "stale")
        sys.stdout.write(f"{verdict:<60} {time.perf_counter() - started:5.1f} s  {mutant.name}\n")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
