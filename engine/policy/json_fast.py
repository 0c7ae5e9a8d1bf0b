"""The YAML reader's fast path: a document that is plain JSON, read by the C JSON parser.

JSON is YAML, and large generated files (tier tables of hundreds of markets) are written as JSON.
Numbers are exact decimals with the YAML reader's limits; anything the two readers could read
differently (escapes, tabs, duplicate keys, numbers out of range, deep nesting) is left to the
YAML reader, which then reports it, so both paths give the same data.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from engine.numbers import NumberSyntaxError, parse_decimal

_COMMENT_LINES = re.compile(r"(?:[ \t]*(?:#[^\n]*)?\n)*")
# Characters YAML does not allow (PyYAML's reader refuses them) or reads as line breaks (NEL,
# LS, PS: folded inside a quoted scalar); JSON strings may hold them.
_NOT_YAML = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


class _NotPlainJson(Exception):
    """The text is JSON the fast path leaves to the YAML reader (a duplicate key, NaN)."""


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _NotPlainJson
    return result


def _constant(name: str) -> object:
    raise _NotPlainJson


def _number(text: str) -> Decimal:
    """A JSON number as the YAML reader reads it: `parse_decimal`'s limits apply (a number it
    refuses sends the document to the YAML path, which reports it)."""
    if len(text) <= 60 and "e" not in text and "E" not in text:
        return Decimal(text)  # JSON's grammar already holds; at most 60 digits
    try:
        return parse_decimal(text)
    except NumberSyntaxError:
        raise _NotPlainJson from None


_JSON = json.JSONDecoder(
    parse_float=_number, parse_int=_number, parse_constant=_constant, object_pairs_hook=_object
)


def decode_json(text: str) -> Any:
    """JSON text read as the fast path reads it (exact decimals); for text already checked."""
    return _JSON.decode(text)


def as_json(text: str, max_depth: int) -> object | None:
    """The data of a YAML document that is plain JSON (after leading comment lines), or None.

    None sends the text to the YAML reader: not JSON, or anything where the two readers could
    disagree or the YAML reader reports a problem (escapes, tabs, duplicate keys, numbers out of
    range, nesting deeper than `max_depth`).
    """
    head = _COMMENT_LINES.match(text)
    start = head.end() if head else 0
    if text[start : start + 1] not in ("{", "[") or "\\" in text or "\t" in text:
        return None
    if _NOT_YAML.search(text):
        return None
    body = "\n" * text.count("\n", 0, start) + text[start:]  # comments out, lines kept
    try:
        data: object = _JSON.decode(body)
    except (ValueError, _NotPlainJson, RecursionError):
        return None
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        for child in children:
            if isinstance(child, dict | list):
                if depth >= max_depth:
                    return None
                stack.append((child, depth + 1))
    return data
