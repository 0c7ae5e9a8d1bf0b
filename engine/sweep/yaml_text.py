"""Write plain data (the YAML reader's types: dict, list, str, Decimal, bool, None) as YAML text.

Generated policies and scenarios are real files a person reads and liqpolicy loads, so the text
must read back as exactly the same data through :mod:`engine.policy.yaml_reader`: numbers are
written from their decimal text, strings are double-quoted (JSON escapes are YAML escapes) unless
they span lines, and the output depends on nothing but the data (same data, same bytes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

INDENT = "  "
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_/-]*")
_RESERVED = frozenset(
    {"", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "<<"}
)
_NOT_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_FLOW_WIDTH = 160
_PLAIN_TEXT = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
# words some YAML 1.1 readers (editors) take for booleans: quoted to read the same everywhere
_WORDS = frozenset(
    w for word in ("yes", "no", "on", "off", "y", "n") for w in (word, word.title(), word.upper())
)


def dump_yaml(data: Mapping[str, Any], header: str = "") -> str:
    """`data` as a YAML document, after `header` lines written as comments."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += _mapping(data, 0)
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    quoted = json.dumps(text, ensure_ascii=False)
    return _NOT_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def _key(key: str) -> str:
    if _PLAIN_KEY.fullmatch(key) and key not in _RESERVED | _WORDS:
        return key
    return _quote(key)


def scalar(value: Any) -> str:
    """One scalar in flow style."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} cannot be written as a YAML number")
        return str(value)
    if isinstance(value, str):
        plain = _PLAIN_TEXT.fullmatch(value) and value not in _RESERVED | _WORDS
        return value if plain else _quote(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list)


def _one_line(value: Any) -> bool:
    """A scalar that flow style writes without hiding a line break in an escape."""
    return _is_scalar(value) and not (isinstance(value, str) and "\n" in value)


def _flow(value: Any) -> str | None:
    """Flow text for a list of scalars or a mapping of scalars, when short and one line."""
    if isinstance(value, list) and all(_one_line(item) for item in value):
        text = "[" + ", ".join(scalar(item) for item in value) + "]"
    elif isinstance(value, Mapping) and value and all(_one_line(v) for v in value.values()):
        text = "{" + ", ".join(f"{_key(str(k))}: {scalar(v)}" for k, v in value.items()) + "}"
    else:
        return None
    return text if len(text) <= _FLOW_WIDTH and "\n" not in text else None


def _literal(text: str, level: int) -> list[str] | None:
    """A multi-line string as a literal block, when its lines survive one unchanged."""
    if "\n" not in text or text.startswith((" ", "\n")) or text.endswith("\n\n"):
        return None
    body = text[:-1] if text.endswith("\n") else text
    lines = body.split("\n")
    if any(line != line.rstrip() or "\t" in line or _NOT_PRINTABLE.search(line) for line in lines):
        return None
    if "\r" in body:
        return None
    indicator = "|" if text.endswith("\n") else "|-"
    pad = INDENT * (level + 1)
    return [indicator, *[pad + line if line else "" for line in lines]]


def _entry(prefix: str, value: Any, level: int) -> list[str]:
    """`prefix` (a key with its colon, or a dash) followed by `value` at nesting `level`."""
    if isinstance(value, str):
        block = _literal(value, level)
        if block is not None:
            return [f"{prefix} {block[0]}", *block[1:]]
    if _is_scalar(value):
        return [f"{prefix} {scalar(value)}"]
    flow = _flow(value)
    if flow is not None or not value:
        return [
            f"{prefix} {flow if flow is not None else ('{}' if isinstance(value, Mapping) else '[]')}"
        ]
    if isinstance(value, Mapping):
        return [prefix, *_mapping(value, level + 1)]
    return [prefix, *_sequence(value, level + 1)]


def _mapping(data: Mapping[str, Any], level: int) -> list[str]:
    lines: list[str] = []
    pad = INDENT * level
    for key, value in data.items():
        lines += _entry(f"{pad}{_key(str(key))}:", value, level)
    return lines


def _sequence(items: list[Any], level: int) -> list[str]:
    lines: list[str] = []
    pad = INDENT * level
    for item in items:
        if isinstance(item, Mapping) and item and _flow(item) is None:
            nested = _mapping(item, level + 1)
            first = nested[0].lstrip()
            lines += [f"{pad}- {first}", *nested[1:]]
        else:
            lines += _entry(f"{pad}-", item, level)
    return lines
