"""Evaluation semantics, located run-time errors, and the compiled form against the reference.

Every example runs through both evaluators: the compiled program (what policies use) and the
tree-walking reference (the executable specification); they must agree on values and on errors.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.dsl import (
    Definitions,
    Scope,
    check_expression,
    compile_program,
    evaluate_reference,
    frame,
    parse_expression,
)
from engine.dsl.ast import Expr
from engine.dsl.runtime import Frame
from engine.dsl.table import Table
from engine.dsl.types import (
    BOOL,
    NUMBER,
    STRING,
    ListType,
    RecordType,
    StringType,
    TableKey,
    TableType,
    Type,
)
from engine.errors import EvaluationError
from engine.numbers import DECIMAL_CONTEXT

D = Decimal
SIDES = StringType(frozenset({"long", "short"}))

# -- tables ---------------------------------------------------------------------------------------

TIERS_TYPE = TableType(
    "tiers",
    (TableKey("notional", "interval", NUMBER),),
    RecordType(
        "tier",
        {"min_notional": NUMBER, "max_notional": NUMBER, "rate": NUMBER, "amount": NUMBER},
    ),
)
TIERS = Table(
    TIERS_TYPE,
    rows=(
        {"min_notional": D(0), "max_notional": D(1000), "rate": D("0.01"), "amount": D(0)},
        {"min_notional": D(1000), "max_notional": D(5000), "rate": D("0.02"), "amount": D(10)},
        {"min_notional": D(5000), "max_notional": D(20000), "rate": D("0.05"), "amount": D(160)},
    ),
)
OPEN_TIERS = Table(
    TIERS_TYPE,
    rows=(
        {"min_notional": D(0), "max_notional": D(1000), "rate": D("0.01"), "amount": D(0)},
        {"min_notional": D(1000), "rate": D("0.02"), "amount": D(10)},
    ),
)
FEES_TYPE = TableType(
    "fees",
    (TableKey("side", "exact", SIDES), TableKey("notional", "interval", NUMBER)),
    RecordType("fee", {"min_notional": NUMBER, "max_notional": NUMBER, "fee": NUMBER}),
)
FEES = Table(
    FEES_TYPE,
    rows=(
        {"side": "long", "min_notional": D(0), "max_notional": D(100), "fee": D("0.001")},
        {"side": "long", "min_notional": D(100), "max_notional": D(30000), "fee": D("0.002")},
        {"side": "short", "min_notional": D(0), "max_notional": D(30000), "fee": D("0.003")},
    ),
)
LONG_ONLY_FEES = Table(FEES_TYPE, rows=FEES.rows[:2])
LIMITS_TYPE = TableType(
    "limits",
    (TableKey("side", "exact", SIDES),),
    RecordType("limit", {"side": SIDES, "max_leverage": NUMBER}),
)
LIMITS = Table(
    LIMITS_TYPE,
    rows=(
        {"side": "long", "max_leverage": D(100)},
        {"side": "short", "max_leverage": D(50)},
    ),
)

# -- scope and definitions ------------------------------------------------------------------------

POSITION_TYPE = RecordType(
    "position",
    {"symbol": STRING, "side": SIDES, "size": NUMBER, "entry_price": NUMBER},
    with_definitions=True,
)
ROOTS: dict[str, Type] = {
    "position": POSITION_TYPE,
    "account": RecordType(
        "account", {"wallet_balance": NUMBER, "positions": ListType(POSITION_TYPE)}
    ),
    "market": RecordType(
        "market",
        {
            "symbol": STRING,
            "mark_price": NUMBER,
            "book_depth": NUMBER,
            "tiers": TIERS_TYPE,
            "fees": FEES_TYPE,
            "limits": LIMITS_TYPE,
        },
    ),
}

DEFINITION_TEXTS: dict[str, tuple[str, Type]] = {
    "notional": ("position.size * market.mark_price", NUMBER),
    "margin": (
        "notional * lookup(market.tiers, notional).rate - lookup(market.tiers, notional).amount",
        NUMBER,
    ),
    "ratio": ("margin / account.wallet_balance", NUMBER),
    "is_long": ('position.side == "long"', BOOL),
    "exposure": ("sum(p.notional for p in account.positions)", NUMBER),
}
DEFINITION_TYPES = {name: typ for name, (_, typ) in DEFINITION_TEXTS.items()}
SCOPE = Scope(roots=ROOTS, definitions=DEFINITION_TYPES)


def _check_definitions() -> tuple[dict[str, tuple[Expr, Type]], frozenset[int]]:
    checked: dict[str, tuple[Expr, Type]] = {}
    resolved: set[int] = set()
    for name, (text, typ) in DEFINITION_TEXTS.items():
        result = check_expression(parse_expression(text), SCOPE, expected=typ)
        assert result.diagnostics == (), (name, result.diagnostics)
        checked[name] = (result.expr, typ)
        resolved |= result.definition_attributes
    return checked, frozenset(resolved)


DEFINITIONS, DEFINITION_RESOLVED = _check_definitions()

# -- inputs ---------------------------------------------------------------------------------------


def market(symbol: str, mark_price: str, **extra: Any) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "mark_price": D(mark_price),
        "book_depth": D("5000000"),
        "tiers": TIERS,
        "fees": FEES,
        "limits": LIMITS,
        **extra,
    }


def position(symbol: str, side: str, size: str, entry_price: str = "100") -> dict[str, Any]:
    return {"symbol": symbol, "side": side, "size": D(size), "entry_price": D(entry_price)}


BTC = position("BTC", "long", "2")
ETH = position("ETH", "short", "10")
MARKETS = {"BTC": market("BTC", "110"), "ETH": market("ETH", "30")}
ACCOUNT = {"wallet_balance": D(1000), "positions": [BTC, ETH]}


class Inputs:
    """One evaluation's inputs; each call to `frame()` builds a fresh frame (empty caches)."""

    def __init__(
        self,
        position: Mapping[str, Any] | None = BTC,
        account: Mapping[str, Any] = ACCOUNT,
        markets: Mapping[str, Mapping[str, Any]] = MARKETS,
        market: Mapping[str, Any] | None = None,
    ) -> None:
        self.position = position
        self.account = account
        self.markets = markets
        if market is None and position is not None:
            market = markets.get(position["symbol"])
        self.market = market

    def frame(self) -> Frame:
        return frame(
            position=self.position, account=self.account, market=self.market, markets=self.markets
        )


# -- running both evaluators ----------------------------------------------------------------------


def checked(text: str) -> tuple[Expr, Type, frozenset[int]]:
    result = check_expression(parse_expression(text), SCOPE)
    assert result.diagnostics == (), result.diagnostics
    return result.expr, result.type, result.definition_attributes


def both(text: str, inputs: Inputs) -> tuple[Any, Any]:
    """(compiled outcome, reference outcome): a value or the EvaluationError raised."""
    expr, typ, resolved = checked(text)
    program = compile_program(DEFINITIONS, {"x": (expr, typ)}, DEFINITION_RESOLVED | resolved)
    definitions = Definitions(
        {name: node for name, (node, _) in DEFINITIONS.items()}, DEFINITION_RESOLVED | resolved
    )
    outcomes: list[Any] = []
    for run in (
        lambda: program.expressions["x"](inputs.frame()),
        lambda: evaluate_reference(expr, inputs.frame(), definitions),
    ):
        try:
            outcomes.append(run())
        except EvaluationError as error:
            outcomes.append(error)
    return outcomes[0], outcomes[1]


def same(compiled: Any, reference: Any) -> None:
    if isinstance(reference, EvaluationError):
        assert isinstance(compiled, EvaluationError), (compiled, reference)
        assert compiled.code == reference.code
        assert compiled.span == reference.span
        assert compiled.span is not None and compiled.span.path == reference.span.path
        assert str(compiled) == str(reference)
        assert compiled.values == reference.values
    else:
        assert not isinstance(compiled, EvaluationError), (compiled, reference)
        assert type(compiled) is type(reference)
        assert repr(compiled) == repr(reference)


def value(text: str, inputs: Inputs | None = None) -> Any:
    compiled, reference = both(text, inputs or Inputs())
    same(compiled, reference)
    assert not isinstance(compiled, EvaluationError), compiled
    return compiled


def failure(text: str, inputs: Inputs | None = None) -> EvaluationError:
    compiled, reference = both(text, inputs or Inputs())
    same(compiled, reference)
    assert isinstance(compiled, EvaluationError), compiled
    return compiled


def where(error: EvaluationError) -> tuple[int, int, int, int]:
    span = error.span
    assert span is not None
    return (span.line, span.column, span.end_line, span.end_column)


# -- arithmetic and logic -------------------------------------------------------------------------


def test_evaluate_decimal_sum_exact() -> None:
    assert value("0.1 + 0.2 == 0.3") is True
    assert value("0.1 + 0.2") == D("0.3")
    assert str(value("0.1 + 0.2")) == "0.3"
    assert value("0.1 * 3") == D("0.3")


def test_evaluate_percent_and_literals() -> None:
    assert value("0.4% * 1_000") == D(4)
    assert value("1e3 - 1_000") == D(0)


def test_evaluate_division_carried_at_50_digits() -> None:
    assert value("1 / 3") == D("0." + "3" * 50)
    assert value("1 / 3 * 3") == D("0." + "9" * 50)


def test_evaluate_inputs_and_definitions() -> None:
    assert value("position.size * market.mark_price") == D(220)
    assert value("notional") == D(220)
    assert value("margin") == D("2.2")
    assert value("ratio") == D("0.0022")
    assert value("is_long") is True
    assert value("exposure") == D(520)  # 2 * 110 + 10 * 30, each at its own market


def test_evaluate_definition_of_other_position_uses_its_market() -> None:
    assert value("sum(p.notional for p in account.positions where not p.is_long)") == D(300)
    assert value("max(p.margin for p in account.positions)") == D(3)


def test_evaluate_definitions_memoized_in_frame() -> None:
    expr, typ, resolved = checked("notional + notional")
    program = compile_program(DEFINITIONS, {"x": (expr, typ)}, DEFINITION_RESOLVED | resolved)
    current = Inputs().frame()
    assert program.expressions["x"](current) == D(440)
    assert current.cache == {"notional": D(220)}
    assert program.definitions["margin"](current) == D("2.2")
    assert current.cache == {"notional": D(220), "margin": D("2.2")}


DEPTHLESS = Inputs(market={k: v for k, v in MARKETS["BTC"].items() if k != "book_depth"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("false and (1 / 0 > 0)", False),
        ("true or (1 / 0 > 0)", True),
        ("not (false and market.book_depth > 0)", True),
        ("is_long or sum(p.size / 0 for p in account.positions) > 0", True),
        ("if true then 1 else 1 / 0", D(1)),
        ("if false then 1 / 0 else 2", D(2)),
        ("if 1 > 2 then lookup(market.tiers, -1).rate else 0", D(0)),
        ("count(p for p in account.positions where p.size > 5 and p.size / 0 > 1) * 0", None),
    ],
)
def test_evaluate_skipped_operand_never_evaluated(text: str, expected: Any) -> None:
    if expected is None:  # the right of `and` runs only for positions with size > 5
        assert failure(text, DEPTHLESS).code == "E501"
        assert value(text.replace("> 5", "> 50"), DEPTHLESS) == D(0)
    else:
        assert value(text, DEPTHLESS) == expected


def test_evaluate_evaluated_operand_raises() -> None:
    assert failure("true and (1 / 0 > 0)").code == "E501"
    assert failure("false or (1 / 0 > 0)").code == "E501"
    assert failure("if 1 / 0 > 0 then 1 else 2").code == "E501"


def test_evaluate_comparisons_of_strings_and_booleans() -> None:
    assert value('position.side == "long"') is True
    assert value('position.side != "long"') is False
    assert value("is_long == true") is True
    assert value("1.0 == 1") is True
    assert value("-0 == 0") is True


# -- builtins -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "mode", "expected"),
    [
        ("2.5", "half_up", "3"),
        ("-2.5", "half_up", "-3"),
        ("2.4", "half_up", "2"),
        ("2.5", "half_even", "2"),
        ("3.5", "half_even", "4"),
        ("-2.5", "half_even", "-2"),
        ("-3.5", "half_even", "-4"),
        ("2.5", "half_down", "2"),
        ("-2.5", "half_down", "-2"),
        ("2.6", "half_down", "3"),
        ("2.9", "floor", "2"),
        ("-2.1", "floor", "-3"),
        ("2.1", "ceil", "3"),
        ("-2.9", "ceil", "-2"),
        ("2.9", "down", "2"),
        ("-2.9", "down", "-2"),
        ("2.1", "up", "3"),
        ("-2.1", "up", "-3"),
        ("-2", "floor", "-2"),
    ],
)
def test_round_mode_on_positive_and_negative_values(x: str, mode: str, expected: str) -> None:
    assert value(f'round({x}, 1, "{mode}")') == D(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('round(1.234, 0.05, "half_up")', "1.25"),
        ('round(1.224, 0.05, "half_up")', "1.2"),
        ('round(-1.234, 0.05, "floor")', "-1.25"),
        ('round(123456, 1000, "down")', "123000"),
        ('round(0.123456, 0.0001, "ceil")', "0.1235"),
    ],
)
def test_round_to_step(text: str, expected: str) -> None:
    assert value(text) == D(expected)


@pytest.mark.parametrize("step", ["0", "-1"])
def test_round_step_not_positive_raises(step: str) -> None:
    error = failure(f'round(1, {step}, "half_up")')
    assert error.code == "E500"
    assert str(error.args[0]) == f"round: step must be positive, was {step}"
    assert where(error) == (1, 1, 1, 22 + len(step))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("clamp(5, 0, 3)", "3"),
        ("clamp(-1, 0, 3)", "0"),
        ("clamp(2, 0, 3)", "2"),
        ("clamp(3, 3, 3)", "3"),
        ("min(3, 1, 2)", "1"),
        ("max(3, 1, 2)", "3"),
        ("min(-1, -2)", "-2"),
        ("max(-1, -2)", "-1"),
        ("abs(-2.5)", "2.5"),
        ("abs(2.5)", "2.5"),
        ("abs(0)", "0"),
    ],
)
def test_builtin_values(text: str, expected: str) -> None:
    assert value(text) == D(expected)


def test_clamp_crossed_bounds_raises() -> None:
    error = failure("clamp(1, 3, 0)")
    assert error.code == "E500"
    assert str(error.args[0]) == "clamp: low 3 is above high 0"


# -- tables ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notional", "rate"),
    [
        ("0", "0.01"),
        ("999.99", "0.01"),
        ("1000", "0.02"),
        ("4999.9999", "0.02"),
        ("5000", "0.05"),
        ("19999.99", "0.05"),
    ],
)
def test_lookup_interval_min_inclusive_max_exclusive(notional: str, rate: str) -> None:
    assert value(f"lookup(market.tiers, {notional}).rate") == D(rate)


@pytest.mark.parametrize("notional", ["20000", "1e6", "-1", "-0.0001"])
def test_lookup_interval_out_of_range_raises_e504(notional: str) -> None:
    error = failure(f"lookup(market.tiers, {notional}).rate")
    assert error.code == "E504"
    shown = notional if "e" not in notional else "1000000"
    assert str(error.args[0]) == f"notional {shown} is outside table 'tiers' [0, 20000)"
    assert where(error) == (1, 1, 1, 22 + len(notional) + 1)


def test_lookup_interval_without_top_bound_matches_everything_above() -> None:
    inputs = Inputs(market=market("BTC", "1", tiers=OPEN_TIERS))
    assert value("lookup(market.tiers, 1e9).rate", inputs) == D("0.02")
    assert str(failure("lookup(market.tiers, -1).rate", inputs).args[0]) == (
        "notional -1 is outside table 'tiers' [0, ∞)"
    )


def test_lookup_exact_and_interval_keys() -> None:
    assert value('lookup(market.fees, "long", 99).fee') == D("0.001")
    assert value('lookup(market.fees, "long", 100).fee') == D("0.002")
    assert value('lookup(market.fees, "short", 100).fee') == D("0.003")
    assert value("lookup(market.fees, position.side, notional).fee") == D("0.002")


def test_lookup_exact_key_without_rows_raises_e504() -> None:
    inputs = Inputs(market=market("BTC", "1", fees=LONG_ONLY_FEES))
    error = failure('lookup(market.fees, "short", 1).fee', inputs)
    assert error.code == "E504"
    assert str(error.args[0]) == "table 'fees' has no rows for side = \"short\""


def test_lookup_exact_keys_only() -> None:
    assert value('lookup(market.limits, "short").max_leverage') == D(50)
    assert value("lookup(market.limits, position.side).max_leverage") == D(100)


def test_lookup_error_inside_definition_located_in_definition() -> None:
    inputs = Inputs(position=position("BTC", "long", "1000"))  # notional 110000: off the table
    error = failure("margin > 0", inputs)
    assert error.code == "E504"
    margin = DEFINITION_TEXTS["margin"][0]
    assert where(error) == (1, 12, 1, 12 + len("lookup(market.tiers, notional)"))
    assert error.span is not None and error.span.source.text == margin


# -- aggregates -----------------------------------------------------------------------------------


def test_aggregates_over_positions() -> None:
    assert value("sum(p.size for p in account.positions)") == D(12)
    assert value('sum(p.size for p in account.positions where p.side == "long")') == D(2)
    assert value("min(p.size for p in account.positions)") == D(2)
    assert value("max(p.entry_price * p.size for p in account.positions)") == D(1000)
    assert value("count(p for p in account.positions)") == D(2)
    assert value("count(p for p in account.positions where p.size > 5)") == D(1)
    assert value("count(p for p in account.positions where p.size > 50)") == D(0)


def test_aggregate_nested_sees_outer_variable() -> None:
    text = (
        "sum(count(q for q in account.positions where q.size >= p.size) for p in account.positions)"
    )
    assert value(text) == D(3)


@pytest.mark.parametrize("function", ["sum", "count"])
def test_aggregate_over_no_elements_is_zero(function: str) -> None:
    empty = Inputs(account={"wallet_balance": D(0), "positions": []})
    assert value(f"{function}(p.size for p in account.positions)", empty) == D(0)
    where_none = f"{function}(p.size for p in account.positions where p.size < 0)"
    assert value(where_none) == D(0)


@pytest.mark.parametrize("function", ["min", "max"])
def test_aggregate_min_max_over_no_elements_raises(function: str) -> None:
    error = failure(f"1 + {function}(p.size for p in account.positions where p.size < 0)")
    assert error.code == "E500"
    assert str(error.args[0]) == f"{function} over no elements"
    assert where(error) == (1, 5, 1, 60)


def test_aggregate_count_evaluates_its_element() -> None:
    # count's element is evaluated like any other aggregate's: an error in it is not skipped
    inputs = Inputs(account={"wallet_balance": D(0), "positions": [BTC, ETH]})
    error = failure("count(p.size / account.wallet_balance for p in account.positions)", inputs)
    assert error.code == "E501"
    assert where(error) == (1, 7, 1, 38)


# -- located run-time errors ----------------------------------------------------------------------


def test_division_by_zero_located_with_values() -> None:
    inputs = Inputs(account={"wallet_balance": D(0), "positions": [BTC]})
    error = failure("1 + position.size / account.wallet_balance", inputs)
    assert error.code == "E501"
    assert str(error.args[0]) == "division by zero"
    assert where(error) == (1, 5, 1, 43)
    assert error.values == (("left", "2"), ("right", "0"))
    assert str(error) == "<expr>:1:5: division by zero (left = 2, right = 0)"
    diagnostic = error.diagnostic()
    assert (diagnostic.code, diagnostic.message, diagnostic.hint) == (
        "E501",
        "division by zero",
        "values: left = 2, right = 0",
    )


def test_division_by_zero_on_later_line_located() -> None:
    inputs = Inputs(account={"wallet_balance": D(0), "positions": [BTC]})
    error = failure("position.size\n  * (market.mark_price\n     / account.wallet_balance)", inputs)
    assert error.code == "E501"
    assert where(error) == (2, 6, 3, 30)
    assert error.values == (("left", "110"), ("right", "0"))


def test_division_zero_by_zero_is_division_by_zero() -> None:
    error = failure("0 / (1 - 1)")
    assert error.code == "E501"
    assert str(error.args[0]) == "division by zero"
    assert error.values == (("left", "0"), ("right", "0"))


def test_division_by_zero_inside_definition_for_other_position() -> None:
    broke = {"wallet_balance": D(0), "positions": [BTC, ETH]}
    error = failure("sum(p.ratio for p in account.positions)", Inputs(account=broke))
    assert error.code == "E501"
    assert error.span is not None and error.span.source.text == DEFINITION_TEXTS["ratio"][0]
    assert error.values == (("left", "2.2"), ("right", "0"))


def test_missing_input_field_names_it() -> None:
    depthless = {k: v for k, v in MARKETS["BTC"].items() if k != "book_depth"}
    error = failure("market.book_depth / 2 > 1", Inputs(market=depthless))
    assert error.code == "E503"
    assert str(error.args[0]) == "missing input 'market.book_depth'"
    assert where(error) == (1, 1, 1, 18)


def test_missing_input_of_position_variable_names_it() -> None:
    sizeless = {"symbol": "ETH", "side": "short", "entry_price": D(1)}
    inputs = Inputs(account={"wallet_balance": D(1), "positions": [BTC, sizeless]})
    error = failure("sum(p.size for p in account.positions)", inputs)
    assert error.code == "E503"
    assert str(error.args[0]) == "missing input 'p.size'"


def test_missing_root_raises() -> None:
    error = failure("position.size > 0", Inputs(position=None, market=MARKETS["BTC"]))
    assert error.code == "E503"
    assert str(error.args[0]) == "no position in scope"
    assert where(error) == (1, 1, 1, 9)


def test_missing_market_of_other_position_raises() -> None:
    stray = position("XRP", "long", "1")
    inputs = Inputs(account={"wallet_balance": D(1), "positions": [BTC, stray]})
    error = failure("exposure", inputs)
    assert error.code == "E503"
    assert str(error.args[0]) == "no market in scope"


def test_overflow_raises_e502() -> None:
    huge = Inputs(position={**BTC, "size": D("9e999999")})
    error = failure("position.size * 10", huge)
    assert error.code == "E502"
    assert str(error.args[0]) == "number too large"


def test_fast_path_is_raw_and_needs_the_context() -> None:
    expr, typ, resolved = checked("notional / account.wallet_balance")
    program = compile_program(DEFINITIONS, {"x": (expr, typ)}, DEFINITION_RESOLVED | resolved)
    fast = program.expressions["x"].fast
    with decimal.localcontext(DECIMAL_CONTEXT):
        assert fast(Inputs().frame()) == D("0.22")
        broke = Inputs(account={"wallet_balance": D(0), "positions": []})
        with pytest.raises(decimal.DivisionByZero):
            fast(broke.frame())


@pytest.mark.parametrize(
    ("text", "expected"), [("2 / 3", D("0." + "6" * 49 + "7")), ("0 / 0", None)]
)
def test_compiled_call_ignores_lookalike_caller_context(
    text: str, expected: Decimal | None
) -> None:
    # same precision and exponents as the engine's context, but another rounding and fewer traps
    lookalike = decimal.Context(
        prec=DECIMAL_CONTEXT.prec,
        Emax=DECIMAL_CONTEXT.Emax,
        Emin=DECIMAL_CONTEXT.Emin,
        rounding=decimal.ROUND_DOWN,
        traps=[decimal.FloatOperation, decimal.DivisionByZero],
    )
    expr, typ, resolved = checked(text)
    compiled = compile_program({}, {"x": (expr, typ)}, resolved).expressions["x"]
    with decimal.localcontext(lookalike):
        if expected is None:
            with pytest.raises(EvaluationError) as info:
                compiled(Inputs().frame())
            assert info.value.code == "E501"
        else:
            assert compiled(Inputs().frame()) == expected


def test_compiled_call_inside_engine_context_same_outcome() -> None:
    expr, typ, resolved = checked("2 / 3 + ratio")
    program = compile_program(DEFINITIONS, {"x": (expr, typ)}, DEFINITION_RESOLVED | resolved)
    compiled = program.expressions["x"]
    broke = Inputs(account={"wallet_balance": D(0), "positions": []})
    outside = compiled(Inputs().frame())
    with pytest.raises(EvaluationError) as error_outside:
        compiled(broke.frame())
    with decimal.localcontext(DECIMAL_CONTEXT):
        inside = compiled(Inputs().frame())
        with pytest.raises(EvaluationError) as error_inside:
            compiled(broke.frame())
    assert repr(inside) == repr(outside)
    assert outside == DECIMAL_CONTEXT.add(DECIMAL_CONTEXT.divide(D(2), D(3)), D("0.0022"))
    assert str(error_inside.value) == str(error_outside.value)
    assert error_inside.value.code == "E501"


@pytest.mark.parametrize(
    "text",
    [
        "(if is_long then 1 else 0) > 0 and (if is_long then true else false)",
        "(if is_long then 0 else 1) == 0 and (if is_long then false else true) == false",
        "min(if is_long then 1 else 0, 2) + (if is_long then 1 else 0) > 0 and"
        " (if is_long then true else false)",
    ],
)
def test_compiled_shared_subexpressions_keep_booleans_and_numbers_apart(text: str) -> None:
    # `if c then 1 else 0` and `if c then true else false` must not share a computed value
    assert value(text) is True


# -- the compiled form agrees with the reference --------------------------------------------------

NUMBER_LITERALS = ["0", "1", "2", "0.5", "3.25", "100", "1e3", "2.5%", "0.004", "20000"]
MODES = ["half_up", "half_even", "half_down", "floor", "ceil", "down", "up"]


@st.composite
def numeric(draw: st.DrawFn, depth: int, variables: tuple[str, ...] = ()) -> str:
    leaves = [
        st.sampled_from(NUMBER_LITERALS),
        st.sampled_from(
            [
                "position.size",
                "position.entry_price",
                "market.mark_price",
                "market.book_depth",
                "account.wallet_balance",
                "notional",
                "margin",
                "ratio",
                "exposure",
            ]
        ),
    ]
    if variables:
        leaves.append(
            st.builds(
                lambda v, field: f"{v}.{field}",
                st.sampled_from(variables),
                st.sampled_from(["size", "entry_price", "notional", "margin"]),
            )
        )
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(leaves))
    n = numeric(depth - 1, variables)
    b = boolean(depth - 1, variables)
    kind = draw(
        st.sampled_from(
            [
                *["negate", "binary", "binary", "if", "minmax", "abs", "clamp", "round"],
                *["lookup", "fees", "limits", "aggregate", "count"],
            ]
        )
    )
    if kind == "negate":
        return f"(-{draw(n)})"
    if kind == "binary":
        return f"({draw(n)} {draw(st.sampled_from('+-*/'))} {draw(n)})"
    if kind == "if":
        return f"(if {draw(b)} then {draw(n)} else {draw(n)})"
    if kind == "minmax":
        arguments = draw(st.lists(n, min_size=2, max_size=3))
        return f"{draw(st.sampled_from(['min', 'max']))}({', '.join(arguments)})"
    if kind == "abs":
        return f"abs({draw(n)})"
    if kind == "clamp":
        return f"clamp({draw(n)}, {draw(n)}, {draw(n)})"
    if kind == "round":
        step = draw(st.one_of(st.sampled_from(["0.01", "0.5", "1", "0"]), n))
        return f'round({draw(n)}, {step}, "{draw(st.sampled_from(MODES))}")'
    if kind == "lookup":
        return f"lookup(market.tiers, {draw(n)}).{draw(st.sampled_from(['rate', 'amount']))}"
    if kind == "fees":
        return f"lookup(market.fees, {draw(side(variables))}, {draw(n)}).fee"
    if kind == "limits":
        return f"lookup(market.limits, {draw(side(variables))}).max_leverage"
    return draw(aggregate(depth, variables, count=kind == "count"))


@st.composite
def aggregate(draw: st.DrawFn, depth: int, variables: tuple[str, ...], count: bool) -> str:
    variable = draw(st.sampled_from(["p", "q"]))
    inner = (*variables, variable)
    where = draw(st.none() | boolean(depth - 1, inner))
    suffix = f" where {where}" if where is not None else ""
    if count:
        element = draw(st.one_of(numeric(depth - 1, inner), boolean(depth - 1, inner)))
        return f"count({element} for {variable} in account.positions{suffix})"
    function = draw(st.sampled_from(["sum", "min", "max"]))
    element = draw(numeric(depth - 1, inner))
    return f"{function}({element} for {variable} in account.positions{suffix})"


def side(variables: tuple[str, ...]) -> st.SearchStrategy[str]:
    options = ['"long"', '"short"', "position.side", *(f"{v}.side" for v in variables)]
    return st.sampled_from(options)


@st.composite
def boolean(draw: st.DrawFn, depth: int, variables: tuple[str, ...] = ()) -> str:
    leaves = ["true", "false", "is_long", '(position.side == "long")']
    leaves += [f'({v}.side != "short")' for v in variables] + [f"{v}.is_long" for v in variables]
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(leaves))
    n = numeric(depth - 1, variables)
    b = boolean(depth - 1, variables)
    kind = draw(st.sampled_from(["not", "and", "or", "compare", "compare", "if", "equal"]))
    if kind == "not":
        return f"(not {draw(b)})"
    if kind in ("and", "or"):
        return f"({draw(b)} {kind} {draw(b)})"
    if kind == "compare":
        return f"({draw(n)} {draw(st.sampled_from(['<', '<=', '>', '>=', '==', '!=']))} {draw(n)})"
    if kind == "equal":
        return f"({draw(b)} {draw(st.sampled_from(['==', '!=']))} {draw(b)})"
    return f"(if {draw(b)} then {draw(b)} else {draw(b)})"


amounts = st.one_of(
    st.sampled_from(["0", "0", "1", "2", "-1", "0.5", "999.99", "1000", "5000", "20000", "1e5"]),
    st.decimals(min_value=-50, max_value=25_000, places=2).map(str),
).map(D)


@st.composite
def inputs(draw: st.DrawFn) -> Inputs:
    def one_position() -> dict[str, Any]:
        return {
            "symbol": draw(st.sampled_from(["BTC", "BTC", "ETH", "ETH", "XRP"])),
            "side": draw(st.sampled_from(["long", "short"])),
            "size": draw(amounts),
            "entry_price": draw(amounts),
        }

    positions = [one_position() for _ in range(draw(st.integers(0, 3)))]
    current = positions[0] if positions and draw(st.booleans()) else one_position()
    markets = {}
    for symbol in ("BTC", "ETH"):
        data = {**market(symbol, "1"), "mark_price": draw(amounts), "book_depth": draw(amounts)}
        if draw(st.integers(0, 4)) == 0:
            del data["book_depth"]
        if draw(st.booleans()):
            data["fees"] = LONG_ONLY_FEES
        markets[symbol] = data
    account = {"wallet_balance": draw(amounts), "positions": positions}
    return Inputs(position=current, account=account, markets=markets)


def agree(text: str, data: Inputs) -> None:
    compiled, reference = both(text, data)
    same(compiled, reference)
    # and without the reference's help: the fast path fails exactly when the reference fails
    expr, typ, resolved = checked(text)
    program = compile_program(DEFINITIONS, {"x": (expr, typ)}, DEFINITION_RESOLVED | resolved)
    with decimal.localcontext(DECIMAL_CONTEXT):
        try:
            fast = program.expressions["x"].fast(data.frame())
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError):
            assert isinstance(reference, EvaluationError), text
        else:
            assert not isinstance(reference, EvaluationError), (text, reference)
            assert repr(fast) == repr(reference)


@given(st.one_of(numeric(3), boolean(3)), inputs())
def test_compiled_agrees_with_reference(text: str, data: Inputs) -> None:
    agree(text, data)


@given(st.booleans().flatmap(lambda count: aggregate(2, (), count)), inputs())
def test_compiled_aggregate_agrees_with_reference(text: str, data: Inputs) -> None:
    # aggregates alone: their elements and conditions run once per position, or not at all
    agree(text, data)
