"""Inline-SVG charts and the shared figures of the comparison reports."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from decimal import Decimal

from engine.report.charts import Series, bar_chart, downsample, line_chart, nice_ticks, tick_label
from engine.report.compare_html import render_comparison_html
from engine.report.compare_markdown import cell
from engine.report.compare_text import (
    MONEY_DESTINATIONS,
    ratio_text,
    render_comparison,
    shorten_decimal,
    summary_rows,
)


def test_nice_ticks_cover_the_range_with_round_steps():
    ticks = nice_ticks(13.2, 96.5)
    assert ticks[0] <= 13.2 and ticks[-1] >= 96.5
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1 and steps.pop() in (10, 20, 25, 50)
    assert nice_ticks(5, 5)[0] < 5 < nice_ticks(5, 5)[-1]  # a flat series still gets an axis
    assert nice_ticks(-17_536.2, 81_553.8)[0] <= -17_536.2


def test_tick_labels():
    assert tick_label(10_000_000, 2_000_000) == "10M"
    assert tick_label(25_000, 25_000) == "25k"
    assert tick_label(2.5, 0.5) == "2.5"
    assert tick_label(1_500, 500) == "1,500"


def test_downsample_keeps_the_minimum_and_the_ends():
    points = [(float(t), 1000.0 - (t == 777) * 999) for t in range(1441)]
    kept = downsample(points, 100)
    assert len(kept) <= 110
    assert (777.0, 1.0) in kept
    assert kept[0] == points[0] and kept[-1] == points[-1]
    assert [x for x, _ in kept] == sorted(x for x, _ in kept)


def test_line_chart_is_accessible_xml_and_escapes_text():
    svg = line_chart(
        chart_id="c1",
        title="Fund <&>",
        description='desc "q"',
        series=[
            Series("a<b", ((0.0, 1.0), (1.0, None), (2.0, 3.0))),
            Series("plain", ((0.0, 2.0), (2.0, 2.5))),
        ],
        x_label="time",
        y_label="amount",
        markers=True,
    )
    root = ET.fromstring(svg)
    assert root.get("role") == "img"
    assert root.findtext("title") == "Fund <&>"
    assert root.findtext("desc") == 'desc "q"'
    assert [t.text for t in root.findall(".//text[@class='axis-label']")] == ["amount", "time"]
    paths = root.findall(".//g[@class='line']/path")
    assert len(paths) == 3  # the None point splits the first series in two
    legend = [t.text for t in root.find(".//g[@class='legend']").findall("text")]
    assert legend == ["a<b", "plain"]
    assert "<b" not in svg.replace("<b>", "")  # no raw tag from the series name


def test_line_chart_log_axis_and_missing_series():
    svg = line_chart(
        chart_id="c2",
        title="t",
        description="d",
        series=[
            Series("quoted", ((1.0, None), (2.0, 30.0), (125.0, 59.0))),
            Series("none", ((1.0, None), (125.0, None))),
        ],
        x_label="leverage",
        y_label="price",
        log_x=True,
        x_ticks=(1.0, 10.0, 125.0),
        x_format=lambda v: f"{v:g}x",
    )
    root = ET.fromstring(svg)
    ticks = [t.text for t in root.find(".//g[@class='x-ticks']").findall("text")]
    assert ticks == ["1x", "10x", "125x"]


def test_bar_chart_handles_negative_values():
    svg = bar_chart(
        chart_id="c3",
        title="Money",
        description="d",
        categories=["insurance fund", "fees"],
        groups=[("p1", [(-10.0, "-10"), (5.0, "5")]), ("p2", [(3.0, "3"), (0.0, "0")])],
        y_label="amount",
    )
    root = ET.fromstring(svg)
    bars = root.findall(".//g[@class='bars']/rect")
    assert len(bars) == 4
    assert bars[0].findtext("title") == "p1, insurance fund: -10"
    zero = float(root.find(".//line[@class='zero']").get("y1"))
    negative = bars[0]
    assert float(negative.get("y")) == zero  # drawn downwards from the zero line


def test_shortened_ratios_are_marked():
    assert shorten_decimal(Decimal("0.1399974")) == "0.139997…"
    assert shorten_decimal(Decimal("0.6")) == "0.6"
    assert shorten_decimal(Decimal("0.1234560")) == "0.123456"
    assert ratio_text(Decimal("0.6")) == "0.6 (60 %)"
    assert ratio_text(Decimal(1) / 3, shorten=False).startswith("0.3333333333")


def test_markdown_cells_escape_pipes_and_tags():
    assert cell("a | b") == "a \\| b"
    assert cell("<script>x</script> 1 < 2") == "\\<script>x\\</script> 1 < 2"
    assert cell("x | y", code=True) == "x \\| y"


def test_summary_rows_follow_the_results(comparison):
    rows = {row.key: row for row in summary_rows(comparison.results)}
    for result, index in zip(comparison.results, range(2), strict=True):
        liquidated = result.accounts_liquidated["total"]
        assert rows["accounts_liquidated.total"].values[index] == liquidated
        assert rows["insurance_fund.min"].values[index] == result.insurance_fund["min"]
        assert rows["bad_debt"].values[index] == result.bad_debt
        assert rows["conservation_error"].values[index] == 0
        for key, _ in MONEY_DESTINATIONS:
            assert (
                rows[f"where_the_money_went.{key}"].values[index]
                == result.where_the_money_went()[key]
            )


def test_renderers_share_the_figures(comparison):
    text = render_comparison(comparison)
    html = render_comparison_html(comparison)
    fees = next(r for r in summary_rows(comparison.results) if r.key == "fees.total").shown()
    for value in fees:
        assert value in text and value in html
    assert len(comparison.differences) == 5
    for difference in comparison.differences:
        assert difference.account_id in text and difference.account_id in html
