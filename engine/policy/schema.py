"""JSON Schema validation whose errors become located, readable diagnostics.

jsonschema reports where in the *data* a problem is; the source map turns that into a place in
the YAML file.  Messages are rewritten per keyword so they say what was found and what was
expected, with a did-you-mean for misspelled keys.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sized
from decimal import Decimal
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from engine.dsl.check import did_you_mean
from engine.numbers import NumberSyntaxError, parse_decimal
from engine.policy.packaged import load_schema
from engine.source import Diagnostic, Span

Pointer = tuple[str | int, ...]
Locate = Callable[[Pointer, bool], Span]  # (pointer, want the key's span) -> span


_BOUND_KEYWORDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")


def is_integer(checker: Any, instance: Any) -> bool:
    """Whole numbers read from YAML arrive as Decimal; accept them as JSON Schema integers."""
    if isinstance(instance, bool):
        return False
    if isinstance(instance, Decimal):
        return instance == instance.to_integral_value()
    return isinstance(instance, int)


def _numeric_text(instance: Any, schema: Any) -> Decimal | None:
    """A numeric string's value (the formats' `"0.004"`), None for anything else; a string
    the schema's own `pattern` refuses is left to that pattern (one diagnostic, not two)."""
    if not isinstance(instance, str):
        return None
    pattern = schema.get("pattern") if isinstance(schema, Mapping) else None
    if pattern is not None and re.search(pattern, instance) is None:
        return None
    try:
        return parse_decimal(instance)
    except NumberSyntaxError:
        return None  # not a number: `pattern` or `type` says so


def _bound_for_numeric_strings(keyword: str) -> Callable[..., Iterator[ValidationError]]:
    """A bound keyword that also applies to numeric strings.

    JSON Schema applies `minimum` and its kin to numbers only, so without this `"0"` would pass
    a field declared above zero; our formats accept numeric strings as numbers, so the bound
    must hold for them too.
    """
    check = Draft202012Validator.VALIDATORS[keyword]

    def bound(validator: Any, limit: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
        value = _numeric_text(instance, schema)
        yield from check(validator, limit, instance if value is None else value, schema)

    return bound


SchemaValidator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]  # jsonschema's validators module is untyped
    Draft202012Validator,
    validators={keyword: _bound_for_numeric_strings(keyword) for keyword in _BOUND_KEYWORDS},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", is_integer),
)


# `format: date` is checked (a real calendar day); other formats stay annotations.
_FORMATS = jsonschema.FormatChecker(formats=("date",))


@functools.cache
def _validator(name: str) -> Any:
    """One validator per packaged schema (building one resolves every `$ref` again)."""
    return SchemaValidator(load_schema(name), format_checker=_FORMATS)


def _where(pointer: Pointer) -> str:
    if not pointer:
        return "at the top level"
    text = ""
    for part in pointer:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"in {text}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, str):
        return f"'{value}'" if len(value) <= 40 else f"'{value[:37]}...'"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "null",
}


_BOUNDS = {
    "minimum": "at least",
    "exclusiveMinimum": "above",
    "maximum": "at most",
    "exclusiveMaximum": "below",
}


def _type_name(expected: Any) -> str:
    if isinstance(expected, list):
        return " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in expected)
    return _TYPE_NAMES.get(expected, str(expected))


def _leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    """For anyOf/oneOf, report the alternative that got furthest instead of the union."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        if best is not None:
            yield from _leaf_errors(best)
            return
    yield error


def _culprit(error: ValidationError) -> Pointer:
    """Where the violation is in the data: an unknown key's own pointer, else the value's."""
    pointer: Pointer = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        extras = [k for k in error.instance if k not in schema.get("properties", {})]
        if extras:
            return (*pointer, extras[0])
    return pointer


def _diagnostic(error: ValidationError, locate: Locate) -> Diagnostic:
    pointer: Pointer = tuple(error.absolute_path)
    keyword = error.validator
    value = error.instance
    where = _where(pointer)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if keyword == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else "?"
        return Diagnostic(
            "E101", f"missing required key '{missing}' {where}", locate(pointer, bool(pointer))
        )
    if keyword == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        extras = [k for k in value if k not in allowed] if isinstance(value, Mapping) else []
        key = extras[0] if extras else "?"
        hint = did_you_mean(key, allowed) or (
            "allowed keys: " + ", ".join(allowed) if allowed else None
        )
        return Diagnostic(
            "E102", f"unknown key '{key}' {where}", locate((*pointer, key), True), hint
        )
    if keyword == "type":
        return Diagnostic(
            "E103",
            f"expected {_type_name(error.validator_value)} {where}, found {_show(value)}",
            locate(pointer, False),
        )
    if keyword == "enum":
        enum_values: Any = error.validator_value
        options = [str(o) for o in enum_values]
        hint = did_you_mean(str(value), options, cutoff=0.75) if isinstance(value, str) else None
        return Diagnostic(
            "E104",
            f"{_show(value)} is not allowed {where}; expected one of "
            + ", ".join(f"'{o}'" for o in options),
            locate(pointer, False),
            hint,
        )
    if keyword == "pattern":
        description = schema.get("description", "")
        return Diagnostic(
            "E104",
            f"{_show(value)} is not a valid value {where}",
            locate(pointer, False),
            description.split(":")[0] if description else None,
        )
    if keyword == "format":
        return Diagnostic(
            "E104",
            f"{_show(value)} is not a valid {error.validator_value} {where}",
            locate(pointer, False),
            "write a calendar date as YYYY-MM-DD, e.g. 2024-10-24"
            if error.validator_value == "date"
            else None,
        )
    if keyword == "propertyNames":
        return Diagnostic(
            "E104",
            f"{_show(value)} is not a valid name {where}",
            locate((*pointer, str(value)), True),
            "names are lowercase letters, digits and underscores",
        )
    if keyword in ("minItems", "minLength", "minProperties"):
        least = error.validator_value
        if isinstance(least, int) and least > 1:
            unit = {"minItems": "items", "minLength": "characters", "minProperties": "keys"}[
                keyword
            ]
            text = f"expected at least {least} {unit} {where}, found {len(value) if isinstance(value, Sized) else 0}"
            return Diagnostic("E104", text, locate(pointer, False))
        return Diagnostic("E104", f"{where} must not be empty", locate(pointer, False))
    if keyword in _BOUNDS:
        bound = f"{_BOUNDS[keyword]} {_show(error.validator_value)}"
        return Diagnostic(
            "E104",
            f"{_show(value)} is out of range {where}; expected {bound}",
            locate(pointer, False),
        )
    return Diagnostic("E100", f"{error.message} {where}", locate(pointer, False))


def schema_problems(
    data: Any, schema_name: str, locate: Locate
) -> list[tuple[Pointer, Diagnostic]]:
    """Validate `data` against a packaged schema: each violation's pointer and diagnostic."""
    return [
        (_culprit(leaf), _diagnostic(leaf, locate))
        for error in _validator(schema_name).iter_errors(data)
        for leaf in _leaf_errors(error)
    ]


def schema_diagnostics(data: Any, schema_name: str, locate: Locate) -> list[Diagnostic]:
    """Validate `data` against a packaged schema; every violation as a located diagnostic."""
    return [diagnostic for _, diagnostic in schema_problems(data, schema_name, locate)]
