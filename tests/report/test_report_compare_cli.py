"""`liqpolicy compare` in every format, on a small fixture; the default run on shipped data."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from engine.cli import main
from engine.cli.compare import DEFAULT_BOOK, DEFAULT_SCENARIO, default_policies
from engine.report.compare_html import CHART_TITLES
from engine.simulation.book import resolve_book_path
from engine.simulation.scenario import resolve_scenario_path

POLICIES = ("binance-usdm", "huobi-linear-swap")
POLICY_KEYS = {
    "accounts_liquidated",
    "fees_total",
    "insurance_fund",
    "adl_volume",
    "clawback_rate",
    "bad_debt",
    "conservation_error",
}
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


def call(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def compare_output(capsys, book_path, scenario_path, fmt: str, *extra: str) -> str:
    code, out, err = call(
        capsys,
        "compare",
        *POLICIES,
        "--book",
        book_path,
        "--scenario",
        scenario_path,
        "--format",
        fmt,
        *extra,
    )
    assert code == 0, err
    assert err == ""  # no progress bar outside a terminal
    return out


def test_compare_text(capsys, book_path, scenario_path):
    out = compare_output(capsys, book_path, scenario_path, "text")
    lines = out.splitlines()
    assert lines[0] == "Scenario: mini-crash — Mini crash <test & fixture> (31 steps)"
    header = next(line for line in lines if line.strip().startswith("binance-usdm"))
    assert header.split() == ["binance-usdm", "huobi-linear-swap"]
    for label in (
        "Accounts liquidated",
        "Liquidated notional",
        "Liquidation fees",
        "Margin returned to traders",
        "Insurance fund start",
        "ADL deleverages",
        "Clawback rate",
        "Bad debt",
        "Where the liquidated money went",
        "Accounts whose fate differs most",
        "why:",
        "Liquidation price of 1 BTC/USDT long entered at 60,000, by leverage",
    ):
        assert label in out, label
    conservation = next(line for line in lines if line.startswith("Conservation error"))
    assert conservation.split()[-2:] == ["0", "0"]
    # money with thousands separators
    assert re.search(r"\b\d{1,3}(,\d{3})+(\.\d+)?\b", out)


def test_compare_text_shortens_a_clawback_rate(
    capsys, book_path, scenario_path, clawback_policy_path
):
    """Ratios longer than six places are shortened and marked; the fixture's crash exhausts the
    fund of the clawback what-if."""
    code, out, err = call(
        capsys,
        "compare",
        "binance-usdm",
        clawback_policy_path,
        "--book",
        book_path,
        "--scenario",
        scenario_path,
    )
    assert code == 0, err
    clawback = next(line for line in out.splitlines() if line.startswith("Clawback rate"))
    assert clawback.split()[2:4] == ["0", "(0"]  # binance-usdm: insurance fund and ADL
    assert "…" in clawback


def test_compare_json(capsys, book_path, scenario_path):
    data = json.loads(compare_output(capsys, book_path, scenario_path, "json", "--limit", "3"))
    assert data["scenario"]["id"] == "mini-crash"
    assert data["book"]["accounts"] == 50
    assert [p["policy"] for p in data["policies"]] == list(POLICIES)
    for policy in data["policies"]:
        assert set(policy) >= POLICY_KEYS
        assert policy["conservation_error"] == "0"
        assert set(policy["insurance_fund"]) == {"start", "min", "end"}
        assert all(isinstance(v, str) for v in policy["insurance_fund"].values())
        assert isinstance(policy["clawback_rate"], str)  # exact, never shortened
        assert "events" not in policy
    assert len(data["differences"]) == 3
    assert data["leverage_curve"]["instrument"] == "BTC/USDT"


def test_compare_json_keeps_the_exact_clawback_rate(
    capsys, book_path, scenario_path, clawback_policy_path
):
    code, out, err = call(
        capsys,
        "compare",
        "binance-usdm",
        clawback_policy_path,
        "--book",
        book_path,
        "--scenario",
        scenario_path,
        "--format",
        "json",
    )
    assert code == 0, err
    clawback = json.loads(out)["policies"][1]
    assert len(clawback["clawback_rate"]) > 10  # the exact quotient, not six places


def test_compare_markdown(capsys, book_path, scenario_path):
    out = compare_output(capsys, book_path, scenario_path, "markdown")
    assert out.startswith("# Mini crash \\<test & fixture>\n")
    assert "|  | binance-usdm | huobi-linear-swap |" in out
    assert "| --- | ---: | ---: |" in out
    assert "| Conservation error | 0 | 0 |" in out
    assert "## Accounts whose fate differs most" in out
    assert "## Liquidation price against leverage" in out
    rows = [line for line in out.splitlines() if line.startswith("|")]
    assert all(line.endswith("|") for line in rows)


class Balance(HTMLParser):
    """Checks that every element is closed in order; collects src/href values."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.references: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.references += [value or "" for name, value in attrs if name in ("src", "href")]
        if tag == "script":
            self.scripts += 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.references += [value or "" for name, value in attrs if name in ("src", "href")]

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()


def test_compare_html_is_self_contained_and_well_formed(capsys, tmp_path, book_path, scenario_path):
    target = tmp_path / "report.html"
    code, out, err = call(
        capsys,
        "compare",
        *POLICIES,
        "--book",
        book_path,
        "--scenario",
        scenario_path,
        "--format",
        "html",
        "--output",
        str(target),
    )
    assert code == 0, err
    assert out == ""
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    checker = Balance()
    checker.feed(html)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    assert checker.scripts == 0
    assert not [r for r in checker.references if "http" in r or "//" in r]
    assert "<link" not in html and "@import" not in html and "url(" not in html
    # text is escaped: the scenario title carries <, > and &
    assert "Mini crash &lt;test &amp; fixture&gt;" in html
    assert "<test" not in html
    # three charts, each well-formed XML with an accessible title and labelled axes
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
    assert len(svgs) == 3
    titles = []
    for svg in svgs:
        root = ET.fromstring(svg)
        assert root.get("role") == "img"
        title = root.find("title")
        assert title is not None and root.find("desc") is not None
        titles.append(title.text)
        assert root.get("aria-labelledby") == f"{root.get('id')}-title {root.get('id')}-desc"
        assert root.findall(".//text[@class='axis-label']")
        legend = root.find(".//g[@class='legend']")
        assert legend is not None
        names = [t.text or "" for t in legend.findall("text")]
        if title.text == CHART_TITLES[0]:  # the insurance fund: one line per policy and pool
            # binance-usdm pools per market, but only markets the scenario or book trade count
            assert names == ["binance-usdm BTC/USDT (USDT)", "huobi-linear-swap shared (USDT)"]
            continue
        assert len(names) == 2
        assert all(n.startswith(pid) for n, pid in zip(names, POLICIES, strict=True))
    assert titles == list(CHART_TITLES)
    # the side-by-side table is there, with both policies and every figure
    assert '<table class="summary">' in html
    assert 'data-key="conservation_error"' in html
    assert 'data-key="insurance_fund.min"' in html


def test_compare_rejects_the_same_policy_twice(capsys, book_path, scenario_path):
    code, _, err = call(
        capsys,
        "compare",
        "binance-usdm",
        "binance-usdm",
        "--book",
        book_path,
        "--scenario",
        scenario_path,
    )
    assert code == 2
    assert "given twice" in err


def test_compare_negative_limit(capsys):
    code, _, err = call(capsys, "compare", "--limit", "-1")
    assert code == 2
    assert "--limit" in err


SHIPPED = (
    resolve_book_path(DEFAULT_BOOK).is_file() and resolve_scenario_path(DEFAULT_SCENARIO).is_file()
)


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED, reason="the shipped demo book or flash-crash scenario is missing")
def test_default_compare_runs_on_shipped_data(capsys):
    code, out, err = call(capsys, "compare")
    assert code == 0, err
    assert out.startswith(f"Scenario: {DEFAULT_SCENARIO} — ")
    assert "Book: books/demo-coinm.jsonl" in out
    lines = out.splitlines()
    conservation = next(line for line in lines if line.startswith("Conservation error"))
    assert conservation.split()[-2:] == ["0", "0"]
    # the contrast the default exists to show: clawback under one, ADL under the other
    assert next(line for line in lines if line.startswith("Money counted in")).split()[-2:] == [
        "BTC",
        "BTC",
    ]
    clawback = next(line for line in lines if line.startswith("Clawback rate"))
    assert clawback.split()[2] != "0" and clawback.endswith("0 (0 %)")
    adl = next(line for line in lines if line.startswith("ADL deleverages"))
    assert adl.split()[-2] == "0" and adl.split()[-1] != "0"


def test_compare_a_single_policy_has_no_differences_section(capsys, book_path, scenario_path):
    code, out, err = call(
        capsys, "compare", "huobi-linear-swap", "--book", book_path, "--scenario", scenario_path
    )
    assert code == 0, err
    assert "Accounts whose fate differs most" not in out
    assert "Liquidation price of 1 BTC/USDT long" in out


def test_default_policies_are_the_readme_pair_and_share_the_default_book():
    """The README's pair: HTX's coin-margined clawback rulebook against Binance COIN-M's fund and
    ADL, both live on 19 May 2021 (their validity dates cover the scenario's date)."""
    defaults = default_policies()
    assert defaults == ["huobi-coin-swap", "binance-coinm"]
    assert (DEFAULT_BOOK, DEFAULT_SCENARIO) == ("demo-coinm", "crash-2021-05-19")
    from engine.policy.load import load_policy

    for policy in map(load_policy, defaults):
        assert (policy.valid_from or "") <= "2021-05-19" <= (policy.valid_until or "9999")


def test_a_figure_missing_under_the_first_policy_is_a_dash_not_a_heading():
    """A pool only the second policy has: its rows show `—` then the value, never an empty
    heading row (a regression: a first value of None once made the row a group heading)."""
    from decimal import Decimal

    from engine.report.compare_text import Row, table_lines

    rows = [
        Row("insurance_funds.shared", "pool shared", (None, None), heading=True, level=1),
        Row("insurance_funds.shared.start", "start", (None, Decimal(150)), level=2),
    ]
    lines = table_lines(["a", "b"], rows)
    assert lines[1] == "  pool shared"
    assert lines[2].split() == ["start", "—", "150"]
