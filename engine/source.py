"""Source files, spans and diagnostics: the one place where positions are converted and rendered.

Lines and columns are 1-based everywhere in liqpolicy (lark's convention); PyYAML's 0-based marks
are converted when the YAML layer builds a :class:`Span`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from engine.paint import Paint, no_paint

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A named text that diagnostics point into (a policy file, or `<expr>` for the CLI)."""

    path: str
    text: str = field(repr=False)
    _lines: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def line(self, number: int) -> str:
        """Return line `number` (1-based) without its newline, or '' when out of range."""
        lines = self._lines
        if lines is None:  # split once: thousands of diagnostics may point into one file
            lines = tuple(self.text.splitlines())
            object.__setattr__(self, "_lines", lines)  # a cache, set whole (threads share files)
        return lines[number - 1] if 1 <= number <= len(lines) else ""

    def position(self, offset: int) -> tuple[int, int]:
        """Return the 1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = self.text.count("\n", 0, offset) + 1
        start = self.text.rfind("\n", 0, offset) + 1
        return line, offset - start + 1


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file: start inclusive, end exclusive, 1-based lines and columns."""

    source: SourceFile = field(repr=False, compare=False)
    line: int
    column: int
    end_line: int
    end_column: int

    @property
    def path(self) -> str:
        return self.source.path

    def location(self) -> str:
        return f"{self.source.path}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in user input, whatever the layer that found it.

    Exceptions carry diagnostics; rendering is separate (:func:`render_text`, :func:`to_json`).
    """

    code: str
    message: str
    span: Span | None = None
    hint: str | None = None
    severity: Severity = "error"
    path: str | None = None  # used when there is no span (e.g. an unreadable file)

    @property
    def location_path(self) -> str:
        if self.span is not None:
            return self.span.path
        return self.path or "<input>"

    def sort_key(self) -> tuple[str, int, int, str]:
        if self.span is None:
            return (self.location_path, 0, 0, self.code)
        return (self.span.path, self.span.line, self.span.column, self.code)

    def as_dict(self) -> dict[str, object]:
        span = self.span
        return {
            "path": self.location_path,
            "line": span.line if span else None,
            "column": span.column if span else None,
            "end_line": span.end_line if span else None,
            "end_column": span.end_column if span else None,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sort by file and position and drop exact duplicates, keeping the first of each."""
    seen: set[tuple[object, ...]] = set()
    unique: list[Diagnostic] = []
    for diagnostic in sorted(diagnostics, key=Diagnostic.sort_key):
        key = (*diagnostic.sort_key(), diagnostic.message)
        if key not in seen:
            seen.add(key)
            unique.append(diagnostic)
    return unique


EXCERPT_WIDTH = 240  # characters of a source line shown around a caret
_CONTEXT = 120  # of which before the caret, when the line is cut


def _excerpt(line: str, column: int, width: int) -> tuple[str, int, int]:
    """The part of a long line around `column` (…-marked where cut), the column and width in it.

    A one-line JSON body can be a megabyte long; quoting it whole under each of thousands of
    diagnostics would cost gigabytes.
    """
    if len(line) <= EXCERPT_WIDTH:
        return line, column, width
    start = max(0, column - 1 - _CONTEXT)
    end = start + EXCERPT_WIDTH
    head = "…" if start > 0 else ""
    tail = "…" if end < len(line) else ""
    shown = head + line[start:end] + tail
    column = column - start + len(head)
    return shown, column, max(1, min(width, len(shown) - len(tail) - column + 1))


def render_text(diagnostic: Diagnostic, *, paint: Paint = no_paint) -> str:
    """Render GNU style: `path:line:col: error[CODE]: message`, the source line, a caret, a hint.

    `paint` styles the location, the severity, the caret and the hint (plain by default)."""
    span = diagnostic.span
    severity = paint(f"{diagnostic.severity}[{diagnostic.code}]", diagnostic.severity)
    head = f"{severity}: {diagnostic.message}"
    if span is None:
        lines = [f"{paint(diagnostic.location_path + ':', 'location')} {head}"]
    else:
        lines = [f"{paint(span.location() + ':', 'location')} {head}"]
        source_line = span.source.line(span.line)
        if source_line or span.source.text:
            gutter = str(span.line)
            pad = " " * len(gutter)
            if span.end_line == span.line:
                width = max(1, span.end_column - span.column)
            else:
                width = max(1, len(source_line) - span.column + 1)
            shown, column, width = _excerpt(source_line, span.column, width)
            prefix = shown[: column - 1].expandtabs()
            marked = shown[column - 1 : column - 1 + width].expandtabs()
            width = max(1, min(len(marked), width)) if marked else 1
            bar = paint("|", "muted")
            lines.append(f" {paint(gutter, 'muted')} {bar} {shown.expandtabs()}")
            caret = paint(f"^{'~' * (width - 1)}", diagnostic.severity)
            lines.append(f" {pad} {bar} {' ' * len(prefix)}{caret}")
    if diagnostic.hint:
        lines.append(f"{paint('hint:', 'note')} {diagnostic.hint}")
    return "\n".join(lines)


def render_all(diagnostics: Sequence[Diagnostic]) -> str:
    """Render many diagnostics separated by blank lines, followed by a count."""
    blocks = [render_text(d) for d in diagnostics]
    errors = sum(1 for d in diagnostics if d.severity == "error")
    warnings = len(diagnostics) - errors
    summary = f"{errors} error{'s' if errors != 1 else ''}"
    if warnings:
        summary += f", {warnings} warning{'s' if warnings != 1 else ''}"
    return "\n\n".join([*blocks, summary]) if blocks else ""


def to_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps([d.as_dict() for d in diagnostics], indent=2)
