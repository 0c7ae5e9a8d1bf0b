"""engine/table_layout.py: tables that fit a width, Markdown blocks, HTML; expected layouts by hand."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.table_layout import (
    Column,
    Table,
    TableRow,
    _even_groups,
    cell_width,
    fit,
    html_lines,
    markdown_lines,
    text_lines,
    wrap_header,
)


def figures(policies: int, value: str = "1,234.5") -> Table:
    """A label column and `policies` value columns named like shipped policy ids."""
    return Table(
        (Column("", "left"), *(Column(f"venue-{chr(97 + i)}-perp") for i in range(policies))),
        (
            TableRow(("Accounts liquidated", *(str(i) for i in range(policies)))),
            TableRow(("partially", *("0" for _ in range(policies))), level=1),
            TableRow(("Where the money went", *("" for _ in range(policies))), role="heading"),
            TableRow(("to fees", *(value for _ in range(policies))), level=1),
        ),
    )


def test_a_table_that_fits_is_laid_out_as_before():
    """Labels left (details indented two spaces), values right, two spaces between columns."""
    lines = text_lines(figures(2), width=80)
    assert lines == [
        "                      venue-a-perp  venue-b-perp",
        "Accounts liquidated              0             1",
        "  partially                      0             0",
        "Where the money went",
        "  to fees                  1,234.5       1,234.5",
    ]
    assert text_lines(figures(2)) == lines  # no width: no limit


def test_headers_wrap_at_hyphens_before_columns_are_split():
    """Label 20 + 2 × (2 + 12) = 48 cells does not fit 40; with headers wrapped to the values'
    width (7: "venue-" / "a-perp") it is 20 + 2 × (2 + 7) = 38, which does."""
    lines = text_lines(figures(2), width=40)
    label = " " * 20
    assert lines[:2] == [
        label + "   venue-" + "   venue-",  # right-aligned in 7 cells after a 2-cell gap
        label + "   a-perp" + "   b-perp",
    ]
    assert lines[-1] == "  to fees".ljust(20) + "  1,234.5" + "  1,234.5"
    assert max(map(cell_width, lines)) <= 40


def test_columns_that_do_not_fit_go_in_even_blocks_repeating_the_labels():
    """Seven columns of 9 cells (values "1,234,567", headers wrapped to "venue-a-" / "perp") cost
    2 + 9 = 11 cells each next to a 20-cell label: 20 + 77 = 97 cells.  At 55 a block holds 3
    (20 + 33 = 53), so three blocks, evened out to 3, 2 and 2 (not 3, 3 and 1)."""
    table = figures(7, value="1,234,567")
    blocks = fit(table, 55)
    assert [b.table.value_columns for b in blocks] == [3, 2, 2]
    assert [b.headers[1] for b in blocks] == [
        ("venue-a-", "perp"),
        ("venue-d-", "perp"),
        ("venue-f-", "perp"),
    ]
    lines = text_lines(table, width=55)
    assert max(map(cell_width, lines)) <= 55
    assert sum(1 for line in lines if line.startswith("Accounts liquidated")) == 3
    assert [line.split() for line in lines if line.startswith("Accounts")] == [
        ["Accounts", "liquidated", "0", "1", "2"],
        ["Accounts", "liquidated", "3", "4"],
        ["Accounts", "liquidated", "5", "6"],
    ]
    assert lines.count("") == 2  # a blank line between blocks


def test_a_value_is_never_cut_even_when_one_column_is_wider_than_the_width():
    table = figures(3, value="123,456,789,012.123456")
    lines = text_lines(table, width=30)
    assert sum("123,456,789,012.123456" in line for line in lines) == 3


def test_wide_characters_count_two_cells():
    assert cell_width("USDⓈ") == 4  # Ⓢ is ambiguous width: one cell
    assert cell_width("币安") == 4
    assert cell_width("e\u0301") == 1  # a combining accent takes no cell
    table = Table(
        (Column("", "left"), Column("币安")),
        (TableRow(("a", "1")), TableRow(("bb", "22"))),
    )
    assert text_lines(table) == ["    币安", "a      1", "bb    22"]


def test_painting_happens_after_measuring():
    marks = []

    def paint(text, role):
        marks.append((text, role))
        return f"<{text}>"

    table = Table(
        (Column("", "left"), Column("p"), Column("q")),
        (
            TableRow(("Group", "", ""), role="heading"),
            TableRow(("fees", "1", "22"), level=1, role="differs"),
        ),
    )
    assert text_lines(table, paint=paint) == [
        "        <p>   <q>",
        "<Group>",
        "  fees  <1>  <22>",
    ]
    assert ("Group", "heading") in marks and ("22", "differs") in marks


@pytest.mark.parametrize(
    ("header", "width", "lines"),
    [
        ("huobi-linear-swap", 13, ["huobi-linear-", "swap"]),
        ("huobi-linear-swap", 6, ["huobi-", "linear-", "swap"]),
        ("binance-usdm", 20, ["binance-usdm"]),
        ("counterparties' haircut", 15, ["counterparties'", "haircut"]),
        ("BTC/USDT", 4, ["BTC/", "USDT"]),
        ("x", 0, ["x"]),
    ],
)
def test_wrap_header(header, width, lines):
    assert wrap_header(header, width) == lines


@given(
    st.lists(st.text(alphabet="ab-_ /", min_size=1, max_size=30), min_size=1, max_size=8),
    st.integers(min_value=1, max_value=20),
)
def test_wrapped_headers_keep_every_character(headers, width):
    for header in headers:
        assert "".join(wrap_header(header, width)).replace(" ", "") == header.replace(" ", "")


@given(st.integers(min_value=1, max_value=12), st.integers(min_value=10, max_value=200))
def test_every_block_fits_unless_a_single_column_cannot(policies, width):
    table = figures(policies, value="9" * 11)
    blocks = fit(table, width)
    assert sum(b.table.value_columns for b in blocks) == policies
    for block in blocks:
        assert block.width <= width or block.table.value_columns == 1
    sizes = [b.table.value_columns for b in blocks]
    assert max(sizes) - min(sizes) <= 1  # even blocks


def test_markdown_blocks_hold_at_most_four_policies():
    """Seven policies: two tables of 4 and 3 columns, each repeating the label column."""
    lines = markdown_lines(figures(7))
    tables = "\n".join(lines).split("\n\n")
    assert len(tables) == 2
    headers = [t.split("\n")[0] for t in tables]
    assert headers[0] == "|  | venue-a-perp | venue-b-perp | venue-c-perp | venue-d-perp |"
    assert headers[1] == "|  | venue-e-perp | venue-f-perp | venue-g-perp |"
    assert tables[1].split("\n")[1] == "| --- | ---: | ---: | ---: |"
    assert markdown_lines(figures(4)) == markdown_lines(figures(4), max_columns=9)


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open.pop() == tag

    def handle_data(self, data):
        self.text.append(data)


def test_html_table_is_escaped_and_balanced():
    table = Table(
        (Column("", "left"), Column("<b>")),
        (TableRow(("a & b", "1")), TableRow(("G", ""), role="heading")),
    )
    html = "\n".join(html_lines(table, caption="x < y"))
    parser = _Collect()
    parser.feed(html)
    assert parser.open == []
    assert "<b>" in parser.text and "a & b" in parser.text
    assert "&lt;b&gt;" in html and 'colspan="2"' in html


def test_rows_must_match_the_columns():
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        Table((Column("a"), Column("b"), Column("c")), (TableRow(("1", "2")),))


@pytest.mark.parametrize(
    ("count", "groups", "sizes"),
    [(7, 3, [3, 2, 2]), (8, 3, [3, 3, 2]), (10, 4, [3, 3, 2, 2]), (4, 4, [1, 1, 1, 1])],
)
def test_blocks_are_as_even_as_possible(count, groups, sizes):
    """Sizes differ by at most one, the larger blocks first, every column once in order."""
    found = _even_groups(count, groups)
    assert [len(g) for g in found] == sizes
    assert [i for g in found for i in g] == list(range(count))


def test_a_group_heading_keeps_its_level():
    """A level-1 heading is indented like level-1 rows (two spaces per level); the label column
    is as wide as its widest entry, the indented `    start` (9), then two spaces of gap."""
    table = Table(
        (Column("", "left"), Column("a")),
        (
            TableRow(("fund", "10"), 0),
            TableRow(("pool X", ""), 1, "heading"),
            TableRow(("start", "5"), 2),
        ),
    )
    assert text_lines(table) == ["            a", "fund       10", "  pool X", "    start   5"]
