#!/usr/bin/env python
"""How fast do policy expressions evaluate?  A benchmark run by hand, never a test.

    python benchmarks/dsl_eval.py [--quick] [--markdown] [--source] [--clock {wall,cpu}]

Four realistic expressions, each evaluated by every contender against the same inputs:

  (a) trigger     maintenance margin / margin balance >= 1, written inline (no definitions)
  (b) tier MM     notional * lookup(market.tiers, notional).maintenance_margin_rate
                  - lookup(market.tiers, notional).maintenance_amount   (12-row bracket table)
  (c) fee         taker fee plus a surcharge under two conditions (a fast move or a thin book)
  (d) sum(10)     sum(p.size * (market.mark_price - p.entry_price) for p in account.positions)

(b) and (c) use one definition, `notional = abs(position.size) * market.mark_price`.  liqpolicy
memoizes definitions in `frame.cache`, so every timing loop clears the frame's cache before each
evaluation, for every contender alike; engines without definitions evaluate `notional` first
and pass it in as a variable on every evaluation (how one would use them).

Contenders (times are µs per evaluation, the median of several timeit-style repeats; the ratio
is against hand-written Python on Decimal, measured in the same run and the same context):

  hand-written            plain Python on Decimal, what a person would write for each rule
  liqpolicy compiled .fast the generated function, inside one decimal.localcontext per loop
  liqpolicy compiled call  CompiledExpression.__call__: enters the context on every call
  liqpolicy reference     the tree-walking reference evaluator
  rule-engine, simpleeval, cel-python (interpreted and CompiledRunner), if installed

Third-party engines are benchmark-only dependencies (benchmarks/requirements.txt); run them in a
separate virtual environment, see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import ast as pyast
import bisect
import datetime
import decimal
import gc
import os
import platform
import statistics
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import metadata
from itertools import pairwise, repeat
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing it

from engine.dsl import (  # noqa: E402
    Definitions,
    Scope,
    Table,
    check_expression,
    compile_program,
    evaluate_reference,
    frame,
    parse_expression,
)
from engine.dsl.table import interval_problems  # noqa: E402
from engine.dsl.types import (  # noqa: E402
    BOOL,
    NUMBER,
    STRING,
    ListType,
    RecordType,
    TableKey,
    TableType,
)
from engine.numbers import DECIMAL_CONTEXT  # noqa: E402

D = Decimal
ZERO = D(0)
ONE = D(1)

TARGET = "liqpolicy compiled (.fast) <= 2x hand-written, and >= 20x faster than rule-engine"

# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

# Binance-like USDT-M brackets: (min_notional, max_notional, maintenance_margin_rate,
# maintenance_amount).  The amounts make the maintenance margin continuous at every bound.
BRACKETS: tuple[tuple[str, str, str, str], ...] = (
    ("0", "50000", "0.004", "0"),
    ("50000", "600000", "0.005", "50"),
    ("600000", "3000000", "0.0065", "950"),
    ("3000000", "12000000", "0.01", "11450"),
    ("12000000", "70000000", "0.02", "131450"),
    ("70000000", "100000000", "0.025", "481450"),
    ("100000000", "230000000", "0.05", "2981450"),
    ("230000000", "480000000", "0.1", "14481450"),
    ("480000000", "600000000", "0.125", "26481450"),
    ("600000000", "800000000", "0.15", "41481450"),
    ("800000000", "1200000000", "0.25", "121481450"),
    ("1200000000", "1800000000", "0.5", "421481450"),
)

TIER_ROW = RecordType(
    "tier",
    {
        "min_notional": NUMBER,
        "max_notional": NUMBER,
        "maintenance_margin_rate": NUMBER,
        "maintenance_amount": NUMBER,
    },
)
TIER_TABLE_TYPE = TableType(
    "btcusdt_brackets", (TableKey("notional", "interval", NUMBER),), TIER_ROW
)
POSITION = RecordType(
    "position", {"symbol": STRING, "size": NUMBER, "entry_price": NUMBER}, with_definitions=True
)
ACCOUNT = RecordType("account", {"wallet_balance": NUMBER, "positions": ListType(POSITION)})
MARKET = RecordType(
    "market",
    {
        "mark_price": NUMBER,
        "previous_mark_price": NUMBER,
        "book_depth": NUMBER,
        "average_book_depth": NUMBER,
        "maintenance_margin_rate": NUMBER,
        "tiers": TIER_TABLE_TYPE,
    },
)
SCOPE = Scope(
    roots={"position": POSITION, "account": ACCOUNT, "market": MARKET},
    definitions={"notional": NUMBER},
)


def make_table() -> Table:
    rows = tuple(
        {
            "min_notional": D(low),
            "max_notional": D(high),
            "maintenance_margin_rate": D(rate),
            "maintenance_amount": D(amount),
        }
        for low, high, rate, amount in BRACKETS
    )
    problems = interval_problems(TIER_TABLE_TYPE, rows)
    assert not problems, problems
    for before, after in pairwise(rows):  # continuity of the margin at bounds
        bound = after["min_notional"]
        left = bound * before["maintenance_margin_rate"] - before["maintenance_amount"]
        right = bound * after["maintenance_margin_rate"] - after["maintenance_amount"]
        assert left == right, (bound, left, right)
    return Table(TIER_TABLE_TYPE, rows)


def make_inputs() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """One 25 BTC long (notional 1.45M: the third bracket) in a 10-position account."""
    position = {"symbol": "BTCUSDT", "size": D("25"), "entry_price": D("60000")}
    others = [
        {"symbol": "BTCUSDT", "size": D(size), "entry_price": D(entry)}
        for size, entry in (
            ("-3.5", "61250.5"),
            ("0.75", "57010"),
            ("12", "59999.9"),
            ("-0.002", "58500"),
            ("4.25", "60500.25"),
            ("-7", "57800"),
            ("1", "56000"),
            ("2.5", "62000.75"),
            ("-0.4", "58250"),
        )
    ]
    account = {"wallet_balance": D("100000"), "positions": [position, *others]}
    market = {
        "mark_price": D("58000"),
        "previous_mark_price": D("58100"),  # a 0.17% move: the first surcharge condition fails
        "book_depth": D("2000000"),  # below 0.3 x average: the second one holds
        "average_book_depth": D("8000000"),
        "maintenance_margin_rate": D("0.005"),
        "tiers": make_table(),
    }
    assert len(account["positions"]) == 10
    return position, account, market


# --------------------------------------------------------------------------------------------
# The expressions, as each engine spells them
# --------------------------------------------------------------------------------------------

CASES = ("trigger", "tier_mm", "fee", "sum10")
TITLES = {
    "trigger": "(a) trigger",
    "tier_mm": "(b) tier MM",
    "fee": "(c) fee",
    "sum10": "(d) sum(10)",
}
USES_NOTIONAL = {"trigger": False, "tier_mm": True, "fee": True, "sum10": False}

LIQPOLICY_DEFINITIONS = {"notional": "abs(position.size) * market.mark_price"}
LIQPOLICY = {
    "trigger": (
        "abs(position.size) * market.mark_price * market.maintenance_margin_rate"
        " / (account.wallet_balance + (market.mark_price - position.entry_price) * position.size)"
        " >= 1"
    ),
    "tier_mm": (
        "notional * lookup(market.tiers, notional).maintenance_margin_rate"
        " - lookup(market.tiers, notional).maintenance_amount"
    ),
    "fee": (
        "notional * 0.0005 + (if abs(market.mark_price - market.previous_mark_price)"
        " / market.previous_mark_price > 0.005"
        " or market.book_depth < 0.3 * market.average_book_depth"
        " then notional * 0.0002 else 0)"
    ),
    "sum10": "sum(p.size * (market.mark_price - p.entry_price) for p in account.positions)",
}


def bracket_chain(ternary: Callable[[str, str, str], str], number: Callable[[str], str]) -> str:
    """The tier lookup as nested conditionals on the upper bounds (notional is never negative).

    The last bracket is taken for anything above 1.2e9; liqpolicy's lookup fails past 1.8e9.
    """
    text = f"notional * {number(BRACKETS[-1][2])} - {number(BRACKETS[-1][3])}"
    for _, high, rate, amount in reversed(BRACKETS[:-1]):
        branch = f"notional * {number(rate)} - {number(amount)}"
        text = ternary(f"notional < {number(high)}", branch, text)
    return text


RULE_ENGINE_DEFINITIONS = {"notional": "$abs(position['size']) * market['mark_price']"}
RULE_ENGINE = {
    "trigger": (
        "$abs(position['size']) * market['mark_price'] * market['maintenance_margin_rate']"
        " / (account['wallet_balance'] + (market['mark_price'] - position['entry_price'])"
        " * position['size']) >= 1"
    ),
    "tier_mm": bracket_chain(lambda c, t, e: f"({c} ? {t} : ({e}))", str),
    "fee": (
        "notional * 0.0005 + ((($abs(market['mark_price'] - market['previous_mark_price'])"
        " / market['previous_mark_price'] > 0.005) or (market['book_depth']"
        " < 0.3 * market['average_book_depth'])) ? notional * 0.0002 : 0)"
    ),
    "sum10": (
        "$sum([p['size'] * (market['mark_price'] - p['entry_price'])"
        " for p in account['positions']])"
    ),
}

SIMPLEEVAL_DEFINITIONS = {"notional": "abs(position['size']) * market['mark_price']"}
SIMPLEEVAL = {
    "trigger": (
        "abs(position['size']) * market['mark_price'] * market['maintenance_margin_rate']"
        " / (account['wallet_balance'] + (market['mark_price'] - position['entry_price'])"
        " * position['size']) >= 1"
    ),
    "tier_mm": (
        "notional * lookup(market['tiers'], notional)['maintenance_margin_rate']"
        " - lookup(market['tiers'], notional)['maintenance_amount']"
    ),
    "fee": (
        "notional * 0.0005 + (notional * 0.0002"
        " if abs(market['mark_price'] - market['previous_mark_price'])"
        " / market['previous_mark_price'] > 0.005"
        " or market['book_depth'] < 0.3 * market['average_book_depth'] else 0)"
    ),
    "sum10": (
        "sum(p['size'] * (market['mark_price'] - p['entry_price']) for p in account['positions'])"
    ),
}


def _cel_number(text: str) -> str:
    return text if "." in text else text + ".0"  # CEL has no int/double mixing: write doubles


CEL_DEFINITIONS = {"notional": "abs(position.size) * market.mark_price"}
CEL = {
    "trigger": (
        "abs(position.size) * market.mark_price * market.maintenance_margin_rate"
        " / (account.wallet_balance + (market.mark_price - position.entry_price)"
        " * position.size) >= 1.0"
    ),
    "tier_mm": bracket_chain(lambda c, t, e: f"({c} ? {t} : ({e}))", _cel_number),
    "fee": (
        "notional * 0.0005 + (abs(market.mark_price - market.previous_mark_price)"
        " / market.previous_mark_price > 0.005"
        " || market.book_depth < 0.3 * market.average_book_depth ? notional * 0.0002 : 0.0)"
    ),
    "sum10": "sum(account.positions.map(p, p.size * (market.mark_price - p.entry_price)))",
}


# --------------------------------------------------------------------------------------------
# Hand-written Python on Decimal: the baseline
# --------------------------------------------------------------------------------------------

_LOWS = tuple(D(low) for low, _, _, _ in BRACKETS)
_HIGHS = tuple(D(high) for _, high, _, _ in BRACKETS)
_RATES_AMOUNTS = tuple((D(rate), D(amount)) for _, _, rate, amount in BRACKETS)
_FEE, _SURCHARGE, _MOVE, _THIN = D("0.0005"), D("0.0002"), D("0.005"), D("0.3")


def hand_trigger(F: Any) -> bool:
    position, market = F.position, F.market
    mark, size = market["mark_price"], position["size"]
    maintenance = abs(size) * mark * market["maintenance_margin_rate"]
    balance = F.account["wallet_balance"] + (mark - position["entry_price"]) * size
    return maintenance / balance >= ONE


def hand_tier_mm(F: Any) -> Decimal:
    notional = abs(F.position["size"]) * F.market["mark_price"]
    index = bisect.bisect_right(_LOWS, notional) - 1
    if index < 0 or notional >= _HIGHS[index]:
        raise ValueError(f"notional {notional} is outside the brackets")
    rate, amount = _RATES_AMOUNTS[index]
    return notional * rate - amount


def hand_fee(F: Any) -> Decimal:
    market = F.market
    mark, previous = market["mark_price"], market["previous_mark_price"]
    notional = abs(F.position["size"]) * mark
    fee = notional * _FEE
    moved = abs(mark - previous) / previous > _MOVE
    if moved or market["book_depth"] < _THIN * market["average_book_depth"]:
        return fee + notional * _SURCHARGE
    return fee


def hand_sum10(F: Any) -> Decimal:
    mark = F.market["mark_price"]
    total = ZERO
    for p in F.account["positions"]:
        total += p["size"] * (mark - p["entry_price"])
    return total


HAND = {"trigger": hand_trigger, "tier_mm": hand_tier_mm, "fee": hand_fee, "sum10": hand_sum10}


# --------------------------------------------------------------------------------------------
# Contenders
# --------------------------------------------------------------------------------------------


class NotInstalled(Exception):
    pass


@dataclass
class Prepared:
    """One contender ready on one expression: `call(F)` evaluates once."""

    call: Callable[[Any], Any]
    in_context: bool  # whether the timing loop runs inside localcontext(DECIMAL_CONTEXT)


@dataclass
class Contender:
    name: str
    number: str  # what numbers the engine computes with
    prepare: Callable[[str], Prepared]
    notes: list[str] = field(default_factory=list)
    version: str = ""


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        if dist == "liqpolicy":  # run from a checkout that is not installed
            from engine._version import __version__

            return __version__
        return ""


class Liqpolicy:
    """Parses, checks and compiles every case once; the contenders share the program."""

    def __init__(self) -> None:
        self.definitions: dict[str, tuple[Any, Any]] = {}
        self.expressions: dict[str, tuple[Any, Any]] = {}
        resolved: set[int] = set()
        for name, text in LIQPOLICY_DEFINITIONS.items():
            expr = parse_expression(text)
            checked = check_expression(expr, SCOPE)
            assert not checked.diagnostics, checked.diagnostics
            resolved |= checked.definition_attributes
            self.definitions[name] = (expr, checked.type)
        for name, text in LIQPOLICY.items():
            expr = parse_expression(text)
            checked = check_expression(expr, SCOPE, expected=BOOL if name == "trigger" else NUMBER)
            assert not checked.diagnostics, checked.diagnostics
            resolved |= checked.definition_attributes
            self.expressions[name] = (expr, checked.type)
        self.resolved = frozenset(resolved)
        self.program = compile_program(self.definitions, self.expressions, self.resolved)
        self.reference_definitions = Definitions(
            {name: expr for name, (expr, _) in self.definitions.items()}, self.resolved
        )

    def fast(self, case: str) -> Prepared:
        return Prepared(self.program.expressions[case].fast, in_context=True)

    def call(self, case: str) -> Prepared:
        return Prepared(self.program.expressions[case], in_context=False)

    def reference(self, case: str) -> Prepared:
        expr = self.expressions[case][0]
        definitions = self.reference_definitions

        def run(F: Any) -> Any:
            return evaluate_reference(expr, F, definitions)

        return Prepared(run, in_context=False)


def rule_engine_contender() -> Contender:
    try:
        import rule_engine  # optional, benchmark-only
    except ImportError:
        raise NotInstalled from None

    def prepare(case: str) -> Prepared:
        definitions = [
            (name, rule_engine.Rule(text))
            for name, text in RULE_ENGINE_DEFINITIONS.items()
            if USES_NOTIONAL[case]
        ]
        rule = rule_engine.Rule(RULE_ENGINE[case])

        def run(F: Any) -> Any:
            thing = {"position": F.position, "account": F.account, "market": F.market}
            for name, definition in definitions:
                thing[name] = definition.evaluate(thing)
            return rule.evaluate(thing)

        return Prepared(run, in_context=True)

    return Contender(
        "rule-engine",
        "Decimal",
        prepare,
        [
            "rule-engine: Decimal inputs, computes in Decimal (its FLOAT type is decimal.Decimal);"
            " mappings read as m['key'] (v5 default); (b) as a chain of 12 nested ?: on the"
            " upper bounds (no table lookup); `notional` evaluated as a separate rule first",
        ],
        _version("rule-engine"),
    )


class _DecimalLiterals(pyast.NodeTransformer):
    """simpleeval parses `0.0005` as a float; rewrite float literals to Decimal once, at parse."""

    def visit_Constant(self, node: pyast.Constant) -> pyast.Constant:
        if isinstance(node.value, float):
            return pyast.copy_location(pyast.Constant(D(repr(node.value))), node)
        return node


def simpleeval_contender() -> Contender:
    try:
        import simpleeval  # optional, benchmark-only
    except ImportError:
        raise NotInstalled from None

    def lookup(table: Table, *keys: Any) -> Any:
        return table.lookup(keys)

    def parse(text: str) -> Any:
        return _DecimalLiterals().visit(simpleeval.SimpleEval.parse(text))

    def prepare(case: str) -> Prepared:
        functions = {"abs": abs, "lookup": lookup, "sum": sum}
        evaluator_class = (
            simpleeval.EvalWithCompoundTypes if case == "sum10" else simpleeval.SimpleEval
        )
        evaluator = evaluator_class(functions=functions, names={})
        text = SIMPLEEVAL[case]
        tree = parse(text)
        definitions = [
            (name, definition_text, parse(definition_text))
            for name, definition_text in SIMPLEEVAL_DEFINITIONS.items()
            if USES_NOTIONAL[case]
        ]

        def run(F: Any) -> Any:
            names = {"position": F.position, "account": F.account, "market": F.market}
            evaluator.names = names
            for name, definition_text, definition_tree in definitions:
                names[name] = evaluator.eval(definition_text, previously_parsed=definition_tree)
            return evaluator.eval(text, previously_parsed=tree)

        return Prepared(run, in_context=True)

    return Contender(
        "simpleeval",
        "Decimal",
        prepare,
        [
            "simpleeval: Decimal inputs; float literals rewritten to Decimal once at parse time;"
            " m['key'] subscripts (attribute syntax would go through a failing getattr);"
            " (b) with `lookup` registered as a Python function calling the same Table.lookup;"
            " (d) with EvalWithCompoundTypes (generator expressions); `notional` evaluated first",
        ],
        _version("simpleeval"),
    )


def _to_float(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _to_float(item) for key, item in value.items() if key != "tiers"}
    if isinstance(value, list):
        return [_to_float(item) for item in value]
    return value


def cel_contenders() -> list[Contender]:
    try:
        import celpy  # optional, benchmark-only
        import celpy.evaluation
        from celpy import celtypes
        from celpy.adapter import json_to_cel
    except ImportError:
        raise NotInstalled from None

    def cel_abs(value: Any) -> Any:
        return celtypes.DoubleType(abs(value))

    def cel_sum(values: Any) -> Any:
        return celtypes.DoubleType(sum(values, 0.0))

    # cel-python 0.5's CompiledRunner writes a custom function as `<module>.<qualname>` and runs
    # the transpiled code in celpy.evaluation's globals, where a function defined in a script
    # (module __main__) cannot be reached: publish the two helpers there under a module name.
    helpers = types.SimpleNamespace(abs=cel_abs, sum=cel_sum)
    for name, function in (("abs", cel_abs), ("sum", cel_sum)):
        function.__module__ = "_liqpolicy_bench"
        function.__qualname__ = name
    celpy.evaluation.__dict__["_liqpolicy_bench"] = helpers
    functions = {"abs": cel_abs, "sum": cel_sum}

    # The CEL parser is cached per process with the tree class of the first Environment, and
    # the CompiledRunner needs its own tree class: build the compiled environment first.
    environments = {
        "compiled": celpy.Environment(runner_class=celpy.CompiledRunner),
        "interpreted": celpy.Environment(runner_class=celpy.InterpretedRunner),
    }
    converted: dict[int, Any] = {}

    def cel_inputs(F: Any) -> tuple[Any, Any, Any]:
        key = id(F)
        if key not in converted:  # converted once, outside the timing loop
            converted[key] = (
                json_to_cel(_to_float(F.position)),
                json_to_cel(_to_float(F.account)),
                json_to_cel(_to_float(F.market)),
            )
        return converted[key]

    def make(kind: str) -> Callable[[str], Prepared]:
        environment = environments[kind]

        def program(text: str) -> Any:
            return environment.program(environment.compile(text), functions=functions)

        def prepare(case: str) -> Prepared:
            main = program(CEL[case])
            definitions = [
                (name, program(text))
                for name, text in CEL_DEFINITIONS.items()
                if USES_NOTIONAL[case]
            ]

            def run(F: Any) -> Any:
                position, account, market = cel_inputs(F)
                activation = {"position": position, "account": account, "market": market}
                for name, definition in definitions:
                    activation[name] = definition.evaluate(activation)
                return main.evaluate(activation)

            return Prepared(run, in_context=True)

        return prepare

    version = _version("cel-python")
    note = (
        "cel-python: CONVERTS TO FLOAT (CEL has no decimal type; inputs converted to CEL doubles"
        " once, outside the timing loop); `abs` and `sum` registered as functions; (b) as a chain"
        " of 12 nested ?: (no table lookup); `notional` evaluated as a separate program first"
    )
    return [
        Contender("cel-python (interpreted)", "float", make("interpreted"), [note], version),
        Contender(
            "cel-python (CompiledRunner)",
            "float",
            make("compiled"),
            ["cel-python (CompiledRunner): the transpiler; same spellings as interpreted"],
            version,
        ),
    ]


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def make_loop(call: Callable[[Any], Any], F: Any) -> Callable[[int], None]:
    clear = F.cache.clear

    def loop(n: int) -> None:
        for _ in repeat(None, n):
            clear()  # drop memoized definitions: every evaluation starts from the inputs
            call(F)

    return loop


CLOCKS: dict[str, Callable[[], float]] = {
    "wall": time.perf_counter,  # timeit's default
    "cpu": time.process_time,  # this process's CPU time: robust to other jobs on the machine
}
_clock = time.perf_counter


def timed(loop: Callable[[int], None], n: int, in_context: bool) -> float:
    enabled = gc.isenabled()
    gc.disable()
    try:
        if in_context:
            with decimal.localcontext(DECIMAL_CONTEXT):
                start = _clock()
                loop(n)
                return _clock() - start
        start = _clock()
        loop(n)
        return _clock() - start
    finally:
        if enabled:
            gc.enable()


def calibrate(loop: Callable[[int], None], in_context: bool, min_time: float) -> int:
    """Loop count lasting at least `min_time` seconds, as timeit.autorange: 1, 2, 5, 10, ..."""
    n = 1
    while True:
        for factor in (1, 2, 5):
            if timed(loop, n * factor, in_context) >= min_time:
                return n * factor
        n *= 10


def measure(prepared: Prepared, F: Any, repeats: int, min_time: float) -> float:
    """Median µs per evaluation over `repeats` runs of a loop lasting at least `min_time` s."""
    loop = make_loop(prepared.call, F)
    count = calibrate(loop, prepared.in_context, min_time)
    samples = [timed(loop, count, prepared.in_context) / count for _ in range(repeats)]
    return statistics.median(samples) * 1e6


def evaluate_once(prepared: Prepared, F: Any) -> Any:
    F.cache.clear()
    if prepared.in_context:
        with decimal.localcontext(DECIMAL_CONTEXT):
            return prepared.call(F)
    return prepared.call(F)


def agrees(value: Any, expected: Any, number: str) -> bool:
    if isinstance(expected, bool):
        return bool(value) == expected and isinstance(value, bool | int)
    if number == "Decimal":
        return isinstance(value, Decimal) and value == expected
    return abs(float(value) - float(expected)) <= 1e-9 * max(1.0, abs(float(expected)))


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))  # what nproc prints
    return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def format_table(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |"]
        lines.append("| " + " | ".join(["---", "---"] + ["---:"] * (len(headers) - 2)) + " |")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, rows)])


def build_contenders(liq: Liqpolicy) -> tuple[list[Contender], list[str]]:
    contenders = [
        Contender(
            "hand-written Python",
            "Decimal",
            lambda case: Prepared(HAND[case], True),
            [
                "hand-written: plain functions reading the same records; (b) bisects the bracket"
                " bounds once (one lookup, as a person would write it)",
            ],
        ),
        Contender(
            "liqpolicy compiled .fast",
            "Decimal",
            liq.fast,
            [
                "liqpolicy .fast: the generated function, one localcontext around the whole loop",
            ],
            _version("liqpolicy"),
        ),
        Contender(
            "liqpolicy compiled call",
            "Decimal",
            liq.call,
            [
                "liqpolicy call: CompiledExpression(frame), enters the decimal context per call",
            ],
        ),
        Contender(
            "liqpolicy reference",
            "Decimal",
            liq.reference,
            [
                "liqpolicy reference: evaluate_reference, the tree walker (enters the context"
                " per call)",
            ],
        ),
    ]
    missing: list[str] = []
    factories: tuple[tuple[str, Callable[[], Contender | list[Contender]]], ...] = (
        ("rule-engine", rule_engine_contender),
        ("simpleeval", simpleeval_contender),
        ("cel-python", cel_contenders),
    )
    for name, factory in factories:
        try:
            made = factory()
        except NotInstalled:
            missing.append(name)
            continue
        contenders += made if isinstance(made, list) else [made]
    return contenders, missing


def run_all(
    contenders: list[Contender], F: Any, repeats: int, min_time: float
) -> tuple[dict[str, dict[str, float | str]], list[str]]:
    """Time every contender on every case; check each result against the hand-written one.

    Repeats are interleaved (round r times every cell once), so a slow drift in machine load
    touches every contender alike instead of whichever ran last.
    """
    expected = {case: evaluate_once(Prepared(HAND[case], True), F) for case in CASES}
    results: dict[str, dict[str, float | str]] = {c.name: {} for c in contenders}
    problems: list[str] = []
    cells: list[tuple[str, str, Callable[[int], None], bool, int]] = []
    for contender in contenders:
        for case in CASES:
            title = f"{contender.name} {TITLES[case]}"
            try:
                prepared = contender.prepare(case)
                value = evaluate_once(prepared, F)
            except Exception as error:  # an engine that cannot run this expression
                results[contender.name][case] = "error"
                problems.append(f"{title}: {type(error).__name__}: {error}")
                continue
            if not agrees(value, expected[case], contender.number):
                problems.append(f"{title}: got {value!r}, expected {expected[case]!r}")
            loop = make_loop(prepared.call, F)
            count = calibrate(loop, prepared.in_context, min_time)
            cells.append((contender.name, case, loop, prepared.in_context, count))
    samples: dict[tuple[str, str], list[float]] = {}
    for round_ in range(repeats):
        print(f"  round {round_ + 1}/{repeats}", file=sys.stderr)
        for name, case, loop, in_context, count in cells:
            per_call = timed(loop, count, in_context) / count
            samples.setdefault((name, case), []).append(per_call)
    for (name, case), values in samples.items():
        results[name][case] = statistics.median(values) * 1e6
    return results, problems


def print_header(
    options: argparse.Namespace, contenders: list[Contender], repeats: int, min_time: float
) -> None:
    print(
        "DSL evaluation benchmark: python benchmarks/dsl_eval.py"
        + (" --quick" if options.quick else "")
    )
    print(
        f"machine: {cpu_count()} CPUs (nproc), {cpu_model()};"
        f" Python {platform.python_version()}"
        f" ({platform.python_implementation()}, {platform.system()} {platform.machine()})"
    )
    print(f"date: {datetime.date.today().isoformat()}")
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average before the run: {load}")
    packages = {c.name.split(" ")[0]: c.version for c in contenders if c.version}
    versions = ", ".join(f"{name} {version}" for name, version in packages.items())
    if versions:
        print(f"versions: {versions}")
    print(
        f"timing: median of {repeats} interleaved repeats, each a loop of >= {min_time:g} s"
        f" by the {options.clock} clock;"
        " µs per evaluation; x hand = ratio to hand-written Python"
    )
    print(f"target: {TARGET}")


def print_table(
    contenders: list[Contender],
    missing: list[str],
    results: dict[str, dict[str, float | str]],
    markdown: bool,
) -> None:
    baseline = results["hand-written Python"]
    headers = ["contender", "numbers"]
    for case in CASES:
        headers += [f"{TITLES[case]} µs", "x hand"]
    rows: list[list[str]] = []
    for contender in contenders:
        cells = [contender.name, contender.number]
        for case in CASES:
            value, base = results[contender.name][case], baseline[case]
            if isinstance(value, str) or isinstance(base, str):
                cells += [str(value), "n/a"]
            else:
                cells += [f"{value:.2f}", f"{value / base:.2f}"]
        rows.append(cells)
    for name in missing:
        rows.append([name, "-"] + ["not installed", "-"] * len(CASES))
    print()
    print(format_table(headers, rows, markdown))


def print_verdicts(results: dict[str, dict[str, float | str]]) -> None:
    print()
    print(f"target: {TARGET}")
    baseline = results["hand-written Python"]
    fast = results["liqpolicy compiled .fast"]
    rule = results.get("rule-engine")
    for case in CASES:
        mine, base = fast[case], baseline[case]
        if isinstance(mine, str) or isinstance(base, str):
            print(f"  {TITLES[case]:12} compiled failed")
            continue
        ratio = mine / base
        verdict = f"  {TITLES[case]:12} compiled/hand-written {ratio:5.2f}x " + (
            "(ok)" if ratio <= 2 else "(MISSED: > 2x)"
        )
        other = None if rule is None else rule[case]
        if isinstance(other, float):
            speedup = other / mine
            verdict += f"; rule-engine/compiled {speedup:6.1f}x " + (
                "(ok)" if speedup >= 20 else "(MISSED: < 20x)"
            )
        else:
            verdict += "; rule-engine not measured"
        print(verdict)


def print_notes(
    contenders: list[Contender], missing: list[str], problems: list[str], overhead: float
) -> None:
    print()
    print("notes:")
    print(
        "  - each loop iteration also clears frame.cache and makes one Python call:"
        f" about {overhead:.2f} µs of every figure is that loop overhead"
    )
    print(
        "  - inputs: one 25 BTC long (notional 1,450,000: third bracket) in an account of"
        " 10 positions; (c) takes the surcharge through its second condition (both evaluated)"
    )
    print(
        "  - numbers: what the engine computes with; every result is checked against"
        " the hand-written one"
    )
    for contender in contenders:
        for note in contender.notes:
            print(f"  - {note}")
    for name in missing:
        print(f"  - {name}: not installed (pip install -r benchmarks/requirements.txt)")
    if problems:
        print("\nproblems:")
        for problem in problems:
            print(f"  - {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short loops, 3 repeats (a smoke run)")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--source", action="store_true", help="print liqpolicy's generated source")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall: time.perf_counter, as timeit (default); cpu: time.process_time, which"
        " leaves out time the process waits while other jobs run on a shared machine",
    )
    options = parser.parse_args(argv)
    global _clock  # noqa: PLW0603  # one clock for the whole run, chosen on the command line
    _clock = CLOCKS[options.clock]
    repeats, min_time = (3, 0.02) if options.quick else (9, 0.2)

    position, account, market = make_inputs()
    F = frame(position=position, account=account, market=market)
    liq = Liqpolicy()
    contenders, missing = build_contenders(liq)

    print_header(options, contenders, repeats, min_time)
    if options.source:
        print("\ngenerated source (program.source):\n" + liq.program.source)
    results, problems = run_all(contenders, F, repeats, min_time)
    overhead = measure(Prepared(lambda F: None, True), F, repeats, min_time)
    print_table(contenders, missing, results, options.markdown)
    print_verdicts(results)
    print_notes(contenders, missing, problems, overhead)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
