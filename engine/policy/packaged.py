"""Locate data shipped with liqpolicy: the JSON Schemas, the shipped policies, the tier formats.

In a wheel they live inside the package (`engine/schemas`, `engine/policies`, force-included at
build time from the top-level folders); in a source checkout or editable install they are the
top-level `schemas/` and `policies/` themselves.  One source of truth either way.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent.parent


def _data_dir(name: str) -> Path:
    inside = _PACKAGE / name
    if inside.is_dir():
        return inside
    return _PACKAGE.parent / name


def schemas_dir() -> Path:
    return _data_dir("schemas")


def policies_dir() -> Path:
    return _data_dir("policies")


def formats_dir() -> Path:
    """Declared layouts of the tier-table formats `liqpolicy tiers import` reads."""
    return _data_dir("formats")


@functools.cache
def schema_text(name: str) -> str:
    return (schemas_dir() / name).read_text(encoding="utf-8")


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """Parse a packaged schema (cached; callers must not mutate it)."""
    data: dict[str, Any] = json.loads(schema_text(name))
    return data


@functools.cache
def compare_defaults() -> dict[str, Any]:
    """What `compare` runs without arguments, as shipped data (`policies/compare-default.json`):
    `policies` (ids), `book` and `scenario`. Data, so engine code names no venue."""
    data: dict[str, Any] = json.loads(
        (policies_dir() / "compare-default.json").read_text(encoding="utf-8")
    )
    return data


def shipped_policy_paths() -> list[Path]:
    """Every shipped policy file, sorted by name."""
    return sorted(policies_dir().glob("*.yaml"))
