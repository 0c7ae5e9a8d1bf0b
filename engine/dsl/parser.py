"""Text → AST.  Limits are checked before any recursive pass; lark trees never leave this module."""

from __future__ import annotations

import decimal
import functools
from collections.abc import Callable
from decimal import Decimal
from importlib import resources
from typing import Any

import lark
from lark import Lark, Token, Transformer, Tree, v_args

from engine.dsl import ast
from engine.errors import ExpressionError
from engine.numbers import MAX_DIGITS, NumberSyntaxError, parse_decimal
from engine.source import Diagnostic, SourceFile, Span

MAX_LENGTH = 10_000
MAX_DEPTH = 100

Locate = Callable[[int, int], "tuple[int, int] | None"]

_TERMINAL_NAMES = {
    "NAME": "a name",
    "NUMBER": "a number",
    "PERCENT": "a percentage",
    "STRING": "a string",
    "COMPARE_OP": "a comparison",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*' or '/'",
    "$END": "the end of the expression",
}

_VALUE_STARTS = frozenset({"NAME", "NUMBER", "PERCENT", "STRING", "TRUE", "FALSE", "IF", "NOT"})

_MISTAKES = {
    "=": "use '==' to compare values",
    "&": "use 'and' to combine conditions",
    "|": "use 'or' to combine conditions",
    "!": "use 'not' to negate a condition, '!=' to compare",
    "'": 'strings are written in double quotes, like "long"',
    "[": "the language has no lists; aggregate over account.positions instead",
    "{": "the language has no maps or blocks",
    "^": "there is no power operator; write the product out",
    "**": "there is no power operator; write the product out",
}


@functools.cache
def _parser() -> Lark:
    grammar = resources.files("engine.dsl").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
        start="start",
    )


class _Spans:
    """Builds spans in the coordinates of the file the expression came from."""

    def __init__(self, source: SourceFile, locate: Locate | None, fallback: Span | None) -> None:
        self.source = source
        self.locate = locate
        self.fallback = fallback

    def make(self, line: int, column: int, end_line: int, end_column: int) -> Span:
        if self.locate is None:
            return Span(self.source, line, column, end_line, end_column)
        start = self.locate(line, column)
        end = self.locate(end_line, end_column)
        if start is None or end is None:
            return self.fallback or Span(self.source, 1, 1, 1, 2)
        return Span(self.source, start[0], start[1], end[0], end[1])

    def of_meta(self, meta: Any) -> Span:
        return self.make(meta.line, meta.column, meta.end_line, meta.end_column)

    def of_token(self, token: Token) -> Span:
        assert token.line is not None and token.column is not None
        end_line = token.end_line if token.end_line is not None else token.line
        end_column = token.end_column if token.end_column is not None else token.column + 1
        return self.make(token.line, token.column, end_line, end_column)


@v_args(meta=True)
class _ToAst(Transformer[Token, ast.Expr]):
    """Lowers the parse tree; never raises (errors in callbacks would come out wrapped)."""

    def __init__(self, spans: _Spans) -> None:
        super().__init__()
        self.spans = spans
        self.bad_numbers: list[tuple[Token, str]] = []

    def _number(self, token: Token, text: str, scale: Decimal | None) -> ast.Const:
        try:
            value = parse_decimal(text)
        except NumberSyntaxError as error:
            self.bad_numbers.append((token, str(error)))
            value = Decimal(0)
        if scale is not None:  # exact: scaleb rounds to the context, <= MAX_DIGITS digits fit
            value = value.scaleb(-2, context=decimal.Context(prec=MAX_DIGITS))
        return ast.Const(value=value, span=self.spans.of_token(token))

    def number(self, meta: Any, children: list[Token]) -> ast.Expr:
        return self._number(children[0], str(children[0]), None)

    def percent(self, meta: Any, children: list[Token]) -> ast.Expr:
        return self._number(children[0], str(children[0])[:-1], Decimal(100))

    def string(self, meta: Any, children: list[Token]) -> ast.Expr:
        return ast.Const(value=str(children[0])[1:-1], span=self.spans.of_token(children[0]))

    def true(self, meta: Any, children: list[Token]) -> ast.Expr:
        return ast.Const(value=True, span=self.spans.of_meta(meta))

    def false(self, meta: Any, children: list[Token]) -> ast.Expr:
        return ast.Const(value=False, span=self.spans.of_meta(meta))

    def name(self, meta: Any, children: list[Token]) -> ast.Expr:
        return ast.Name(name=str(children[0]), span=self.spans.of_token(children[0]))

    def attribute(self, meta: Any, children: list[Any]) -> ast.Expr:
        value, token = children
        return ast.Attribute(
            value=value,
            name=str(token),
            span=self.spans.of_meta(meta),
            name_span=self.spans.of_token(token),
        )

    def negate(self, meta: Any, children: list[Any]) -> ast.Expr:
        return ast.Negate(operand=children[0], span=self.spans.of_meta(meta))

    def not_op(self, meta: Any, children: list[Any]) -> ast.Expr:
        return ast.Not(operand=children[0], span=self.spans.of_meta(meta))

    def binary(self, meta: Any, children: list[Any]) -> ast.Expr:
        left, op, right = children
        return ast.Binary(op=str(op), left=left, right=right, span=self.spans.of_meta(meta))  # type: ignore[arg-type]  # grammar restricts the token to the operator literal

    def compare(self, meta: Any, children: list[Any]) -> ast.Expr:
        left, op, right = children
        return ast.Compare(op=str(op), left=left, right=right, span=self.spans.of_meta(meta))  # type: ignore[arg-type]  # grammar restricts the token to the operator literal

    def and_op(self, meta: Any, children: list[Any]) -> ast.Expr:
        return ast.BoolOp(
            op="and", left=children[0], right=children[1], span=self.spans.of_meta(meta)
        )

    def or_op(self, meta: Any, children: list[Any]) -> ast.Expr:
        return ast.BoolOp(
            op="or", left=children[0], right=children[1], span=self.spans.of_meta(meta)
        )

    def conditional(self, meta: Any, children: list[Any]) -> ast.Expr:
        condition, then, otherwise = children
        return ast.Conditional(
            condition=condition, then=then, otherwise=otherwise, span=self.spans.of_meta(meta)
        )

    def arguments(self, meta: Any, children: list[Any]) -> tuple[ast.Expr, ...]:
        return tuple(child for child in children if child is not None)

    def call(self, meta: Any, children: list[Any]) -> ast.Expr:
        token, arguments = children
        return ast.Call(
            function=str(token),
            arguments=arguments or (),
            span=self.spans.of_meta(meta),
            name_span=self.spans.of_token(token),
        )

    def aggregate(self, meta: Any, children: list[Any]) -> ast.Expr:
        token, element, variable, collection, condition = children
        return ast.Aggregate(
            function=str(token),  # type: ignore[arg-type]  # checked against the aggregate table by check.py
            element=element,
            variable=str(variable),
            collection=collection,
            condition=condition,
            span=self.spans.of_meta(meta),
            name_span=self.spans.of_token(token),
            variable_span=self.spans.of_token(variable),
        )


def _depth_of_parens(text: str) -> int:
    depth = deepest = 0
    in_string = False
    for char in text:
        if char == '"':
            in_string = not in_string
        elif not in_string and char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif not in_string and char == ")":
            depth -= 1
    return deepest


def _tree_depth(tree: Tree[Token]) -> int:
    deepest = 0
    stack: list[tuple[Tree[Token], int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return deepest


def _acceptable(error: lark.exceptions.UnexpectedToken) -> set[str]:
    interactive = getattr(error, "interactive_parser", None)
    if interactive is not None:
        try:
            return set(interactive.accepts())
        except Exception:  # a courtesy for the message; fall back to LALR's expected set
            pass
    return set(error.expected)


def _describe_expected(expected: set[str]) -> str:
    parser = _parser()
    names = []
    for name in sorted(expected):
        if name in _TERMINAL_NAMES:
            names.append(_TERMINAL_NAMES[name])
            continue
        try:
            pattern = parser.get_terminal(name).pattern
        except KeyError:
            names.append(name.lower())
            continue
        names.append(f"'{pattern.value}'")
    unique = sorted(set(names))
    if len(unique) > 8:
        return ", ".join(unique[:8]) + ", ..."
    return ", ".join(unique)


def _syntax_diagnostic(
    error: lark.exceptions.UnexpectedInput, text: str, spans: _Spans
) -> Diagnostic:
    line = getattr(error, "line", 1)
    column = getattr(error, "column", 1)
    line = line if isinstance(line, int) and line > 0 else 1
    column = column if isinstance(column, int) and column > 0 else 1
    hint: str | None = None
    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        offset = error.pos_in_stream or 0
        found = text[offset : offset + 2] if text[offset : offset + 2] == "**" else text[offset]
        message = f"unexpected character '{found}'"
        hint = _MISTAKES.get(found)
        span = spans.make(line, column, line, column + len(found))
    elif isinstance(error, lark.exceptions.UnexpectedToken):
        token = error.token
        # What the parser would accept here, tried token by token; LALR's own `expected` also
        # lists tokens valid only in other contexts (a ')' with no '(' open, 'else', ...).
        acceptable = _acceptable(error)
        expected = _describe_expected(acceptable)
        if token.type == "$END":
            message = f"unexpected end of expression, expected {expected}"
            end_line, end_column = _end_position(text)
            span = spans.make(end_line, end_column, end_line, end_column + 1)
        else:
            message = f"unexpected '{token}', expected {expected}"
            span = spans.of_token(token)
            if token.type in _VALUE_STARTS and "ADD_OP" in acceptable:
                hint = "two values in a row: put an operator between them, like + or >= or and"
            elif str(token) == "=":
                hint = _MISTAKES["="]
            elif str(token) == "*" and text[: token.start_pos or 0].endswith("*"):
                hint = _MISTAKES["**"]
    else:  # UnexpectedEOF
        message = "unexpected end of expression"
        end_line, end_column = _end_position(text)
        span = spans.make(end_line, end_column, end_line, end_column + 1)
    return Diagnostic(code="E200", message=message, span=span, hint=hint)


def _end_position(text: str) -> tuple[int, int]:
    stripped = text.rstrip()
    lines = stripped.split("\n")
    return len(lines), len(lines[-1]) + 1


def _too_deep(whole: Span) -> ExpressionError:
    return ExpressionError(
        diagnostics=[
            Diagnostic(
                "E202",
                f"expression nests deeper than {MAX_DEPTH} levels",
                whole,
                hint="split it into named definitions",
            )
        ]
    )


def parse_expression(
    text: str,
    *,
    source: SourceFile | None = None,
    locate: Locate | None = None,
    fallback: Span | None = None,
) -> ast.Expr:
    """Parse one expression.

    Without `source`, positions refer to the expression text itself (path ``<expr>``).  With a
    `source` and a `locate` function, positions are mapped into that file (a policy's YAML).
    Raises :class:`ExpressionError` with every syntax problem located.
    """
    source = source or SourceFile("<expr>", text)
    spans = _Spans(source, locate, fallback)
    whole = fallback or spans.make(1, 1, 1, 2)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            diagnostics=[
                Diagnostic(
                    "E201",
                    f"expression is {len(text)} characters long, the limit is {MAX_LENGTH}",
                    whole,
                )
            ]
        )
    if not text.strip():
        raise ExpressionError(diagnostics=[Diagnostic("E200", "expression is empty", whole)])
    if _depth_of_parens(text) > MAX_DEPTH:
        raise _too_deep(whole)
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedInput as error:
        raise ExpressionError(diagnostics=[_syntax_diagnostic(error, text, spans)]) from None
    if _tree_depth(tree) > MAX_DEPTH:
        raise _too_deep(whole)
    if not isinstance(tree, Tree):  # a lone atom is still wrapped by the `number` etc. aliases
        raise AssertionError("parser returned a token")
    transformer = _ToAst(spans)
    result = transformer.transform(tree)
    if transformer.bad_numbers:
        raise ExpressionError(
            diagnostics=[
                Diagnostic("E203", message, spans.of_token(token))
                for token, message in transformer.bad_numbers
            ]
        )
    return result
