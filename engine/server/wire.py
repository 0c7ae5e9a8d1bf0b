"""Requests and responses as the application sees them, and the JSON it writes.

Kept apart from the HTTP plumbing (`engine.server.http`) so the application can be called, and
tested, without sockets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.numbers import format_decimal

JSON_MEDIA_TYPE = "application/json"


@dataclass(slots=True)
class Request:
    method: str
    path: str  # percent-encoded, without the query
    query: str
    headers: Any  # anything with .get(name) -> str | None, case-insensitive
    client_host: str
    read_body: Callable[[], bytes]  # the body, within the size limit (raises Problem otherwise)


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = JSON_MEDIA_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def dumps(data: object) -> bytes:
    """Compact JSON, UTF-8; decimals as exact strings (the engine's documented form)."""
    return _ENCODER.encode(data).encode()
