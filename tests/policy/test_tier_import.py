"""`liqpolicy tiers import`: the five formats, exact numbers, located errors (issue 11).

Expected rows come from the fixtures' cited documents (tests/fixtures/tiers/README.md) and the
bracket tables of /work/shared/research/exchanges.md, never from the importer.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from engine.cli import main
from engine.errors import InputError
from engine.policy.load import load_policy
from engine.policy.tier_import import import_tiers

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tiers"
D = Decimal

# BTCUSDT brackets of the 2024-10-24 snapshot, as tabulated in exchanges.md §1.1:
# (bracket, floor, cap, leverage, rate, cum)
BTCUSDT = [
    (1, 0, 50_000, 125, "0.004", 0),
    (2, 50_000, 600_000, 100, "0.005", 50),
    (3, 600_000, 3_000_000, 75, "0.0065", 950),
    (4, 3_000_000, 12_000_000, 50, "0.01", 11_450),
    (5, 12_000_000, 70_000_000, 25, "0.02", 131_450),
    (6, 70_000_000, 100_000_000, 20, "0.025", 481_450),
    (7, 100_000_000, 230_000_000, 10, "0.05", 2_981_450),
    (8, 230_000_000, 480_000_000, 5, "0.1", 14_481_450),
    (9, 480_000_000, 600_000_000, 4, "0.125", 26_481_450),
    (10, 600_000_000, 800_000_000, 3, "0.15", 41_481_450),
    (11, 800_000_000, 1_200_000_000, 2, "0.25", 121_481_450),
    (12, 1_200_000_000, 1_800_000_000, 1, "0.5", 421_481_450),
]


def _brackets(rows):
    return [
        (
            int(r["bracket"]),
            r["min_notional"],
            r["max_notional"],
            int(r["max_leverage"]),
            r["maintenance_margin_rate"],
            r["maintenance_amount"],
        )
        for r in rows
    ]


def _expected_btc():
    return [(b, D(f), D(c), lev, D(rate), D(cum)) for b, f, c, lev, rate, cum in BTCUSDT]


def table(result, symbol):
    return next(t for t in result.tables if t.symbol == symbol)


@pytest.mark.parametrize(
    "name", ["binance-fapi-leverage-bracket.json", "ccxt-binance-leverage-tiers.json"]
)
def test_binance_brackets_read_exactly(name):
    """The venue's own response and ccxt's file give the research table's BTCUSDT brackets."""
    result = import_tiers(FIXTURES / name)
    symbol = "BTCUSDT" if name.startswith("binance") else "BTC/USDT:USDT"
    btc = table(result, symbol)
    assert btc.name == "btcusdt_brackets"
    assert btc.columns == (
        "bracket",
        "min_notional",
        "max_notional",
        "max_leverage",
        "maintenance_margin_rate",
        "maintenance_amount",
    )
    assert _brackets(btc.rows) == _expected_btc()
    assert all(type(v) is Decimal for row in btc.rows for v in row.values())
    assert btc.layout.deduction == {
        "rate": "maintenance_margin_rate",
        "amount": "maintenance_amount",
    }


def test_ccxt_rows_come_from_info_strings_not_floats(tmp_path):
    """ccxt's unified numbers are float conversions: a tier whose `info` disagrees with them is
    read from `info` (here a float 0.00399999 against Binance's "0.004")."""
    data = json.loads((FIXTURES / "ccxt-binance-leverage-tiers.json").read_text())
    data["BTC/USDT:USDT"][0]["maintenanceMarginRate"] = 0.00399999
    path = tmp_path / "tiers.json"
    path.write_text(json.dumps(data))
    btc = table(import_tiers(path), "BTC/USDT:USDT")
    assert btc.layout.name == "binance"
    assert btc.rows[0]["maintenance_margin_rate"] == D("0.004")
    assert btc.market == {"symbol": "BTCUSDT", "instrument": "BTC/USDT", "kind": "linear"}


def test_binance_coin_margined_pair_and_docs_spelling():
    """/dapi/v1 returns `pair`, `qtyCap` and (sic) `qtylFloor` (the docs' response example)."""
    result = import_tiers(FIXTURES / "binance-dapi-leverage-bracket.json")
    (btc,) = result.tables
    assert btc.symbol == "BTCUSD"
    assert _brackets(btc.rows) == [(1, D(0), D(50), 125, D("0.004"), D(0))]


def test_htx_ladders_become_half_open_by_leverage():
    """0–8,999 / 9,000–89,999 / 90,000–null contracts at 125x (HTX docs example) are
    [0, 9,000), [9,000, 90,000), [90,000, ∞) with leverage as an exact key."""
    (ladder,) = import_tiers(FIXTURES / "htx-swap-adjustfactor.json").tables
    assert ladder.name == "btc_usdt_adjustment_factors"
    assert ladder.keys == (("leverage", "exact"), ("net_contracts", "interval"))
    rows = [
        (
            r["leverage"],
            r["ladder"],
            r["min_net_contracts"],
            r["max_net_contracts"],
            r["adjust_factor"],
        )
        for r in ladder.rows
    ]
    assert rows == [
        (D(125), D(0), D(0), D(9000), D("0.65")),
        (D(125), D(1), D(9000), D(90000), D("0.8")),
        (D(125), D(2), D(90000), None, D("0.85")),
    ]


def test_htx_cross_example():
    (ladder,) = import_tiers(FIXTURES / "htx-swap-cross-adjustfactor.json").tables
    assert ladder.symbol == "BTC-USDT-211210"
    assert [r["max_net_contracts"] for r in ladder.rows] == [
        D(4000),
        D(40000),
        D(80000),
        D(120000),
        None,
    ]
    assert [r["adjust_factor"] for r in ladder.rows][-1] == D("0.025")


def test_okx_inclusive_contract_ranges():
    """OKX tiers 0–2,000, 2,001–4,000, 4,001–8,000 contracts are [0, 2,001), [2,001, 4,001),
    [4,001, 8,001); no deduction column exists (the whole position takes the tier's rate)."""
    (tiers,) = import_tiers(FIXTURES / "okx-position-tiers.json").tables
    assert tiers.symbol == "ETH-USDT"
    assert tiers.keys == (("contracts", "interval"),)
    assert [(r["min_contracts"], r["max_contracts"]) for r in tiers.rows] == [
        (D(0), D(2001)),
        (D(2001), D(4001)),
        (D(4001), D(8001)),
    ]
    assert [r["initial_margin_rate"] for r in tiers.rows] == [D("0.013"), D("0.02"), D("0.05")]
    assert tiers.layout.deduction is None


def test_bybit_caps_and_deduction():
    """Risk limits 2.0M / 2.6M / ... are upper bounds; deduction 1,200 = 2,000,000 × (0.0056 −
    0.005) (Bybit's margin-parameters recursion, exchanges.md §5.1)."""
    (tiers,) = import_tiers(FIXTURES / "bybit-risk-limit.json").tables
    assert [(r["min_notional"], r["max_notional"]) for r in tiers.rows][:2] == [
        (D(0), D(2_000_000)),
        (D(2_000_000), D(2_600_000)),
    ]
    assert [r["maintenance_amount"] for r in tiers.rows] == [
        D(0),
        D(1200),
        D(3020),
        D(4300),
        D(5820),
    ]
    assert "initial_margin_rate" not in tiers.columns  # no tier has it: left out


def _errors(path):
    with pytest.raises(InputError) as caught:
        import_tiers(path)
    return caught.value.diagnostics


def _broken(tmp_path, name, edit):
    text = (FIXTURES / name).read_text()
    path = tmp_path / name
    path.write_text(edit(text))
    return path


def test_wrong_cum_is_located_at_the_cum_with_the_expected_value(tmp_path):
    """Bracket 3's cum should be 50 + 600,000 × (0.0065 − 0.005) = 950; 960 is an error there."""
    path = _broken(
        tmp_path,
        "binance-fapi-leverage-bracket.json",
        lambda t: t.replace('"cum": 950.0', '"cum": 960.0', 1),
    )
    (error,) = _errors(path)
    assert error.code == "E426"
    assert "960" in error.message and "= 950" in error.message
    line = path.read_text().splitlines()[error.span.line - 1]
    assert line[error.span.column - 1 :].startswith("960.0")


def test_gap_and_overlap_are_located(tmp_path):
    gap = _broken(
        tmp_path,
        "okx-position-tiers.json",
        lambda t: t.replace('"minSz": "2001"', '"minSz": "2101"'),
    )
    (error,) = _errors(gap)
    assert error.code == "E402"
    assert "from 2001 to 2100" in error.message
    assert error.span.line == 6
    overlap = _broken(
        tmp_path,
        "htx-swap-adjustfactor.json",
        lambda t: t.replace('"min_size": 9000,', '"min_size": 8000,'),
    )
    (error,) = _errors(overlap)
    assert error.code == "E403"
    assert error.span.path == str(overlap)


def test_unknown_format_names_the_formats(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"hello": []}')
    (error,) = _errors(path)
    assert error.code == "E640"
    assert "binance" in (error.hint or "") and "ccxt" in (error.hint or "")


def test_cli_writes_a_file_a_policy_includes(tmp_path, capsys, monkeypatch):
    """The YAML written for an import loads under `include`, deduction checked, and a hand edit
    that breaks a maintenance amount is then a load error located in the included file."""
    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "tiers",
            "import",
            str(FIXTURES / "binance-fapi-leverage-bracket.json"),
            "--source",
            "snapshot",
            "--markets",
            "-o",
            "brackets.yaml",
        ]
    )
    assert code == 0
    assert "imported 2 tables" in capsys.readouterr().err
    (tmp_path / "venue.yaml").write_text(
        "id: venue\ntitle: Venue\n"
        "sources: [{id: snapshot, url: https://example.com, title: Snapshot, retrieved: 2024-10-24}]\n"
        "include: [brackets.yaml]\n"
        "market_defaults: {kind: linear, contract_size: 1, tick_size: 0.1}\n"
        "definitions:\n"
        "  mm:\n"
        "    expr: notional * lookup(market.tiers, notional).maintenance_margin_rate"
        " - lookup(market.tiers, notional).maintenance_amount\n"
        "    source: snapshot\n"
        "  notional: position.size * market.mark_price\n"
    )
    policy = load_policy(tmp_path / "venue.yaml")
    assert policy.markets["BTCUSDT"].instrument == "BTCUSDT"  # a venue symbol tells no instrument
    assert policy.tables["btcusdt_brackets"].lookup([D(60_000)])["maintenance_amount"] == D(50)
    text = (
        (tmp_path / "brackets.yaml")
        .read_text()
        .replace("maintenance_amount: 950}", "maintenance_amount: 960}", 1)
    )
    (tmp_path / "brackets.yaml").write_text(text)
    assert main(["validate", "venue.yaml"]) == 2
    err = capsys.readouterr().err
    assert "brackets.yaml:" in err and "error[E426]" in err


def test_tiers_formats_lists_every_format(capsys):
    assert main(["tiers", "formats"]) == 0
    out = capsys.readouterr().out
    for name in ("binance", "htx", "okx", "bybit", "ccxt"):
        assert f"\n{name} " in "\n" + out
