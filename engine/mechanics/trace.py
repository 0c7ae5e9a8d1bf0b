"""The trace: what was evaluated, with the values read and the policy line it came from."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.dsl.runtime import Frame, Value, show_value
from engine.source import Span


@dataclass(frozen=True, slots=True)
class TraceEntry:
    kind: str  # definition | condition | expression | step | order | fee | note
    name: str
    value: str
    location: str | None = None  # policy file:line
    reads: tuple[tuple[str, str], ...] = ()
    subject: str | None = None  # the position it was evaluated for, e.g. "BTCUSDT long"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "value": self.value,
            "location": self.location,
            "reads": [{"name": n, "value": v} for n, v in self.reads],
            "subject": self.subject,
        }


def location(span: Span | None) -> str | None:
    """`file:line`, relative to the working directory when the file lies below it."""
    if span is None:
        return None
    path = span.path
    with contextlib.suppress(ValueError):
        path = str(Path(path).resolve().relative_to(Path.cwd()))
    return f"{path}:{span.line}"


def subject_of(frame: Frame) -> str | None:
    position = frame.position
    if position is None:
        return None
    return f"{position.get('symbol')} {position.get('side')}"


@dataclass(slots=True)
class Trace:
    """Collects entries while a liquidation runs (only when a trace was asked for)."""

    entries: list[TraceEntry] = field(default_factory=list)
    definition_spans: dict[str, Span] = field(default_factory=dict)

    def definition(
        self, name: str, frame: Frame, value: Value, reads: list[tuple[str, Value]]
    ) -> None:
        self.entries.append(
            TraceEntry(
                "definition",
                name,
                show_value(value),
                location(self.definition_spans.get(name)),
                tuple((text, show_value(v)) for text, v in reads),
                subject_of(frame),
            )
        )

    def add(
        self,
        kind: str,
        name: str,
        value: Value,
        span: Span | None = None,
        subject: str | None = None,
    ) -> None:
        shown = (
            value
            if isinstance(value, str) and kind in ("step", "note", "order")
            else show_value(value)
        )
        self.entries.append(TraceEntry(kind, name, shown, location(span), (), subject))
