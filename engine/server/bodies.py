"""Request bodies: read as UTF-8 JSON, parsed exactly, every refusal a located problem.

The diagnostics are the CLI's own, located in the body (path `<request>`, line and column) the
way the CLI locates them in a file, so a client sees the same message for the same mistake.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from engine.audit import sha256_text
from engine.errors import EngineError, EvaluationError, PolicyError
from engine.json_exact import DuplicateKeyError, NonNumberError, loads_exact
from engine.mechanics.accounts import parse_account
from engine.numbers import NumberSyntaxError
from engine.policy.model import Policy
from engine.policy.yaml_reader import SourceMap, read_yaml
from engine.server.decisions import Decision
from engine.server.problems import Problem, invalid, summary_message
from engine.server.wire import JSON_MEDIA_TYPE, Request
from engine.source import Diagnostic, SourceFile, Span

BODY_PATH = "<request>"  # the `path` of diagnostics about a request body


def _malformed(diagnostic: Diagnostic) -> Problem:
    return Problem(400, diagnostic.message, title="Malformed JSON", diagnostics=[diagnostic])


def _body_span(text: str, line: int, column: int) -> Span:
    return Span(SourceFile(BODY_PATH, text), line, column, line, column + 1)


def relocated(
    text: str, compute: Callable[[SourceMap | None], list[Diagnostic]]
) -> list[Diagnostic]:
    """Diagnostics located in the request body, like the CLI locates them in a file.

    Only on the error path: the body is read again with the engine's YAML reader (JSON is
    YAML), whose source map gives each value's line and column; when that fails for any reason
    the diagnostics stay unlocated (path `<request>`, no line).
    """
    try:
        document = read_yaml(text, BODY_PATH, exact_errors=False)
    except Exception:  # locating is a courtesy; never fail the answer over it
        return compute(None)
    located = compute(document.spans)
    return located or compute(None)


def json_body(request: Request, decision: Decision | None = None) -> tuple[Any, str]:
    """The body parsed, and its text (to locate diagnostics in it later)."""
    text = body_text(request, decision)
    return parse_json(text, decision), text


def check_media_type(content_type: str | None) -> None:
    """415 unless the body is declared as JSON (`application/json`, `application/*+json`) in
    UTF-8; checked before the body is read."""
    if content_type is None:
        raise Problem(
            415,
            "send the body as JSON with Content-Type: application/json",
            headers={"Accept-Post": JSON_MEDIA_TYPE},
        )
    media, _, parameters = content_type.partition(";")
    media = media.strip().lower()
    if media != JSON_MEDIA_TYPE and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise Problem(
            415,
            f"unsupported media type '{media}'; send application/json",
            headers={"Accept-Post": JSON_MEDIA_TYPE},
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise Problem(415, f"unsupported charset '{value.strip()}'; JSON is UTF-8")


def body_text(request: Request, decision: Decision | None = None) -> str:
    """The body as text, after the media type and size checks (415, 413, 400 not UTF-8)."""
    check_media_type(request.headers.get("Content-Type"))
    raw = request.read_body()
    if decision is not None:
        decision.input_digest = sha256_text(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        if decision is not None:
            decision.input_text = raw.decode("utf-8", errors="replace")
        prefix = raw[: error.start].decode("utf-8", errors="replace")
        source = SourceFile(BODY_PATH, raw.decode("utf-8", errors="replace"))
        line, column = source.position(len(prefix))
        diagnostic = Diagnostic(
            "E001",
            f"request body is not valid UTF-8 (byte 0x{raw[error.start]:02x})",
            Span(source, line, column, line, column + 1),
            path=BODY_PATH,
        )
        raise _malformed(diagnostic) from None
    if decision is not None:
        decision.input_text = text
    return text


def parse_json(text: str, decision: Decision | None = None) -> Any:
    """Parse exactly: numbers as Decimal (within the engine's limits), strict JSON."""
    if not text.strip():
        raise Problem(
            400,
            "the request body is empty; send a JSON object",
            title="Malformed JSON",
            diagnostics=[Diagnostic("E010", "empty request body", path=BODY_PATH)],
        )
    try:
        data = loads_exact(text)
    except json.JSONDecodeError as error:
        diagnostic = Diagnostic(
            "E010",
            f"malformed JSON: {error.msg}",
            _body_span(text, error.lineno, error.colno),
            path=BODY_PATH,
        )
        raise _malformed(diagnostic) from None
    except NonNumberError as error:
        diagnostic = Diagnostic(
            "E010",
            f"malformed JSON: {error.name} is not a JSON number",
            path=BODY_PATH,
            hint="JSON has no NaN or Infinity",
        )
        raise _malformed(diagnostic) from None
    except DuplicateKeyError:
        diagnostics = _yaml_problems(text) or [
            Diagnostic("E011", "the same key appears twice in one object", path=BODY_PATH)
        ]
        raise Problem(
            400,
            summary_message(diagnostics, "duplicate key"),
            title="Malformed JSON",
            diagnostics=diagnostics,
        ) from None
    except NumberSyntaxError as error:
        diagnostic = Diagnostic(
            "E015",
            f"a number is malformed or out of range: {error}",
            path=BODY_PATH,
            hint="write an ordinary decimal such as 0.004 or 50000",
        )
        raise invalid([diagnostic]) from None
    except RecursionError:
        diagnostic = Diagnostic("E014", "the JSON nests too deeply", path=BODY_PATH)
        raise _malformed(diagnostic) from None
    if decision is not None:
        decision.input_json = True
    return data


def _yaml_problems(text: str) -> list[Diagnostic]:
    try:
        read_yaml(text, BODY_PATH)
    except PolicyError as error:
        return list(error.diagnostics)
    except Exception:  # locating is a courtesy
        return []
    return []


def account_diagnostics(data: Any, policy: Policy, spans: SourceMap | None) -> list[Diagnostic]:
    """The account's diagnostics again, located with `spans` (for :func:`engine_problem`)."""
    try:
        parse_account(data, policy, spans=spans, path=BODY_PATH)
    except EngineError as error:
        return list(getattr(error, "diagnostics", ()))
    except Exception:  # locating is a courtesy
        return []
    return []


def engine_problem(
    error: EngineError, text: str, locate: Callable[[SourceMap | None], list[Diagnostic]]
) -> Problem:
    """The problem for an engine error about a body: evaluation failures keep their own
    diagnostic; others are located in `text` by `locate` when they came without a place."""
    if isinstance(error, EvaluationError):
        diagnostic = error.diagnostic()
        return Problem(
            422,
            str(error),
            title="Evaluation failed",
            kind="evaluation-failed",
            diagnostics=[diagnostic],
        )
    diagnostics = list(getattr(error, "diagnostics", ()))
    if diagnostics and all(d.span is None for d in diagnostics):
        located = relocated(text, locate)
        if located and len(located) == len(diagnostics):
            diagnostics = located
    return invalid(diagnostics or [Diagnostic("E100", str(error), path=BODY_PATH)])
