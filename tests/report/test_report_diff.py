"""`liqpolicy diff A B` and engine.report.policy_diff: rules side by side, before any run."""

from __future__ import annotations

import json
from pathlib import Path

from engine.cli import main
from engine.policy.load import load_policy
from engine.report.policy_diff import diff_policies, render_diff_markdown, render_diff_text

ROOT = Path(__file__).resolve().parents[2]
BINANCE_TRIGGER = "margin_ratio >= 1"
HUOBI_TRIGGER = "margin_ratio >= 1 and margin_ratio_last >= 1"


def call(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_diff_text_lists_triggers_and_tiers(capsys):
    code, out, err = call(capsys, "diff", "binance-usdm", "huobi-linear-swap", "--width", "200")
    assert code == 0, err
    assert out.startswith("A: binance-usdm — ")
    trigger = next(line for line in out.splitlines() if line.startswith("≠ trigger"))
    assert BINANCE_TRIGGER in trigger and HUOBI_TRIGGER in trigger
    assert "Tiers BTC/USDT" in out
    assert "tables: btcusdt_brackets | adjustment_factors" in out
    tier1 = next(line for line in out.splitlines() if line.startswith("≠ tier 1 "))
    assert "0 ≤ notional < 50,000" in tier1 and "0 ≤ net_contracts < 9,000" in tier1
    assert "\nMarkets only in A\n  317 markets: 1000BONK/USDT, " in out  # folded: see the next test
    for title in (
        "Market BTC/USDT",
        "Trigger",
        "Definitions that differ",
        "Steps",
        "Fill and settlement",
        "Fees",
        "Consumption and surplus",
        "Waterfall",
        "Charges",
    ):
        assert f"\n{title}\n" in out, title
    waterfall = next(line for line in out.splitlines() if line.lstrip("≠ ").startswith("order "))
    assert waterfall.count("insurance_fund → adl → write_off") == 2  # both: fund, then ADL
    pool = next(line for line in out.splitlines() if "insurance fund pool" in line)
    assert "per_symbol" in pool and "shared" in pool


def test_diff_text_wraps_to_the_width(capsys):
    code, out, _ = call(capsys, "diff", "binance-usdm", "huobi-linear-swap")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 110 + 10  # long words may overhang
    assert "margin_ratio_last" in out


def test_diff_markdown(capsys):
    code, out, _ = call(capsys, "diff", "binance-usdm", "huobi-linear-swap", "--format", "markdown")
    assert code == 0
    assert out.startswith("# binance-usdm vs huobi-linear-swap\n")
    assert f"| ≠ | trigger | `{BINANCE_TRIGGER}` | `{HUOBI_TRIGGER}` |" in out
    assert "## Tiers BTC/USDT" in out
    assert "| ≠ | tier 3 | 600,000 ≤ notional < 3,000,000," in out
    assert "net_contracts ≥ 90,000" in out


def test_diff_json(capsys):
    code, out, _ = call(capsys, "diff", "binance-usdm", "huobi-linear-swap", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["a"]["id"] == "binance-usdm" and data["b"]["id"] == "huobi-linear-swap"
    sections = {s["title"]: s for s in data["sections"]}
    trigger = next(r for r in sections["Trigger"]["rows"] if r["label"] == "trigger")
    assert trigger == {"label": "trigger", "a": BINANCE_TRIGGER, "b": HUOBI_TRIGGER, "same": False}
    inputs = next(r for r in sections["Trigger"]["rows"] if r["label"] == "price inputs")
    assert (inputs["a"], inputs["b"]) == ("mark_price", "mark_price, last_price")
    tiers = sections["Tiers BTC/USDT"]["rows"]
    assert len(tiers) == 13  # Binance's 12 brackets beside HTX's 3 + 5 + 5 ladder rows
    assert tiers[12]["a"] is None and "net_contracts ≥ 120,000" in tiers[12]["b"]
    assert data["differences"] == sum(s["differences"] for s in data["sections"])


def test_diff_of_a_policy_with_itself_has_no_differences(load):
    policy = load("binance-usdm")
    same = diff_policies(policy, policy)
    assert same.differences == 0
    assert same.section("Definitions that differ").rows == ()
    assert "0 differences" in render_diff_text(same)


def test_diff_compares_expressions_in_canonical_form(tmp_path, load):
    child = tmp_path / "child.yaml"
    parent = (ROOT / "policies" / "binance-usdm.yaml").as_posix()
    child.write_text(
        f"extends: {parent}\nid: child\ntitle: Child <b>&</b>\n"
        "liquidation:\n  trigger: '((margin_ratio)) >=   100%'\n"
        "waterfall:\n  order: [insurance_fund, clawback, write_off]\n"
        "  insurance_fund: {pool: shared}\n  clawback: {cap: 0.5, step: 0.01}\n",
        encoding="utf-8",
    )
    diff = diff_policies(load("binance-usdm"), load_policy(str(child)))
    trigger = next(r for r in diff.section("Trigger").rows if r.label == "trigger")
    assert trigger.same
    waterfall = {r.label: r for r in diff.section("Waterfall").rows}
    assert not waterfall["order"].same
    assert waterfall["clawback"].b == "base equity, cap 0.5, step 0.01"
    assert waterfall["ADL ranking"].b == "—"
    assert diff.section("Definitions that differ").rows == ()
    markdown = render_diff_markdown(diff)
    assert "Child \\<b>&\\</b>" in markdown  # text never becomes HTML


def test_diff_unknown_policy(capsys):
    code, out, err = call(capsys, "diff", "binance-usdm", "no-such-policy")
    assert code == 2
    assert out == ""
    assert "no-such-policy" in err


def test_diff_shows_validity_settlement_currency_limit_and_adl_price():
    """The keys the venue policies brought: validity dates, settlement currency, a step's
    immediate-or-cancel limit, ADL mode and price (a policy's own, or the default)."""
    diff = diff_policies(load_policy("dydx-v4"), load_policy("hyperliquid"))
    rows = {(s.title, r.label): (r.a, r.b) for s in diff.sections for r in s.rows}
    assert rows[("Market BTC/USDT", "settlement currency")] == ("USDC", "USDC")
    assert "immediate-or-cancel at fillable_price" in (rows[("Steps", "step 1")][0] or "")
    assert rows[("Waterfall", "ADL price")] == (
        "order.bankruptcy_price",
        "market.previous_mark_price",
    )
    assert rows[("Waterfall", "ADL mode")] == ("replace_market_sale", "replace_market_sale")
    dated = diff_policies(load_policy("bitmex-xbtusd"), load_policy("bitmex-xbtusd-dpe-2016"))
    rows = {(s.title, r.label): (r.a, r.b) for s in dated.sections for r in s.rows}
    assert rows[("Policy", "valid")] == ("—", "… to 2016-10-03")
    assert rows[("Waterfall", "ADL price")] == ("order.bankruptcy_price", "—")


def test_diff_shows_what_a_charge_accrues_to(capsys):
    code, out, _ = call(
        capsys, "diff", "binance-cross-margin", "seed-margin-financing", "--format", "json"
    )
    assert code == 0
    rows = next(s for s in json.loads(out)["sections"] if s["title"] == "Charges")["rows"]
    assert "accruing to interest" in rows[0]["a"]
    assert "accruing to debt" in rows[1]["b"]


def test_diff_folds_many_identical_or_one_sided_markets():
    """318 markets against 1 would bury the rules: the 317 one-sided markets are one line; a few
    (FULL_MARKETS or fewer) are still shown in full, as are markets in both that differ."""
    from engine.policy.load import load_policy
    from engine.report.policy_diff import FULL_MARKETS, diff_policies

    binance = load_policy("binance-usdm")
    sections = {
        s.title: s for s in diff_policies(binance, load_policy("huobi-linear-swap")).sections
    }
    assert "Market BTC/USDT" in sections and "Market ETH/USDT" not in sections
    assert sections["Markets only in A"].note.startswith("317 markets: ")
    same = diff_policies(binance, load_policy("binance-usdm-with-debt")).sections
    titles = [s.title for s in same]
    assert "Markets the same in both" in titles
    assert not any(t.startswith("Market ") for t in titles)
    assert FULL_MARKETS == 4
