"""Shared fixtures for the mechanics tests: shipped policies and policy variants in tmp folders."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.policy.load import load_policy
from engine.policy.model import Policy
from engine.policy.packaged import policies_dir


@pytest.fixture(scope="session")
def usdm() -> Policy:
    return load_policy("binance-usdm")


@pytest.fixture(scope="session")
def faq() -> Policy:
    return load_policy("binance-usdm-faq-example")


# binance-usdm with its reduce order filling at any price (no IOC limit): the model the
# hand-derived `erin` numbers below were written for (the shipped policy's own example derives
# the limited order).
MARKET_IOC_STEPS = """\
liquidation:
  steps:
    - {name: cancel open orders, kind: cancel_orders}
    - name: one large reduce-only IOC order
      kind: reduce
      quantity: reduce_to_lower_bracket
    - {name: "close at the bankruptcy price, insurance fund takes over", kind: close}
"""


@pytest.fixture(scope="session")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Policy]:
    """`variant(name, yaml_text)`: a policy extending binance-usdm by path, with the given keys.

    The parent is binance-usdm with a market IOC (:data:`MARKET_IOC_STEPS`).  Mappings merge
    into the parent; lists (steps, fees, consumption_order) replace the parent's.  The parent's
    examples are dropped so a variant is only what the test says.
    """
    folder = tmp_path_factory.mktemp("variants")
    parent = folder / "binance-usdm-market-ioc.yaml"
    parent.write_text(
        f"id: binance-usdm-market-ioc\ntitle: binance-usdm, IOC without a limit\n"
        f"extends: {policies_dir() / 'binance-usdm.yaml'}\nexamples: []\n" + MARKET_IOC_STEPS,
        encoding="utf-8",
    )
    cache: dict[str, Policy] = {}

    def make(name: str, body: str) -> Policy:
        if name in cache:
            return cache[name]
        path: Path = folder / f"{name}.yaml"
        path.write_text(
            f"id: {name}\ntitle: {name}\nextends: {parent}\nexamples: []\n" + textwrap.dedent(body),
            encoding="utf-8",
        )
        cache[name] = load_policy(path)
        return cache[name]

    return make


@pytest.fixture(scope="session")
def market_ioc(variant: Callable[[str, str], Policy]) -> Policy:
    """binance-usdm whose reduce order fills at any price (see :data:`MARKET_IOC_STEPS`)."""
    return variant("market-ioc", "")
