"""A sweep as one self-contained HTML file: inline CSS and SVG, no scripts, works offline.

The page holds the grid (inputs and parameters), the charts the grid asks for (a figure
against one parameter as lines, one per policy; against two as heatmaps), the failed cells
with their first error, and every cell's headline figures.  Line charts reuse
:mod:`engine.report.charts`; heatmaps are drawn here.  Figures are plotted as floats (drawing
only); every number shown as text is the exact figure, and all text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any

from engine._version import __version__
from engine.report.charts import Series, line_chart
from engine.sweep.grid import Chart, Grid, Parameter
from engine.sweep.outputs import error_line
from engine.sweep.runner import SweepResult

MAX_CHARTS = 12  # per chart of the grid: small multiples beyond this are left to the CSV
TABLE_FIGURES = (
    "accounts_liquidated.total",
    "liquidated_notional",
    "insurance_fund.min",
    "adl_volume",
    "clawback_rate",
    "bad_debt",
)
# Sequential, colour-blind-safe ramp (viridis stops), light text on the dark end.
RAMP = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
CELL_WIDTH, CELL_HEIGHT = 96, 40

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1a1a1a; background: #fff; line-height: 1.45; }
main { max-width: 64rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin-bottom: .25rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin-top: 1.5rem; }
table { border-collapse: collapse; margin: .75rem 0; font-size: .88rem; }
th, td { padding: .25rem .5rem; border-bottom: 1px solid #ddd; vertical-align: top; text-align: left; }
thead th { border-bottom: 2px solid #555; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.failed td { background: #fdecea; }
figure { margin: 1.25rem 0; } figcaption { font-size: .9rem; color: #444; }
svg.chart { max-width: 100%; height: auto; }
.muted { color: #555; font-size: .9rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em; }
"""


def _e(text: object) -> str:
    return escape(str(text))


def _number(value: Any) -> float | None:
    """A figure as a float for drawing, or None (missing, failed cell, not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None
    return number if math.isfinite(number) else None


def short(value: float) -> str:
    """A compact label for a heatmap cell (the exact value is in its tooltip)."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:.4g}"


# -- grouping ----------------------------------------------------------------------------------
def _context(row: Mapping[str, Any], grid: Grid, leave_out: Sequence[str]) -> tuple[str, ...]:
    """What a row shares with the others drawn in the same chart, as readable parts."""
    parts = []
    if "policy" not in leave_out:
        parts.append(f"policy {row['policy']}")
    if len(grid.scenarios) > 1:
        parts.append(f"scenario {row['scenario']}")
    if len(grid.books) > 1:
        parts.append(f"book {row['book']}")
    for parameter in grid.parameters:
        if parameter.name not in leave_out:
            parts.append(f"{parameter.name} = {row['parameters'][parameter.name]}")
    return tuple(parts)


def _groups(
    rows: Sequence[Mapping[str, Any]], grid: Grid, leave_out: Sequence[str]
) -> dict[tuple[str, ...], list[Mapping[str, Any]]]:
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_context(row, grid, leave_out), []).append(row)
    return groups


def _axis(parameter: Parameter) -> tuple[list[float], dict[str, float]]:
    """x positions of a parameter's values: the numbers themselves, or 0, 1, 2 … for labels."""
    labels = [v.label for v in parameter.values]
    if parameter.numeric:
        positions = [float(v.value) for v in parameter.values]
    else:
        positions = [float(i) for i in range(len(labels))]
    return positions, dict(zip(labels, positions, strict=True))


def _parameter(grid: Grid, name: str) -> Parameter:
    return next(p for p in grid.parameters if p.name == name)


# -- line charts -------------------------------------------------------------------------------
def line_charts(result: SweepResult, chart: Chart, number: int) -> list[str]:
    grid = result.grid
    x = _parameter(grid, chart.x)
    positions, where = _axis(x)
    labels = {pos: v.label for pos, v in zip(positions, x.values, strict=True)}

    def tick_text(position: float) -> str:
        return labels.get(position, f"{position:g}")

    groups = _groups(result.rows, grid, ("policy", x.name))
    parts: list[str] = []
    for index, (context, rows) in enumerate(groups.items()):
        if index == MAX_CHARTS:
            parts.append(_more(len(groups) - MAX_CHARTS))
            break
        series: list[Series] = []
        for policy in grid.policies:
            points = sorted(
                (
                    (where[row["parameters"][x.name]], _number(row["figures"].get(chart.figure)))
                    for row in rows
                    if row["policy"] == policy.reference
                ),
                key=lambda point: point[0],
            )
            series.append(Series(policy.reference, tuple(points)))
        title = f"{chart.figure} against {x.label}"
        caption = "; ".join(context) or "every cell"
        svg = line_chart(
            chart_id=f"chart-{number}-{index}",
            title=title,
            description=f"{title}, one line per policy ({caption}).",
            series=series,
            x_label=x.label,
            y_label=chart.figure,
            x_ticks=positions,
            x_format=tick_text,
            markers=True,
            height=340,
        )
        parts += _figure(svg, caption + ". A gap is a failed cell.")
    return parts


# -- heatmaps ----------------------------------------------------------------------------------
def _colour(fraction: float) -> str:
    fraction = min(max(fraction, 0.0), 1.0) * (len(RAMP) - 1)
    low = min(int(fraction), len(RAMP) - 2)
    t = fraction - low
    a, b = RAMP[low], RAMP[low + 1]
    channels = [
        round(int(a[i : i + 2], 16) * (1 - t) + int(b[i : i + 2], 16) * t) for i in (1, 3, 5)
    ]
    return "#" + "".join(f"{c:02x}" for c in channels)


def heatmap(
    *,
    chart_id: str,
    title: str,
    x: Parameter,
    y: Parameter,
    values: Mapping[tuple[str, str], tuple[float | None, str]],
    scale: tuple[float, float],
) -> str:
    """One heatmap: x values across, y values down, each cell coloured and labelled."""
    left, top = 110, 76
    axes = f"rows: {y.label}; columns: {x.label}"
    text_width = max(9.0 * len(title), 7.0 * len(axes)) + 32  # bold 15 px title, 12 px axes
    width = int(max(left + CELL_WIDTH * len(x.values) + 24, text_width, 300))
    plot_bottom = top + CELL_HEIGHT * len(y.values)
    height = plot_bottom + 96
    low, high = scale
    span = (high - low) or 1.0
    parts = [
        f'<svg id="{_e(chart_id)}" class="chart" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-labelledby="{_e(chart_id)}-title {_e(chart_id)}-desc" '
        'font-family="system-ui, sans-serif">',
        f'<title id="{_e(chart_id)}-title">{_e(title)}</title>',
        f'<desc id="{_e(chart_id)}-desc">{_e(title)}: {len(values)} cells, {_e(x.label)} across, '
        f"{_e(y.label)} down; each cell is labelled with its value.</desc>",
        f'<text x="16" y="24" font-size="15" font-weight="bold">{_e(title)}</text>',
        f'<text x="16" y="46" font-size="12">{_e(axes)}</text>',
        '<g font-size="11">',
    ]
    for column, xv in enumerate(x.values):
        cx = left + CELL_WIDTH * column + CELL_WIDTH / 2
        parts.append(f'<text x="{cx:g}" y="{top - 8}" text-anchor="middle">{_e(xv.label)}</text>')
    for row_index, yv in enumerate(y.values):
        cy = top + CELL_HEIGHT * row_index
        parts.append(
            f'<text x="{left - 8}" y="{cy + CELL_HEIGHT / 2 + 4:g}" text-anchor="end">'
            f"{_e(yv.label)}</text>"
        )
        for column, xv in enumerate(x.values):
            cx = left + CELL_WIDTH * column
            value, exact = values.get((xv.label, yv.label), (None, "no result"))
            if value is None:
                fill, text, ink = "#ffffff", "failed", "#555"
            else:
                fraction = (value - low) / span
                fill, text = _colour(fraction), short(value)
                ink = "#ffffff" if fraction < 0.55 else "#1a1a1a"
            parts.append(
                f"<g><title>{_e(f'{x.name} = {xv.label}, {y.name} = {yv.label}: {exact}')}</title>"
                f'<rect x="{cx}" y="{cy}" width="{CELL_WIDTH - 2}" height="{CELL_HEIGHT - 2}" '
                f'fill="{fill}" stroke="#ccc"/>'
                f'<text x="{cx + CELL_WIDTH / 2 - 1:g}" y="{cy + CELL_HEIGHT / 2 + 3:g}" '
                f'text-anchor="middle" fill="{ink}">{_e(text)}</text></g>'
            )
    parts += [
        f'<text x="{left + CELL_WIDTH * len(x.values) / 2:g}" y="{plot_bottom + 24}" '
        f'font-size="12" text-anchor="middle">{_e(x.label)}</text>',
        "</g>",
        _legend(left, plot_bottom + 44, low, high),
        "</svg>",
    ]
    return "".join(parts)


def _legend(x: float, y: float, low: float, high: float) -> str:
    steps = 40
    width = 240
    parts = ['<g class="legend" font-size="11">']
    for i in range(steps):
        parts.append(
            f'<rect x="{x + width * i / steps:g}" y="{y}" width="{width / steps + 0.5:g}" '
            f'height="12" fill="{_colour(i / (steps - 1))}"/>'
        )
    parts.append(f'<text x="{x}" y="{y + 26}">{_e(short(low))}</text>')
    parts.append(f'<text x="{x + width}" y="{y + 26}" text-anchor="end">{_e(short(high))}</text>')
    parts.append("</g>")
    return "".join(parts)


def heatmaps(result: SweepResult, chart: Chart, number: int) -> list[str]:
    grid = result.grid
    assert chart.y is not None
    x, y = _parameter(grid, chart.x), _parameter(grid, chart.y)
    groups = _groups(result.rows, grid, (x.name, y.name))
    numbers = [_number(row["figures"].get(chart.figure)) for row in result.rows]
    present = [n for n in numbers if n is not None]
    scale = (min(present), max(present)) if present else (0.0, 1.0)
    parts: list[str] = []
    for index, (context, rows) in enumerate(groups.items()):
        if index == MAX_CHARTS:
            parts.append(_more(len(groups) - MAX_CHARTS))
            break
        values = {
            (row["parameters"][x.name], row["parameters"][y.name]): (
                _number(row["figures"].get(chart.figure)),
                str(row["figures"].get(chart.figure, "failed")),
            )
            for row in rows
        }
        title = f"{chart.figure} over {x.label} and {y.label}"
        svg = heatmap(
            chart_id=f"chart-{number}-{index}",
            title=title,
            x=x,
            y=y,
            values=values,
            scale=scale,
        )
        caption = "; ".join(context) or "every cell"
        parts += _figure(svg, f"{caption}. One colour scale for every heatmap of this figure.")
    return parts


# -- page --------------------------------------------------------------------------------------
def _figure(svg: str, caption: str) -> list[str]:
    return ["<figure>", svg, f"<figcaption>{_e(caption)}</figcaption>", "</figure>"]


def _more(count: int) -> str:
    return (
        f'<p class="muted">{count} more combination{"s" if count != 1 else ""} not drawn; '
        "rows.csv holds every cell.</p>"
    )


def _parameters_table(grid: Grid) -> list[str]:
    if not grid.parameters:
        return ["<p>No parameters: one cell per policy, scenario and book.</p>"]
    lines = [
        "<table>",
        "<thead><tr><th>Parameter</th><th>Changes</th><th>Values</th></tr></thead><tbody>",
    ]
    for parameter in grid.parameters:
        if parameter.target == "transform":
            what = f"scenario transform <code>{_e(parameter.transform)}</code> (scale)"
        elif parameter.target == "scenario" and parameter.scenario_path is not None:
            what = (
                f"scenario <code>{_e(parameter.scenario_path.text)}</code> ({parameter.operation})"
            )
        else:
            paths = ", ".join(
                f"<code>{_e(path.text)}</code>" + (f" in {_e(key)}" if key else "")
                for key, (path, _) in parameter.paths.items()
            )
            what = f"policy {paths} ({parameter.operation})"
        values = ", ".join(_e(v.label) for v in parameter.values)
        lines.append(
            f"<tr><td><strong>{_e(parameter.name)}</strong>"
            + (
                f"<br><span class='muted'>{_e(parameter.description)}</span>"
                if parameter.description
                else ""
            )
            + f"</td><td>{what}</td><td>{values}</td></tr>"
        )
    lines.append("</tbody></table>")
    return lines


def _cells_table(result: SweepResult) -> list[str]:
    grid = result.grid
    names = [p.name for p in grid.parameters]
    head = ["Cell", "Policy", "Scenario", "Book", *names, *TABLE_FIGURES]
    lines = [
        "<table>",
        "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>",
    ]
    for row in result.rows:
        failed = row["status"] != "ok"
        cells = [
            f"<td class='num'>{row['cell']}</td>",
            f"<td>{_e(row['policy_id'] or row['policy'])}</td>",
            f"<td>{_e(row['scenario_id'] or row['scenario'])}</td>",
            f"<td>{_e(row['book'])}</td>",
            *(f"<td class='num'>{_e(row['parameters'][n])}</td>" for n in names),
        ]
        if failed:
            cells.append(
                f"<td colspan='{len(TABLE_FIGURES)}'>{_e(error_line(row) or row['status'])}</td>"
            )
        else:
            cells += [
                f"<td class='num'>{_e(row['figures'].get(f, ''))}</td>" for f in TABLE_FIGURES
            ]
        lines.append(f"<tr{' class=failed' if failed else ''}>" + "".join(cells) + "</tr>")
    lines.append("</tbody></table>")
    return lines


def _inputs(grid: Grid) -> list[str]:
    def listed(kind: str, references: Sequence[str]) -> str:
        return f"<li>{kind}: " + ", ".join(f"<code>{_e(r)}</code>" for r in references) + "</li>"

    return [
        "<ul>",
        listed("Policies", [p.reference for p in grid.policies]),
        listed("Scenarios", [s.reference for s in grid.scenarios]),
        listed("Books", [b.reference for b in grid.books]),
        "</ul>",
    ]


def render_sweep_html(result: SweepResult) -> str:
    grid = result.grid
    failed = len(result.failed)
    charts: list[str] = []
    for number, chart in enumerate(grid.charts):
        charts.append(f"<h3>{_e(chart.figure)}</h3>")
        charts += heatmaps(result, chart, number) if chart.y else line_charts(result, chart, number)
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e('liqpolicy sweep: ' + grid.title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{_e(grid.title)}</h1>",
        *([f"<p>{_e(grid.description)}</p>"] if grid.description else []),
        f'<p class="muted">{len(result.rows):,} cells: {len(result.rows) - failed:,} ran, '
        f"{failed:,} failed. Grid <code>{_e(grid.path)}</code>.</p>",
        "<section>",
        "<h2>The grid</h2>",
        *_inputs(grid),
        *_parameters_table(grid),
        "</section>",
        "<section>",
        "<h2>Charts</h2>",
        *(charts or ["<p>No charts: the grid has no parameters to plot against.</p>"]),
        "</section>",
        "<section>",
        "<h2>Every cell</h2>",
        '<p class="muted">Headline figures, exact; rows.csv and rows.jsonl hold every figure '
        "of every cell, and each cell's generated policy and scenario files.</p>",
        *_cells_table(result),
        "</section>",
        f'<footer class="muted"><p>Generated by liqpolicy {_e(__version__)}. Charts plot '
        "figures as floats; tables and tooltips show exact decimals.</p></footer>",
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(lines) + "\n"
