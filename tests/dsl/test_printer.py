"""Printer: canonical text with the fewest parentheses; print -> parse gives back the same tree."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.dsl import parse_expression, print_expression
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
from engine.source import SourceFile, Span

DUMMY = Span(SourceFile("<generated>", ""), 1, 1, 1, 1)

KEYWORDS = frozenset(
    {"if", "then", "else", "and", "or", "not", "true", "false", "for", "in", "where"}
)


def shape(node: Any) -> Any:
    """Structure including the Python type of every value (belt and braces: `true == 1` in
    Python, and AST equality only tells them apart because `Const` also compares the type).
    """
    if isinstance(node, tuple):
        return tuple(shape(item) for item in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        fields = [f for f in dataclasses.fields(node) if f.compare]
        return (type(node).__name__, *(shape(getattr(node, f.name)) for f in fields))
    return (type(node).__name__, node)


def assert_round_trip(tree: Expr) -> str:
    text = print_expression(tree)
    parsed = parse_expression(text)
    assert parsed == tree, text
    assert shape(parsed) == shape(tree), text
    assert print_expression(parsed) == text
    return text


# -- examples -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "canonical"),
    [
        ("1 - (2 - 3)", "1 - (2 - 3)"),
        ("(1 - 2) - 3", "1 - 2 - 3"),
        ("((a))", "a"),
        ("1 + 2 * 3", "1 + 2 * 3"),
        ("(1 + 2) * 3", "(1 + 2) * 3"),
        ("a / (b * c)", "a / (b * c)"),
        ("a or (b and c)", "a or b and c"),
        ("(a or b) and c", "(a or b) and c"),
        ("a and (b or c)", "a and (b or c)"),
        ("not (a and b)", "not (a and b)"),
        ("not (a == b)", "not a == b"),
        ("(not a) == b", "(not a) == b"),
        ("(a < b) == c", "(a < b) == c"),
        ("a == (b < c)", "a == (b < c)"),
        ("-(a + b)", "-(a + b)"),
        ("-(a.b)", "-a.b"),
        ("(-a).b", "(-a).b"),
        ("(1 + 2).x", "(1 + 2).x"),
        ("- -1", "--1"),
        ("a - -b", "a - -b"),
        ("-(not a)", "-(not a)"),
        ("(if a then 1 else 2) + 1", "(if a then 1 else 2) + 1"),
        ("if a then 1 else (if b then 2 else 3)", "if a then 1 else if b then 2 else 3"),
        ("if (if a then b else c) then 1 else 2", "if if a then b else c then 1 else 2"),
        ("max(a,b,)", "max(a, b)"),
        ("f( )", "f()"),
        ("lookup(t, x).rate", "lookup(t, x).rate"),
        (
            'sum( p.notional for p in account.positions where p.side=="long" )',
            'sum(p.notional for p in account.positions where p.side == "long")',
        ),
        ("count(p for p in xs).n", "count(p for p in xs).n"),
        ("0.4%", "0.004"),
        ("1_000_000", "1000000"),
        ("1e6", "1000000"),
        ("1.50", "1.5"),
        ("0.000", "0"),
        ("1e-7", "0.0000001"),
        ("1e70", "1E+70"),
        ("1e-100", "1E-100"),
        ('"it (is) # fine"', '"it (is) # fine"'),
        ("true and false", "true and false"),
        ("a  +  # comment\n b", "a + b"),
    ],
)
def test_print_parsed_expression_canonical_and_round_trips(source: str, canonical: str) -> None:
    tree = parse_expression(source)
    assert print_expression(tree) == canonical
    assert_round_trip(tree)


def test_print_deepest_parsable_tree_round_trips() -> None:
    text = "-" * 99 + "1"
    assert assert_round_trip(parse_expression(text)) == text


def test_print_handmade_tree_with_every_node_kind() -> None:
    def name(value: str) -> Name:
        return Name(name=value, span=DUMMY)

    tree = Conditional(
        condition=BoolOp(
            op="or",
            left=Not(
                operand=Compare(op="<=", left=name("a"), right=name("b"), span=DUMMY), span=DUMMY
            ),
            right=Const(value=True, span=DUMMY),
            span=DUMMY,
        ),
        then=Binary(
            op="*",
            left=Negate(
                operand=Attribute(value=name("x"), name="y", span=DUMMY, name_span=DUMMY),
                span=DUMMY,
            ),
            right=Call(
                function="min",
                arguments=(Const(value=Decimal("0.25"), span=DUMMY), name("c")),
                span=DUMMY,
                name_span=DUMMY,
            ),
            span=DUMMY,
        ),
        otherwise=Aggregate(
            function="sum",
            element=Attribute(value=name("p"), name="size", span=DUMMY, name_span=DUMMY),
            variable="p",
            collection=name("xs"),
            condition=Compare(
                op="!=", left=name("p"), right=Const(value="s", span=DUMMY), span=DUMMY
            ),
            span=DUMMY,
            name_span=DUMMY,
            variable_span=DUMMY,
        ),
        span=DUMMY,
    )
    text = assert_round_trip(tree)
    assert text == (
        'if not a <= b or true then -x.y * min(0.25, c) else sum(p.size for p in xs where p != "s")'
    )


def test_print_booleans_not_confused_with_numbers() -> None:
    one = Const(value=Decimal(1), span=DUMMY)
    true = Const(value=True, span=DUMMY)
    assert one != true  # although `True == Decimal(1)` in Python
    assert hash(Const(value=False, span=DUMMY)) != hash(Const(value=Decimal(0), span=DUMMY))
    assert print_expression(one) == "1"
    assert print_expression(true) == "true"
    assert parse_expression("true") != parse_expression("1")
    assert shape(one) != shape(true)


# -- the round-trip property --------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True).filter(
    lambda name: name not in KEYWORDS
)

decimals = st.one_of(
    st.builds(
        lambda digits, exponent: Decimal((0, tuple(int(d) for d in str(digits)), exponent)),
        st.integers(min_value=0, max_value=10**30),
        st.integers(min_value=-30, max_value=30),
    ),
    st.sampled_from(
        [Decimal("1e70"), Decimal("1e-100"), Decimal("1.5e-80"), Decimal("9" * 60), Decimal("0E-9")]
    ),
)

strings = st.text(
    alphabet=st.characters(blacklist_characters='"\\\n', blacklist_categories=("Cs",)),
    max_size=8,
)

constants = st.builds(
    lambda value: Const(value=value, span=DUMMY), st.one_of(decimals, st.booleans(), strings)
)

leaves = st.one_of(constants, st.builds(lambda name: Name(name=name, span=DUMMY), names))


def extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.builds(
            lambda value, name: Attribute(value=value, name=name, span=DUMMY, name_span=DUMMY),
            children,
            names,
        ),
        st.builds(lambda operand: Negate(operand=operand, span=DUMMY), children),
        st.builds(lambda operand: Not(operand=operand, span=DUMMY), children),
        st.builds(
            lambda op, left, right: Binary(op=op, left=left, right=right, span=DUMMY),
            st.sampled_from(["+", "-", "*", "/"]),
            children,
            children,
        ),
        st.builds(
            lambda op, left, right: Compare(op=op, left=left, right=right, span=DUMMY),
            st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
            children,
            children,
        ),
        st.builds(
            lambda op, left, right: BoolOp(op=op, left=left, right=right, span=DUMMY),
            st.sampled_from(["and", "or"]),
            children,
            children,
        ),
        st.builds(
            lambda condition, then, otherwise: Conditional(
                condition=condition, then=then, otherwise=otherwise, span=DUMMY
            ),
            children,
            children,
            children,
        ),
        st.builds(
            lambda function, arguments: Call(
                function=function, arguments=tuple(arguments), span=DUMMY, name_span=DUMMY
            ),
            names,
            st.lists(children, max_size=3),
        ),
        st.builds(
            lambda function, element, variable, collection, condition: Aggregate(
                function=function,
                element=element,
                variable=variable,
                collection=collection,
                condition=condition,
                span=DUMMY,
                name_span=DUMMY,
                variable_span=DUMMY,
            ),
            st.sampled_from(["sum", "min", "max", "count"]),
            children,
            names,
            children,
            st.none() | children,
        ),
    )


trees = st.recursive(leaves, extend, max_leaves=25)


@given(trees)
def test_print_then_parse_gives_same_tree(tree: Expr) -> None:
    text = assert_round_trip(tree)
    root = parse_expression(text)
    assert (root.span.line, root.span.column) == (1, 1)
    assert (root.span.end_line, root.span.end_column) == (1, len(text) + 1)


@given(trees)
def test_print_never_emits_redundant_outer_parentheses(tree: Expr) -> None:
    text = print_expression(tree)
    if text.startswith("(") and text.endswith(")"):
        # only legitimate when the two parentheses do not enclose each other, e.g. "(a) + (b)"
        depth, quoted = 0, False
        for index, char in enumerate(text):
            quoted ^= char == '"'
            depth += char == "(" and not quoted
            depth -= char == ")" and not quoted
            if depth == 0:
                assert index < len(text) - 1, text
                break
