"""Accounts in ccxt's shapes (issue 11): a bot's `fetch_positions` + `fetch_balance`, one call,
the cross-margin liquidation price of the whole account.

The fixture (tests/fixtures/ccxt/binance-account.json) follows ccxt's position and balance
structures (https://docs.ccxt.com/#/README?id=position-structure, ?id=balance-structure), with
Binance's positionRisk fields in `info`: a cross BTCUSDT long 1 @ 60,000 (mark 59,000), a cross
ETHUSDT short 10 @ 3,000 (mark 3,100), a flat SOL position, and 10,000 USDT.
"""

from __future__ import annotations

import io
import json
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import engine
from engine.cli import main
from engine.errors import InputError
from engine.mechanics.accounts import parse_account, read_account_file
from engine.mechanics.evaluate import evaluate_account
from engine.policy.load import load_policy

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "ccxt" / "binance-account.json"
D = Decimal


@pytest.fixture(scope="module")
def binance():
    return load_policy("binance-usdm")


def envelope() -> dict:
    return json.loads(FIXTURE.read_text())  # Python floats, as ccxt returns them


def prices(result) -> dict[str, Decimal]:
    return {p["symbol"]: D(p["liquidation_price"]) for p in result.as_dict()["positions"]}


def test_whole_account_cross_liquidation_prices(binance):
    """Hand derivation (Binance brackets: < 50k 0.4 %, 50k–600k 0.5 % − 50; both positions
    share the 10,000 wallet):

    BTC, ETH held at 3,100 (ETH MM 31,000 × 0.004 = 124, loss −1,000):
      10,000 + (P − 60,000) − 1,000 = 0.005 P − 50 + 124 → P = 51,074 / 0.995 = 51,330.653…
      (bracket 2 holds at that notional); the highest 0.1 tick with ratio ≥ 100 %: 51,330.6.
    ETH, BTC held at 59,000 (BTC MM 59,000 × 0.005 − 50 = 245, loss −1,000):
      10,000 − 1,000 + 10 (3,000 − P) = 245 + 0.04 P → P = 38,755 / 10.04 = 3,860.0597…;
      the lowest 0.01 tick for a short: 3,860.06.
    A single-position formula would ignore the other position's loss and maintenance margin.
    """
    result = evaluate_account(binance, parse_account(envelope(), binance))
    assert prices(result) == {"BTCUSDT": D("51330.6"), "ETHUSDT": D("3860.06")}
    assert result.as_dict()["account"] == "bot-7"


def test_mapping_field_by_field(binance):
    account = parse_account(envelope(), binance)
    assert account.wallet_balance == D(10000)
    assert [(p["symbol"], p["side"], p["size"], p["margin_mode"]) for p in account.positions] == [
        ("BTCUSDT", "long", D(1), "cross"),
        ("ETHUSDT", "short", D(10), "cross"),
    ]  # the flat SOL position is skipped
    assert account.market["BTCUSDT"]["mark_price"] == D(59000)


def test_json_file_python_floats_and_text_agree(binance):
    """Read from the file (numbers exact from its text) or from Python floats: the same."""
    assert read_account_file(FIXTURE, binance) == parse_account(envelope(), binance)


def test_contract_size_and_isolated_collateral():
    """HTX's BTC-USDT contract is 0.001 BTC (huobi-linear-swap's contract_size): 0.5 BTC of
    ccxt contracts of 0.001 are 500 policy contracts; an isolated position's margin is ccxt's
    collateral 1,100 less its unrealized PnL 100 = 1,000."""
    huobi = load_policy("huobi-linear-swap")
    data = {
        "ccxt": {
            "positions": [
                {
                    "symbol": "BTC/USDT:USDT",
                    "contracts": 500,
                    "contractSize": 0.001,
                    "side": "long",
                    "marginMode": "isolated",
                    "entryPrice": 50000,
                    "markPrice": 50200,
                    "leverage": 125,
                    "collateral": 1100,
                    "unrealizedPnl": 100,
                }
            ],
            "balance": {"USDT": {"total": 0}},
        },
        "market": {"BTC/USDT:USDT": {"last_price": 50200}},
    }
    (position,) = parse_account(data, huobi).positions
    assert (position["symbol"], position["size"], position["isolated_margin"]) == (
        "BTC-USDT",
        D(500),
        D(1000),
    )


def _codes(data, policy) -> list[tuple[str, str]]:
    with pytest.raises(InputError) as caught:
        parse_account(data, policy)
    return [(d.code, d.message) for d in caught.value.diagnostics]


def test_problems_are_named(binance):
    data = envelope()
    data["ccxt"]["positions"][0]["symbol"] = "BTC/USD:BTC"
    del data["ccxt"]["positions"][1]["entryPrice"]
    found = _codes(data, binance)
    assert sorted(code for code, _ in found) == ["E617", "E618"]
    assert any("ccxt.positions[1].entryPrice is missing" in message for _, message in found)
    data = envelope()
    del data["ccxt"]["balance"]["USDT"]
    del data["ccxt"]["balance"]["total"]
    assert [code for code, _ in _codes(data, binance)] == ["E617"]
    data["wallet_balance"] = "10000"
    assert parse_account(data, binance).wallet_balance == D(10000)


def test_problems_are_located_in_the_file(binance, tmp_path):
    text = FIXTURE.read_text().replace('"leverage": 10.0', '"leverage": null')
    path = tmp_path / "account.json"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_account_file(path, binance)
    (error,) = caught.value.diagnostics
    assert error.code == "E617" and error.span is not None
    line = text.splitlines()[error.span.line - 1]
    assert line[error.span.column - 1 :].startswith("null")


def test_python_api_evaluate(binance):
    result = engine.evaluate(binance, envelope())
    assert prices(result)["BTCUSDT"] == D("51330.6")


def test_json_lines_batch(monkeypatch, capsys):
    line = json.dumps(envelope())
    monkeypatch.setattr(sys, "stdin", io.StringIO(line + "\n"))
    assert main(["evaluate", "binance-usdm", "-"]) == 0
    (row,) = [json.loads(r) for r in capsys.readouterr().out.splitlines()]
    assert row["account"] == "bot-7"
    assert [p["liquidation_price"] for p in row["positions"]] == ["51330.6", "3860.06"]


def test_cli_evaluate_file(capsys):
    assert main(["evaluate", "binance-usdm", str(FIXTURE), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [p["liquidation_price"] for p in shown["positions"]] == ["51330.6", "3860.06"]
