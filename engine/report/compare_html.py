"""The comparison as one self-contained HTML file: inline CSS and SVG, no scripts, works offline.

The page holds the side-by-side table, three charts (insurance fund over time, where the
liquidated money went, liquidation price against leverage), the accounts whose fate differs
most and the scenario's description and sources (as text, never as links or loaded resources).
Every piece of text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from engine._version import __version__
from engine.report.account_text import money
from engine.report.charts import Series, bar_chart, line_chart
from engine.report.compare_text import (
    MONEY_DESTINATIONS,
    curve_caption,
    curve_rows,
    fate_text,
    pool_label,
    summary_rows,
)
from engine.simulation.compare import Comparison
from engine.table_layout import SCROLL_CSS, scrolling

FUND_CHART = "Insurance fund over time"
MONEY_CHART = "Where the liquidated money went"
CURVE_CHART = "Liquidation price against leverage"
CHART_TITLES = (FUND_CHART, MONEY_CHART, CURVE_CHART)
LEVERAGE_TICKS = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 125.0)

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1a1a1a; background: #fff; line-height: 1.45; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin-bottom: .25rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .75rem 0; font-size: .92rem; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
thead th { border-bottom: 2px solid #555; text-align: right; }
thead th:first-child, td.text, th.text { text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.sub1 { font-weight: normal; padding-left: 1.6rem; }
th.sub2 { font-weight: normal; padding-left: 3.2rem; }
tr.group th { padding-top: .8rem; }
tr.differs td.num { background: #fff7e0; }
figure { margin: 1.5rem 0; } figcaption { font-size: .9rem; color: #444; }
svg.chart { max-width: 100%; height: auto; }
.muted { color: #555; font-size: .9rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em; }
"""
CSS += SCROLL_CSS  # wide tables (many policies) scroll sideways, labels in view


def _e(text: object) -> str:
    return escape(str(text))


def summary_table(comparison: Comparison) -> list[str]:
    ids = comparison.policy_ids
    lines = [
        '<table class="summary">',
        "<caption>Side by side: each policy on the same book and "
        "scenario (highlighted rows differ)</caption>",
        '<thead><tr><th scope="col">Figure</th>',
    ]
    lines += [f'<th scope="col">{_e(pid)}</th>' for pid in ids]
    lines.append("</tr></thead><tbody>")
    for row in summary_rows(comparison.results):
        indent = f" sub{row.level}" if row.level else ""
        if row.heading:
            lines.append(
                f'<tr class="group"><th scope="row" class="text{indent}" '
                f'colspan="{len(ids) + 1}">{_e(row.label)}</th></tr>'
            )
            continue
        css = ' class="differs"' if row.differs else ""
        header = f"text{indent}"
        cells = []
        for short, exact in zip(row.shown(), row.shown(shorten=False), strict=True):
            title = f' title="{_e(exact)}"' if short != exact else ""
            cells.append(f'<td class="num"{title}>{_e(short)}</td>')
        lines.append(
            f'<tr{css} data-key="{_e(row.key)}"><th scope="row" class="{header}">'
            f"{_e(row.label)}</th>{''.join(cells)}</tr>"
        )
    lines.append("</tbody></table>")
    return lines


def fund_chart(comparison: Comparison) -> str:
    """One line per policy and insurance-fund pool: pools are never added together."""
    last = max((t for r in comparison.results for t, _ in r.insurance_fund_series), default=0)
    minutes = last > 180
    scale = 60.0 if minutes else 1.0
    series = []
    lows = []
    for result in comparison.results:
        for pool, points in sorted(result.pool_series.items()):
            label = pool_label(result, pool)
            currency = result.pool_currencies.get(pool, result.currency)
            series.append(
                Series(
                    f"{result.policy_id} {label} ({currency})",
                    tuple((t / scale, float(v)) for t, v in points),
                )
            )
            values = result.pools[pool]
            lows.append(
                f"{result.policy_id} pool {label} from {money(values['start'])} to a minimum of "
                f"{money(values['min'])}, ending at {money(values['end'])} {currency}"
            )
    return line_chart(
        chart_id="chart-insurance-fund",
        title=FUND_CHART,
        description="Each insurance-fund pool's balance at every step of the scenario, per "
        f"policy: {'; '.join(lows)}.",
        series=series,
        x_label="time since the scenario start (" + ("minutes)" if minutes else "seconds)"),
        y_label="insurance fund, per pool (settlement currency)",
    )


def money_chart(comparison: Comparison) -> str:
    categories = [label for _, label in MONEY_DESTINATIONS]
    groups = []
    for result in comparison.results:
        went = result.where_the_money_went()
        groups.append(
            (
                result.policy_id,
                [(float(went[key]), money(went[key])) for key, _ in MONEY_DESTINATIONS],
            )
        )
    return bar_chart(
        chart_id="chart-money",
        title=MONEY_CHART,
        description="Liquidated traders' losses by destination, one bar per policy in each group "
        "(negative: paid out, e.g. by the insurance fund). Exact figures are in the "
        "table.",
        categories=categories,
        groups=groups,
        y_label="amount (settlement currency)",
    )


def curve_chart(comparison: Comparison) -> str:
    curve = comparison.curve
    series = []
    for pid in comparison.policy_ids:
        points = curve.points.get(pid, ()) if curve is not None else ()
        quoted = [
            (float(lev), float(price) if price is not None else None) for lev, price in points
        ]
        name = pid if any(p is not None for _, p in quoted) else f"{pid} (no price quoted)"
        series.append(Series(name, tuple(quoted)))
    caption = curve_caption(curve) if curve is not None else "No reference position"
    return line_chart(
        chart_id="chart-leverage",
        title=CURVE_CHART,
        description=f"{caption}, per policy (logarithmic leverage axis; a gap means no "
        "liquidation price at that leverage).",
        series=series,
        x_label="leverage (logarithmic)",
        y_label="liquidation price",
        x_format=lambda v: f"{v:g}x",
        log_x=True,
        x_ticks=LEVERAGE_TICKS,
        markers=True,
    )


def differences_section(comparison: Comparison) -> list[str]:
    ids = comparison.policy_ids
    lines = ["<section>", "<h2>Accounts whose fate differs most</h2>"]
    if not comparison.differences:
        return [*lines, "<p>Every account fared the same under every policy.</p>", "</section>"]
    lines.append(
        '<div class="table-scroll">'
        '<table class="differences"><caption>Largest difference in loss first</caption>'
        '<thead><tr><th scope="col">Account</th><th scope="col">Loss differs by</th>'
    )
    lines += [f'<th scope="col" class="text">{_e(pid)}</th>' for pid in ids]
    lines.append('<th scope="col" class="text">Why</th></tr></thead><tbody>')
    for difference in comparison.differences:
        fates = "".join(f'<td class="text">{_e(fate_text(f))}</td>' for f in difference.fates)
        reasons = "".join(f"<li>{_e(r)}</li>" for r in difference.reasons)
        lines.append(
            f'<tr><th scope="row" class="text"><code>{_e(difference.account_id)}</code>'
            f'</th><td class="num">{_e(money(difference.spread))}</td>{fates}'
            f'<td class="text"><ul>{reasons}</ul></td></tr>'
        )
    return [*lines, "</tbody></table>", "</div>", "</section>"]


def curve_table(comparison: Comparison) -> list[str]:
    curve = comparison.curve
    if curve is None:
        return []
    ids = comparison.policy_ids
    lines = [
        f'<table class="curve"><caption>{_e(curve_caption(curve))}</caption><thead><tr>'
        '<th scope="col">Leverage</th>'
    ]
    lines += [f'<th scope="col">{_e(pid)}</th>' for pid in ids]
    lines.append("</tr></thead><tbody>")
    for label, prices in curve_rows(curve, ids):
        lines.append(
            f'<tr><th scope="row" class="text">{_e(label)}</th>'
            + "".join(f'<td class="num">{_e(p)}</td>' for p in prices)
            + "</tr>"
        )
    return [*lines, "</tbody></table>"]


def _figure(svg: str, caption: str) -> list[str]:
    return ["<figure>", svg, f"<figcaption>{_e(caption)}</figcaption>", "</figure>"]


def _sources(sources: Sequence[Mapping[str, object]]) -> list[str]:
    items = []
    for source in sources:
        title, url = source.get("title", ""), source.get("url", "")
        items.append(f'<li>{_e(title)} <span class="muted">({_e(url)})</span></li>')
    return ['<ul class="sources">', *items, "</ul>"] if items else []


def render_comparison_html(comparison: Comparison) -> str:
    scenario = comparison.scenario
    title = f"liqpolicy comparison: {scenario.title}"
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{_e(scenario.title)}</h1>",
        f'<p class="muted">Scenario <code>{_e(scenario.id)}</code>, '
        f"{len(scenario.times()):,} steps of {scenario.step_seconds} s; book "
        f"<code>{_e(comparison.book_path or '(in memory)')}</code>, "
        f"{comparison.book_size:,} accounts.</p>",
        '<ul class="policies">',
        *(
            f"<li><strong>{_e(r.policy_id)}</strong>: {_e(r.policy_title)} "
            f"<code>{_e(r.policy_digest[:19])}…</code></li>"
            for r in comparison.results
        ),
        *(
            f"<li><strong>{_e(s.policy_id)}</strong> skipped: {_e(s.reason)}</li>"
            for s in comparison.skipped
        ),
        "</ul>",
        "<section>",
        "<h2>Side by side</h2>",
        *scrolling(summary_table(comparison)),
        "</section>",
        "<section>",
        "<h2>Charts</h2>",
        *_figure(
            fund_chart(comparison), "Each insurance-fund pool at every step (one line per pool)."
        ),
        *_figure(
            money_chart(comparison),
            "Hover a bar for its exact amount; the table above lists every figure exactly.",
        ),
        "</section>",
        *(differences_section(comparison) if len(comparison.results) > 1 else []),
        "<section>",
        f"<h2>{_e(CURVE_CHART)}</h2>",
        *_figure(
            curve_chart(comparison),
            "How far the price may move against a fresh position before each policy liquidates it.",
        ),
        *scrolling(curve_table(comparison)),
        "</section>",
        "<section>",
        "<h2>About the scenario</h2>",
        f"<p>{_e(scenario.description)}</p>",
        *_sources(list(scenario.sources)),
        "</section>",
        f'<footer class="muted"><p>Generated by liqpolicy {_e(__version__)}. Figures are exact '
        "decimals; ratios are shown to six places (hover for the exact value). "
        "<code>liqpolicy compare --format json</code> gives every figure as an exact string.</p>"
        "</footer>",
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(lines) + "\n"
