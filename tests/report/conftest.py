"""Small, fast fixtures for the report and CLI tests: 50 accounts through a 31-step crash."""

from __future__ import annotations

import functools
import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from engine.cli import compare as compare_cli
from engine.cli import diff as diff_cli
from engine.cli import simulate as simulate_cli
from engine.policy.load import load_policy
from engine.simulation.book import load_book
from engine.simulation.compare import Comparison, compare
from engine.simulation.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ("binance-usdm", "huobi-linear-swap")

SCENARIO = """\
id: mini-crash
title: Mini crash <test & fixture>
description: A stylised 15-minute crash for tests, not market data.
sources:
  - {id: none, url: https://example.org/none, title: Test fixture, retrieved: 2026-11-21}
step_seconds: 30
insurance_fund:
  shared: 8000
  BTC/USDT: 8000
instruments:
  BTC/USDT:
    price_step: 0.1
    average_book_depth: 5_000_000
    funding:
      - {time: 5m, rate: 0.0001}
    keyframes:
      - {time: 0, mark: 60000}
      - {time: 6m, mark: 52500, last_bps: -60, index_bps: 10, depth: 0.3}
      - {time: 8m, mark: 54000}
      - {time: 15m, mark: 56000, depth: 0.8}
"""


def book_lines(count: int = 50, seed: int = 7) -> list[str]:
    """Longs and shorts, cross and isolated, 2x to 125x, entered near 60,000."""
    rng = random.Random(seed)
    lines = []
    for index in range(count):
        leverage = Decimal(rng.choice([2, 5, 10, 20, 25, 50, 100, 125]))
        quantity = Decimal(rng.randint(1, 3000)) / 1000
        entry = Decimal(60000 + rng.randint(-300, 300))
        side = "long" if rng.random() < 0.6 else "short"
        mode = "cross" if rng.random() < 0.6 else "isolated"
        margin = (quantity * entry / leverage).quantize(Decimal("0.01"))
        wallet = (
            (margin * rng.randint(5, 30) / 10).quantize(Decimal("0.01"))
            if mode == "cross"
            else Decimal(100)
        )
        position = {
            "instrument": "BTC/USDT",
            "side": side,
            "quantity": str(quantity),
            "entry_price": str(entry),
            "margin_mode": mode,
            "leverage": str(leverage),
        }
        if mode == "isolated":
            position["isolated_margin"] = str(margin)
        lines.append(
            json.dumps(
                {"id": f"a{index:03d}", "wallet_balance": str(wallet), "positions": [position]}
            )
        )
    return lines


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    (folder / "mini-crash.yaml").write_text(SCENARIO, encoding="utf-8")
    (folder / "book.jsonl").write_text("\n".join(book_lines()) + "\n", encoding="utf-8")
    return folder


CLAWBACK_POLICY = """\
id: htx-with-clawback
title: HTX rules with a clawback instead of ADL (test fixture)
extends: huobi-linear-swap
waterfall:
  order: [insurance_fund, clawback, write_off]
  adl: null
  clawback: {cap: 1, base: equity, step: 0.0001}
examples: null
"""


@pytest.fixture(scope="session")
def clawback_policy_path(fixture_dir: Path) -> str:
    """A what-if whose fund the fixture's crash exhausts, so a clawback settles."""
    path = fixture_dir / "htx-with-clawback.yaml"
    path.write_text(CLAWBACK_POLICY, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def scenario_path(fixture_dir: Path) -> str:
    return str(fixture_dir / "mini-crash.yaml")


@pytest.fixture(scope="session")
def book_path(fixture_dir: Path) -> str:
    return str(fixture_dir / "book.jsonl")


_cached_load_policy = functools.cache(load_policy)


@pytest.fixture(autouse=True)
def _fast_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root and load each policy once (policies are immutable)."""
    monkeypatch.chdir(ROOT)
    for module in (compare_cli, diff_cli, simulate_cli):
        monkeypatch.setattr(module, "load_policy", _cached_load_policy)


@pytest.fixture(scope="session")
def load():
    """load_policy, each shipped policy loaded once per session."""
    return _cached_load_policy


@pytest.fixture(scope="session")
def comparison(book_path: str, scenario_path: str) -> Comparison:
    policies = [_cached_load_policy(pid) for pid in POLICIES]
    return compare(policies, load_book(book_path), load_scenario(scenario_path), limit=5)
