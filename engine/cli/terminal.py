"""The terminal side of the CLI: which streams get colour, how wide they are, the painter.

Colour is decided per stream, first rule that applies:

1. ``--color always`` or ``--color never`` (``auto``, the default, goes on to the next rules);
2. ``NO_COLOR`` set and not empty: no colour (https://no-color.org);
3. ``FORCE_COLOR`` set and not empty: colour, unless it is ``0`` or ``false``;
4. ``TERM=dumb``: no colour;
5. colour exactly when the stream is a terminal.

So a pipe, a file, a test's ``StringIO`` and every ``--output FILE`` get plain text, and JSON
never carries escape codes (its formats are never painted).  Text tables fit the width of the
terminal stdout is (``COLUMNS`` when set), or ``--width``; in a pipe they have no limit unless
``--width`` is given, so piped output does not depend on the window it was run from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, TextIO

from engine.paint import Paint, Role, no_paint

ColorChoice = Literal["auto", "always", "never"]
COLOR_CHOICES: tuple[ColorChoice, ...] = ("auto", "always", "never")
FALLBACK_WIDTH = 80  # a terminal whose size cannot be read

# How each role looks: rich style definitions, basic colours only (readable on dark and light
# backgrounds, and on 16-colour terminals).
THEME: Mapping[Role, str] = {
    "heading": "bold",
    "differs": "yellow",
    "muted": "dim",
    "good": "green",
    "bad": "bold red",
    "error": "bold red",
    "warning": "bold yellow",
    "note": "cyan",
    "location": "bold",
}


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def wants_colour(
    stream: TextIO, choice: ColorChoice = "auto", environ: Mapping[str, str] | None = None
) -> bool:
    """Whether to paint what goes to `stream` (rules in the module docstring)."""
    if choice != "auto":
        return choice == "always"
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    force = env.get("FORCE_COLOR")
    if force:
        return force.lower() not in ("0", "false")
    if env.get("TERM") == "dumb":
        return False
    return is_terminal(stream)


def terminal_width(stream: TextIO, environ: Mapping[str, str] | None = None) -> int | None:
    """The columns of the terminal `stream` is, or None when it is not a terminal."""
    if not is_terminal(stream):
        return None
    env = os.environ if environ is None else environ
    columns = env.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns or FALLBACK_WIDTH
    except (AttributeError, OSError, ValueError):
        return FALLBACK_WIDTH


def painter(stream: TextIO, colour: bool) -> Paint:
    """A painter that wraps text in the escape codes of its role's style, or :func:`no_paint`.

    rich renders the styles for the colour system the terminal reports (16, 256 or true
    colour); a legacy Windows console, which shows escape codes as text, gets none.
    """
    if not colour:
        return no_paint
    from rich.console import COLOR_SYSTEMS, Console  # noqa: PLC0415  # only for a colour terminal
    from rich.style import Style  # noqa: PLC0415

    console = Console(file=stream, force_terminal=True)
    if console.legacy_windows:
        return no_paint
    system = COLOR_SYSTEMS.get(console.color_system or "standard", COLOR_SYSTEMS["standard"])
    styles = {role: Style.parse(spec) for role, spec in THEME.items()}

    def paint(text: str, role: Role) -> str:
        return styles[role].render(text, color_system=system)

    return paint
