"""Fuzzing the parser: whatever the text, the outcome is a tree or an ExpressionError, nothing else.

Grammar-generated text (hypothesis.extra.lark) explores the language itself; random and
token-soup text explores the error paths.  Every tree that comes out also survives the printer.
"""

from __future__ import annotations

from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.lark import LarkStrategy, from_lark
from lark import Lark
from lark.grammar import NonTerminal, Symbol
from lark.lexer import PatternStr

from engine.dsl import parse_expression, print_expression
from engine.dsl.ast import Expr
from engine.errors import ExpressionError

KEYWORDS = ("if", "then", "else", "and", "or", "not", "true", "false", "for", "in", "where")
PARSER_CODES = {"E200", "E201", "E202", "E203"}


def grammar() -> Lark:
    text = resources.files("engine.dsl").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(text, parser="lalr", start="start")


GRAMMAR = grammar()

# Every terminal gets an explicit strategy: from_regex costs ~2 ms a draw (and NAME's keyword
# lookahead can only be met by filtering), which at ~50 terminals an expression is too slow.
# They cover the same text as the grammar's patterns, Unicode digits included.
letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
identifiers = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(letters),
    st.text(alphabet=letters + "0123456789", max_size=6),
)
names = identifiers.filter(lambda name: name not in KEYWORDS)
digit = st.one_of(st.sampled_from("0123456789"), st.characters(categories=["Nd"]))
digits = st.builds(
    lambda d, rest: d + rest, digit, st.text(alphabet=st.one_of(digit, st.just("_")), max_size=4)
)
ascii_digits = st.text(alphabet="0123456789_", max_size=5).map(lambda rest: "1" + rest)
ascii_fraction = st.one_of(st.just(""), ascii_digits.map(lambda d: "." + d))
fraction = st.one_of(st.just(""), digits.map(lambda d: "." + d))
exponent = st.one_of(
    st.just(""),
    st.builds(
        lambda e, sign, d: e + sign + d,
        st.sampled_from("eE"),
        st.sampled_from(["", "+", "-"]),
        st.text(alphabet="0123456789", min_size=1, max_size=4),
    ),
)


def _literals(grammar: Lark) -> dict[str, st.SearchStrategy[str]]:
    """Keywords and punctuation: terminals that are plain strings."""
    return {
        t.name: st.just(t.pattern.value)
        for t in grammar.terminals
        if isinstance(t.pattern, PatternStr)
    }


TERMINALS: dict[str, st.SearchStrategy[str]] = {
    **_literals(GRAMMAR),
    "NAME": st.one_of(identifiers, st.sampled_from(KEYWORDS)),
    "NUMBER": st.builds(lambda *parts: "".join(parts), digits, fraction, exponent),
    "PERCENT": st.builds(lambda d, f: f"{d}{f}%", digits, fraction),
    "STRING": st.text(alphabet=st.characters(blacklist_characters='"\\\n'), max_size=6).map(
        lambda t: f'"{t}"'
    ),
    "COMPARE_OP": st.sampled_from(["==", "!=", "<=", ">=", "<", ">"]),
    "ADD_OP": st.sampled_from("+-"),
    "MUL_OP": st.sampled_from("*/"),
    "WS": st.text(alphabet=" \t\f\r\n", min_size=1, max_size=3),
    # without a newline, a comment swallows the rest of the text
    "COMMENT": st.builds(
        lambda body, end: f"#{body}{end}",
        st.text(max_size=6).map(lambda t: t.replace("\n", "")),
        st.sampled_from(["\n", ""]),
    ),
}


def outcome(text: str) -> Expr | ExpressionError:
    """Parse: a tree must survive the printer; an error must be located, coded and renderable."""
    try:
        tree = parse_expression(text)
    except ExpressionError as error:
        assert error.diagnostics
        lines = text.count("\n") + 1
        for diagnostic in error.diagnostics:
            assert diagnostic.code in PARSER_CODES, diagnostic
            assert diagnostic.span is not None
            assert 1 <= diagnostic.span.line <= diagnostic.span.end_line <= lines + 1
            assert diagnostic.span.column >= 1
        assert str(error)  # renders with source line and caret
        return error
    assert parse_expression(print_expression(tree)) == tree
    return tree


# -- grammar-generated text ---------------------------------------------------------------------


class BoundedLark(LarkStrategy):
    """`from_lark`'s strategy, made to terminate quickly.

    Drawn uniformly, the grammar's expansions nest without end (through `if` alone an `expr` holds
    1.5 `expr`s on average), so plain `from_lark` mostly overruns hypothesis's buffer and spends
    ~0.1 s on each discarded attempt; and as it lists expansions by length, its simplest `expr`
    is an endless `if`.  Here every rule takes one of its shallower expansions 3 times in 4 (and
    the shallowest past `max_depth`), otherwise any expansion, as `from_lark` would; shallowest
    first, so that shrinking leads to small expressions.
    """

    def __init__(self, grammar: Lark, explicit: dict[str, st.SearchStrategy[str]], max_depth: int):
        super().__init__(grammar, "start", explicit, st.characters(codec="utf-8"))
        _, rules, _ = grammar.grammar.compile(["start"], ())
        expansions: dict[str, list[tuple[Symbol, ...]]] = {}
        for rule in rules:
            expansions.setdefault(rule.origin.name, []).append(tuple(rule.expansion))
        height: dict[str, int] = {}
        while len(height) < len(expansions):  # rules' heights, shallowest rules first
            for name, options in expansions.items():
                known = [h for o in options if (h := self._height(o, height)) is not None]
                if known and name not in height:
                    height[name] = min(known)
        self.any_expansion: dict[str, st.SearchStrategy[tuple[Symbol, ...]]] = {}
        self.shallow_expansion: dict[str, st.SearchStrategy[tuple[Symbol, ...]]] = {}
        self.shallowest_expansion: dict[str, st.SearchStrategy[tuple[Symbol, ...]]] = {}
        for name, options in expansions.items():
            ordered = sorted(options, key=lambda o: (self._height(o, height), len(o)))
            heights = [self._height(o, height) for o in ordered]
            self.any_expansion[name] = st.sampled_from(ordered)
            shallowest = [o for o, h in zip(ordered, heights, strict=True) if h == height[name]]
            # nearly shallowest expansions that do not branch (the shallowest alone would make
            # `postfix` always `NAME()`, never an atom)
            flat = [
                o
                for o, h in zip(ordered, heights, strict=True)
                if h <= height[name] + 1 and sum(isinstance(s, NonTerminal) for s in o) <= 1
            ]
            self.shallow_expansion[name] = st.sampled_from(flat or shallowest)
            self.shallowest_expansion[name] = st.sampled_from(shallowest)
        self.choosy = {name for name in expansions if len(expansions[name]) > 1}
        self.max_depth = max_depth
        self.depth = 0

    @staticmethod
    def _height(expansion: tuple[Symbol, ...], height: dict[str, int]) -> int | None:
        inner = [height.get(s.name) if isinstance(s, NonTerminal) else 0 for s in expansion]
        return None if None in inner else 1 + max(h for h in inner if h is not None)

    def draw_symbol(self, data, symbol, draw_state):  # type: ignore[no-untyped-def]
        if isinstance(symbol, NonTerminal) and symbol.name in self.choosy:
            if self.depth >= self.max_depth:
                self.nonterminal_strategies = self.shallowest_expansion
            elif data.draw(st.integers(0, 3)) < 3:
                self.nonterminal_strategies = self.shallow_expansion
            else:
                self.nonterminal_strategies = self.any_expansion
        self.depth += 1
        try:
            super().draw_symbol(data, symbol, draw_state)
        finally:
            self.depth -= 1


def test_fuzz_from_lark_accepts_the_grammar() -> None:
    # the plain strategy is valid for the grammar, just too slow to draw from by the hundred
    from_lark(GRAMMAR, start="start", explicit={"NAME": names}).validate()


def test_fuzz_grammar_file_builds_lalr_parser_without_conflicts() -> None:
    assert {t.name for t in GRAMMAR.terminals} >= {"NAME", "NUMBER", "PERCENT", "STRING"}


@given(BoundedLark(GRAMMAR, TERMINALS, max_depth=30))
def test_fuzz_grammar_text_parses_or_raises_expression_error(text: str) -> None:
    outcome(text)


def _padded(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return strategy.map(lambda token: f" {token} ")


# Tokens padded with spaces, so that concatenation never merges two of them ("if" "a" -> "ifa"),
# ASCII numbers and comments that end their line: such text is in the language, so only the
# limits may reject it.
_TIDY = {
    **TERMINALS,
    **{name: _padded(literal) for name, literal in _literals(GRAMMAR).items()},
    "NAME": _padded(names),
    "NUMBER": _padded(
        st.builds(lambda *parts: "".join(parts), ascii_digits, ascii_fraction, exponent)
    ),
    "PERCENT": _padded(st.builds(lambda d, f: f"{d}{f}%", ascii_digits, ascii_fraction)),
    "COMMENT": st.just(" # note\n"),
}


@given(BoundedLark(GRAMMAR, _TIDY, max_depth=30))
def test_fuzz_tidy_grammar_text_never_a_syntax_error(text: str) -> None:
    result = outcome(text)
    if isinstance(result, ExpressionError):
        codes = {d.code for d in result.diagnostics}
        assert codes <= {"E201", "E202", "E203"}, (text, result.diagnostics)


# -- random text ----------------------------------------------------------------------------------


@given(st.text(max_size=200))
def test_fuzz_random_text_parses_or_raises_expression_error(text: str) -> None:
    outcome(text)


@given(st.text(alphabet="()+-*/<>=!&|^'.,\"%#_ \n\t0123456789eE abcdfilnorstw", max_size=80))
def test_fuzz_language_characters_parse_or_raise_expression_error(text: str) -> None:
    outcome(text)


_SOUP = st.sampled_from(
    [
        *KEYWORDS,
        "(",
        ")",
        ",",
        ".",
        "+",
        "-",
        "*",
        "/",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "=",
        "**",
        "a",
        "p",
        "sum",
        "min",
        "round",
        "lookup",
        "position",
        "0",
        "1.5",
        "2%",
        "1e3",
        "1e999",
        '"long"',
        '"',
        "#",
        "\n",
    ]
)


@given(st.lists(_SOUP, max_size=30), st.sampled_from([" ", ""]))
def test_fuzz_token_soup_parses_or_raises_expression_error(tokens: list[str], sep: str) -> None:
    outcome(sep.join(tokens))


@given(st.data())
def test_fuzz_mutated_valid_expression_parses_or_raises_expression_error(
    data: st.DataObject,
) -> None:
    text = data.draw(
        st.sampled_from(
            [
                'sum(p.notional for p in account.positions where p.side == "long") > 0',
                'if a and not b then round(x * 0.4%, 0.01, "half_up") else -lookup(t, y).rate',
                "min(a, max(b, c),) / (1_000 - 2e3) >= abs(-d)",
            ]
        )
    )
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        index = data.draw(st.integers(min_value=0, max_value=len(text)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        char = data.draw(st.sampled_from('()",.%#-+*/<=>!abn01e \n'))
        if action == "insert":
            text = text[:index] + char + text[index:]
        elif action == "delete":
            text = text[:index] + text[index + 1 :]
        else:
            text = text[:index] + char + text[index + 1 :]
    outcome(text)


@pytest.mark.parametrize(
    "text",
    [
        "\x00",
        "\ufeff1",
        "١٢",  # Unicode decimal digits are digits to Python's regular expressions
        "1 +\r\n2",
        '"unterminated',
        "#only a comment",
        "f(" * 60,
        ")" * 200,
        "a." * 3000,
        "1" * 9_000,
        "%",
        "1%%",
        "1e",
        "1_",
        "_",
        "a.b.c(1)",
        "sum(x for y)",
    ],
)
def test_fuzz_odd_inputs_parse_or_raise_expression_error(text: str) -> None:
    outcome(text)
