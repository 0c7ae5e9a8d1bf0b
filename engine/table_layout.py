"""Tables of text cells laid out to fit: aligned text for terminals, Markdown blocks, HTML.

A :class:`Table` holds rows of cells already formatted as text (money with separators, "—" for
a missing value).  Its first `stub` columns name the row (a figure's label, an account id); the
others hold values (one per policy, say).  Reports build tables; this module decides how they
fit, the same way for every report:

- text (:func:`text_lines`): the columns aligned as they are when they fit `width`.  When they
  do not, headers wrap at ``-``, ``_``, ``/`` and spaces; when the table is still too wide, the
  value columns are split into blocks of even size laid one under the other, each repeating
  the stub columns.  A value is never cut: a single column wider than `width` overflows.
- Markdown (:func:`markdown_lines`): blocks of at most `max_columns` value columns, each a
  table repeating the stub columns, so the raw text stays readable and the rendered page needs
  no sideways scrolling.
- HTML (:func:`html_lines`, :func:`scrolling`): one table, in a wrapper that scrolls sideways
  with the stub column kept in view (:data:`SCROLL_CSS`).

Text widths are counted in terminal cells (East Asian wide characters take two), and text is
painted (:mod:`engine.paint`) only after it is measured and padded.  This module knows nothing
of policies or money: it is shared by the reports and by the results' notebook display.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from html import escape
from typing import Literal

from engine.paint import Paint, Role, no_paint

Align = Literal["left", "right"]
GAP = 2  # spaces between text columns
MARKDOWN_COLUMNS = 4  # value columns per Markdown block
_BREAK = re.compile(r"[^-_/ ]*[-_/ ]|[^-_/ ]+")  # pieces of a header, each ending at a break


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    align: Align = "right"


@dataclass(frozen=True, slots=True)
class TableRow:
    """One row: a cell per column; `level` indents the first cell (a detail of the row above).

    `role` "heading" makes the row a group heading (its value cells are empty); any other role
    paints the value cells (e.g. "differs" when the values are not all equal).
    """

    cells: tuple[str, ...]
    level: int = 0
    role: Role | None = None


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[Column, ...]
    rows: tuple[TableRow, ...]
    stub: int = 1  # leading columns that name a row, repeated in every block

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row.cells) != len(self.columns):
                raise ValueError(
                    f"a row has {len(row.cells)} cells for {len(self.columns)} columns"
                )

    @property
    def value_columns(self) -> int:
        return len(self.columns) - self.stub

    def block(self, values: Sequence[int]) -> Table:
        """The stub columns and the value columns at `values` (0-based among value columns)."""
        keep = [*range(self.stub), *(self.stub + i for i in values)]
        return replace(
            self,
            columns=tuple(self.columns[i] for i in keep),
            rows=tuple(replace(row, cells=tuple(row.cells[i] for i in keep)) for row in self.rows),
        )


def cell_width(text: str) -> int:
    """Terminal cells `text` takes: wide East Asian characters two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def pad(
    text: str, width: int, align: Align = "left", paint: Paint = no_paint, role: Role | None = None
) -> str:
    """`text` padded with spaces to `width` cells; painted (when `role` is given) inside the padding."""
    fill = " " * max(0, width - cell_width(text))
    shown = paint(text, role) if role is not None and text else text
    return fill + shown if align == "right" else shown + fill


def wrap_header(header: str, width: int) -> list[str]:
    """A header broken after ``-``, ``_``, ``/`` or at spaces into lines of at most `width`
    cells where it can be (a piece longer than `width` stays whole)."""
    lines: list[str] = []
    current = ""
    for piece in _BREAK.findall(header):
        if current and cell_width((current + piece).rstrip()) > width:
            lines.append(current.rstrip())
            current = ""
        current += piece
    if current.strip() or not lines:
        lines.append(current.rstrip())
    return lines


@dataclass(frozen=True, slots=True)
class _Block:
    table: Table
    headers: tuple[tuple[str, ...], ...]  # header lines per column
    widths: tuple[int, ...]

    @property
    def width(self) -> int:
        return sum(self.widths) + GAP * (len(self.widths) - 1)


def _cells(table: Table, index: int) -> list[str]:
    if index == 0:
        return ["  " * row.level + row.cells[0] for row in table.rows if row.role != "heading"]
    return [row.cells[index] for row in table.rows if row.role != "heading"]


def _measure(table: Table, *, wrap: bool) -> _Block:
    headers: list[tuple[str, ...]] = []
    widths: list[int] = []
    for index, column in enumerate(table.columns):
        cells = _cells(table, index)
        if index == 0:  # group headings sit in the first column
            cells += [
                "  " * row.level + row.cells[0] for row in table.rows if row.role == "heading"
            ]
        body = max(map(cell_width, cells), default=0)
        lines = [column.header]
        if wrap and index >= table.stub and cell_width(column.header) > body:
            lines = wrap_header(column.header, body)
        headers.append(tuple(lines))
        widths.append(max(body, *map(cell_width, lines)))
    return _Block(table, tuple(headers), tuple(widths))


def _even_groups(count: int, groups: int) -> list[list[int]]:
    """`count` indices in `groups` contiguous groups whose sizes differ by at most one."""
    size, extra = divmod(count, groups)
    found, start = [], 0
    for number in range(groups):
        end = start + size + (1 if number < extra else 0)
        found.append(list(range(start, end)))
        start = end
    return found


def fit(table: Table, width: int | None) -> list[_Block]:
    """The blocks `table` is shown in at `width` cells (None: no limit)."""
    natural = _measure(table, wrap=False)
    if width is None or natural.width <= width or table.value_columns <= 1:
        return [natural]
    wrapped = _measure(table, wrap=True)
    if wrapped.width <= width:
        return [wrapped]
    stub = sum(wrapped.widths[: table.stub]) + GAP * (table.stub - 1)
    costs = [GAP + w for w in wrapped.widths[table.stub :]]
    for groups in range(2, table.value_columns + 1):
        split = _even_groups(table.value_columns, groups)
        if all(stub + sum(costs[i] for i in group) <= width for group in split):
            break
    return [_measure(table.block(group), wrap=True) for group in split]


def _render(block: _Block, indent: str, paint: Paint) -> list[str]:
    table = block.table
    height = max(map(len, block.headers))
    lines = []
    for line in range(height):
        cells = []
        for column, header, width in zip(table.columns, block.headers, block.widths, strict=True):
            text = ([""] * (height - len(header)) + list(header))[line]
            cells.append(pad(text, width, column.align, paint, "heading"))
        lines.append((indent + (" " * GAP).join(cells)).rstrip())
    for row in table.rows:
        if row.role == "heading":
            label = "  " * row.level + row.cells[0]
            lines.append((indent + pad(label, 0, "left", paint, "heading")).rstrip())
            continue
        cells = []
        for index, (column, width) in enumerate(zip(table.columns, block.widths, strict=True)):
            text = ("  " * row.level + row.cells[0]) if index == 0 else row.cells[index]
            role = row.role if index >= table.stub else None
            cells.append(pad(text, width, column.align, paint, role))
        lines.append((indent + (" " * GAP).join(cells)).rstrip())
    return lines


def text_lines(
    table: Table, *, width: int | None = None, indent: int = 0, paint: Paint = no_paint
) -> list[str]:
    """The table as aligned text lines that fit in `width` cells where they can (module doc)."""
    blocks = fit(table, None if width is None else width - indent)
    lines: list[str] = []
    for number, block in enumerate(blocks):
        if number:
            lines.append("")
        lines += _render(block, " " * indent, paint)
    return lines


def markdown_lines(table: Table, *, max_columns: int = MARKDOWN_COLUMNS) -> list[str]:
    """GitHub-flavoured Markdown tables of cells the caller escaped: at most `max_columns`
    value columns each, blocks separated by a blank line."""
    groups = -(-table.value_columns // max_columns) if table.value_columns else 1
    lines: list[str] = []
    for number, group in enumerate(_even_groups(table.value_columns, groups)):
        block = table.block(group)
        if number:
            lines.append("")
        align = ["---:" if c.align == "right" else "---" for c in block.columns]
        lines.append("| " + " | ".join(c.header for c in block.columns) + " |")
        lines.append("| " + " | ".join(align) + " |")
        lines += ["| " + " | ".join(row.cells) + " |" for row in block.rows]
    return lines


SCROLL_CSS = """
.table-scroll { overflow-x: auto; max-width: 100%; }
.table-scroll table { margin: 0; }
.table-scroll tbody th:first-child, .table-scroll thead th:first-child {
  position: sticky; left: 0; background: #fff; z-index: 1; }
"""


def scrolling(lines: Sequence[str]) -> list[str]:
    """HTML table lines inside a wrapper that scrolls sideways, first column kept in view
    (nothing for no lines)."""
    return ['<div class="table-scroll">', *lines, "</div>"] if lines else []


def html_lines(table: Table, *, caption: str | None = None) -> list[str]:
    """A plain HTML table (text escaped here): stub cells as row headers, groups spanning the row."""
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append("<thead><tr>")
    out += [
        f'<th scope="col" style="text-align: {c.align}">{escape(c.header)}</th>'
        for c in table.columns
    ]
    out.append("</tr></thead><tbody>")
    for row in table.rows:
        if row.role == "heading":
            out.append(
                f'<tr><th scope="row" colspan="{len(table.columns)}" style="text-align: left">'
                f"{escape(row.cells[0])}</th></tr>"
            )
            continue
        cells = []
        for index, (column, text) in enumerate(zip(table.columns, row.cells, strict=True)):
            style = f"text-align: {column.align}"
            if index == 0 and row.level:
                style += f"; padding-left: {0.5 + 1.2 * row.level:g}em"
            if index < table.stub:
                cells.append(f'<th scope="row" style="{style}">{escape(text)}</th>')
            else:
                if row.role == "differs":
                    style += "; font-weight: bold"
                cells.append(f'<td style="{style}">{escape(text)}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return out
