"""`include`, `market_defaults`, and the verdict kept on included files (engine/policy/includes.py).

A verdict lets a later load skip checking a large included file; these tests hold that it never
changes what a load means: the same policy, digest and lookups with or without one, and a
changed file always checked again.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import PolicyError
from engine.policy import includes
from engine.policy.load import check_policy, load_policy
from engine.policy.packaged import policies_dir

D = Decimal

TABLES = {
    "tables": {
        "btcusdt_brackets": {
            "source": "doc",
            "keys": [{"name": "notional", "kind": "interval"}],
            "deduction": {"rate": "rate", "amount": "amount"},
            "rows": [
                {
                    "bracket": 1,
                    "min_notional": 0,
                    "max_notional": 50000,
                    "rate": 0.004,
                    "amount": 0,
                },
                {
                    "bracket": 2,
                    "min_notional": 50000,
                    "max_notional": 600000,
                    "rate": 0.005,
                    "amount": 50,
                },
            ],
        }
    },
    "markets": {
        "BTCUSDT": {"instrument": "BTC/USDT", "tiers": "btcusdt_brackets", "source": "doc"}
    },
}

POLICY = """\
id: venue
title: Venue
sources:
  - {id: doc, url: https://example.com/doc, title: Doc, retrieved: 2024-01-01}
include: [tables.json]
market_defaults: {kind: linear, contract_size: 1, tick_size: 0.1, parameters: {fee_rate: 0.005}}
markets:
  BTCUSDT: {parameters: {fee_rate: 0.003}}
definitions:
  notional: position.size * market.mark_price
  maintenance_margin:
    expr: notional * lookup(market.tiers, notional).rate - lookup(market.tiers, notional).amount
    source: doc
"""


def write(folder: Path, tables: object = TABLES, policy: str = POLICY) -> Path:
    (folder / "tables.json").write_text(
        tables if isinstance(tables, str) else json.dumps(tables, indent=1)
    )
    path = folder / "venue.yaml"
    path.write_text(policy)
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("LIQPOLICY_CACHE_DIR", str(directory))
    includes._MEMORY.clear()
    yield directory
    includes._MEMORY.clear()


def test_include_and_market_defaults(tmp_path, cache):
    """Markets come from the included file, their kind and sizes from `market_defaults`, and a
    market's own parameter wins over the default's (fee 0.3 % for BTCUSDT, 0.5 % otherwise)."""
    policy = load_policy(write(tmp_path))
    market = policy.markets["BTCUSDT"]
    assert (market.kind, market.contract_size, market.tick_size) == ("linear", D(1), D("0.1"))
    assert market.parameters["fee_rate"] == D("0.003")
    assert market.instrument == "BTC/USDT"
    assert market.tiers is not None and market.tiers.lookup([D(60000)])["amount"] == D(50)
    assert str(tmp_path / "tables.json") in policy.chain


def test_a_verdict_changes_nothing(tmp_path, cache):
    """First load checks the file and keeps a verdict; a fresh process (memory cleared) reads
    the verdict: same digest, same rows, and no row parsed until a lookup needs them."""
    path = write(tmp_path)
    first = load_policy(path)
    assert len(list(cache.glob("include-*.json"))) == 1
    includes._MEMORY.clear()
    second = load_policy(path)
    assert second.digest == first.digest
    lazy = second.tables["btcusdt_brackets"].rows
    assert not getattr(lazy, "loaded", True)  # the verdict path read no row yet
    assert list(lazy) == list(first.tables["btcusdt_brackets"].rows)
    assert second.markets["BTCUSDT"].tiers.lookup([D(60000)])["amount"] == D(50)


def test_an_edited_file_is_checked_again(tmp_path, cache):
    """A verdict is keyed by the file's bytes: editing the amount to a wrong value is reported,
    located in the included file, although a verdict for the old content exists."""
    path = write(tmp_path)
    load_policy(path)
    includes._MEMORY.clear()
    broken = json.loads(json.dumps(TABLES))
    broken["tables"]["btcusdt_brackets"]["rows"][1]["amount"] = 60
    write(tmp_path, broken)
    policy, diagnostics = check_policy(path)
    assert policy is None
    (error,) = [d for d in diagnostics if d.severity == "error"]
    assert error.code == "E426"
    assert error.span is not None and error.span.path.endswith("tables.json")


def test_no_cache_directory_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("LIQPOLICY_CACHE_DIR", "")
    includes._MEMORY.clear()
    assert load_policy(write(tmp_path)).markets["BTCUSDT"].tiers is not None
    assert includes.cache_dir() is None


def test_an_unusable_verdict_is_ignored(tmp_path, cache):
    path = write(tmp_path)
    load_policy(path)
    for verdict in cache.glob("include-*.json"):
        verdict.write_text('{"digest": 1}')
    includes._MEMORY.clear()
    assert load_policy(path).markets["BTCUSDT"].tiers.lookup([D(1)])["bracket"] == D(1)


def test_yaml_includes_work_too(tmp_path, cache):
    (tmp_path / "tables.yaml").write_text(
        textwrap.dedent("""\
        # written by hand
        markets:
          ETHUSDT: {instrument: ETH/USDT, source: doc}
        """)
    )
    text = POLICY.replace("include: [tables.json]", "include: [tables.json, tables.yaml]")
    policy = load_policy(write(tmp_path, policy=text))
    assert set(policy.markets) == {"BTCUSDT", "ETHUSDT"}


def test_included_file_with_other_keys_is_e420(tmp_path, cache):
    path = write(tmp_path, {"markets": {}, "definitions": {"x": "1"}})
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    (error,) = caught.value.diagnostics
    assert error.code == "E428" and "definitions" in error.message


def test_missing_included_file_is_e400(tmp_path, cache):
    path = tmp_path / "venue.yaml"
    path.write_text(POLICY.replace("tables.json", "nowhere.json"))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert [d.code for d in caught.value.diagnostics] == ["E400"]


def test_own_table_merges_over_an_included_one(tmp_path, cache):
    """A policy's own `tables` entry with an included table's name merges over it, as `extends`
    merges: here only the description changes; the rows stay the included ones."""
    text = POLICY + "tables:\n  btcusdt_brackets: {description: checked by hand}\n"
    policy = load_policy(write(tmp_path, policy=text))
    assert policy.tables["btcusdt_brackets"].lookup([D(60000)])["amount"] == D(50)


def test_a_copied_shipped_policy_finds_the_shipped_data(tmp_path):
    """A copy of binance-usdm elsewhere still finds tiers/… in the shipped policies folder."""
    shutil.copy(policies_dir() / "binance-usdm.yaml", tmp_path / "mine.yaml")
    assert len(load_policy(tmp_path / "mine.yaml").markets) == 318


def test_the_shipped_policy_covers_the_snapshots_usdt_perpetuals():
    """318 USDT perpetuals of the snapshot (its README); BTCUSDT and ETHUSDT as before (their
    worked examples pass in test_front_door/liqpolicy test); the 2019 clearance fee rule."""
    snapshot = json.loads(
        Path("/work/shared/data/binance-usdm-leverage-tiers-2024-10.json").read_text()
        if Path("/work/shared/data/binance-usdm-leverage-tiers-2024-10.json").is_file()
        else "{}"
    )
    policy = load_policy("binance-usdm")
    assert len(policy.markets) == 318
    if snapshot:
        wanted = {k.split("/")[0] + "USDT" for k in snapshot if k.endswith("/USDT:USDT")}
        assert set(policy.markets) == wanted
    btc, eth = policy.markets["BTCUSDT"], policy.markets["ETHUSDT"]
    assert (btc.tick_size, eth.tick_size) == (D("0.1"), D("0.01"))
    assert btc.parameters["clearance_fee_rate"] == D("0.003")
    assert {
        m.parameters["clearance_fee_rate"] for s, m in policy.markets.items() if s != "BTCUSDT"
    } == {D("0.005")}
    assert all(m.tiers is not None for m in policy.markets.values())
