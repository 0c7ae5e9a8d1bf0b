"""Account input: exact numbers, the isolated-margin default, and diagnostics naming each field."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from engine.errors import InputError
from engine.mechanics.accounts import parse_account, read_account_file
from engine.numbers import DECIMAL_CONTEXT
from engine.policy.yaml_reader import read_yaml

D = Decimal


def _account(**position: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "side": "long",
        "size": "2",
        "entry_price": "60000",
        "margin_mode": "isolated",
        "isolated_margin": "12000",
        "leverage": "10",
    }
    base.update(position)
    return {
        "id": "t",
        "wallet_balance": "0",
        "positions": [base],
        "market": {"BTCUSDT": {"mark_price": "59000"}},
    }


def _problems(data: Any, policy) -> list[tuple[str, str]]:
    with pytest.raises(InputError) as caught:
        parse_account(data, policy)
    return [(d.code, d.message) for d in caught.value.diagnostics]


VALID_YAML = """\
id: alice
wallet_balance: 0.1
positions:
  - {symbol: BTCUSDT, side: long, size: 2, entry_price: 60000.5, margin_mode: isolated,
     isolated_margin: 12000, leverage: 10}
  - {symbol: ETHUSDT, side: short, size: 1.25, entry_price: 3000, margin_mode: cross, leverage: 20}
market:
  BTCUSDT: {mark_price: 59000, previous_mark_price: 59500, book_depth: 2_500_000}
  ETHUSDT: {mark_price: 3000.01}
"""


def _check_alice(account) -> None:
    assert account.id == "alice"
    assert type(account.wallet_balance) is Decimal
    assert account.wallet_balance == D("0.1")
    assert str(account.wallet_balance) == "0.1"  # exactly one tenth, not 0.1000000000000000055…
    btc, eth = account.positions
    assert btc == {
        "symbol": "BTCUSDT",
        "side": "long",
        "margin_mode": "isolated",
        "size": D("2"),
        "entry_price": D("60000.5"),
        "isolated_margin": D("12000"),
        "leverage": D("10"),
    }
    assert eth["size"] == D("1.25") and eth["margin_mode"] == "cross"
    assert "isolated_margin" not in eth  # cross positions have no isolated margin
    assert account.market["BTCUSDT"] == {
        "mark_price": D("59000"),
        "previous_mark_price": D("59500"),
        "book_depth": D("2500000"),
    }
    assert str(account.market["ETHUSDT"]["mark_price"]) == "3000.01"
    for position in account.positions:
        for name in ("size", "entry_price", "leverage"):
            assert type(position[name]) is Decimal


def test_yaml_numbers_are_read_exactly(usdm):
    document = read_yaml(VALID_YAML, "alice.yaml")
    _check_alice(parse_account(document.data, usdm, spans=document.spans, path="alice.yaml"))


VALID_JSON = """\
{"id": "alice", "wallet_balance": 0.1,
 "positions": [
   {"symbol": "BTCUSDT", "side": "long", "size": 2, "entry_price": 60000.5,
    "margin_mode": "isolated", "isolated_margin": 12000, "leverage": 10},
   {"symbol": "ETHUSDT", "side": "short", "size": 1.25, "entry_price": 3000,
    "margin_mode": "cross", "leverage": 20}],
 "market": {"BTCUSDT": {"mark_price": 59000, "previous_mark_price": 59500, "book_depth": 2500000},
            "ETHUSDT": {"mark_price": 3000.01}}}
"""


def test_json_numbers_are_read_exactly(usdm):
    document = read_yaml(VALID_JSON, "alice.json")  # JSON is read by the same exact reader
    assert json.loads(VALID_JSON)["wallet_balance"] == 0.1  # (the stdlib would give a float)
    _check_alice(parse_account(document.data, usdm, spans=document.spans, path="alice.json"))


def test_numeric_strings_are_read_exactly(usdm):
    data = {
        "id": "alice",
        "wallet_balance": "0.1",
        "positions": [
            {
                "symbol": "BTCUSDT",
                "side": "long",
                "size": "2",
                "entry_price": "60000.5",
                "margin_mode": "isolated",
                "isolated_margin": "12_000",
                "leverage": "10",
            },
            {
                "symbol": "ETHUSDT",
                "side": "short",
                "size": "1.25",
                "entry_price": "3e3",
                "margin_mode": "cross",
                "leverage": "20",
            },
        ],
        "market": {
            "BTCUSDT": {
                "mark_price": "59000",
                "previous_mark_price": "59500",
                "book_depth": "2500000",
            },
            "ETHUSDT": {"mark_price": "3000.01"},
        },
    }
    _check_alice(parse_account(data, usdm))


def test_python_int_and_decimal_values_are_accepted(usdm):
    account = parse_account(_account(size=3, isolated_margin=D("0.1")), usdm)
    assert account.positions[0]["size"] == D(3)
    assert str(account.positions[0]["isolated_margin"]) == "0.1"


@pytest.mark.parametrize(
    ("size", "entry", "leverage", "expected"),
    [
        ("0.5", "40000", "20", D("1000")),  # the policy's `dave` example
        ("2", "60000", "10", D("12000")),
        ("0.003", "61234.5", "125", D("1.469628")),  # 183.7035 / 125, exact
        ("1", "30000", "7", DECIMAL_CONTEXT.divide(D(30000), D(7))),  # inexact: 50 digits
    ],
)
def test_isolated_margin_defaults_to_notional_at_entry_over_leverage(
    usdm, size, entry, leverage, expected
):
    data = _account(size=size, entry_price=entry, leverage=leverage)
    del data["positions"][0]["isolated_margin"]
    data["market"]["BTCUSDT"]["mark_price"] = "1000"  # the default uses the entry, not the mark
    account = parse_account(data, usdm)
    assert account.positions[0]["isolated_margin"] == expected


def test_given_isolated_margin_is_kept(usdm):
    account = parse_account(_account(isolated_margin="777"), usdm)
    assert account.positions[0]["isolated_margin"] == D("777")


def test_negative_size_names_the_field(usdm):
    [(code, message)] = _problems(_account(size="-1"), usdm)
    assert code == "E104"
    assert "positions[0].size" in message and "'-1'" in message


def test_unknown_symbol_suggests_a_market(usdm):
    with pytest.raises(InputError) as caught:
        parse_account(_account(symbol="BTCUSD"), usdm)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "E602"
    assert "positions[0].symbol" in diagnostic.message and "'BTCUSD'" in diagnostic.message
    assert diagnostic.hint is not None and "did you mean 'BTCUSDT'" in diagnostic.hint


def test_unknown_side_names_the_field(usdm):
    [(code, message)] = _problems(_account(side="sideways"), usdm)
    assert code == "E104"
    assert "positions[0].side" in message and "'long', 'short'" in message


def test_non_number_size_names_the_field(usdm):
    [(code, message)] = _problems(_account(size="abc"), usdm)
    assert code == "E104"
    assert "positions[0].size" in message and "'abc'" in message


def test_python_float_is_refused(usdm):
    data = _account(size=0.1)
    data["wallet_balance"] = 1.5
    problems = _problems(data, usdm)
    assert [code for code, _ in problems] == ["E601", "E601"]
    messages = " | ".join(message for _, message in problems)
    assert "positions[0].size is a binary float" in messages
    assert "wallet_balance is a binary float" in messages


def test_missing_market_data(usdm):
    data = _account()
    data["market"] = {"ETHUSDT": {"mark_price": "3000"}}
    [(code, message)] = _problems(data, usdm)
    assert code == "E603"
    assert "'BTCUSDT'" in message and "positions[0]" in message
    del data["market"]
    assert _problems(data, usdm)[0][0] == "E603"


def test_duplicate_symbol_and_side(usdm):
    data = _account()
    data["positions"].append(dict(data["positions"][0], margin_mode="cross"))
    [(code, message)] = _problems(data, usdm)
    assert code == "E604"
    assert "positions[1]" in message and "positions[0]" in message and "BTCUSDT long" in message


def test_opposite_sides_of_one_symbol_are_allowed(usdm):
    data = _account()
    data["positions"].append(dict(data["positions"][0], side="short"))
    assert len(parse_account(data, usdm).positions) == 2


def test_every_schema_problem_is_reported_at_once(usdm):
    data = _account(side="up", size="-1", entry_price="abc")
    problems = _problems(data, usdm)
    assert {code for code, _ in problems} == {"E104"}
    fields = sorted(m.split(" in ")[-1].split(";")[0] for _, m in problems)
    assert fields == ["positions[0].entry_price", "positions[0].side", "positions[0].size"]


def test_every_policy_problem_is_reported_at_once(usdm):
    data = {
        "wallet_balance": "0",
        "positions": [
            {
                "symbol": "BTCUSD",
                "side": "long",
                "size": "1",
                "entry_price": "1",
                "margin_mode": "isolated",
                "leverage": "1",
            },
            {
                "symbol": "ETHUSDT",
                "side": "long",
                "size": "1",
                "entry_price": "1",
                "margin_mode": "isolated",
                "leverage": "1",
            },
            {
                "symbol": "ETHUSDT",
                "side": "long",
                "size": "1",
                "entry_price": "1",
                "margin_mode": "cross",
                "leverage": "1",
            },
        ],
        "market": {"BTCUSDT": {"mark_price": "1"}},
    }
    codes = sorted(code for code, _ in _problems(data, usdm))
    assert codes == ["E602", "E603", "E603", "E604"]


JSON_FILE = """\
{
  "id": "x",
  "wallet_balance": 0,
  "positions": [
    {"symbol": "BTCUSDT", "side": "long", "size": "abc", "entry_price": 60000,
     "margin_mode": "isolated", "leverage": 10}
  ],
  "market": {"BTCUSDT": {"mark_price": 59000}}
}
"""

YAML_FILE = """\
id: y
wallet_balance: 0.1
positions:
  - symbol: BTCUSDT
    side: sideways
    size: 2
    entry_price: 60000
    margin_mode: isolated
    leverage: 10
market:
  BTCUSDT: {mark_price: 59000}
"""


@pytest.mark.parametrize(
    ("name", "text", "field", "line", "column"),
    [
        (
            "bad.json",
            JSON_FILE,
            "positions[0].size",
            5,
            JSON_FILE.splitlines()[4].index('"abc"') + 1,
        ),
        ("bad.yaml", YAML_FILE, "positions[0].side", 5, 11),
    ],
)
def test_read_account_file_locates_a_bad_field(usdm, tmp_path, *, name, text, field, line, column):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_account_file(path, usdm)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "E104" and field in diagnostic.message
    assert diagnostic.span is not None
    span = diagnostic.span
    assert (span.path, span.line, span.column) == (str(path), line, column)
    assert diagnostic.span.location() == f"{path}:{line}:{column}"


def test_read_account_file_reads_numbers_exactly(usdm, tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(YAML_FILE.replace("sideways", "long"), encoding="utf-8")
    account = read_account_file(path, usdm)
    assert str(account.wallet_balance) == "0.1"
    assert account.positions[0]["isolated_margin"] == D("12000")  # 2 * 60,000 / 10


def test_read_account_file_reports_yaml_syntax_as_input_error(usdm, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("wallet_balance: [1,\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_account_file(path, usdm)
    assert caught.value.diagnostics and caught.value.diagnostics[0].location_path == str(path)
