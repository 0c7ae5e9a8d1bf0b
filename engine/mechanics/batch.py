"""JSON-lines batch evaluation: one account per input line, one result or error per output line.

The protocol of ``liqpolicy evaluate POLICY -`` (``docs/batch.md``).  :func:`evaluate_lines`
is a generator: it reads one line, yields its answer and keeps nothing, so memory stays
constant however long the input is, and a caller can stream results as they come.  A bad line
yields an error object for that line and the next line is read; only a bug in liqpolicy (an
exception that is not an :class:`~engine.errors.EngineError`) stops the stream.

Numbers are read exactly: JSON numbers become Decimals from their text, with the same limits
as policy files (at most 60 digits, exponents within ±100; ``NaN`` and ``Infinity`` refused).
A line is also refused for duplicate keys and for nesting deeper than 64 levels, as YAML and
JSON account files are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from engine.errors import EngineError, EvaluationError, InputError
from engine.json_exact import DuplicateKeyError, loads_exact
from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import evaluate_account
from engine.numbers import NumberSyntaxError
from engine.policy.model import Policy
from engine.source import Diagnostic

MAX_DEPTH = 64  # as for YAML files (E014); accounts nest four levels


def _too_deep(data: Any) -> bool:
    """Whether lists and objects nest deeper than :data:`MAX_DEPTH` (iteratively)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Iterable[Any] = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _input_error(code: str, message: str, where: str, hint: str | None = None) -> InputError:
    return InputError(diagnostics=[Diagnostic(code, message, hint=hint, path=where)])


def parse_line(text: str, where: str = "<input>") -> Any:
    """Parse one JSON line exactly (numbers as Decimals); raise a located InputError."""
    try:
        data = loads_exact(text)
    except NumberSyntaxError as error:
        raise _input_error(
            "E015", str(error), where, "write an ordinary decimal such as 0.004 or 50_000"
        ) from None
    except DuplicateKeyError as error:
        raise _input_error(
            "E011",
            f"key '{error.args[0]}' appears twice in one object",
            where,
            "keep one; JSON readers would silently keep the last",
        ) from None
    except json.JSONDecodeError as error:
        reason = error.msg.removesuffix(" at")
        raise _input_error(
            "E010",
            f"invalid JSON: {reason} (column {error.colno})",
            where,
            "each line holds one whole JSON object",
        ) from None
    except RecursionError:
        data = None
        deep = True
    else:
        deep = _too_deep(data)
    if deep:
        raise _input_error("E014", f"nesting deeper than {MAX_DEPTH} levels", where)
    return data


def error_as_dict(error: EngineError) -> dict[str, Any]:
    """The JSON form of an error: its class name, a one-line message and every diagnostic.

    ``{"type": "InputError", "message": ..., "diagnostics": [Diagnostic.as_dict(), ...]}``; the
    message is the first error's text (with how many more there are), not the rendered
    multi-line report, which the diagnostics hold in full.
    """
    if isinstance(error, EvaluationError):
        diagnostics: tuple[Diagnostic, ...] = (error.diagnostic(),)
    else:
        diagnostics = tuple(getattr(error, "diagnostics", ()))
    errors = [d for d in diagnostics if d.severity == "error"] or list(diagnostics)
    if isinstance(error, EvaluationError) or not errors:
        message = str(error)
    else:
        message = errors[0].message
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
    return {
        "type": type(error).__name__,
        "message": message,
        "diagnostics": [d.as_dict() for d in diagnostics],
    }


def evaluate_line(
    policy: Policy,
    line: str | bytes,
    number: int,
    *,
    trace: bool = False,
    source: str = "<input>",
) -> dict[str, Any] | None:
    """The answer for input line `number` (1-based): None for a blank line, else a result or error.

    A result is the documented ``AccountResult.as_dict()`` form with ``"line"`` added; an error
    is ``{"line": N, "error": error_as_dict(...)}``.  Diagnostics about the line itself are
    located at ``"<source>:<N>"``.
    """
    where = f"{source}:{number}"
    try:
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _input_error(
                    "E001",
                    f"the line is not UTF-8 ({error.reason} at byte {error.start + 1})",
                    where,
                ) from None
        if number == 1:
            line = line.removeprefix("\ufeff")
        line = line.rstrip("\r\n")
        if not line.strip():
            return None
        account = parse_account(parse_line(line, where), policy, path=where)
        result = evaluate_account(policy, account, trace=trace)
    except EngineError as error:
        return {"line": number, "error": error_as_dict(error)}
    return {"line": number, **result.as_dict()}


def evaluate_lines(
    policy: Policy,
    lines: Iterable[str | bytes],
    *,
    trace: bool = False,
    source: str = "<input>",
) -> Iterator[dict[str, Any]]:
    """Evaluate one JSON account per line, lazily: one answer per non-blank line, in order.

    Each answer carries ``"line"``, the 1-based number of its input line (blank lines count but
    yield nothing).  Good lines give the account result (``AccountResult.as_dict()``; the trace
    only with `trace`), bad lines ``{"line": N, "error": {"type", "message", "diagnostics"}}``.
    Nothing is printed and nothing is kept between lines.
    """
    for number, line in enumerate(lines, start=1):
        answer = evaluate_line(policy, line, number, trace=trace, source=source)
        if answer is not None:
            yield answer
