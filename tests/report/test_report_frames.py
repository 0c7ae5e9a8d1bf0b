"""Results as pandas DataFrames and their Jupyter display (engine/frames.py and its users)."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

import engine
from engine.frames import Field, frame
from engine.simulation.compare import Comparison
from engine.simulation.result_frames import COMPARISON_TABLES, RESULT_TABLES
from engine.simulation.results import Fate, SimulationResult
from engine.simulation.waterfall import Deleverage

ROOT = Path(__file__).resolve().parents[2]
D = Decimal


def hand_made() -> SimulationResult:
    """Two accounts written by hand: `a` fully liquidated at t=60 (equity 1000 → 250, so a loss
    of 750, fees 12.5), `b` untouched but deleveraged once (haircut 0.1) and clawed back 0.2."""
    fates = {
        "b": Fate("b", "none", 0, D(0), D(0), D("500"), D("500.3"), D(0), D("0.1"), D("0.2"), None),
        "a": Fate(
            "a", "full", 2, D("30000"), D("12.5"), D("1000"), D("250"), D("5"), D(0), D(0), 60
        ),
    }
    return SimulationResult(
        policy_id="venue-a",
        policy_title="Venue A <test>",
        policy_digest="sha256:" + "0" * 64,
        scenario_id="mini",
        accounts=2,
        steps=3,
        events=(),
        deleverages=(
            Deleverage(60, "b", "BTCUSDT", "short", D("0.5"), D("59000"), D("0.1"), D("29500")),
        ),
        clawbacks=(),
        insurance_fund_series=((0, D("100")), (30, D("100")), (60, D("90.1"))),
        insurance_fund_start=D("100"),
        flows={"fees_base": D("12.5")},
        fates=fates,
        conservation_error=D(0),
        fee_revenue=D("12.5"),
        write_offs=D(0),
        debt_outstanding=D("5"),
        pools={"BTC/USDT": {"start": D("100"), "min": D("90.1"), "end": D("90.1")}},
        currency="USDT",
    )


def test_fates_frame_is_typed_and_exact():
    df = hand_made().to_pandas()
    assert list(df.index) == ["a", "b"] and df.index.name == "account"
    assert str(df["liquidation"].dtype) == "category"
    assert list(df["liquidation"].cat.categories) == ["none", "partial", "full"]
    assert df["orders"].dtype == "int64"
    assert str(df["first_liquidation_time"].dtype) == "Int64"
    assert df.loc["a", "first_liquidation_time"] == 60
    assert pd.isna(df.loc["b", "first_liquidation_time"])
    assert df["loss"].dtype == object
    assert df.loc["a", "loss"] == D("750")  # 1000 − 250
    assert df.loc["b", "loss"] == D("-0.3")  # a gain
    assert df["loss"].sum() == D("749.7")  # exact: Decimal arithmetic
    assert isinstance(df["fees"].sum(), Decimal)


def test_float_mode_converts_decimals_only():
    df = hand_made().to_pandas(decimals="float")
    assert df["loss"].dtype == "float64" and df.loc["a", "loss"] == 750.0
    assert df["orders"].dtype == "int64"
    series = hand_made().to_pandas("insurance_fund", decimals="float")
    assert series["balance"].tolist() == [100.0, 100.0, 90.1]
    assert series["time"].tolist() == [0, 30, 60]


def test_exact_mode_keeps_sums_exact_where_floats_drift():
    values = [{"x": D("0.1")} for _ in range(3)]
    exact = frame(values, [Field("x")])["x"].sum()
    floats = frame(values, [Field("x")], decimals="float")["x"].sum()
    assert exact == D("0.3")
    assert floats != 0.3  # 0.30000000000000004: why exact is the default


def test_empty_tables_still_have_typed_columns():
    events = hand_made().to_pandas("events")
    assert len(events) == 0
    assert list(events.columns)[:3] == ["time", "account", "event_id"]
    assert events["time"].dtype == "int64" and events["fees"].dtype == object


def test_deleverages_and_summary():
    result = hand_made()
    deleverages = result.to_pandas("deleverages")
    assert deleverages.loc[0, "haircut"] == D("0.1")
    assert str(deleverages["side"].dtype) == "category"
    summary = result.to_pandas("summary")
    assert list(summary.index) == ["venue-a"]
    assert summary.loc["venue-a", "accounts_liquidated.full"] == 1
    assert summary["accounts_liquidated.full"].dtype == "int64"
    assert summary.loc["venue-a", "insurance_fund.min"] == D("90.1")
    assert summary.loc["venue-a", "bad_debt"] == D("5")  # write-offs 0 + debt 5
    assert summary.loc["venue-a", "fees.base"] == D("12.5")
    assert "title" not in summary.columns and "digest" not in summary.columns


def test_unknown_table_and_mode_are_refused():
    with pytest.raises(ValueError, match=r"no table 'fate'.*'fates'"):
        hand_made().to_pandas("fate")
    with pytest.raises(ValueError, match="decimals must be 'exact' or 'float'"):
        hand_made().to_pandas(decimals="decimal")


def test_every_table_builds(comparison: Comparison):
    for table in RESULT_TABLES:
        assert isinstance(comparison.results[0].to_pandas(table), pd.DataFrame)
    for table in COMPARISON_TABLES:
        assert isinstance(comparison.to_pandas(table, decimals="float"), pd.DataFrame)


def test_comparison_frames(comparison: Comparison):
    ids = comparison.policy_ids
    summary = comparison.to_pandas()
    assert list(summary.index) == ids
    for result in comparison.results:
        document = result.summary()
        assert summary.loc[result.policy_id, "bad_debt"] == D(document["bad_debt"])
        assert summary.loc[result.policy_id, "where_the_money_went.adl"] == D(
            document["where_the_money_went"]["adl"]
        )
    fates = comparison.to_pandas("fates")
    assert fates.index.names == ["policy", "account"]
    assert len(fates) == sum(len(r.fates) for r in comparison.results)
    for result in comparison.results:
        assert fates.loc[result.policy_id]["fees"].sum() == sum(
            f.fees for f in result.fates.values()
        )
    fund = comparison.to_pandas("insurance_fund", decimals="float")
    assert list(fund["policy"].cat.categories) == ids
    wide = fund.pivot(index="time", columns="policy", values="balance")
    assert list(wide.columns) == ids
    differences = comparison.to_pandas("differences")
    assert list(differences.columns) == ["loss_spread", *(f"loss.{p}" for p in ids), "reasons"]
    first = comparison.differences[0]
    assert differences.loc[first.account_id, "loss_spread"] == first.spread
    curve = comparison.to_pandas("leverage_curve")
    assert list(curve.columns) == ids and D(125) in curve.index


def test_engine_to_pandas_takes_results_and_batches():
    alice = json.loads((ROOT / "examples" / "alice.json").read_text(encoding="utf-8"))
    bob = alice | {"id": "bob", "wallet_balance": "20000"}
    results = [engine.evaluate("binance-usdm", alice), engine.evaluate("binance-usdm", bob)]
    df = engine.to_pandas(results)
    assert len(df) == 2 and list(df["account"]) == ["alice", "bob"]
    for row, result in zip(df.itertuples(), results, strict=True):
        position = result.positions[0]
        assert row.liquidation_price == position.liquidation_price
        assert row.margin_ratio == position.figure("margin_ratio")
    assert df["triggered"].dtype == bool
    assert engine.to_pandas(results[0], decimals="float")["size"].dtype == "float64"
    assert engine.to_pandas(hand_made(), "deleverages").loc[0, "account"] == "b"
    with pytest.raises(TypeError):
        engine.to_pandas([object()])


def test_a_missing_pandas_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'liqpolicy\[analysis\]'"):
        hand_made().to_pandas()


def test_importing_engine_loads_neither_pandas_nor_rich():
    code = "import engine, sys; print('pandas' in sys.modules, 'rich' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


VOID = frozenset({"br", "meta", "img", "hr"})


class _Balanced(HTMLParser):
    def __init__(self):
        super().__init__()
        self.open: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open.pop() == tag


def test_jupyter_display_is_a_compact_summary(comparison: Comparison):
    html = comparison._repr_html_()
    parser = _Balanced()
    parser.feed(html)
    assert parser.open == []
    assert parser.tags <= {"div", "p", "strong", "table", "thead", "tbody", "tr", "th", "td"}
    assert "&lt;test &amp; fixture&gt;" in html  # the scenario title, escaped
    for pid in comparison.policy_ids:
        assert f">{pid}</th>" in html
    assert "font-weight: bold" in html  # the figures that differ
    assert "http" not in html and "<script" not in html
    single = hand_made()._repr_html_()
    assert "Venue A &lt;test&gt;" in single
    assert ">90.1</td>" in single  # the insurance fund's minimum
    assert ">Bad debt</th>" in single
