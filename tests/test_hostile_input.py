"""The probes of issue 14 that broke "what validates, evaluates" or cost unbounded resources,
each kept as a test (the server's own probes are in tests/server/test_server_hardening.py).

Causes: 1 numeric strings passing "> 0" fields, 2 diagnostics rendered eagerly with whole source
lines, 4 a chain of definitions ending in RecursionError, 5 `extends` accepting any file (in
tests/policy/test_inherit.py), 7 the pure-Python YAML parser, 8 reconciliation checked at the
precision of the arithmetic.
"""

from __future__ import annotations

import decimal
import json
import random
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine.cli import main
from engine.errors import EvaluationError, InputError, PolicyError
from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import evaluate_account
from engine.policy import yaml_reader
from engine.policy.definitions import MAX_EVALUATION_DEPTH
from engine.policy.load import load_policy
from engine.source import EXCERPT_WIDTH, render_text

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
ALICE: dict[str, Any] = json.loads((REPO / "examples" / "alice.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def usdm_policy() -> Any:
    return load_policy("binance-usdm")


def _account(**position: Any) -> dict[str, Any]:
    base = {
        "symbol": "BTCUSDT",
        "side": "long",
        "size": "1",
        "entry_price": "60000",
        "margin_mode": "isolated",
        "leverage": "10",
    }
    return {
        "wallet_balance": "1000",
        "positions": [{**base, **position}],
        "market": {"BTCUSDT": {"mark_price": "60000"}},
    }


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- cause 1: numeric strings obey the bounds numbers obey --------------------------------------


@pytest.mark.parametrize(
    ("account", "field"),
    [
        ({**_account(), "market": {"BTCUSDT": {"mark_price": "0"}}}, "market.BTCUSDT.mark_price"),
        (_account(leverage="0"), "positions[0].leverage"),  # was a DivisionByZero: exit 3
        (_account(leverage="0.000"), "positions[0].leverage"),
        (_account(leverage="0e5"), "positions[0].leverage"),
        (_account(entry_price="0"), "positions[0].entry_price"),
    ],
)
def test_a_zero_string_in_a_positive_field_is_refused(usdm_policy, account, field):
    """`exclusiveMinimum: 0` applied to JSON numbers only: `"0"` passed, `mark_price: "0"`
    liquidated at 0 with exit 0 and `leverage: "0"` divided by zero."""
    with pytest.raises(InputError) as caught:
        parse_account(account, usdm_policy)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "E104"
    assert diagnostic.message.endswith(f"out of range in {field}; expected above 0")


def test_the_zero_leverage_string_exits_2_on_the_command_line(capsys, tmp_path):
    path = tmp_path / "account.json"
    path.write_text(json.dumps(_account(leverage="0")), encoding="utf-8")
    code, _, err = _run(capsys, "evaluate", "binance-usdm", str(path))
    assert code == 2
    assert "error[E104]: '0' is out of range in positions[0].leverage" in err


def test_positive_strings_still_pass(usdm_policy):
    account = parse_account(_account(leverage="0.5", size="0"), usdm_policy)
    assert account.positions[0]["leverage"] == Decimal("0.5")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--leverage", "0"], "--leverage must be positive, was 0"),
        (["--leverage", "0e3"], "--leverage must be positive, was 0e3"),
        (["--leverage", "2", "--mark", "0"], "--mark must be positive, was 0"),
        (["--margin", "-1"], "--margin must not be negative, was -1"),
    ],
)
def test_liq_price_checks_its_numbers(capsys, option, message):
    """`liq-price ... --leverage 0` exited 3 (division by zero)."""
    code, out, err = _run(
        capsys,
        *["liq-price", "binance-usdm", "--symbol", "BTCUSDT", "--side", "long"],
        *["--size", "1", "--entry", "60000", *option],
    )
    assert (code, out) == (2, "")
    assert err == f"liqpolicy liq-price: error: {message}\n"


# -- cause 2: thousands of diagnostics cost what they say, not the source each time --------------


def _duplicates(count: int) -> dict[str, Any]:
    account = _account(margin_mode="cross")
    account["positions"] = account["positions"] * count
    return account


def test_many_diagnostics_on_one_long_line_render_in_bounded_space(capsys, tmp_path):
    """3,000 duplicate positions on one 0.35 MB JSON line: each diagnostic quoted the whole
    line twice (line and caret padding), 2.8 GB in the server and 642 MB of stderr for 2,000."""
    path = tmp_path / "dups.json"
    path.write_text(json.dumps(_duplicates(3000)), encoding="utf-8")
    assert path.stat().st_size > 300_000
    code, out, err = _run(capsys, "evaluate", "binance-usdm", str(path))
    assert (code, out) == (2, "")
    assert err.count("error[E604]") == 2999
    longest = max(len(line) for line in err.splitlines())
    assert longest <= EXCERPT_WIDTH + 20  # the gutter and two ellipses
    assert len(err) < 2999 * 1000


def test_an_error_renders_its_diagnostics_only_when_asked(usdm_policy, monkeypatch):
    def no_rendering(*args: object) -> str:
        raise AssertionError("rendered eagerly")

    monkeypatch.setattr("engine.errors.render_all", no_rendering)
    with pytest.raises(InputError) as caught:
        parse_account(_duplicates(50), usdm_policy)
    assert len(caught.value.diagnostics) == 49


def test_excerpt_keeps_the_caret_under_the_marked_text():
    from engine.source import Diagnostic, SourceFile, Span

    line = "x" * 5000 + "BAD" + "y" * 5000
    span = Span(SourceFile("long.json", line), 1, 5001, 1, 5004)
    text = render_text(Diagnostic("E104", "bad", span))
    _, quoted, caret = text.splitlines()
    assert quoted.startswith(" 1 | …") and quoted.endswith("…")
    column = caret.index("^")
    assert quoted[column : column + 3] == "BAD"
    assert caret.endswith("^~~")


def test_short_lines_are_quoted_whole():
    from engine.source import Diagnostic, SourceFile, Span

    line = "a" * EXCERPT_WIDTH
    span = Span(SourceFile("f", line), 1, 200, 1, 201)
    assert render_text(Diagnostic("E104", "bad", span)).splitlines()[1] == f" 1 | {line}"


# -- cause 4: definition chains are bounded at load; runtime errors stay located ----------------


def _policy_with_definitions(tmp_path: Path, lines: list[str], trigger: str | None = None) -> Path:
    text = ["id: probe", "title: probe", "extends: binance-usdm", "definitions:"]
    text += [f"  {line}" for line in lines]
    if trigger is not None:
        text += ["liquidation:", f"  trigger: {trigger}"]
    path = tmp_path / "probe.yaml"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def test_a_chain_of_a_thousand_definitions_is_refused_at_load(tmp_path):
    """`d1: d0` ... `d1000: d999` validated, then every evaluation failed with RecursionError."""
    chain = ["d0: 1 / (position.size - 2)"] + [f"d{i}: d{i - 1}" for i in range(1, 1001)]
    path = _policy_with_definitions(tmp_path, chain, trigger="d1000 > 0")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    errors = [d for d in caught.value.diagnostics if d.severity == "error"]
    assert [d.code for d in errors] == ["E430"]
    [error] = errors
    # d0's expression is 4 levels deep (/, 1, -, position.size: 4), each link adds 1
    crossing = MAX_EVALUATION_DEPTH - 4 + 1
    assert error.message == (
        f"definition 'd{crossing}' nests {MAX_EVALUATION_DEPTH + 1} levels deep through "
        f"'d{crossing - 1}'; the limit is {MAX_EVALUATION_DEPTH}"
    )


def _deepest_valid_policy(tmp_path: Path) -> Path:
    """Four definitions of 49 levels each (196 with the reads), the last read by the trigger,
    the first failing at run time: the reference evaluator recurses through all of them."""

    def wrap(inner: str) -> str:
        return "-(" * 45 + inner + ")" * 45

    lines = ["d0: " + wrap("1 / (position.size - 2)")]
    lines += [f"d{i}: " + wrap(f"d{i - 1}") for i in range(1, 4)]
    return _policy_with_definitions(tmp_path, lines, trigger="d3 > 0")


def test_the_deepest_valid_policy_fails_with_a_located_error(tmp_path):
    policy = load_policy(_deepest_valid_policy(tmp_path))
    account = parse_account(ALICE, policy)
    with pytest.raises(EvaluationError) as caught:
        evaluate_account(policy, account, trace=True)
    assert caught.value.code == "E501"
    assert caught.value.span is not None and caught.value.span.line == 5


def test_the_deepest_valid_policy_fails_with_a_located_error_in_a_thread(tmp_path):
    """Servers evaluate in threads, whose stacks are no deeper than the main thread's."""
    policy = load_policy(_deepest_valid_policy(tmp_path))
    account = parse_account(ALICE, policy)
    caught: list[BaseException] = []

    def evaluate() -> None:
        try:
            evaluate_account(policy, account)
        except BaseException as error:
            caught.append(error)

    thread = threading.Thread(target=evaluate)
    thread.start()
    thread.join(timeout=60)
    assert [type(e) for e in caught] == [EvaluationError]


# -- cause 7: libyaml parses, with the same events as the pure-Python parser ---------------------


def _events(text: str, loader: Any) -> list[tuple[object, ...]]:
    return [
        (  # the reader locates by offset only; line and column may differ at the stream's end
            type(e).__name__,
            e.start_mark.index,
            e.end_mark.index,
            getattr(e, "value", None),
            getattr(e, "style", None) or None,  # libyaml says '' for plain, PyYAML None
            getattr(e, "tag", None),
            getattr(e, "anchor", None),
            getattr(e, "implicit", None),
            getattr(e, "flow_style", None),
        )
        for e in yaml.parse(text, Loader=loader)
    ]


YAML_FILES = sorted(
    [*REPO.glob("policies/*.yaml"), *REPO.glob("scenarios/*.yaml"), *ROOT.glob("golden/**/*.yaml")]
)


def test_libyaml_is_available():
    assert yaml_reader._FAST_LOADER is not None, "PyYAML without libyaml: install a wheel"


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_libyaml_gives_the_pure_python_events(path):
    text = path.read_text(encoding="utf-8")
    try:
        expected = _events(text, yaml.SafeLoader)
    except yaml.YAMLError:
        with pytest.raises(yaml.YAMLError):
            _events(text, yaml.CSafeLoader)
        return
    assert _events(text, yaml.CSafeLoader) == expected


yaml_texts = st.recursive(
    st.sampled_from(
        ["1", "0.10", "-3e5", "x", "'q'", '"d"', "null", "true", "é😀", "1_000", "|\n  a"]
    ),
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]")
        | st.dictionaries(st.sampled_from(["a", "b", "c d"]), inner, max_size=3).map(
            lambda items: "{" + ", ".join(f"{k}: {v}" for k, v in items.items()) + "}"
        )
    ),
    max_leaves=12,
)


@given(text=yaml_texts)
def test_libyaml_gives_the_same_events_for_generated_yaml(text):
    try:
        expected: object = _events(text, yaml.SafeLoader)
    except yaml.YAMLError:
        expected = "error"
    try:
        found: object = _events(text, yaml.CSafeLoader)
    except yaml.YAMLError:
        found = "error"
    assert found == expected


def test_policies_are_read_by_libyaml(monkeypatch):
    loaders: list[object] = []
    parse = yaml.parse

    def spy(text: str, Loader: Any) -> Any:  # PyYAML names its keyword Loader
        loaders.append(Loader)
        return parse(text, Loader=Loader)

    monkeypatch.setattr(yaml, "parse", spy)
    load_policy(REPO / "policies" / "huobi-linear-swap.yaml")
    assert loaders and set(loaders) == {yaml.CSafeLoader}


def test_a_syntax_error_keeps_the_documented_wording():
    """libyaml words errors its own way; the file is read again by PyYAML for the diagnostic."""
    with pytest.raises(PolicyError) as caught:
        yaml_reader.read_yaml("a: [1, 2}\n", "f.yaml")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.message == "expected ',' or ']', but got '}'"


def test_a_fifteen_thousand_row_table_loads(tmp_path):
    """Legal, and 6 s to load with the pure-Python parser (speed: benchmarks, not here)."""
    rows = "\n".join(
        f"  - {{min_x: {i * 10}, max_x: {(i + 1) * 10}, rate: 0.0{i % 9 + 1}}}"
        for i in range(15_000)
    )
    path = tmp_path / "big.yaml"
    path.write_text(
        "id: big\ntitle: big\nextends: binance-usdm\ntables:\n  big:\n"
        "    assumption: probe\n    keys:\n      - {name: x, kind: interval}\n"
        "    rows:\n" + rows.replace("  - ", "      - ") + "\n",
        encoding="utf-8",
    )
    policy = load_policy(path)
    assert len(policy.tables["big"].rows) == 15_000


# -- cause 8: statements reconcile exactly, checked exactly ----------------------------------


def _digits(rng: random.Random, whole: int, total: int = 55) -> str:
    head = str(rng.randint(10 ** (whole - 1), 10**whole - 1))
    return head + "." + "".join(rng.choice("0123456789") for _ in range(total - whole))


def _exact_error(statement: Any) -> Decimal:
    """Starting margin + items - (final + remaining), summed without rounding (independent
    of the engine's own check)."""
    wide = decimal.Context(prec=decimal.MAX_PREC, traps=[decimal.Inexact])
    flows = Decimal(0)
    for item in statement.items:
        if item.kind != "final_balance":
            flows = wide.add(flows, item.amount)
    return wide.subtract(flows, wide.add(statement.final_balance, statement.remaining_margin))


@pytest.mark.parametrize("policy_id", ["binance-usdm", "huobi-linear-swap"])
def test_statements_with_55_digit_inputs_reconcile_exactly(policy_id):
    """With 55-digit inputs (the limit is 60) statements were off by ~3e-47 yet reported a
    reconciliation error of 0: the sum was checked at the arithmetic's 50 digits.  Now money
    moves exactly and the check is exact; the independent exact sum agrees on every one."""
    policy = load_policy(policy_id)
    symbol = next(iter(policy.markets))
    rng = random.Random(14)
    statements = 0
    for _ in range(40):
        entry = Decimal(_digits(rng, 5))
        mark = (entry * Decimal("0.85")).quantize(Decimal("0.1"))
        data = {
            "wallet_balance": _digits(rng, 4),
            "positions": [
                {
                    "symbol": symbol,
                    "side": "long",
                    "size": _digits(rng, 1),
                    "entry_price": str(entry),
                    "margin_mode": rng.choice(["isolated", "cross"]),
                    "leverage": _digits(rng, 2),
                }
            ],
            "market": {
                symbol: {
                    "mark_price": rng.choice([_digits(rng, 5), str(mark)]),
                    "last_price": str(mark),
                    "index_price": str(mark),
                    "book_depth": _digits(rng, 7),
                    "average_book_depth": _digits(rng, 7),
                }
            },
        }
        result = evaluate_account(policy, parse_account(data, policy))
        for liquidation in result.liquidations:
            statement = liquidation.statement
            statements += 1
            assert statement.reconciliation_error == 0
            assert _exact_error(statement) == 0
    assert statements >= 10


def test_the_reconciliation_check_is_exact():
    from engine.mechanics.statement import LineItem, reconcile

    tiny = Decimal("1e-60")
    items = (
        LineItem("starting_margin", "m", Decimal("1000"), "b"),
        LineItem("fee", "f", -tiny, "b"),
        LineItem("final_balance", "x", Decimal("1000"), "b"),
    )
    assert reconcile(items, Decimal("1000"), Decimal(0)) == -tiny


# -- `order` outside the slots where a liquidation order exists: refused at load ----------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "liquidation:\n  trigger: order.quantity > 0\n",
            "the liquidation trigger reads `order`, but no liquidation order exists there",
        ),
        (
            "definitions:\n  ov:\n    expr: order.quantity * 2\n    assumption: probe\n"
            "liquidation:\n  trigger: ov > 1\n",
            "the liquidation trigger reads `order` through definition 'ov', but no liquidation "
            "order exists there",
        ),
        (
            "definitions:\n  notional: order.notional\n",
            "definition 'notional' reads `order`, but the engine evaluates it for positions, "
            "where no liquidation order exists",
        ),
    ],
)
def test_order_is_refused_where_no_order_exists(tmp_path, extra, message):
    """The trigger reading `order.quantity` validated, then every evaluation failed (E503)."""
    path = tmp_path / "probe.yaml"
    path.write_text("id: probe\ntitle: probe\nextends: binance-usdm\n" + extra, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    errors = [d for d in caught.value.diagnostics if d.severity == "error"]
    assert {d.code for d in errors} == {"E310"}
    assert message in [d.message for d in errors]  # (and what reads it through `notional`)


def test_order_is_read_where_an_order_exists(tmp_path):
    path = tmp_path / "probe.yaml"
    path.write_text(
        "id: probe\ntitle: probe\nextends: binance-usdm\n"
        "definitions:\n  ov:\n    expr: order.quantity * 2\n    assumption: probe\n",
        encoding="utf-8",
    )
    assert "ov" in load_policy(path).definitions
