"""`extends` and `include`: read a policy, its ancestors and the data files they include, merge
them key by key, keep every node's location.

The child overrides the parent key by key: mappings merge recursively, lists (and scalars) are
replaced whole, and an explicit `null` removes the parent's key.  `sources` is the exception: it
merges by `id`, so a child adding one source keeps its parent's.  A file's `include` list names
data files (markets, tables, sources: generated tier tables, typically) merged under the file
itself.  Each merged node keeps the location of the file that supplied it, so diagnostics point at
the right file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from engine.errors import PolicyError
from engine.policy.includes import INCLUDABLE_KEYS, IncludedFile, IncludedTable, read_include
from engine.policy.packaged import policies_dir
from engine.policy.yaml_reader import Pointer, SourceMap, YamlDocument, read_yaml, read_yaml_file
from engine.source import Diagnostic, SourceFile, Span

MAX_EXTENDS_DEPTH = 8


class Layer(Protocol):
    """A file of the policy: a YAML document, or an included file (spans built on demand)."""

    @property
    def source(self) -> SourceFile: ...

    @property
    def spans(self) -> SourceMap: ...

    def has(self, pointer: Pointer) -> bool: ...


@dataclass(frozen=True, slots=True)
class LayeredSpans:
    """Source maps of a policy and its ancestors, child first: the first layer that has a node owns it."""

    layers: tuple[Layer, ...]

    def _owner(self, pointer: Pointer) -> Layer | None:
        for layer in self.layers:
            if layer.has(pointer):  # without building a JSON layer's source map
                return layer
        return None

    def value_span(self, pointer: Pointer) -> Span | None:
        owner = self._owner(pointer)
        return owner.spans.value_span(pointer) if owner else None

    def key_span(self, pointer: Pointer) -> Span | None:
        owner = self._owner(pointer)
        return owner.spans.key_span(pointer) if owner else None

    def nearest_span(self, pointer: Pointer) -> Span:
        for length in range(len(pointer), -1, -1):
            span = self.value_span(pointer[:length])
            if span is not None:
                return span
        return self.layers[0].spans.nearest_span(())

    def locate(self, pointer: Pointer, key: bool) -> Span:
        """Span for a diagnostic: the key when asked and present, else the value, else nearest."""
        if key:
            span = self.key_span(pointer)
            if span is not None:
                return span
        return self.value_span(pointer) or self.nearest_span(pointer)

    def expression_origin(self, pointer: Pointer) -> tuple[SourceFile, Any, Span]:
        """(file, locate(line, column), fallback span) for parsing the expression at `pointer`."""
        owner = self._owner(pointer) or self.layers[0]
        spans = owner.spans

        def locate(line: int, column: int) -> tuple[int, int] | None:
            return spans.scalar_position(pointer, line, column)

        fallback = spans.value_span(pointer) or spans.nearest_span(pointer)
        return owner.source, locate, fallback


@dataclass(frozen=True, slots=True)
class LoadedLayers:
    data: dict[str, Any]  # merged; the tables of included files are not in it, see below
    spans: LayeredSpans
    chain: tuple[str, ...]  # every file read: policies child first, each followed by its includes
    included_tables: Mapping[str, IncludedTable] = field(default_factory=dict)
    included_digests: tuple[str, ...] = ()  # content digests of the included files, in order


def merge_sources(parent: Any, child: Any) -> Any:
    """`sources` by id: the child's entry replaces the parent's with the same id, others add."""
    if not isinstance(parent, list) or not isinstance(child, list):
        return child
    merged = list(parent)
    where = {item.get("id"): i for i, item in enumerate(merged) if isinstance(item, Mapping)}
    for item in child:
        key = item.get("id") if isinstance(item, Mapping) else None
        if isinstance(key, str) and key in where:
            merged[where[key]] = item
        else:
            merged.append(item)
    return merged


def merge(parent: Any, child: Any, *, top: bool = True) -> Any:
    """Merge `child` over `parent`: mappings recursively, everything else replaced; None deletes.

    At the top level `sources` merges by id (:func:`merge_sources`).
    """
    if isinstance(parent, Mapping) and isinstance(child, Mapping):
        merged = dict(parent)
        for key, value in child.items():
            if value is None:
                merged.pop(key, None)
            elif top and key == "sources" and key in merged:
                merged[key] = merge_sources(merged[key], value)
            elif key in merged:
                merged[key] = merge(merged[key], value, top=False)
            else:
                merged[key] = value
        return merged
    return child


_POLICY_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
POLICY_SUFFIXES = (".yaml", ".yml")


class _Refused(Exception):
    """`extends` or `include` names something that may not be read: (message, hint)."""


def _within(path: Path, folders: tuple[Path, ...]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(folder) for folder in folders)


def resolve_reference(reference: str, base: Path, allowed: tuple[Path, ...] = ()) -> Path | None:
    """A parent given as the id of a shipped policy (or a sibling file `<id>.yaml`), or as a
    path (relative to `base`) to a `.yaml`/`.yml` file inside one of the `allowed` folders.

    Raises _Refused for a reference that could name any file on the machine (a path leaving the
    allowed folders, links followed; a file that is not YAML); returns None when nothing
    acceptable exists.
    """
    if _POLICY_ID.fullmatch(reference):
        for candidate in (base.parent / f"{reference}.yaml", policies_dir() / f"{reference}.yaml"):
            if candidate.is_file():
                return candidate
        return None
    if not reference.endswith(POLICY_SUFFIXES):
        raise _Refused(
            f"the parent policy '{reference}' is neither a policy id nor a .yaml file",
            "name a shipped policy id (lowercase letters, digits, dashes) or a .yaml path",
        )
    # normpath, not resolve: diagnostics keep the path as relative as the child's
    candidate = Path(os.path.normpath(base.parent / reference))
    if not _within(candidate, allowed or (base.parent.resolve(),)):
        raise _Refused(
            f"the parent policy '{reference}' is outside the folder of the policy being loaded",
            "keep a policy's parents in its folder (or a folder below it), or use a shipped id",
        )
    return candidate if candidate.is_file() else None


def _parent_problem(code: str, message: str, span: Span | None, hint: str) -> PolicyError:
    return PolicyError(diagnostics=[Diagnostic(code, message, span, hint)])


def _includes(
    document: YamlDocument, path: Path, allowed: tuple[Path, ...] = ()
) -> list[IncludedFile]:
    """The data files `document` includes, read; raise PolicyError naming every bad entry."""
    data = document.data
    listed = data.get("include") if isinstance(data, Mapping) else None
    if not isinstance(listed, list):
        return []  # absent, or mistyped: the schema reports it
    found: list[IncludedFile] = []
    problems: list[Diagnostic] = []
    for index, reference in enumerate(listed):
        span = document.spans.value_span(("include", index))
        if not isinstance(reference, str):
            continue  # the schema reports it
        target = Path(os.path.normpath(path.parent / reference))
        if not target.is_file():  # a copy of a shipped policy still finds the shipped data
            target = policies_dir() / reference
        if not _within(target, allowed or (path.parent.resolve(), policies_dir().resolve())):
            problems.append(
                Diagnostic(
                    "E431",
                    f"the included file '{reference}' is outside the folder of the policy",
                    span,
                    "keep included files in the policy's folder (or below it)",
                )
            )
            continue
        if not target.is_file() or not reference.endswith((".yaml", ".yml", ".json")):
            problems.append(
                Diagnostic(
                    "E400",
                    f"cannot find the included file '{reference}'",
                    span,
                    f"give a path relative to this file ({path.parent}) or to the shipped"
                    " policies folder, ending in .yaml, .yml or .json",
                )
            )
            continue
        included = read_include(target)
        keys = [*included.merged, *(["tables"] if included.tables else [])]
        extra = [k for k in keys if k not in INCLUDABLE_KEYS]
        if not included.is_mapping or extra:
            what = f"key '{extra[0]}'" if extra else "a document that is not a mapping"
            problems.append(
                Diagnostic(
                    "E428",
                    f"the included file '{reference}' holds {what}",
                    span,
                    "an included file holds only "
                    + ", ".join(f"`{k}`" for k in INCLUDABLE_KEYS)
                    + "; use `extends` to reuse a whole policy",
                )
            )
            continue
        found.append(included)
    if problems:
        raise PolicyError(diagnostics=problems)
    return found


def included_table_spec(table: IncludedTable) -> dict[str, Any]:
    """An included table's declaration with its rows again (without the `tier` lookups add)."""
    rows = table.built.table.rows if table.built.table is not None else ()
    return {**table.head, "rows": [{k: v for k, v in r.items() if k != "tier"} for r in rows]}


def read_layers(path: Path) -> LoadedLayers:
    """Read `path`, every ancestor it extends and every file they include; raise PolicyError on a
    missing or cyclic parent and on a missing or malformed included file."""
    documents: list[Layer] = []
    groups: list[tuple[list[IncludedFile], YamlDocument]] = []  # per policy, child first
    seen: list[Path] = []
    chain: list[str] = []
    # Parents and included files given by path stay inside the loaded policy's folder or the
    # shipped policies.
    allowed = (path.parent.resolve(), policies_dir().resolve())
    current: Path | None = path
    while current is not None:
        document = read_yaml_file(current)
        if groups and not isinstance(document.data, Mapping):
            child = groups[-1][1]
            raise _parent_problem(
                "E432",
                f"the parent policy {current} is not a policy: its top level is not a mapping",
                child.spans.value_span(("extends",)),
                "extend a policy file",
            )
        included = _includes(document, current, allowed)
        documents.append(document)
        documents.extend(reversed(included))  # the last include wins over earlier ones
        groups.append((included, document))
        seen.append(current.resolve())
        chain.append(str(current.resolve()))
        chain.extend(str(Path(f.path).resolve()) for f in included)
        data = document.data
        reference = data.get("extends") if isinstance(data, Mapping) else None
        if not isinstance(reference, str):
            break
        span = document.spans.value_span(("extends",))
        try:
            parent = resolve_reference(reference, current, allowed)
        except _Refused as refused:
            message, hint = refused.args
            raise _parent_problem("E431", message, span, hint) from None
        if parent is None:
            shipped = ", ".join(p.stem for p in sorted(policies_dir().glob("*.yaml")))
            raise _parent_problem(
                "E400",
                f"cannot find the parent policy '{reference}'",
                span,
                f"give a path relative to this file ({current.parent}) or a shipped id: {shipped}",
            )
        if parent.resolve() in seen:
            names = " → ".join(p.name for p in [*seen, parent.resolve()])
            raise PolicyError(
                diagnostics=[
                    Diagnostic("E401", f"policies extend each other in a cycle: {names}", span)
                ]
            )
        if len(seen) > MAX_EXTENDS_DEPTH:
            raise PolicyError(
                diagnostics=[
                    Diagnostic("E401", f"more than {MAX_EXTENDS_DEPTH} levels of extends", span)
                ]
            )
        current = parent
    return merge_layers(groups, documents, chain)


Group = tuple[list[IncludedFile], YamlDocument]  # one policy file and the files it includes


def merge_layers(
    groups: Sequence[Group], documents: Sequence[Layer], chain: Sequence[str]
) -> LoadedLayers:
    """Merge an already-read chain of policies (child first, each with its includes) into one."""
    merged: Any = {}
    tables: dict[str, IncludedTable] = {}
    digests: list[str] = []
    for included, document in reversed(groups):
        for file in included:
            merged = merge(merged, file.merged) if isinstance(merged, Mapping) else merged
            tables.update(file.tables)
            digests.append(file.digest)
        data = document.data if document.data is not None else {}
        own = data.get("tables") if isinstance(data, Mapping) else None
        if isinstance(own, Mapping) and isinstance(merged, Mapping):
            for name in [n for n in own if n in tables]:  # merges over the included table
                merged = merge(merged, {"tables": {name: included_table_spec(tables.pop(name))}})
        merged = merge(merged, data) if isinstance(data, Mapping) else data
    if isinstance(merged, Mapping):
        merged = dict(merged)
        merged.pop("extends", None)
        merged.pop("include", None)
        top = groups[0][1].data
        if isinstance(top, Mapping):
            for key in ("extends", "include"):
                if key in top:
                    merged[key] = top[key]
    return LoadedLayers(
        merged, LayeredSpans(tuple(documents)), tuple(chain), tables, tuple(digests)
    )


def layers_from_texts(chain: Sequence[tuple[str, str]]) -> LoadedLayers:
    """A policy handed over as texts, child first, each (path, text), its parents resolved already.

    Lets a process with no access to the files (a sweep's worker) load exactly the policy its
    coordinator read: the chain is taken as given, so `extends` is not resolved again, but each
    layer but the last must name a parent and the last none (else E400).  Included data files are
    read relative to each path, then from the shipped policies folder (so shipped tier tables
    travel with the package, not the task).
    """
    if not chain:
        raise PolicyError(diagnostics=[Diagnostic("E001", "no policy text given")])
    policies = [read_yaml(text, path) for path, text in chain]
    for index, document in enumerate(policies):
        data = document.data
        reference = data.get("extends") if isinstance(data, Mapping) else None
        if isinstance(reference, str) != (index < len(policies) - 1):
            span = document.spans.value_span(("extends",)) or document.spans.nearest_span(())
            message = (
                f"the parent policy '{reference}' was not handed over with this policy"
                if isinstance(reference, str)
                else "a parent policy was handed over but this policy extends none"
            )
            raise PolicyError(diagnostics=[Diagnostic("E400", message, span)])
    if len(policies) > MAX_EXTENDS_DEPTH + 1:
        span = policies[0].spans.nearest_span(())
        message = f"more than {MAX_EXTENDS_DEPTH} levels of extends"
        raise PolicyError(diagnostics=[Diagnostic("E401", message, span)])
    groups: list[Group] = []
    documents: list[Layer] = []
    names: list[str] = []
    for (path, _), document in zip(chain, policies, strict=True):
        included = _includes(document, Path(path))
        groups.append((included, document))
        documents.append(document)
        documents.extend(reversed(included))
        names.append(path)
        names.extend(str(Path(f.path).resolve()) for f in included)
    return merge_layers(groups, documents, names)
