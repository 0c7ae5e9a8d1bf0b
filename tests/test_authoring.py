"""Authoring (issue 11): `liqpolicy new`, `liqpolicy schema --write`, and the loader's fixes
that golden files cannot show (tests/golden/ has the messages)."""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.cli import main
from engine.errors import InputError
from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import evaluate_account
from engine.policy.load import check_policy, load_policy
from engine.policy.schema import schema_diagnostics
from engine.policy.structure import plain_market, plain_table

D = Decimal


@pytest.mark.parametrize("like", ["binance-usdm", "huobi-linear-swap"])
def test_new_writes_a_policy_that_loads_and_tests(tmp_path, capsys, like):
    target = tmp_path / "my-venue.yaml"
    assert main(["new", "my-venue", "--like", like, "-o", str(target)]) == 0
    assert f"wrote {target}: shaped like {like}, loads" in capsys.readouterr().out
    text = target.read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    policy = load_policy(target)
    assert policy.id == "my-venue"
    assert [s.id for s in policy.sources] == ["my-venue-rules"]
    assert len(policy.markets) == 1 and len(policy.examples) == 1
    assert (
        "source:" not in text.split("\nsources:", 1)[1].split("\nmarkets:", 1)[1]
    )  # no citation copied
    assert main(["test", str(target)]) == 0
    schema = (target.parent / text.split("$schema=", 1)[1].split("\n", 1)[0]).resolve()
    assert schema.is_file()


def test_new_refuses_to_overwrite_and_bad_ids(tmp_path, capsys):
    target = tmp_path / "x.yaml"
    target.write_text("keep me")
    assert main(["new", "x", "--like", "binance-usdm", "-o", str(target)]) == 2
    assert target.read_text() == "keep me"
    assert main(["new", "Not An Id", "--like", "binance-usdm", "-o", str(tmp_path / "y.yaml")]) == 2
    assert "exists" in capsys.readouterr().err


def test_schema_write_gives_self_contained_schemas(tmp_path, capsys):
    """Written schemas validate shipped files with a generic validator, dates included: the
    date fields are `format: date`, which jsonschema's FormatChecker checks."""
    assert main(["schema", "--write", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "account.schema.json",
        "ccxt-account.schema.json",
        "include.schema.json",
        "policy.schema.json",
        "sweep.schema.json",
    ]
    for path in tmp_path.iterdir():
        text = path.read_text()
        schema = json.loads(text)
        jsonschema.Draft202012Validator.check_schema(schema)
        refs = [r for r in _refs(schema) if not r.startswith("#/")]
        assert refs == [], path.name  # nothing outside the file
    policy = json.loads((tmp_path / "policy.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(policy, format_checker=jsonschema.FormatChecker())
    good = {"id": "x", "title": "X", "valid_from": "2024-10-24"}
    assert list(validator.iter_errors(good)) == []
    bad = {"id": "x", "title": "X", "valid_from": "2024-13-45"}
    assert [e.validator for e in validator.iter_errors(bad)] == ["format"]
    assert policy["$defs"]["source"]["properties"]["retrieved"]["format"] == "date"


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_liqpolicy_checks_dates_too(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("id: p\ntitle: P\nvalid_until: 2024-02-30\n")
    _, diagnostics = check_policy(path)
    (error,) = diagnostics
    assert error.code == "E104" and "date" in error.message and error.hint


def test_quantity_step_is_readable(tmp_path):
    """`round(1.0005, market.quantity_step 0.001, "up")` is 1.001 (hand)."""
    path = tmp_path / "p.yaml"
    path.write_text(
        textwrap.dedent("""\
        id: p
        title: P
        markets:
          BTCUSDT: {kind: linear, contract_size: 1, tick_size: 0.1, quantity_step: 0.001, assumption: test}
        definitions:
          stepped: {expr: 'round(position.size, market.quantity_step, "up")', assumption: test}
        """)
    )
    policy = load_policy(path)
    account = {
        "wallet_balance": "0",
        "positions": [
            {
                "symbol": "BTCUSDT",
                "side": "long",
                "size": "1.0005",
                "entry_price": "1",
                "margin_mode": "cross",
                "leverage": "1",
            }
        ],
        "market": {"BTCUSDT": {"mark_price": "1"}},
    }
    result = evaluate_account(policy, parse_account(account, policy)).as_dict()
    assert result["positions"][0]["definitions"]["stepped"] == "1.001"


def test_market_defaults_missing_a_required_key(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "id: p\ntitle: P\nmarket_defaults: {kind: linear}\nmarkets:\n  A: {contract_size: 1, assumption: t}\n"
    )
    _, diagnostics = check_policy(path)
    (error,) = [d for d in diagnostics if d.severity == "error"]
    assert error.code == "E101"
    assert error.message == "market 'A' has no `tick_size`, and `market_defaults` gives none"


def test_e620_once_per_instrument_with_the_fix(tmp_path, capsys):
    """2,000 positions of the demo book in an instrument the policy lacks: one error, naming
    the market without `instrument:` and the line to add (it was 50 identical errors)."""
    (tmp_path / "no-instrument.yaml").write_text(
        "extends: binance-usdm\nid: no-instrument\ntitle: T\nmarkets:\n  BTCUSDT: {instrument: null}\n"
    )
    code = main(
        [
            "simulate",
            str(tmp_path / "no-instrument.yaml"),
            "--book",
            "demo",
            "--scenario",
            "flash-crash-2025-10-10",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("error[E620]") == 1
    assert "traded by 2000 positions" in err
    assert "add `instrument: BTC/USDT` to it" in err


# -- the quick structural checks never let through what the schema refuses --------------------

CELLS = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.sampled_from(["0.4%", "x", "", "50,000"]),
    st.booleans(),
    st.none(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=1),
)
NAMES = st.sampled_from(["min_notional", "max_notional", "rate", "Rate", "1x", "tier", "ok_2"])


@given(
    name=st.sampled_from(["brackets", "Brackets", "_t", "1t"]),
    rows=st.lists(st.dictionaries(NAMES, CELLS, max_size=4), max_size=3),
    keys=st.lists(
        st.fixed_dictionaries(
            {"name": NAMES, "kind": st.sampled_from(["interval", "exact", "range"])}
        ),
        max_size=2,
    ),
    extra=st.dictionaries(st.sampled_from(["source", "deduction", "colour"]), CELLS, max_size=1),
)
def test_plain_table_implies_schema_valid(name, rows, keys, extra):
    spec = {"keys": keys, "rows": rows, **extra}
    if plain_table(name, spec):
        data = {"id": "p", "title": "P", "tables": {name: spec}}
        assert schema_diagnostics(data, "policy.schema.json", lambda p, k: None) == []  # type: ignore[arg-type, return-value]


@given(
    symbol=st.sampled_from(["BTCUSDT", "BTC/USDT", "-x", "ok.1"]),
    spec=st.dictionaries(
        st.sampled_from(
            ["kind", "contract_size", "tick_size", "tiers", "instrument", "parameters", "colour"]
        ),
        st.one_of(
            CELLS,
            st.sampled_from(["linear", "inverse", "Linear", "brackets", "USDT"]),
            st.dictionaries(NAMES, CELLS, max_size=2),
        ),
        max_size=4,
    ),
)
def test_plain_market_implies_schema_valid(symbol, spec):
    if plain_market(symbol, spec):
        data = {"id": "p", "title": "P", "markets": {symbol: spec}}
        assert schema_diagnostics(data, "policy.schema.json", lambda p, k: None) == []  # type: ignore[arg-type, return-value]


def test_ccxt_account_errors_are_input_errors():
    with pytest.raises(InputError):
        parse_account({"ccxt": {"positions": "none"}}, load_policy("binance-usdm"))
