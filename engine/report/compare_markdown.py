"""The side-by-side comparison as Markdown (GitHub-flavoured tables), for issues and docs."""

from __future__ import annotations

import re
from collections.abc import Sequence

from engine.report.account_text import money
from engine.report.compare_text import curve_caption, curve_rows, fate_text, summary_rows
from engine.simulation.compare import Comparison
from engine.table_layout import Column, Table, TableRow, markdown_lines

_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def cell(text: str, *, code: bool = False) -> str:
    """Table-cell text: line breaks flattened, pipes escaped; outside code spans also
    backslashes and a `<` that could open an HTML tag (so text never turns into HTML)."""
    flat = " ".join(text.split())
    if not code:
        flat = _TAG_START.sub(r"\\<", flat.replace("\\", "\\\\"))
    return flat.replace("|", "\\|")


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] | None = None
) -> list[str]:
    """Markdown tables of cells already escaped with :func:`cell`; the `right` columns
    (default: all but the first) are right-aligned.  Past four columns after the first, the
    table is split in blocks that each repeat the first column (engine/table_layout.py)."""
    numeric = set(range(1, len(headers)) if right is None else right)
    columns = tuple(Column(h, "right" if i in numeric else "left") for i, h in enumerate(headers))
    return markdown_lines(Table(columns, tuple(TableRow(tuple(row)) for row in rows)))


def render_comparison_markdown(comparison: Comparison) -> str:
    scenario = comparison.scenario
    ids = comparison.policy_ids
    lines = [
        f"# {cell(scenario.title)}",
        "",
        f"Scenario `{cell(scenario.id, code=True)}` ({len(scenario.times()):,} steps of "
        f"{scenario.step_seconds} s), book "
        f"`{cell(comparison.book_path or '(in memory)', code=True)}` "
        f"({comparison.book_size:,} accounts).",
        "",
    ]
    lines += [
        f"- **{cell(r.policy_id)}**: {cell(r.policy_title)} (`{r.policy_digest[:19]}…`)"
        for r in comparison.results
    ]
    lines += [f"- **{cell(s.policy_id)}** skipped: {cell(s.reason)}" for s in comparison.skipped]
    lines += ["", "## Side by side", ""]
    rows = []
    for row in summary_rows(comparison.results):
        label = f"{'↳' * row.level} {row.label}" if row.level else row.label
        if row.heading:
            rows.append([f"**{cell(label)}**", *("" for _ in ids)])
        else:
            rows.append([cell(label), *(cell(v) for v in row.shown())])
    headers = [cell(pid) for pid in ids]
    lines += table(["", *headers], rows)
    if len(ids) > 1:
        lines += ["", "## Accounts whose fate differs most", ""]
    if len(ids) > 1 and not comparison.differences:
        lines.append("Every account fared the same under every policy.")
    elif comparison.differences:
        lines.append("Largest difference in loss (end equity against start equity) first.")
        lines.append("")
        rows = [
            [
                f"`{cell(d.account_id, code=True)}`",
                money(d.spread),
                *(cell(fate_text(f)) for f in d.fates),
                cell("; ".join(d.reasons)),
            ]
            for d in comparison.differences
        ]
        lines += table(["Account", "Loss differs by", *headers, "Why"], rows, right=[1])
    curve = comparison.curve
    if curve is not None:
        lines += [
            "",
            "## Liquidation price against leverage",
            "",
            cell(curve_caption(curve)) + ".",
            "",
        ]
        lines += table(
            ["Leverage", *headers], [[label, *prices] for label, prices in curve_rows(curve, ids)]
        )
    return "\n".join(lines) + "\n"
