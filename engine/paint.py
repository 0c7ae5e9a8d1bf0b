"""Styling hooks for text output: renderers name what a piece of text *is*, callers decide its look.

Renderers (reports, diagnostics, tables) take a :data:`Paint` and pass each piece of text through
it with a :data:`Role`.  The default, :func:`no_paint`, returns the text unchanged, so output in a
file, a pipe, a test or the JSON formats carries no escape codes; the CLI passes a painter that
adds terminal colour when the stream is a colour terminal (``engine/cli/terminal.py``).  Painted
text is wider in characters than it looks, so callers measure and pad *before* painting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Role = Literal[
    "heading",  # section titles, table headers and group rows
    "differs",  # a figure that differs between the policies compared
    "muted",  # secondary text: a missing value, a digest, an explanation
    "good",  # a check that passed, a conservation error of 0
    "bad",  # a check that failed
    "error",  # `error[E...]` in a diagnostic, `error:` in a message
    "warning",  # `warning[...]`, `warning:`
    "note",  # `hint:` and other advice
    "location",  # `path:line:col` of a diagnostic
]
ROLES: tuple[Role, ...] = (
    "heading",
    "differs",
    "muted",
    "good",
    "bad",
    "error",
    "warning",
    "note",
    "location",
)

Paint = Callable[[str, Role], str]


def no_paint(text: str, role: Role) -> str:
    """The text as it is: the painter of every output that is not a colour terminal."""
    del role
    return text
