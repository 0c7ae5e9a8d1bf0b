"""The OpenAPI document (`schemas/openapi.json`) and validation against its schemas.

The document is OpenAPI 3.1, whose Schema Objects are JSON Schema 2020-12.  It references the
account format by the relative URI `account.schema.json`, the file next to it in `schemas/`
(and served next to it, at `/account.schema.json`); here it is registered at the URI the
OpenAPI document would have if it lived beside the account schema's `$id`, so that reference
resolves to the very schema `liqpolicy evaluate` checks account files with.

Validation errors become the engine's diagnostics (codes E1xx, the messages `liqpolicy validate`
uses for schema errors), located in the request body when it can be mapped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from engine.policy.packaged import load_schema, schemas_dir
from engine.policy.schema import SchemaValidator, _diagnostic, _leaf_errors
from engine.source import Diagnostic, Span

OPENAPI_FILE = "openapi.json"
ACCOUNT_SCHEMA_FILE = "account.schema.json"
BOOK_SCHEMA_FILE = "book.schema.json"
_ACCOUNT_ID = "https://liqpolicy.org/schemas/account.schema.json"
_BASE = _ACCOUNT_ID.rsplit("/", 1)[0]
OPENAPI_URI = f"{_BASE}/{OPENAPI_FILE}"

Locate = Callable[[tuple[str | int, ...], bool], Span | None]


@functools.cache
def openapi_bytes() -> bytes:
    """The document exactly as it is in the file (what `GET /openapi.json` serves)."""
    return (schemas_dir() / OPENAPI_FILE).read_bytes()


@functools.cache
def schema_bytes(name: str) -> bytes:
    """A schema file the document references, served beside it (`/account.schema.json`)."""
    return (schemas_dir() / name).read_bytes()


@functools.cache
def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(openapi_bytes())
    return document


@functools.cache
def registry() -> Registry[Any]:
    """The OpenAPI document and the schemas it references, each at the URI it expects.

    Relative references (`account.schema.json`) resolve against the document's URI, beside
    the schemas' own `$id`s.
    """
    resources = [
        (OPENAPI_URI, Resource.from_contents(openapi_document(), default_specification=DRAFT202012))
    ]
    for name in (ACCOUNT_SCHEMA_FILE, BOOK_SCHEMA_FILE):
        schema = load_schema(name)
        resource = Resource.from_contents(schema, default_specification=DRAFT202012)
        resources.append((schema.get("$id", f"{_BASE}/{name}"), resource))
    return Registry().with_resources(resources)


def component_ref(name: str) -> str:
    return f"{OPENAPI_URI}#/components/schemas/{name}"


@functools.cache
def validator(name: str) -> Any:
    """A validator for one schema of `components/schemas` (cached; validators are thread-safe)."""
    return SchemaValidator({"$ref": component_ref(name)}, registry=registry(), format_checker=None)


def schema_errors(name: str, data: Any) -> list[ValidationError]:
    return list(validator(name).iter_errors(data))


def _unlocated(pointer: tuple[str | int, ...], key: bool) -> Span | None:
    return None


def body_diagnostics(
    name: str, data: Any, *, locate: Locate | None = None, path: str = "<request>"
) -> list[Diagnostic]:
    """Every violation of component `name` by `data`, as the engine's schema diagnostics."""
    where = locate or _unlocated
    found: list[Diagnostic] = []
    for error in validator(name).iter_errors(data):
        for leaf in _leaf_errors(error):
            d = _diagnostic(leaf, where)  # type: ignore[arg-type]  # a None span renders by path
            found.append(Diagnostic(d.code, d.message, d.span, d.hint, d.severity, path=path))
    return found
