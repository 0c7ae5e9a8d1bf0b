"""Where the CLI writes: results to stdout, diagnostics and messages to stderr.

Each stream has a painter (engine/paint.py): colour on a colour terminal, plain text in a pipe,
a file or a test (engine/cli/terminal.py decides).  `width` is the width text tables fit in
(None: no limit).  Before writing to one stream the other is flushed, so `2>&1` keeps
diagnostics next to the result lines they explain.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TextIO

from engine.paint import Paint, no_paint
from engine.source import Diagnostic, render_text


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def count_diagnostics(diagnostics: Iterable[Diagnostic]) -> str:
    """'2 errors, 1 warning' (warnings only mentioned when there are some)."""
    items = list(diagnostics)
    errors = sum(1 for d in items if d.severity == "error")
    text = plural(errors, "error")
    warnings = len(items) - errors
    return text + (f", {plural(warnings, 'warning')}" if warnings else "")


class Output:
    """The two streams of one CLI run, and the ways commands write to them."""

    def __init__(
        self,
        stdout: TextIO,
        stderr: TextIO,
        *,
        prog: str = "liqpolicy",
        paint: Paint = no_paint,
        paint_errors: Paint = no_paint,
        width: int | None = None,
        colour_errors: bool = False,
    ) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.prog = prog
        self.paint = paint  # for stdout
        self.paint_errors = paint_errors  # for stderr
        self.width = width
        self.colour_errors = colour_errors  # stderr gets colour (the progress display's too)

    def _write(self, stream: TextIO, other: TextIO, text: str) -> None:
        other.flush()
        stream.write(text)
        stream.flush()

    def line(self, text: str = "") -> None:
        """A result line on stdout."""
        self._write(self.stdout, self.stderr, text + "\n")

    def text(self, text: str) -> None:
        """A block of result text on stdout, newline-terminated."""
        self._write(self.stdout, self.stderr, text if text.endswith("\n") else text + "\n")

    def json(self, data: object) -> None:
        """One JSON document on stdout."""
        self.text(json.dumps(data, indent=2, ensure_ascii=False))

    def message(self, text: str) -> None:
        """A line on stderr (a note, an error without a location)."""
        self._write(self.stderr, self.stdout, text + "\n")

    def error(self, message: str, hint: str | None = None) -> None:
        """`liqpolicy CMD: error: message` on stderr, like argparse's own usage errors."""
        paint = self.paint_errors
        self.message(f"{self.prog}: {paint('error:', 'error')} {message}")
        if hint:
            self.message(f"{paint('hint:', 'note')} {hint}")

    def warning(self, message: str) -> None:
        """`warning: message` on stderr."""
        self.message(f"{self.paint_errors('warning:', 'warning')} {message}")

    def diagnostics(self, diagnostics: Iterable[Diagnostic]) -> None:
        """Each diagnostic rendered with its source line and caret, followed by a blank line."""
        paint = self.paint_errors
        text = "".join(render_text(d, paint=paint) + "\n\n" for d in diagnostics)
        if text:
            self._write(self.stderr, self.stdout, text)

    def error_document(
        self,
        *,
        exit_code: int,
        kind: str,
        code: str,
        message: str,
        diagnostics: Iterable[Diagnostic] = (),
    ) -> None:
        """Under `--format json`, a failure as one JSON document on stdout (as `validate`
        reports problems), so a program reading stdout always gets JSON: what went wrong
        (`kind`, `code`, `message`), where (`location`, the first error's), and every
        diagnostic.  The text on stderr is unchanged."""
        items = list(diagnostics)
        first = next((d for d in items if d.severity == "error"), items[0] if items else None)
        location = None
        if first is not None:
            shown = first.as_dict()
            location = {
                key: shown[key] for key in ("path", "line", "column", "end_line", "end_column")
            }
        self.json(
            {
                "ok": False,
                "exit_code": exit_code,
                "error": {
                    "kind": kind,
                    "code": code,
                    "message": message,
                    "location": location,
                    "diagnostics": [d.as_dict() for d in items],
                },
            }
        )
