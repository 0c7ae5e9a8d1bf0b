"""Errors as RFC 9457 problem details (`application/problem+json`).

Every error the service answers is a :class:`Problem`: handlers raise it, the HTTP layer turns it
into a response.  Diagnostics are the engine's own :class:`~engine.source.Diagnostic` objects,
rendered with ``Diagnostic.as_dict()`` exactly as ``liqpolicy ... --format json`` shows them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from engine.source import Diagnostic

PROBLEM_MEDIA_TYPE = "application/problem+json"

# `type` URIs: relative references, resolved against the service's own address, documented in
# docs/server.md under "Errors".  Keyed by status; a few statuses have more specific types.
_TYPE_BASE = "/problems/"
_TYPES = {
    400: "malformed-request",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    408: "request-timeout",
    413: "content-too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    500: "internal-error",
    501: "not-implemented",
    503: "unavailable",
}


def problem_type(status: int, kind: str | None = None) -> str:
    return _TYPE_BASE + (kind or _TYPES.get(status, "error"))


class Problem(Exception):
    """An error answer: status, a short title, a detail for this occurrence, diagnostics."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        kind: str | None = None,
        diagnostics: Iterable[Diagnostic] = (),
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.kind = kind
        self.diagnostics = tuple(diagnostics)
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})
        self.close = close  # the connection cannot be reused (e.g. an unread oversized body)

    def document(self, instance: str) -> dict[str, Any]:
        """The problem details object; `instance` is the request path it answers."""
        body: dict[str, Any] = {
            "type": problem_type(self.status, self.kind),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            "diagnostics": [d.as_dict() for d in self.diagnostics],
        }
        for key, value in self.extra.items():
            body.setdefault(key, value)
        return body


def summary_message(diagnostics: tuple[Diagnostic, ...] | list[Diagnostic], fallback: str) -> str:
    """The first error's message (or the first diagnostic's), counting the others."""
    errors = [d for d in diagnostics if d.severity == "error"] or list(diagnostics)
    if not errors:
        return fallback
    message = errors[0].message
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return message


def invalid(
    diagnostics: list[Diagnostic] | tuple[Diagnostic, ...], title: str = "Invalid input"
) -> Problem:
    """A 422 whose detail sums up its diagnostics."""
    return Problem(422, summary_message(diagnostics, title), title=title, diagnostics=diagnostics)


class ConnectionLost(Exception):
    """The client went away mid-request (closed, reset, or sent a truncated body): no answer."""
