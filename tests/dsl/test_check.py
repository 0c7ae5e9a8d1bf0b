"""Checker: every error code with its message and hint, types, collection of all errors at once."""

from __future__ import annotations

import pytest

from engine.dsl import Scope, check_expression, definition_references, parse_expression
from engine.dsl.ast import Aggregate, Attribute, BoolOp, Compare
from engine.dsl.check import Checked, did_you_mean
from engine.dsl.types import (
    ANY,
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
from engine.source import Diagnostic, Span

SIDES = StringType(frozenset({"long", "short"}))

TIER = RecordType(
    "tier",
    {"min_notional": NUMBER, "max_notional": NUMBER, "rate": NUMBER, "amount": NUMBER},
)
TIERS = TableType("tiers", (TableKey("notional", "interval", NUMBER),), TIER)
FEES = TableType(
    "fees",
    (TableKey("side", "exact", SIDES), TableKey("notional", "interval", NUMBER)),
    RecordType("fee", {"fee": NUMBER}),
)


def position_type(*, with_definitions: bool = True) -> RecordType:
    return RecordType(
        "position",
        {"symbol": STRING, "side": SIDES, "size": NUMBER, "entry_price": NUMBER},
        with_definitions=with_definitions,
    )


def make_scope(*, with_definitions: bool = True) -> Scope:
    position = position_type(with_definitions=with_definitions)
    account = RecordType("account", {"wallet_balance": NUMBER, "positions": ListType(position)})
    market = RecordType("market", {"mark_price": NUMBER, "tiers": TIERS})
    tables = RecordType("tables", {"fees": FEES})
    return Scope(
        roots={"position": position, "account": account, "market": market, "tables": tables},
        definitions={"notional": NUMBER, "margin": NUMBER, "is_long": BOOL},
    )


SCOPE = make_scope()


def check(text: str, expected: Type | None = BOOL, **options: str) -> Checked:
    return check_expression(parse_expression(text), SCOPE, expected=expected, **options)


def errors(text: str, expected: Type | None = BOOL) -> tuple[Diagnostic, ...]:
    return check(text, expected).diagnostics


def only_error(text: str, expected: Type | None = BOOL) -> Diagnostic:
    found = errors(text, expected)
    assert len(found) == 1, found
    return found[0]


def where(span: Span | None) -> tuple[int, int, int, int]:
    assert span is not None
    return (span.line, span.column, span.end_line, span.end_column)


# -- well-typed expressions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected_type"),
    [
        ("position.size * market.mark_price", NUMBER),
        ("notional / account.wallet_balance", NUMBER),
        ("is_long and position.size > 0", BOOL),
        ('position.side == "long"', BOOL),
        ('"short" != position.side', BOOL),
        ("position.side", SIDES),
        ("position.symbol", STRING),
        ("lookup(market.tiers, notional)", TIER),
        (
            "lookup(market.tiers, notional).rate * notional"
            " - lookup(market.tiers, notional).amount",
            NUMBER,
        ),
        ("lookup(tables.fees, position.side, notional).fee", NUMBER),
        ('lookup(tables.fees, "long", 1).fee', NUMBER),
        ('round(notional, 0.01, "half_up")', NUMBER),
        ("clamp(margin, 0, 100)", NUMBER),
        ("min(1, 2, 3) + max(1, 2) + abs(-1)", NUMBER),
        ("if is_long then 1 else -1", NUMBER),
        ('if is_long then "long" else "short"', STRING),
        ("sum(p.notional for p in account.positions)", NUMBER),
        ('count(p for p in account.positions where p.side == "long")', NUMBER),
        ("min(p.size for p in account.positions where p.is_long)", NUMBER),
        ("max(p.margin for p in account.positions) > 0", BOOL),
        (
            "sum(count(q for q in account.positions where q.size > p.size)"
            " for p in account.positions)",
            NUMBER,
        ),
        ("account.positions", ListType(position_type())),
    ],
)
def test_check_valid_expression_has_type_and_no_diagnostics(text: str, expected_type: Type) -> None:
    checked = check(text, expected=None)
    assert checked.diagnostics == ()
    assert checked.type == expected_type
    assert str(checked.type) == str(expected_type)


def test_check_conditional_of_enum_and_literal_is_plain_string() -> None:
    checked = check('if is_long then position.side else "flat"', expected=None)
    assert checked.diagnostics == ()
    assert checked.type == STRING


def test_check_conditional_of_enums_merges_allowed_values() -> None:
    scope = Scope(
        roots={**SCOPE.roots, "other": RecordType("other", {"mode": StringType(frozenset({"x"}))})},
        definitions=SCOPE.definitions,
    )
    expr = parse_expression("if is_long then position.side else other.mode")
    checked = check_expression(expr, scope)
    assert checked.diagnostics == ()
    assert checked.type == StringType(frozenset({"long", "short", "x"}))


# -- E300 unknown name --------------------------------------------------------------------------


def test_check_unknown_name_close_to_root_suggests_it() -> None:
    diagnostic = only_error("postion.size > 0")
    assert diagnostic.code == "E300"
    assert diagnostic.message == "unknown name 'postion'"
    assert diagnostic.hint == "did you mean 'position' or 'notional'?"
    assert where(diagnostic.span) == (1, 1, 1, 8)


def test_check_unknown_name_close_to_definition_suggests_it() -> None:
    diagnostic = only_error("margn > 0")
    assert diagnostic.code == "E300"
    assert diagnostic.message == "unknown name 'margn'"
    assert diagnostic.hint == "did you mean 'margin'?"


def test_check_unknown_name_far_from_everything_has_no_hint() -> None:
    diagnostic = only_error("zzz > 0")
    assert (diagnostic.code, diagnostic.message, diagnostic.hint) == (
        "E300",
        "unknown name 'zzz'",
        None,
    )


def test_check_function_name_used_as_value_rejected() -> None:
    diagnostic = only_error("sum > 0")
    assert diagnostic.code == "E300"
    assert diagnostic.message == "'sum' is a function and must be called"
    assert only_error("abs > 0").message == "'abs' is a function and must be called"


def test_check_aggregate_variable_visible_only_inside() -> None:
    diagnostic = only_error("sum(p.size for p in account.positions) > p.size")
    assert diagnostic.code == "E300"
    assert diagnostic.message == "unknown name 'p'"
    assert where(diagnostic.span) == (1, 42, 1, 43)


# -- E301 unknown field -------------------------------------------------------------------------


def test_check_misspelled_field_suggests_size() -> None:
    diagnostic = only_error("position.sise > 0")
    assert diagnostic.code == "E301"
    assert diagnostic.message == "unknown field 'sise' on position"
    assert diagnostic.hint == "did you mean 'size' or 'side'?"
    assert where(diagnostic.span) == (1, 10, 1, 14)


def test_check_misspelled_definition_on_position_suggests_it() -> None:
    diagnostic = only_error("sum(p.notionl for p in account.positions) > 0")
    assert diagnostic.code == "E301"
    assert diagnostic.message == "unknown field 'notionl' on position"
    assert diagnostic.hint == "did you mean 'notional'?"


def test_check_definition_on_record_without_definitions_rejected() -> None:
    scope = make_scope(with_definitions=False)
    checked = check_expression(
        parse_expression("sum(p.notional for p in account.positions)"), scope
    )
    assert [(d.code, d.message, d.hint) for d in checked.diagnostics] == [
        ("E301", "unknown field 'notional' on position", None)
    ]
    assert checked.definition_attributes == frozenset()


def test_check_field_of_number_rejected() -> None:
    diagnostic = only_error("position.size.x > 0")
    assert diagnostic.code == "E301"
    assert diagnostic.message == "number has no fields (looking for 'x')"
    assert where(diagnostic.span) == (1, 15, 1, 16)


def test_check_unknown_table_suggests_close_name() -> None:
    diagnostic = only_error('lookup(tables.feez, "long", 1).fee > 0')
    assert diagnostic.code == "E301"
    assert diagnostic.message == "unknown field 'feez' on tables"
    assert diagnostic.hint == "did you mean 'fees'?"


def test_check_unknown_field_of_table_row() -> None:
    diagnostic = only_error("lookup(market.tiers, 1).rat > 0")
    assert diagnostic.code == "E301"
    assert diagnostic.message == "unknown field 'rat' on tier"
    assert diagnostic.hint == "did you mean 'rate'?"


# -- E302 arity ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        (
            "round(1, 2) > 0",
            "'round' takes 3 arguments, found 2",
            'usage: round(x, step, "mode") -> number',
        ),
        (
            'round(1, 2, "up", 4) > 0',
            "'round' takes 3 arguments, found 4",
            'usage: round(x, step, "mode") -> number',
        ),
        (
            "clamp(1, 2) > 0",
            "'clamp' takes 3 arguments, found 2",
            "usage: clamp(x, low, high) -> number",
        ),
        (
            "clamp(1, 2, 3, 4) > 0",
            "'clamp' takes 3 arguments, found 4",
            "usage: clamp(x, low, high) -> number",
        ),
        (
            "lookup(market.tiers).rate > 0",
            "'lookup' takes at least 2 arguments, found 1",
            "usage: lookup(table, key, ...) -> row",
        ),
        ("abs() > 0", "'abs' takes 1 argument, found 0", "usage: abs(x) -> number"),
        ("abs(1, 2) > 0", "'abs' takes 1 argument, found 2", "usage: abs(x) -> number"),
        (
            "min(1) > 0",
            "'min' takes at least 2 arguments, found 1",
            "usage: min(a, b, ...) -> number",
        ),
        (
            "max() > 0",
            "'max' takes at least 2 arguments, found 0",
            "usage: max(a, b, ...) -> number",
        ),
        (
            "sum(1, 2) > 0",
            "'sum' aggregates over a collection",
            "write sum(p.notional for p in account.positions)",
        ),
        (
            "count() > 0",
            "'count' aggregates over a collection",
            "write count(p.notional for p in account.positions)",
        ),
    ],
)
def test_check_wrong_argument_count_rejected_with_usage(text: str, message: str, hint: str) -> None:
    diagnostic = only_error(text)
    assert diagnostic.code == "E302"
    assert diagnostic.message == message
    assert diagnostic.hint == hint
    assert diagnostic.span is not None and diagnostic.span.column == 1


def test_check_wrong_arity_still_checks_arguments() -> None:
    found = errors("round(postion.size, 1) > 0")
    assert [d.code for d in found] == ["E300", "E302"]


def test_check_lookup_key_count_must_match_table() -> None:
    diagnostic = only_error("lookup(market.tiers, 1, 2).rate > 0")
    assert diagnostic.code == "E302"
    assert diagnostic.message == "table 'tiers' is looked up by 1 key (notional), found 2"
    assert where(diagnostic.span) == (1, 1, 1, 27)
    two_keys = only_error("lookup(tables.fees, 1).fee > 0")
    assert two_keys.message == "table 'fees' is looked up by 2 keys (side, notional), found 1"


# -- E303 types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("-true > 0", "'-' needs a number, found boolean", None),
        ("not 1", "'not' needs a boolean, found number", None),
        ("1 + true > 0", "'+' needs numbers, found boolean on the right", None),
        (
            "position.side * 2 > 0",
            '\'*\' needs numbers, found string (one of "long", "short") on the left',
            None,
        ),
        (
            "position.size and true",
            "'and' needs booleans, found number on the left",
            "compare the value, e.g. 'x > 0'",
        ),
        ("true or position.symbol", "'or' needs booleans, found string on the right", None),
        ('"a" < "b"', "'<' needs numbers, found string on the left", None),
        ("1 == true", "cannot compare number with boolean", None),
        ("position.symbol == 1", "cannot compare string with number", None),
        (
            "(if true then 1 else false) > 0",
            "'then' and 'else' differ in type: number and boolean",
            None,
        ),
        ('abs("x") > 0', "'abs' needs numbers, found string", None),
        ('round(true, 1, "up") > 0', "'round' needs numbers, found boolean", None),
        (
            "lookup(1, 2).rate > 0",
            "'lookup' needs a table first, found number",
            "tables are named tables.<name>, or market.tiers for the market's tier table",
        ),
        (
            "lookup(market.tiers, true).rate > 0",
            "key 'notional' needs a number, found boolean",
            None,
        ),
        (
            "lookup(tables.fees, 1, 1).fee > 0",
            'key \'side\' needs string (one of "long", "short"), found number',
            None,
        ),
        (
            "sum(p.side for p in account.positions) > 0",
            '\'sum\' needs numbers, found string (one of "long", "short")',
            None,
        ),
        (
            "sum(p.size for p in account.positions where p.size) > 0",
            "'where' needs a boolean, found number",
            None,
        ),
        (
            "sum(p.size for p in position) > 0",
            "'sum' iterates over a list, found position",
            "aggregate over account.positions",
        ),
        ("account.positions == 1", "cannot compare list of position with number", None),
    ],
)
def test_check_type_mismatch_rejected(text: str, message: str, hint: str | None) -> None:
    diagnostic = only_error(text)
    assert diagnostic.code == "E303"
    assert diagnostic.message == message
    assert diagnostic.hint == hint


def test_check_if_condition_must_be_boolean() -> None:
    diagnostic = only_error("if position.size then 1 else 2", expected=NUMBER)
    assert diagnostic.code == "E303"
    assert diagnostic.message == "'if' needs a boolean condition, found number"
    assert where(diagnostic.span) == (1, 4, 1, 17)


def test_check_trigger_must_be_boolean() -> None:
    diagnostic = only_error("position.size * market.mark_price")
    assert diagnostic.code == "E303"
    assert diagnostic.message == "expression must be boolean, found number"
    assert where(diagnostic.span) == (1, 1, 1, 34)


def test_check_expected_type_names_what_is_checked() -> None:
    checked = check("notional", expected=BOOL, what="trigger")
    assert [(d.code, d.message) for d in checked.diagnostics] == [
        ("E303", "trigger must be boolean, found number")
    ]
    checked = check("is_long", expected=NUMBER, what="definition 'margin'")
    assert [d.message for d in checked.diagnostics] == [
        "definition 'margin' must be number, found boolean"
    ]


def test_check_expected_type_not_repeated_after_an_error() -> None:
    found = errors("not 1")  # the whole expression is `unknown` after its own error
    assert [d.message for d in found] == ["'not' needs a boolean, found number"]


def test_check_one_mistake_reported_once() -> None:
    found = errors("(postion.size + 1) * 2 - abs(postion.size) > 0")
    assert [(d.code, d.message) for d in found] == [
        ("E300", "unknown name 'postion'"),
        ("E300", "unknown name 'postion'"),
    ]
    found = errors("-(1 + true) * 2 > 0")
    assert [(d.message, where(d.span)) for d in found] == [
        ("'+' needs numbers, found boolean on the right", (1, 3, 1, 11))
    ]


# -- E305 unknown function ----------------------------------------------------------------------


def test_check_unknown_function_suggests_min() -> None:
    diagnostic = only_error("mn(1, 2) > 0")
    assert diagnostic.code == "E305"
    assert diagnostic.message == "unknown function 'mn'"
    assert diagnostic.hint == "did you mean 'min'?"
    assert where(diagnostic.span) == (1, 1, 1, 3)


def test_check_unknown_function_far_from_builtins_has_no_hint() -> None:
    diagnostic = only_error("frobnicate(1) > 0")
    assert (diagnostic.code, diagnostic.message, diagnostic.hint) == (
        "E305",
        "unknown function 'frobnicate'",
        None,
    )


def test_check_unknown_aggregate_lists_aggregates() -> None:
    diagnostic = only_error("avg(p.size for p in account.positions) > 0")
    assert diagnostic.code == "E305"
    assert diagnostic.message == "'avg' cannot aggregate"
    assert diagnostic.hint == "aggregates are sum, min, max, count"
    assert where(diagnostic.span) == (1, 1, 1, 4)


# -- E306 rounding mode -------------------------------------------------------------------------

_MODES = 'one of "half_up", "half_even", "half_down", "floor", "ceil", "down", "up"'


def test_check_rounding_mode_must_be_string_literal() -> None:
    diagnostic = only_error("round(1, 1, position.side) > 0")
    assert diagnostic.code == "E306"
    assert diagnostic.message == "the rounding mode must be a string literal"
    assert diagnostic.hint == _MODES
    assert where(diagnostic.span) == (1, 13, 1, 26)


def test_check_rounding_mode_number_rejected() -> None:
    diagnostic = only_error("round(1, 1, 2) > 0")
    assert (diagnostic.code, diagnostic.message) == (
        "E306",
        "the rounding mode must be a string literal",
    )


def test_check_rounding_mode_misspelled_suggests_mode() -> None:
    diagnostic = only_error('round(1, 1, "half_upp") > 0')
    assert diagnostic.code == "E306"
    assert diagnostic.message == 'unknown rounding mode "half_upp"'
    assert diagnostic.hint == 'did you mean "half_up"?'


def test_check_rounding_mode_unknown_lists_modes() -> None:
    diagnostic = only_error('round(1, 1, "sideways") > 0')
    assert diagnostic.message == 'unknown rounding mode "sideways"'
    assert diagnostic.hint == _MODES


@pytest.mark.parametrize(
    "mode", ["half_up", "half_even", "half_down", "floor", "ceil", "down", "up"]
)
def test_check_rounding_mode_known_accepted(mode: str) -> None:
    assert errors(f'round(1, 1, "{mode}") > 0') == ()


# -- E307 enumeration values --------------------------------------------------------------------


def test_check_enum_misspelled_value_suggests_long() -> None:
    diagnostic = only_error('position.side == "lnog"')
    assert diagnostic.code == "E307"
    assert diagnostic.message == '"lnog" is never a value here; expected one of "long", "short"'
    assert diagnostic.hint == 'did you mean "long"?'
    assert where(diagnostic.span) == (1, 18, 1, 24)


def test_check_enum_value_on_left_checked_too() -> None:
    diagnostic = only_error('"shrot" != position.side')
    assert diagnostic.code == "E307"
    assert diagnostic.hint == 'did you mean "short"?'
    assert where(diagnostic.span) == (1, 1, 1, 8)


def test_check_enum_value_in_aggregate_condition() -> None:
    diagnostic = only_error('count(p for p in account.positions where p.side == "flat") > 0')
    assert diagnostic.code == "E307"
    assert diagnostic.hint is None


def test_check_plain_string_accepts_any_value() -> None:
    assert errors('position.symbol == "anything"') == ()


# -- E309 shadowing -----------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["position", "account", "notional", "is_long"])
def test_check_aggregate_variable_shadowing_rejected(variable: str) -> None:
    text = f"sum({variable}.size for {variable} in account.positions) > 0"
    found = errors(text)
    assert found[0].code == "E309"
    assert found[0].message == f"'{variable}' already names an input or a definition"
    assert found[0].hint == "pick another variable name, e.g. 'p'"
    assert where(found[0].span) == (1, 15 + len(variable), 1, 15 + 2 * len(variable))


def test_check_nested_aggregate_may_reuse_variable() -> None:
    text = "sum(sum(p.size for p in account.positions) for p in account.positions) > 0"
    assert errors(text) == ()


# -- all errors at once -------------------------------------------------------------------------


def test_check_three_mistakes_three_diagnostics() -> None:
    found = errors('position.sise + postion.size + mn(1, 2) > 0 and position.side == "long"')
    assert [(d.code, d.message, d.hint) for d in found] == [
        ("E301", "unknown field 'sise' on position", "did you mean 'size' or 'side'?"),
        ("E300", "unknown name 'postion'", "did you mean 'position' or 'notional'?"),
        ("E305", "unknown function 'mn'", "did you mean 'min'?"),
    ]
    assert [where(d.span)[:2] for d in found] == [(1, 10), (1, 17), (1, 32)]


def test_check_errors_in_every_branch_collected() -> None:
    text = 'if position.sid == "long" then round(1, 1, "nope") else lookup(market.tiers).rate'
    found = errors(text, expected=NUMBER)
    assert [d.code for d in found] == ["E301", "E306", "E302"]


# -- definition attributes and references -------------------------------------------------------


def test_check_definition_attribute_resolved_by_node_identity() -> None:
    checked = check("sum(p.notional for p in account.positions where p.size > 0) > 0")
    assert checked.diagnostics == ()
    comparison = checked.expr
    assert isinstance(comparison, Compare) and isinstance(comparison.left, Aggregate)
    element = comparison.left.element
    assert isinstance(element, Attribute) and element.name == "notional"
    condition = comparison.left.condition
    assert isinstance(condition, Compare) and isinstance(condition.left, Attribute)
    assert checked.definition_attributes == frozenset({id(element)})
    assert id(condition.left) not in checked.definition_attributes


def test_check_definition_attribute_on_position_root() -> None:
    checked = check("position.margin > position.size and position.is_long")
    assert checked.diagnostics == ()
    expr = checked.expr
    assert isinstance(expr, BoolOp) and isinstance(expr.left, Compare)
    margin, size, is_long = expr.left.left, expr.left.right, expr.right
    assert {id(margin), id(is_long)} == set(checked.definition_attributes)
    assert id(size) not in checked.definition_attributes


def test_check_input_field_wins_over_definition_of_same_name() -> None:
    scope = Scope(roots=SCOPE.roots, definitions={**SCOPE.definitions, "size": BOOL})
    checked = check_expression(parse_expression("position.size > 0"), scope, expected=BOOL)
    assert checked.diagnostics == ()
    assert checked.definition_attributes == frozenset()


def test_definition_references_finds_names_and_attributes() -> None:
    expr = parse_expression(
        "notional + sum(p.margin for p in account.positions where p.is_long) + position.size\n"
        "  + unknown"
    )
    found = list(definition_references(expr, {"notional": 1, "margin": 2, "is_long": 3}))
    assert sorted((name, where(span)) for name, span in found) == [
        ("is_long", (1, 60, 1, 67)),
        ("margin", (1, 18, 1, 24)),
        ("notional", (1, 1, 1, 9)),
    ]


def test_definition_references_skips_bound_variables_and_input_fields() -> None:
    expr = parse_expression("sum(notional.size for notional in account.positions) + size + p.size")
    definitions = {"notional": 1, "size": 2}
    assert [name for name, _ in definition_references(expr, definitions, ["size"])] == ["size"]
    assert sorted(name for name, _ in definition_references(expr, definitions)) == [
        "size",
        "size",
        "size",
    ]


def test_definition_references_none_in_plain_expression() -> None:
    expr = parse_expression("position.size * market.mark_price > 0")
    assert list(definition_references(expr, {"notional": 1})) == []


# -- helpers --------------------------------------------------------------------------------------


def test_did_you_mean_lists_up_to_three_matches() -> None:
    assert did_you_mean("siz", ["size", "side", "sizes", "six", "zzz"]) == (
        "did you mean 'size' or 'sizes' or 'six'?"
    )
    assert did_you_mean("qqq", ["size"]) is None


def test_check_unknown_type_never_cascades() -> None:
    checked = check("postion.size.x.y + 1 > 0")
    assert [d.code for d in checked.diagnostics] == ["E300"]
    assert check("postion", expected=BOOL).type == ANY
