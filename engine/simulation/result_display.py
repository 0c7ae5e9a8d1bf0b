"""How simulation results and comparisons show in Jupyter (`_repr_html_`): a compact summary.

One table of the JSON summary's figures (groups such as ``fees`` as a heading with their parts
below), a column per policy, figures that differ between policies in bold, then a line saying
how to get the full tables (``to_pandas``).  Plain HTML with inline styles: no scripts, no
network, no pandas needed.  Built from the JSON summary, so a figure added there shows here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from engine.numbers import group_thousands
from engine.table_layout import Column, Table, TableRow, html_lines

if TYPE_CHECKING:
    from engine.simulation.compare import Comparison
    from engine.simulation.results import SimulationResult

HIDDEN = ("policy", "title", "digest", "scenario", "accounts", "steps", "fees_total")


def _label(key: str) -> str:
    text = key.replace("_", " ")
    return text[:1].upper() + text[1:]


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return group_thousands(str(value))


def _rows(summaries: Sequence[Mapping[str, Any]]) -> list[TableRow]:
    """Rows of the figures of several summaries (keys in first-seen order, missing as —)."""
    rows: list[TableRow] = []
    keys = [k for k in dict.fromkeys(k for s in summaries for k in s) if k not in HIDDEN]
    for key in keys:
        values = [s.get(key) for s in summaries]
        if any(isinstance(v, Mapping) for v in values):
            parts = [v if isinstance(v, Mapping) else {} for v in values]
            nested = _rows(parts)
            if nested:
                rows.append(TableRow((_label(key), *("" for _ in summaries)), role="heading"))
                rows += [TableRow(row.cells, row.level + 1, row.role) for row in nested]
            continue
        cells = [_shown(v) for v in values]
        differs = len(summaries) > 1 and len(set(cells)) > 1
        rows.append(TableRow((_label(key), *cells), role="differs" if differs else None))
    return rows


def _page(heading: str, table: Table, note: str) -> str:
    lines = [
        '<div class="liqpolicy-result">',
        f"<p><strong>{heading}</strong></p>",
        *html_lines(table),
        f'<p style="font-size: 0.85em; color: #555">{escape(note)}</p>',
        "</div>",
    ]
    return "\n".join(lines)


def result_html(result: SimulationResult) -> str:
    heading = (
        f"{escape(result.policy_id)}: {escape(result.policy_title)} — scenario "
        f"{escape(result.scenario_id)}, {result.accounts:,} accounts, {result.steps:,} steps"
    )
    table = Table((Column("", "left"), Column(result.policy_id)), tuple(_rows([result.summary()])))
    note = (
        "result.to_pandas() for every account's fate; to_pandas('events'), 'orders', "
        "'allocations', 'deleverages', 'clawbacks', 'insurance_fund', 'summary' for the rest."
    )
    return _page(heading, table, note)


def comparison_html(comparison: Comparison) -> str:
    scenario = comparison.scenario
    heading = (
        f"{escape(scenario.title)} — {len(comparison.results)} policies, "
        f"{comparison.book_size:,} accounts, {len(scenario.times()):,} steps"
    )
    ids = comparison.policy_ids
    summaries = [r.summary() for r in comparison.results]
    table = Table((Column("", "left"), *(Column(pid) for pid in ids)), tuple(_rows(summaries)))
    skipped = "".join(f" Skipped {s.policy_id}: {s.reason}." for s in comparison.skipped)
    note = (
        "Figures that differ between policies are in bold. comparison.to_pandas() for the "
        "figures as columns, one row per policy; to_pandas('fates'), 'differences', "
        f"'leverage_curve', 'insurance_fund' and the rest for the details.{skipped}"
    )
    return _page(heading, table, note)
