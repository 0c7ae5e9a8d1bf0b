"""`extends`: read a policy and its ancestors, merge them key by key, keep every node's location.

The child overrides the parent key by key: mappings merge recursively, lists (and scalars) are
replaced whole, and an explicit `null` removes the parent's key.  Each merged node keeps the
location of the file that supplied it, so diagnostics point at the right file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import PolicyError
from engine.policy.packaged import policies_dir
from engine.policy.yaml_reader import Pointer, YamlDocument, read_yaml, read_yaml_file
from engine.source import Diagnostic, SourceFile, Span

MAX_EXTENDS_DEPTH = 8


@dataclass(frozen=True, slots=True)
class LayeredSpans:
    """Source maps of a policy and its ancestors, child first: the first layer that has a node owns it."""

    layers: tuple[YamlDocument, ...]

    def _owner(self, pointer: Pointer) -> YamlDocument | None:
        for layer in self.layers:
            if layer.spans.value_span(pointer) is not None:
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
    data: dict[str, Any]
    spans: LayeredSpans
    chain: tuple[str, ...]  # paths, child first


def merge(parent: Any, child: Any) -> Any:
    """Merge `child` over `parent`: mappings recursively, everything else replaced; None deletes."""
    if isinstance(parent, Mapping) and isinstance(child, Mapping):
        merged = dict(parent)
        for key, value in child.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
        return merged
    return child


def resolve_reference(reference: str, base: Path) -> Path | None:
    """A parent given as a relative path, or as the id of a shipped policy (or a sibling file)."""
    candidates: list[Path] = []
    if reference.endswith((".yaml", ".yml")) or "/" in reference:
        # normpath, not resolve: diagnostics keep the path as relative as the child's
        candidates.append(Path(os.path.normpath(base.parent / reference)))
    else:
        candidates.append(base.parent / f"{reference}.yaml")
        candidates.append(policies_dir() / f"{reference}.yaml")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def read_layers(path: Path) -> LoadedLayers:
    """Read `path` and every ancestor it extends; raise PolicyError on a missing or cyclic parent."""
    documents: list[YamlDocument] = []
    seen: list[Path] = []
    current: Path | None = path
    while current is not None:
        document = read_yaml_file(current)
        documents.append(document)
        seen.append(current.resolve())
        data = document.data
        reference = data.get("extends") if isinstance(data, Mapping) else None
        if not isinstance(reference, str):
            break
        span = document.spans.value_span(("extends",))
        parent = resolve_reference(reference, current)
        if parent is None:
            shipped = ", ".join(p.stem for p in sorted(policies_dir().glob("*.yaml")))
            raise PolicyError(
                diagnostics=[
                    Diagnostic(
                        "E400",
                        f"cannot find the parent policy '{reference}'",
                        span,
                        f"give a path relative to this file ({current.parent}) or a shipped id: {shipped}",
                    )
                ]
            )
        if parent.resolve() in seen:
            names = " → ".join(p.name for p in [*seen, parent.resolve()])
            raise PolicyError(
                diagnostics=[
                    Diagnostic("E401", f"policies extend each other in a cycle: {names}", span)
                ]
            )
        if len(documents) > MAX_EXTENDS_DEPTH:
            raise PolicyError(
                diagnostics=[
                    Diagnostic("E401", f"more than {MAX_EXTENDS_DEPTH} levels of extends", span)
                ]
            )
        current = parent
    return merge_layers(documents, tuple(str(p) for p in seen))


def merge_layers(documents: Sequence[YamlDocument], chain: Sequence[str]) -> LoadedLayers:
    """Merge an already-read chain of documents, child first, into one policy's data."""
    merged: Any = {}
    for document in reversed(documents):
        data = document.data if document.data is not None else {}
        merged = merge(merged, data) if isinstance(data, Mapping) else data
    if isinstance(merged, Mapping):
        merged = dict(merged)
        merged.pop("extends", None)
        if isinstance(documents[0].data, Mapping) and "extends" in documents[0].data:
            merged["extends"] = documents[0].data["extends"]
    return LoadedLayers(merged, LayeredSpans(tuple(documents)), tuple(chain))


def layers_from_texts(chain: Sequence[tuple[str, str]]) -> LoadedLayers:
    """A policy handed over as texts, child first, each (path, text), its parents resolved already.

    Lets a process with no access to the files (a sweep's worker) load exactly the policy its
    coordinator read: the chain is taken as given, so `extends` is not resolved again, but each
    layer but the last must name a parent and the last none (else E400).
    """
    if not chain:
        raise PolicyError(diagnostics=[Diagnostic("E001", "no policy text given")])
    documents = [read_yaml(text, path) for path, text in chain]
    for index, document in enumerate(documents):
        data = document.data
        reference = data.get("extends") if isinstance(data, Mapping) else None
        if isinstance(reference, str) != (index < len(documents) - 1):
            span = document.spans.value_span(("extends",)) or document.spans.nearest_span(())
            message = (
                f"the parent policy '{reference}' was not handed over with this policy"
                if isinstance(reference, str)
                else "a parent policy was handed over but this policy extends none"
            )
            raise PolicyError(diagnostics=[Diagnostic("E400", message, span)])
    if len(documents) > MAX_EXTENDS_DEPTH + 1:
        span = documents[0].spans.nearest_span(())
        message = f"more than {MAX_EXTENDS_DEPTH} levels of extends"
        raise PolicyError(diagnostics=[Diagnostic("E401", message, span)])
    return merge_layers(documents, [path for path, _ in chain])
