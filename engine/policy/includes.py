"""Included data files: read once, checked once, each table's rows read on first use.

A policy covering hundreds of markets includes a generated file of hundreds of tables (JSON,
written by `liqpolicy tiers import`).  Checking those tables is most of the cost of loading such a
policy, and the file rarely changes.  So what checking a *valid* file finds is kept, keyed by the
SHA-256 of its bytes and of the code and schema that checked it: its merged sections (sources,
markets, market defaults), each table's type and head (keys, citation, deduction) and where each
table lies in the text.  It is kept in memory and in a cache directory (`LIQPOLICY_CACHE_DIR`,
default `$XDG_CACHE_HOME/liqpolicy` or `~/.cache/liqpolicy`; empty to turn the directory off).
On a hit no table is parsed: a table's rows are parsed from its slice of the text when a lookup
first needs them.  A file with a problem is never kept, so its problems are reported, located,
on every load; a changed byte is a different key, so an edit is always checked.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine._version import __version__
from engine.dsl.table import LazyRows, Row, Table
from engine.dsl.types import BOOL, NUMBER, STRING, RecordType, TableKey, TableType, Type
from engine.errors import PolicyError
from engine.policy.json_fast import decode_json
from engine.policy.packaged import schema_text
from engine.policy.schema import schema_problems
from engine.policy.structure import plain_table
from engine.policy.tables import BuiltTable, build_table
from engine.policy.yaml_reader import Pointer, SourceMap, YamlDocument, read_yaml
from engine.source import Diagnostic, SourceFile

MAX_INCLUDE_BYTES = 8 * 1024 * 1024  # generated tables of every contract of a venue fit easily
CACHE_FORMAT = 1
INCLUDABLE_KEYS = ("sources", "market_defaults", "markets", "tables")
_TYPES: dict[str, Type] = {"number": NUMBER, "string": STRING, "boolean": BOOL}


@dataclass(frozen=True, slots=True)
class IncludedTable:
    """A table of an included file: its declaration without rows, its type, the table (rows read
    on first use when it came from the cache) and its problems (located in the file)."""

    head: Mapping[str, Any]
    built: BuiltTable


class IncludedFile:
    """One included file, as a layer of the policy: what merges into it and its tables."""

    def __init__(
        self,
        path: str,
        text: str,
        merged: dict[str, Any],
        tables: dict[str, IncludedTable],
        digest: str,
        document: YamlDocument | None = None,
        *,
        is_mapping: bool = True,
    ) -> None:
        self.path = path
        self.is_mapping = is_mapping  # False: not a mapping at all (the includer reports it)
        self.text = text
        self.merged = merged  # sources, market_defaults, markets
        self.tables = tables
        self.digest = digest  # of the content, not the bytes: formatting does not change it
        self.source = SourceFile(path, text)
        self._document = document
        self._lock = threading.Lock()

    @property
    def problems(self) -> list[Diagnostic]:
        return [d for table in self.tables.values() for d in table.built.diagnostics]

    def document(self) -> YamlDocument:
        """The file read in full, for locating a diagnostic (never needed on the happy path)."""
        with self._lock:
            if self._document is None:
                self._document = read_yaml(self.text, self.path, max_bytes=None)
            return self._document

    # -- the layer protocol of engine.policy.inherit.LayeredSpans ------------------------------
    @property
    def spans(self) -> SourceMap:
        return self.document().spans

    def has(self, pointer: Pointer) -> bool:
        if not pointer:
            return True
        head = pointer[0]
        if head == "tables":
            if len(pointer) == 1:
                return bool(self.tables)
            if pointer[1] not in self.tables:
                return False
        elif head not in self.merged:
            return False
        return self.document().has(pointer)


def cache_dir() -> Path | None:
    """Where verdicts are kept between processes, or None when that is turned off."""
    configured = os.environ.get("LIQPOLICY_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "liqpolicy"


@functools.cache
def _checker_digest() -> str:
    """What a verdict depends on besides the file: liqpolicy's version, the policy schema and the
    source of the checks, so that a changed check never trusts an old verdict."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}:{__version__}:".encode())
    digest.update(schema_text("policy.schema.json").encode("utf-8"))
    here = Path(__file__).resolve().parent
    for module in ("includes.py", "tables.py", "structure.py", "yaml_reader.py", "json_fast.py"):
        with contextlib.suppress(OSError):
            digest.update((here / module).read_bytes())
    return digest.hexdigest()


def _content_digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _head(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != "rows"}


def _numbered(table_type: TableType, spec_rows: list[Mapping[str, Any]]) -> tuple[Row, ...]:
    """Rows with their `tier` (1-based within each exact-key group), as `build_table` numbers."""
    exact = [k.name for k in table_type.keys if k.kind == "exact"]
    counters: dict[tuple[object, ...], int] = {}
    numbered: list[Row] = []
    for row in spec_rows:
        group = tuple(row.get(k) for k in exact)
        counters[group] = counters.get(group, 0) + 1
        numbered.append(MappingProxyType({**row, "tier": Decimal(counters[group])}))
    return tuple(numbered)


def _offsets(text: str) -> dict[str, Any] | None:
    """Where each top-level section and each table lies in a JSON text, or None (not JSON)."""
    decoder = json.JSONDecoder()
    try:
        start = len(text) - len(text.lstrip())
        while text.startswith("#", start):  # leading comment lines, as the YAML reader allows
            start = text.index("\n", start) + 1
            start = len(text) - len(text[start:].lstrip())
        if text[start] != "{":
            return None
        sections: dict[str, tuple[int, int]] = {}
        tables: dict[str, tuple[int, int]] = {}
        index = start + 1
        while True:
            index = _skip(text, index)
            if text[index] == "}":
                return {"sections": sections, "tables": tables}
            key, index = json.decoder.scanstring(text, index + 1)  # type: ignore[attr-defined]  # json's scanner is public but untyped
            index = _skip(text, _skip(text, index) + 1)  # past the colon
            if key == "tables" and text[index] == "{":
                index += 1
                while True:
                    index = _skip(text, index)
                    if text[index] == "}":
                        index += 1
                        break
                    name, index = json.decoder.scanstring(text, index + 1)  # type: ignore[attr-defined]  # as above
                    index = _skip(text, _skip(text, index) + 1)
                    _, end = decoder.raw_decode(text, index)
                    tables[name] = (index, end)
                    index = _skip(text, end)
                    if text[index] == ",":
                        index += 1
            else:
                _, end = decoder.raw_decode(text, index)
                sections[key] = (index, end)
                index = end
            index = _skip(text, index)
            if text[index] == ",":
                index += 1
    except (ValueError, IndexError):
        return None


def _skip(text: str, index: int) -> int:
    while text[index] in " \t\r\n":
        index += 1
    return index


def _table_type(name: str, record: Mapping[str, Any]) -> TableType:
    columns = {c: _TYPES[t] for c, t in record["columns"].items()}
    keys = tuple(TableKey(k, kind, _TYPES[t]) for k, kind, t in record["keys"])
    return TableType(name, keys, RecordType(f"row of table {name}", {**columns, "tier": NUMBER}))


def _type_record(table_type: TableType) -> dict[str, Any]:
    return {
        "keys": [[k.name, k.kind, str(k.type)] for k in table_type.keys],
        "columns": {c: str(t) for c, t in table_type.row.fields.items() if c != "tier"},
    }


def _check(path: str, text: str, document: YamlDocument) -> IncludedFile:
    """Read and check a file in full (the slow path); its problems stay with its tables."""
    data = document.data
    assert isinstance(data, Mapping)  # engine.policy.inherit refuses anything else first
    spans = document.spans if document.spans_built else None

    def locate(pointer: Pointer, key: bool) -> Any:
        source = document.spans if spans is None else spans
        if key:
            found = source.key_span(pointer)
            if found is not None:
                return found
        return source.value_span(pointer) or source.nearest_span(pointer)

    tables: dict[str, IncludedTable] = {}
    section = data.get("tables")
    for name, spec in (section or {}).items() if isinstance(section, Mapping) else ():
        if plain_table(name, spec):
            built = build_table(name, spec, locate)
        else:
            wrapped = {"id": "included", "title": "included", "tables": {name: spec}}
            problems = [d for _, d in schema_problems(wrapped, "policy.schema.json", locate)]
            if problems:
                built = BuiltTable(None, None, tuple(problems))
            else:
                built = build_table(name, spec, locate)
        tables[name] = IncludedTable(_head(spec) if isinstance(spec, Mapping) else {}, built)
    merged = {k: v for k, v in data.items() if k != "tables"}
    return IncludedFile(path, text, merged, tables, _content_digest(data), document)


def _from_verdict(path: str, text: str, verdict: Mapping[str, Any]) -> IncludedFile | None:
    """The file as a verdict describes it, its tables' rows read on first use; None if the
    verdict does not fit the text."""
    try:
        merged = {
            key: decode_json(text[start:end])
            for key, (start, end) in verdict["sections"].items()
            if key != "tables"
        }
        tables: dict[str, IncludedTable] = {}
        for name, record in verdict["tables"].items():
            start, end = record["span"]
            table_type = _table_type(name, record["type"])

            def load(
                slice_: str = text[start:end], table_type: TableType = table_type
            ) -> tuple[Row, ...]:
                return _numbered(table_type, decode_json(slice_)["rows"])

            table = Table(table_type, LazyRows(load))
            tables[name] = IncludedTable(record["head"], BuiltTable(table_type, table, ()))
    except (KeyError, TypeError, ValueError):
        return None
    return IncludedFile(path, text, merged, tables, verdict["digest"])


def _verdict(included: IncludedFile, offsets: Mapping[str, Any]) -> dict[str, Any] | None:
    tables: dict[str, Any] = {}
    for name, table in included.tables.items():
        built = table.built
        if built.type is None or built.table is None or name not in offsets["tables"]:
            return None
        tables[name] = {
            "span": list(offsets["tables"][name]),
            "head": table.head,
            "type": _type_record(built.type),
        }
    sections = {k: list(v) for k, v in offsets["sections"].items()}
    return {"digest": included.digest, "sections": sections, "tables": tables}


_MEMORY: dict[str, tuple[str, IncludedFile]] = {}  # path -> (key, file): the latest version only
_MEMORY_LOCK = threading.Lock()


def read_include(path: Path) -> IncludedFile:
    """The included file at `path`: from memory, from the cache directory, or read and checked.

    Raises PolicyError when the file cannot be read as YAML (its problems located in it)."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        message = f"cannot read file: {exc.strerror or exc}"
        raise PolicyError(diagnostics=[Diagnostic("E001", message, path=name)]) from exc
    if len(raw) > MAX_INCLUDE_BYTES:
        message = f"file is {len(raw)} bytes, the limit for an included file is {MAX_INCLUDE_BYTES}"
        raise PolicyError(diagnostics=[Diagnostic("E002", message, path=name)])
    key = hashlib.sha256(raw + _checker_digest().encode()).hexdigest()
    with _MEMORY_LOCK:
        kept = _MEMORY.get(name)
    if kept is not None and kept[0] == key:
        return kept[1]
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        text = ""
    included = _load_verdict(name, text, key) if text else None
    if included is None:
        document = read_yaml(text, name, max_bytes=None) if text else _undecodable(path)
        if not isinstance(document.data, Mapping):
            return IncludedFile(
                name, text, {}, {}, _content_digest(None), document, is_mapping=False
            )
        included = _check(name, text, document)
        if not included.problems:
            offsets = _offsets(text)
            verdict = _verdict(included, offsets) if offsets is not None else None
            if verdict is not None:
                _store_verdict(key, verdict)
    if not included.problems:
        with _MEMORY_LOCK:
            _MEMORY[name] = (key, included)
    return included


def _undecodable(path: Path) -> YamlDocument:
    from engine.policy.yaml_reader import read_yaml_file  # noqa: PLC0415  # reports the bad byte

    return read_yaml_file(path, max_bytes=MAX_INCLUDE_BYTES)


def _load_verdict(path: str, text: str, key: str) -> IncludedFile | None:
    directory = cache_dir()
    if directory is None:
        return None
    try:
        verdict = json.loads((directory / f"include-{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _from_verdict(path, text, verdict) if isinstance(verdict, dict) else None


def _store_verdict(key: str, verdict: Mapping[str, Any]) -> None:
    """Keep a verdict for other processes; silently skipped when the directory is not writable."""
    directory = cache_dir()
    if directory is None:
        return
    text = json.dumps(verdict, default=str, ensure_ascii=False)
    with contextlib.suppress(OSError):
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".include-", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, directory / f"include-{key}.json")
