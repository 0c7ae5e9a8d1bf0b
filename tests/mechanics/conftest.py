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


@pytest.fixture(scope="session")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Policy]:
    """`variant(name, yaml_text)`: a policy extending binance-usdm by path, with the given keys.

    Mappings merge into the parent; lists (steps, fees, consumption_order) replace the parent's.
    The parent's examples are dropped so a variant is only what the test says.
    """
    folder = tmp_path_factory.mktemp("variants")
    parent = policies_dir() / "binance-usdm.yaml"
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
