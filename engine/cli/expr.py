"""`liqpolicy expr 'EXPRESSION'`: parse, check and optionally evaluate one expression."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from types import MappingProxyType

from engine.cli.command import Command, Exit, UsageError, add_format_option
from engine.cli.output import Output
from engine.dsl import ast
from engine.dsl.check import Checked, Scope, check_expression, did_you_mean
from engine.dsl.compile import compile_program
from engine.dsl.parser import parse_expression
from engine.dsl.printer import print_expression
from engine.dsl.runtime import Value, frame
from engine.dsl.types import NumberType, StringType, Type
from engine.errors import EvaluationError, ExpressionError
from engine.numbers import NumberSyntaxError, format_decimal, parse_decimal
from engine.policy.vocabulary import (
    ACCOUNT_FIELDS,
    MARKET_DATA_FIELDS,
    MARKET_SPEC_FIELDS,
    POSITION_FIELDS,
    build_roots,
)
from engine.source import Diagnostic

# The input names `--set` accepts: root -> field -> (type, description).
INPUT_FIELDS: dict[str, dict[str, tuple[Type, str]]] = {
    "position": dict(POSITION_FIELDS),
    "account": dict(ACCOUNT_FIELDS),
    "market": {**MARKET_SPEC_FIELDS, **MARKET_DATA_FIELDS},
}
INPUT_NAMES = tuple(f"{root}.{name}" for root, fields in INPUT_FIELDS.items() for name in fields)


def parse_inputs(items: list[str]) -> dict[str, dict[str, Value]]:
    """`--set root.field=value` options → {root: {field: value}}; a mistake is a UsageError."""
    records: dict[str, dict[str, Value]] = {root: {} for root in INPUT_FIELDS}
    for item in items:
        name, equals, text = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise UsageError(
                f"--set expects NAME=VALUE, found '{item}'", "for example --set position.size=2"
            )
        root, _, field = name.partition(".")
        if field not in INPUT_FIELDS.get(root, {}):
            if name == "account.positions":
                raise UsageError(
                    "account.positions cannot be set: it holds the one position given with"
                    " --set position.FIELD=VALUE"
                )
            raise UsageError(
                f"unknown input '{name}'",
                did_you_mean(name, INPUT_NAMES) or "inputs are " + ", ".join(INPUT_NAMES),
            )
        kind = INPUT_FIELDS[root][field][0]
        value: Value = text
        if isinstance(kind, NumberType):
            try:
                value = parse_decimal(text)
            except NumberSyntaxError as error:
                raise UsageError(
                    f"--set {name}: {error}", "numbers are written like 59000 or 0.004"
                ) from None
        elif isinstance(kind, StringType) and kind.values and text not in kind.values:
            allowed = ", ".join(f'"{v}"' for v in sorted(kind.values))
            raise UsageError(
                f"--set {name}: '{text}' is not one of {allowed}", did_you_mean(text, kind.values)
            )
        records[root][field] = value
    return records


def reads_inputs(expr: ast.Expr) -> bool:
    """Whether the expression reads `position`, `account` or `market` (else it is constant)."""
    return any(isinstance(n, ast.Name) and n.name in INPUT_FIELDS for n in ast.walk(expr))


def show(value: Value) -> str:
    """A value as the language writes it: 118000, true, "long", {field: value, ...}."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return type(value).__name__


def json_value(value: Value) -> object:
    """A value for JSON: numbers as exact decimal strings, records as objects."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return type(value).__name__


def _evaluation_diagnostic(error: EvaluationError) -> Diagnostic:
    """The located error, with a hint naming the `--set` that supplies a missing input."""
    diagnostic = error.diagnostic()
    span = error.span
    if error.code != "E503" or diagnostic.hint is not None or span is None:
        return diagnostic
    missing = span.source.line(span.line)[span.column - 1 : span.end_column - 1]
    if span.end_line == span.line and missing in INPUT_NAMES:
        hint = f"give it with --set {missing}=VALUE"
    elif missing == "account.positions":
        hint = "the account holds the position given with --set position.FIELD=VALUE"
    else:
        hint = "give inputs with --set NAME=VALUE"
    return replace(diagnostic, hint=hint)


def evaluate(expr: ast.Expr, checked: Checked, inputs: dict[str, dict[str, Value]]) -> Value:
    """Compile and run a checked expression on `--set` inputs; raise EvaluationError."""
    position = inputs["position"]
    account = {**inputs["account"], "positions": [position]} if position else inputs["account"]
    # `tables` is a root name too; without a policy it holds no table
    program = compile_program(
        {},
        {"expression": (expr, checked.type)},
        checked.definition_attributes,
        filename="<expr>",
        statics={"tables": MappingProxyType({})},
    )
    compiled = program.expressions["expression"]
    return compiled(frame(position=position, account=account, market=inputs["market"]))


def run(args: argparse.Namespace, output: Output) -> int:
    inputs = parse_inputs(args.inputs)  # usage errors first, before any output
    text: str = args.expression
    as_json = args.format == "json"
    result: dict[str, object] = {"expression": text, "canonical": None, "type": None}
    diagnostics: list[Diagnostic] = []
    try:
        expr = parse_expression(text)
    except ExpressionError as error:
        diagnostics.extend(error.diagnostics)
        return _finish(output, as_json, result, diagnostics)
    result["canonical"] = print_expression(expr)
    checked = check_expression(expr, Scope(build_roots()))
    if checked.diagnostics:
        diagnostics.extend(checked.diagnostics)
        return _finish(output, as_json, result, diagnostics)
    result["type"] = str(checked.type)
    if not as_json:
        output.line(f"canonical: {result['canonical']}")
        output.line(f"type: {result['type']}")
    if args.inputs or not reads_inputs(expr):
        try:
            value = evaluate(expr, checked, inputs)
        except EvaluationError as error:
            diagnostics.append(_evaluation_diagnostic(error))
        else:
            result["value"] = json_value(value)
            if not as_json:
                output.line(f"value: {show(value)}")
    return _finish(output, as_json, result, diagnostics)


def _finish(
    output: Output, as_json: bool, result: dict[str, object], diagnostics: list[Diagnostic]
) -> int:
    if as_json:
        output.json({**result, "diagnostics": [d.as_dict() for d in diagnostics]})
    else:
        output.diagnostics(diagnostics)
    return Exit.INVALID_INPUT if diagnostics else Exit.OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "expression",
        metavar="EXPRESSION",
        help="the expression, quoted for the shell (after `--` if it starts with '-')",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="inputs",
        metavar="NAME=VALUE",
        help="give an input, e.g. position.size=2 or position.side=long (repeatable); "
        "with any --set the expression is also evaluated",
    )
    add_format_option(parser)


COMMAND = Command(
    name="expr",
    summary="check an expression; print its canonical form, type and value",
    description=textwrap.dedent(f"""\
        Parse and type-check one expression against the standard inputs (position, account,
        market; no policy tables or definitions), then print its canonical form and type.
        With --set options it is also evaluated (so is an expression that reads no input);
        account.positions then holds the one position given.  Numbers are exact decimals.

        inputs:
          {textwrap.fill(", ".join(INPUT_NAMES), 86, subsequent_indent="          ")}"""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy expr 'position.size * market.mark_price'",
        "liqpolicy expr 'position.size * market.mark_price' --set position.size=2 \\",
        "    --set market.mark_price=59000",
        "liqpolicy expr 'if position.side == \"long\" then 1 else -1' --set position.side=short",
        "liqpolicy expr --format json -- '-1 * 2'",
    ),
)
