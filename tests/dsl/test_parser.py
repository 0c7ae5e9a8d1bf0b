"""Parser: literals, precedence, calls, aggregates, spans, syntax errors, hostile-input limits."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from engine.dsl import MAX_DEPTH, MAX_LENGTH, parse_expression
from engine.dsl.ast import (
    Aggregate,
    Attribute,
    Binary,
    BoolOp,
    Call,
    Compare,
    Conditional,
    Const,
    Expr,
    Name,
    Negate,
    Not,
)
from engine.errors import ExpressionError, PolicyError
from engine.source import Diagnostic, SourceFile, Span

DUMMY = Span(SourceFile("<test>", ""), 1, 1, 1, 1)


# -- helpers: build expected trees (spans are not compared) ---------------------------------------


def c(value: Decimal | bool | str | int) -> Const:
    if isinstance(value, int) and not isinstance(value, bool):
        value = Decimal(value)
    return Const(value=value, span=DUMMY)


def n(name: str) -> Name:
    return Name(name=name, span=DUMMY)


def attr(value: Expr, name: str) -> Attribute:
    return Attribute(value=value, name=name, span=DUMMY, name_span=DUMMY)


def path(dotted: str) -> Expr:
    first, *rest = dotted.split(".")
    node: Expr = n(first)
    for part in rest:
        node = attr(node, part)
    return node


def binary(op: str, left: Expr, right: Expr) -> Binary:
    return Binary(op=op, left=left, right=right, span=DUMMY)  # type: ignore[arg-type]


def compare(op: str, left: Expr, right: Expr) -> Compare:
    return Compare(op=op, left=left, right=right, span=DUMMY)  # type: ignore[arg-type]


def boolop(op: str, left: Expr, right: Expr) -> BoolOp:
    return BoolOp(op=op, left=left, right=right, span=DUMMY)  # type: ignore[arg-type]


def call(function: str, *arguments: Expr) -> Call:
    return Call(function=function, arguments=arguments, span=DUMMY, name_span=DUMMY)


def aggregate(
    function: str, element: Expr, variable: str, collection: Expr, condition: Expr | None = None
) -> Aggregate:
    return Aggregate(
        function=function,  # type: ignore[arg-type]
        element=element,
        variable=variable,
        collection=collection,
        condition=condition,
        span=DUMMY,
        name_span=DUMMY,
        variable_span=DUMMY,
    )


def where(span: Span) -> tuple[int, int, int, int]:
    return (span.line, span.column, span.end_line, span.end_column)


def errors_of(text: str) -> tuple[Diagnostic, ...]:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    return info.value.diagnostics


def only_error(text: str) -> Diagnostic:
    diagnostics = errors_of(text)
    assert len(diagnostics) == 1, diagnostics
    return diagnostics[0]


def rejected_quickly(text: str) -> Diagnostic:
    start = time.perf_counter()
    diagnostic = only_error(text)
    assert time.perf_counter() - start < 1.0
    return diagnostic


# -- literals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.004", Decimal("0.004")),
        ("0.4%", Decimal("0.004")),
        ("125%", Decimal("1.25")),
        ("1_000_000", Decimal("1000000")),
        ("1_000.000_5", Decimal("1000.0005")),
        ("1e6", Decimal("1000000")),
        ("2.5E-3", Decimal("0.0025")),
        ("1e+2", Decimal("100")),
        ("0", Decimal("0")),
        ("007", Decimal("7")),
    ],
)
def test_parse_number_literal_exact_decimal(text: str, value: Decimal) -> None:
    node = parse_expression(text)
    assert isinstance(node, Const)
    assert isinstance(node.value, Decimal)
    assert node.value == value


def test_parse_percent_keeps_trailing_zeros_of_scaled_value() -> None:
    node = parse_expression("0.40%")
    assert isinstance(node, Const)
    assert node.value == Decimal("0.004")
    assert str(node.value) == "0.0040"


def test_parse_percent_with_many_digits_is_exact() -> None:
    # 32 significant digits: more than the default decimal context's 28, within the 60 allowed
    node = parse_expression("1.0000000000000000000000000000001%")
    assert isinstance(node, Const)
    assert node.value == Decimal("0.010000000000000000000000000000001")


def test_parse_sixty_digit_literal_accepted() -> None:
    node = parse_expression("9" * 60)
    assert isinstance(node, Const)
    assert node.value == Decimal("9" * 60)


def test_parse_exponent_at_limit_accepted() -> None:
    assert parse_expression("1e100") == c(Decimal("1e100"))
    assert parse_expression("1e-100") == c(Decimal("1e-100"))


@pytest.mark.parametrize(
    ("text", "value"), [('"long"', "long"), ('""', ""), ('"a (b) # c"', "a (b) # c")]
)
def test_parse_string_literal_without_quotes(text: str, value: str) -> None:
    node = parse_expression(text)
    assert isinstance(node, Const)
    assert node.value == value


@pytest.mark.parametrize(("text", "value"), [("true", True), ("false", False)])
def test_parse_boolean_literal_is_bool(text: str, value: bool) -> None:
    node = parse_expression(text)
    assert isinstance(node, Const)
    assert node.value is value


def test_parse_string_with_parentheses_not_counted_as_nesting() -> None:
    text = '"' + "(" * (MAX_DEPTH + 50) + '"'
    assert parse_expression(text) == c("(" * (MAX_DEPTH + 50))


def test_parse_comments_and_newlines_ignored() -> None:
    text = "1 +  # the base\n  2  # and more\n"
    assert parse_expression(text) == binary("+", c(1), c(2))


def test_parse_name_with_keyword_prefix_is_a_name() -> None:
    assert parse_expression("iffy + notional + order + in_force") == binary(
        "+", binary("+", binary("+", n("iffy"), n("notional")), n("order")), n("in_force")
    )


# -- precedence and associativity ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 - 2 - 3", binary("-", binary("-", c(1), c(2)), c(3))),
        ("8 / 4 / 2", binary("/", binary("/", c(8), c(4)), c(2))),
        ("1 + 2 * 3", binary("+", c(1), binary("*", c(2), c(3)))),
        ("(1 + 2) * 3", binary("*", binary("+", c(1), c(2)), c(3))),
        ("1 - (2 - 3)", binary("-", c(1), binary("-", c(2), c(3)))),
        ("a or b and c", boolop("or", n("a"), boolop("and", n("b"), n("c")))),
        ("a and b or c", boolop("or", boolop("and", n("a"), n("b")), n("c"))),
        ("a or b or c", boolop("or", boolop("or", n("a"), n("b")), n("c"))),
        ("not a == b", Not(operand=compare("==", n("a"), n("b")), span=DUMMY)),
        ("not a and b", boolop("and", Not(operand=n("a"), span=DUMMY), n("b"))),
        ("not not a", Not(operand=Not(operand=n("a"), span=DUMMY), span=DUMMY)),
        ("-a.b", Negate(operand=path("a.b"), span=DUMMY)),
        ("-a * b", binary("*", Negate(operand=n("a"), span=DUMMY), n("b"))),
        ("a - -b", binary("-", n("a"), Negate(operand=n("b"), span=DUMMY))),
        ("--1", Negate(operand=Negate(operand=c(1), span=DUMMY), span=DUMMY)),
        ("a + 1 < b * 2", compare("<", binary("+", n("a"), c(1)), binary("*", n("b"), c(2)))),
        (
            "a >= b and c != d",
            boolop("and", compare(">=", n("a"), n("b")), compare("!=", n("c"), n("d"))),
        ),
        ("a.b.c", path("a.b.c")),
    ],
)
def test_parse_operators_precedence_and_associativity(text: str, expected: Expr) -> None:
    assert parse_expression(text) == expected


def test_parse_conditional_branches() -> None:
    assert parse_expression("if a > 0 then 1 else 2") == Conditional(
        condition=compare(">", n("a"), c(0)), then=c(1), otherwise=c(2), span=DUMMY
    )


def test_parse_conditional_else_extends_to_the_end() -> None:
    assert parse_expression("if a then b else c or d") == Conditional(
        condition=n("a"), then=n("b"), otherwise=boolop("or", n("c"), n("d")), span=DUMMY
    )


def test_parse_conditional_nested_in_else() -> None:
    inner = Conditional(condition=n("b"), then=c(2), otherwise=c(3), span=DUMMY)
    assert parse_expression("if a then 1 else if b then 2 else 3") == Conditional(
        condition=n("a"), then=c(1), otherwise=inner, span=DUMMY
    )


def test_parse_conditional_parenthesized_as_operand() -> None:
    conditional = Conditional(condition=n("a"), then=c(2), otherwise=c(3), span=DUMMY)
    assert parse_expression("1 + (if a then 2 else 3)") == binary("+", c(1), conditional)


def test_parse_conditional_as_operand_without_parentheses_rejected() -> None:
    diagnostic = only_error("1 + if a then 2 else 3")
    assert diagnostic.code == "E200"
    assert diagnostic.message.startswith("unexpected 'if', expected '(', '-'")
    assert where(diagnostic.span) == (1, 5, 1, 7)


def test_parse_chained_comparison_rejected() -> None:
    diagnostic = only_error("1 < 2 < 3")
    assert diagnostic.code == "E200"
    assert diagnostic.message.startswith("unexpected '<', expected")
    assert where(diagnostic.span) == (1, 7, 1, 8)


@pytest.mark.parametrize(
    "text", ["if", "a + then", "not + 1", "sum(x for for in y)", "a.in", "f(where)"]
)
def test_parse_keyword_used_as_name_rejected(text: str) -> None:
    assert only_error(text).code == "E200"


# -- calls, aggregates, attribute chains ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("min(a, b)", call("min", n("a"), n("b"))),
        ("max(a, b, c)", call("max", n("a"), n("b"), n("c"))),
        ("max(a, b,)", call("max", n("a"), n("b"))),
        ("abs(x,)", call("abs", n("x"))),
        ("f()", call("f")),
        ('round(x, 0.5, "half_up")', call("round", n("x"), c(Decimal("0.5")), c("half_up"))),
        ("lookup(t, x).rate", attr(call("lookup", n("t"), n("x")), "rate")),
        (
            "lookup(market.tiers, notional).rate * 2",
            binary("*", attr(call("lookup", path("market.tiers"), n("notional")), "rate"), c(2)),
        ),
        ("-abs(x)", Negate(operand=call("abs", n("x")), span=DUMMY)),
        ("min(a, max(b, c))", call("min", n("a"), call("max", n("b"), n("c")))),
        (
            "min(if a then 1 else 2, 3)",
            call("min", Conditional(condition=n("a"), then=c(1), otherwise=c(2), span=DUMMY), c(3)),
        ),
    ],
)
def test_parse_call_arguments_in_order(text: str, expected: Expr) -> None:
    assert parse_expression(text) == expected


def test_parse_aggregate_without_where() -> None:
    assert parse_expression("sum(p.notional for p in account.positions)") == aggregate(
        "sum", path("p.notional"), "p", path("account.positions")
    )


def test_parse_aggregate_with_where() -> None:
    text = 'count(p for p in account.positions where p.side == "long" and p.size > 0)'
    condition = boolop(
        "and", compare("==", path("p.side"), c("long")), compare(">", path("p.size"), c(0))
    )
    assert parse_expression(text) == aggregate(
        "count", n("p"), "p", path("account.positions"), condition
    )


def test_parse_aggregate_followed_by_attribute_and_operator() -> None:
    text = "max(p.size for p in xs).foo + 1"
    expected = binary("+", attr(aggregate("max", path("p.size"), "p", n("xs")), "foo"), c(1))
    assert parse_expression(text) == expected


def test_parse_aggregate_nested() -> None:
    text = "sum(count(q for q in xs where q.size > p.size) for p in xs)"
    inner = aggregate("count", n("q"), "q", n("xs"), compare(">", path("q.size"), path("p.size")))
    assert parse_expression(text) == aggregate("sum", inner, "p", n("xs"))


def test_parse_number_then_attribute_is_attribute_of_number() -> None:
    assert parse_expression("1.x") == attr(c(1), "x")
    assert parse_expression("1.5.x") == attr(c(Decimal("1.5")), "x")


# -- spans --------------------------------------------------------------------------------------


def test_span_binary_covers_both_operands() -> None:
    node = parse_expression("1 + a / b")
    assert isinstance(node, Binary) and isinstance(node.right, Binary)
    assert where(node.span) == (1, 1, 1, 10)
    assert where(node.right.span) == (1, 5, 1, 10)
    assert where(node.right.left.span) == (1, 5, 1, 6)
    assert where(node.right.right.span) == (1, 9, 1, 10)


def test_span_keyword_literals_and_unary_operators() -> None:
    node = parse_expression("not  true")
    assert isinstance(node, Not)
    assert where(node.span) == (1, 1, 1, 10)
    assert where(node.operand.span) == (1, 6, 1, 10)
    negate = parse_expression("- 12.5%")
    assert isinstance(negate, Negate)
    assert where(negate.span) == (1, 1, 1, 8)
    assert where(negate.operand.span) == (1, 3, 1, 8)


def test_span_multiline_call_and_nested_nodes() -> None:
    text = "max(\n  position.size * market.mark_price,\n  -lookup(market.tiers, 5).rate\n)"
    node = parse_expression(text)
    assert isinstance(node, Call)
    assert where(node.span) == (1, 1, 4, 2)
    assert where(node.name_span) == (1, 1, 1, 4)
    first, second = node.arguments
    assert where(first.span) == (2, 3, 2, 36)
    assert isinstance(second, Negate) and isinstance(second.operand, Attribute)
    assert where(second.span) == (3, 3, 3, 32)
    rate = second.operand
    assert where(rate.span) == (3, 4, 3, 32)
    assert where(rate.name_span) == (3, 28, 3, 32)
    assert isinstance(rate.value, Call)
    assert where(rate.value.name_span) == (3, 4, 3, 10)


def test_span_multiline_binary() -> None:
    node = parse_expression("a\n  + b /\n c")
    assert isinstance(node, Binary) and isinstance(node.right, Binary)
    assert where(node.span) == (1, 1, 3, 3)
    assert where(node.right.span) == (2, 5, 3, 3)


def test_span_aggregate_parts() -> None:
    node = parse_expression('sum(p.size for p in account.positions where p.side == "long")')
    assert isinstance(node, Aggregate)
    assert node.condition is not None
    assert where(node.span) == (1, 1, 1, 62)
    assert where(node.name_span) == (1, 1, 1, 4)
    assert where(node.variable_span) == (1, 16, 1, 17)
    assert where(node.collection.span) == (1, 21, 1, 38)
    assert where(node.condition.span) == (1, 45, 1, 61)


def test_span_conditional_multiline() -> None:
    node = parse_expression("if a\nthen b\nelse not c")
    assert isinstance(node, Conditional)
    assert where(node.span) == (1, 1, 3, 11)
    assert where(node.otherwise.span) == (3, 6, 3, 11)


def test_span_default_source_is_the_expression_text() -> None:
    node = parse_expression("a + b")
    assert node.span.path == "<expr>"
    assert node.span.source.text == "a + b"


def test_span_locate_maps_into_outer_file() -> None:
    outer = SourceFile("policy.yaml", "x:\n  trigger: a + b\n")

    def locate(line: int, column: int) -> tuple[int, int]:
        return line + 1, column + 11

    node = parse_expression("a + b", source=outer, locate=locate)
    assert isinstance(node, Binary)
    assert node.span.path == "policy.yaml"
    assert where(node.span) == (2, 12, 2, 17)
    assert where(node.right.span) == (2, 16, 2, 17)


def test_span_locate_failure_uses_fallback() -> None:
    outer = SourceFile("policy.yaml", "x: 1\n")
    fallback = Span(outer, 1, 4, 1, 5)
    node = parse_expression("a", source=outer, locate=lambda line, column: None, fallback=fallback)
    assert node.span == fallback


# -- syntax errors ------------------------------------------------------------------------------

_OPERAND = "'(', '-', 'false', 'true', a name, a number, a percentage, a string"


@pytest.mark.parametrize(
    ("text", "message", "hint", "span"),
    [
        ("1 +", f"unexpected end of expression, expected {_OPERAND}", None, (1, 4, 1, 5)),
        ("1 +   \n\n", f"unexpected end of expression, expected {_OPERAND}", None, (1, 4, 1, 5)),
        ("a = b", "unexpected character '='", "use '==' to compare values", (1, 3, 1, 4)),
        ("a && b", "unexpected character '&'", "use 'and' to combine conditions", (1, 3, 1, 4)),
        ("a || b", "unexpected character '|'", "use 'or' to combine conditions", (1, 3, 1, 4)),
        (
            "!a",
            "unexpected character '!'",
            "use 'not' to negate a condition, '!=' to compare",
            (1, 1, 1, 2),
        ),
        ("(1", "unexpected end of expression, expected ')'", None, (1, 3, 1, 4)),
        (
            "'x'",
            "unexpected character '''",
            'strings are written in double quotes, like "long"',
            (1, 1, 1, 2),
        ),
        (  # only what can follow here: no ')' without a '(', no 'else' without an 'if'
            "1 2",
            "unexpected '2', expected '*' or '/', '+' or '-', '.', 'and', 'or', a comparison,"
            " the end of the expression",
            "two values in a row: put an operator between them, like + or >= or and",
            (1, 3, 1, 4),
        ),
        (
            "(a b)",
            "unexpected 'b', expected '(', ')', '*' or '/', '+' or '-', '.', 'and', 'or', a comparison",
            "two values in a row: put an operator between them, like + or >= or and",
            (1, 4, 1, 5),
        ),
        (
            "a ^ 2",
            "unexpected character '^'",
            "there is no power operator; write the product out",
            (1, 3, 1, 4),
        ),
        (
            "a ** 2",
            f"unexpected '*', expected {_OPERAND}",
            "there is no power operator; write the product out",
            (1, 4, 1, 5),
        ),
        (
            "[1]",
            "unexpected character '['",
            "the language has no lists; aggregate over account.positions instead",
            (1, 1, 1, 2),
        ),
        ("a.", "unexpected end of expression, expected a name", None, (1, 3, 1, 4)),
        ("x.1", "unexpected '1', expected a name", None, (1, 3, 1, 4)),
        ("if a then b", "unexpected end of expression, expected 'else'", None, (1, 12, 1, 13)),
        ("x where", "unexpected 'where', expected the end of the expression", None, (1, 3, 1, 8)),
        ("", "expression is empty", None, (1, 1, 1, 2)),
        ("  \n ", "expression is empty", None, (1, 1, 1, 2)),
    ],
)
def test_syntax_error_message_hint_and_span(
    text: str, message: str, hint: str | None, span: tuple[int, int, int, int]
) -> None:
    diagnostic = only_error(text)
    assert diagnostic.code == "E200"
    assert diagnostic.message == message
    assert diagnostic.hint == hint
    assert diagnostic.severity == "error"
    assert where(diagnostic.span) == span


def test_syntax_error_on_later_line_located() -> None:
    diagnostic = only_error("a +\n  (b *\n  )")
    assert diagnostic.message == f"unexpected ')', expected {_OPERAND}"
    assert where(diagnostic.span) == (3, 3, 3, 4)


def test_syntax_error_is_policy_error_and_value_error_with_rendered_message() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression("a = b")
    assert isinstance(info.value, PolicyError)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == (
        "<expr>:1:3: error[E200]: unexpected character '='\n"
        " 1 | a = b\n"
        "   |   ^\n"
        "hint: use '==' to compare values\n"
        "\n"
        "1 error"
    )


# -- limits ---------------------------------------------------------------------------------------


def test_limit_100kb_expression_rejected_fast_as_too_long() -> None:
    text = "1+" * 51_200
    diagnostic = rejected_quickly(text)
    assert diagnostic.code == "E201"
    assert diagnostic.message == f"expression is {len(text)} characters long, the limit is 10000"


def test_limit_expression_at_max_length_accepted() -> None:
    text = "1" + " " * (MAX_LENGTH - 1)
    assert parse_expression(text) == c(1)
    assert only_error(text + " ").code == "E201"


def test_limit_10000_deep_parentheses_rejected_fast() -> None:
    # 20,001 characters: the length limit fires before the nesting check
    diagnostic = rejected_quickly("(" * 10_000 + "1" + ")" * 10_000)
    assert diagnostic.code == "E201"


def test_limit_deepest_parentheses_within_length_rejected_fast_as_too_deep() -> None:
    depth = (MAX_LENGTH - 1) // 2
    diagnostic = rejected_quickly("(" * depth + "1" + ")" * depth)
    assert diagnostic.code == "E202"
    assert diagnostic.message == "expression nests deeper than 100 levels"
    assert diagnostic.hint == "split it into named definitions"


def test_limit_unbalanced_deep_parentheses_rejected_fast_as_too_deep() -> None:
    assert rejected_quickly("(" * 9_000).code == "E202"


def test_limit_parentheses_at_max_depth_accepted() -> None:
    assert parse_expression("(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH) == c(1)
    assert only_error("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1)).code == "E202"


def test_limit_10000_spaced_unary_minus_rejected_fast() -> None:
    # "- - - ... 1" with 10,000 minus signs is 20,001 characters: too long before too deep
    diagnostic = rejected_quickly("- " * 10_000 + "1")
    assert diagnostic.code == "E201"


def test_limit_9999_unary_minus_rejected_fast_as_too_deep() -> None:
    text = "-" * (MAX_LENGTH - 1) + "1"  # exactly MAX_LENGTH characters
    diagnostic = rejected_quickly(text)
    assert diagnostic.code == "E202"
    assert diagnostic.message == "expression nests deeper than 100 levels"


def test_limit_long_not_chain_rejected_fast_as_too_deep() -> None:
    assert rejected_quickly("not " * 2_000 + "a").code == "E202"


def test_limit_long_flat_sum_rejected_fast_as_too_deep() -> None:
    # left-associative chains nest too: 1+1+...+1 is a tree as deep as it is long
    assert rejected_quickly("+".join(["1"] * 4_000)).code == "E202"


def test_limit_unary_minus_at_max_depth_accepted() -> None:
    node = parse_expression("-" * (MAX_DEPTH - 1) + "1")
    for _ in range(MAX_DEPTH - 1):
        assert isinstance(node, Negate)
        node = node.operand
    assert node == c(1)
    assert only_error("-" * MAX_DEPTH + "1").code == "E202"


def test_limit_huge_exponent_rejected_fast_as_bad_number() -> None:
    diagnostic = rejected_quickly("1e999999999")
    assert diagnostic.code == "E203"
    assert diagnostic.message == "exponent in '1e999999999' is out of range, the limit is ±100"
    assert where(diagnostic.span) == (1, 1, 1, 12)


def test_limit_exponent_past_limit_rejected() -> None:
    assert only_error("1e101").code == "E203"
    assert only_error("1e-101").code == "E203"


def test_limit_61_digit_literal_rejected_as_bad_number() -> None:
    diagnostic = only_error("x + " + "1" * 61)
    assert diagnostic.code == "E203"
    assert diagnostic.message == "number has 61 digits, the limit is 60"
    assert where(diagnostic.span) == (1, 5, 1, 66)


def test_limit_61_digit_percent_rejected_as_bad_number() -> None:
    diagnostic = only_error("0." + "1" * 60 + "%")
    assert diagnostic.code == "E203"
    assert diagnostic.message == "number has 61 digits, the limit is 60"


def test_limit_every_bad_number_reported() -> None:
    diagnostics = errors_of("1e999 + f(2e999)")
    assert [(d.code, where(d.span)) for d in diagnostics] == [
        ("E203", (1, 1, 1, 6)),
        ("E203", (1, 11, 1, 16)),
    ]
