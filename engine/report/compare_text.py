"""The side-by-side comparison as plain text, and the figures every comparison format shares.

:func:`summary_rows` turns simulation results into labelled rows (one value per policy), so the
text, Markdown and HTML reports show the same figures in the same order.  Money is exact, with
thousands separators; ratios longer than six decimal places are shortened for display, marked
with "…" (the JSON form always carries the exact strings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from engine.numbers import ZERO, format_decimal
from engine.paint import Paint, Role, no_paint
from engine.report.account_text import money
from engine.simulation.compare import AccountDifference, Comparison, LeverageCurve
from engine.simulation.results import Fate, SimulationResult
from engine.table_layout import Column, Table, TableRow, text_lines

RATIO_PLACES = 6
# The first three add up to the margin liquidated traders lost; the rest paid the losses past
# bankruptcy (see SimulationResult.where_the_money_went).
MONEY_DESTINATIONS = (
    ("counterparties", "to counterparties"),
    ("fees", "to fees"),
    ("insurance_fund", "to the insurance fund"),
    ("insurance_fund_paid", "past bankruptcy: insurance fund paid"),
    ("adl", "past bankruptcy: ADL haircuts"),
    ("clawback", "past bankruptcy: clawback"),
    ("write_off", "past bankruptcy: write-off"),
    ("debt", "past bankruptcy: traders' debt"),
)


@dataclass(frozen=True, slots=True)
class Row:
    """One figure, one value per policy; `level` 1 rows detail the level-0 row above them."""

    key: str  # where the figure sits in the JSON summary, e.g. "fees.base"
    label: str
    values: tuple[Decimal | None, ...]
    kind: str = "money"  # money | count | ratio
    level: int = 0

    def shown(self, *, shorten: bool = True) -> list[str]:
        return [show(value, self.kind, shorten=shorten) for value in self.values]

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1


def shorten_decimal(value: Decimal, places: int = RATIO_PLACES) -> str:
    """Plain decimal text cut to `places` decimals (half-even), marked "…" if digits were lost."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
        if rounded != value:
            return format_decimal(rounded) + "…"
    return format_decimal(value)


def ratio_text(value: Decimal, *, shorten: bool = True) -> str:
    """`0.6 (60 %)`: the ratio and its percentage."""
    percent = value * 100
    if shorten:
        return f"{shorten_decimal(value)} ({shorten_decimal(percent, 4)} %)"
    return f"{format_decimal(value)} ({format_decimal(percent)} %)"


def show(value: Decimal | None, kind: str, *, shorten: bool = True) -> str:
    if value is None:
        return "—"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "ratio":
        return ratio_text(value, shorten=shorten)
    return money(value)


# (key, label, kind, level) in report order; a None kind is a group heading without figures.
LAYOUT: tuple[tuple[str, str, str | None, int], ...] = (
    ("accounts_liquidated.total", "Accounts liquidated", "count", 0),
    ("accounts_liquidated.partial", "partially", "count", 1),
    ("accounts_liquidated.full", "fully", "count", 1),
    ("liquidated_notional", "Liquidated notional", "money", 0),
    ("fees.total", "Liquidation fees", "money", 0),
    ("fees.base", "base", "money", 1),
    ("fees.surcharge", "surcharges", "money", 1),
    ("margin_returned", "Margin returned to traders", "money", 0),
    ("insurance_fund.start", "Insurance fund start", "money", 0),
    ("insurance_fund.min", "minimum", "money", 1),
    ("insurance_fund.end", "end", "money", 1),
    ("adl_count", "ADL deleverages", "count", 0),
    ("adl_volume", "volume (each policy's contracts)", "money", 1),
    ("adl_haircut", "counterparties' haircut", "money", 1),
    ("clawback_rate", "Clawback rate", "ratio", 0),
    ("bad_debt", "Bad debt", "money", 0),
    ("write_offs", "written off by the exchange", "money", 1),
    ("debt_outstanding", "owed by traders", "money", 1),
    ("where_the_money_went", "Where the liquidated money went", None, 0),
    *((f"where_the_money_went.{key}", label, "money", 1) for key, label in MONEY_DESTINATIONS),
)


def figures(result: SimulationResult) -> dict[str, Decimal]:
    """Every figure of the side-by-side table, keyed as in the JSON summary."""
    found = {f"accounts_liquidated.{k}": Decimal(v) for k, v in result.accounts_liquidated.items()}
    found |= {f"fees.{k}": v for k, v in result.fees.items()}
    found |= {f"insurance_fund.{k}": v for k, v in result.insurance_fund.items()}
    found |= {f"where_the_money_went.{k}": v for k, v in result.where_the_money_went().items()}
    found |= {f"charges.{k}": v for k, v in result.charges.items()}
    found |= {
        "liquidated_notional": result.liquidated_notional,
        "margin_returned": result.margin_returned,
        "adl_count": Decimal(len(result.deleverages)),
        "adl_volume": result.adl["volume"],
        "adl_haircut": result.adl["haircut"],
        "clawback_rate": result.clawback_rate,
        "bad_debt": result.bad_debt,
        "write_offs": result.write_offs,
        "debt_outstanding": result.debt_outstanding,
        "conservation_error": result.conservation_error,
    }
    return found


def summary_rows(results: Sequence[SimulationResult]) -> list[Row]:
    """The headline figures of each result, in report order."""
    values = [figures(r) for r in results]
    layout = list(LAYOUT)
    charges = sorted({name for r in results for name in r.charges})
    if charges:
        layout.append(("charges", "Periodic charges paid", None, 0))
        layout += [(f"charges.{name}", name, "money", 1) for name in charges]
    layout.append(("conservation_error", "Conservation error", "money", 0))
    rows = []
    for key, label, kind, level in layout:
        if kind is None:
            rows.append(Row(key, label, tuple(None for _ in results), "money", level))
        else:
            rows.append(Row(key, label, tuple(v.get(key, ZERO) for v in values), kind, level))
    return rows


def fate_text(fate: Fate, *, shorten: bool = True) -> str:
    """`full liquidation (2 orders) at t=605 s, loss 1,234.5` (a negative loss shows as a gain)."""
    if fate.liquidation == "none":
        text = "not liquidated"
    else:
        orders = f"{fate.orders} order{'' if fate.orders == 1 else 's'}"
        text = f"{fate.liquidation} liquidation ({orders}) at t={fate.first_liquidation_time} s"
    extras = [f"loss {money(fate.loss)}" if fate.loss >= 0 else f"gain {money(-fate.loss)}"]
    if fate.debt:
        extras.append(f"debt {money(fate.debt)}")
    if fate.adl_haircut:
        extras.append(f"ADL haircut {money(fate.adl_haircut)}")
    if fate.clawback_paid:
        extras.append(f"clawback {money(fate.clawback_paid)}")
    return f"{text}, {', '.join(extras)}"


def curve_caption(curve: LeverageCurve) -> str:
    return (
        f"Liquidation price of {format_decimal(curve.quantity)} {curve.instrument} "
        f"{curve.side} entered at {money(curve.entry_price)}, by leverage"
    )


def curve_rows(curve: LeverageCurve, policy_ids: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(leverage label, one price per policy) for every leverage any policy quoted."""
    leverages: list[Decimal] = []
    for points in curve.points.values():
        leverages += [lev for lev, _ in points if lev not in leverages]
    rows = []
    for leverage in sorted(leverages):
        prices = []
        for pid in policy_ids:
            price = dict(curve.points.get(pid, ())).get(leverage)
            prices.append(money(price) if price is not None else "—")
        rows.append((f"{format_decimal(leverage)}x", prices))
    return rows


def heading(comparison: Comparison) -> list[str]:
    scenario = comparison.scenario
    steps = len(scenario.times())
    lines = [
        f"Scenario: {scenario.id} — {scenario.title} ({steps:,} steps)",
        f"Book: {comparison.book_path or '(in memory)'} ({comparison.book_size:,} accounts)",
    ]
    lines += [
        f"Policy {r.policy_id}: {r.policy_title} ({r.policy_digest[:19]}…)"
        for r in comparison.results
    ]
    lines += [f"Skipped {s.policy_id}: {s.reason}" for s in comparison.skipped]
    return lines


def summary_table(headers: Sequence[str], rows: Sequence[Row]) -> Table:
    """The figures as a layout table (engine/table_layout.py): labels, then a column per policy;
    group headings as heading rows, rows whose values differ marked "differs"."""
    laid = []
    for row in rows:
        if row.values and row.values[0] is None:
            laid.append(TableRow((row.label, *("" for _ in headers)), row.level, "heading"))
        else:
            role: Role | None = "differs" if len(headers) > 1 and row.differs else None
            laid.append(TableRow((row.label, *row.shown()), row.level, role))
    return Table((Column("", "left"), *(Column(h) for h in headers)), tuple(laid))


def table_lines(
    headers: Sequence[str],
    rows: Sequence[Row],
    *,
    width: int | None = None,
    paint: Paint = no_paint,
) -> list[str]:
    """An aligned table: labels left, one right-aligned column per policy, fitted to `width`."""
    return text_lines(summary_table(headers, rows), width=width, paint=paint)


def difference_lines(
    differences: Sequence[AccountDifference], policy_ids: Sequence[str]
) -> list[str]:
    if not differences:
        return ["  Every account fared the same under every policy."]
    width = max(len(pid) for pid in policy_ids)
    lines: list[str] = []
    for difference in differences:
        lines.append(f"  {difference.account_id}  (loss differs by {money(difference.spread)})")
        for pid, fate in zip(policy_ids, difference.fates, strict=True):
            lines.append(f"    {pid:<{width}}  {fate_text(fate)}")
        for index, reason in enumerate(difference.reasons):
            lines.append(f"    {'why:' if index == 0 else '    '} {reason}")
    return lines


def render_comparison(
    comparison: Comparison, *, width: int | None = None, paint: Paint = no_paint
) -> str:
    """The whole comparison as text; tables fitted to `width` cells (None: no limit) and
    painted by `paint` (engine/paint.py: plain by default)."""
    ids = comparison.policy_ids
    lines = [*heading(comparison), ""]
    lines += table_lines(ids, summary_rows(comparison.results), width=width, paint=paint)
    if len(ids) > 1:
        lines += [
            "",
            paint(
                f"Accounts whose fate differs most ({len(comparison.differences)} shown, "
                "largest difference in loss first)",
                "heading",
            ),
        ]
        lines += difference_lines(comparison.differences, ids)
    curve = comparison.curve
    if curve is not None:
        lines += ["", paint(curve_caption(curve), "heading")]
        table = Table(
            (Column("leverage"), *(Column(pid) for pid in ids)),
            tuple(TableRow((label, *prices)) for label, prices in curve_rows(curve, ids)),
        )
        lines += text_lines(table, width=width, indent=2, paint=paint)
    return "\n".join(lines) + "\n"


def render_result(
    result: SimulationResult,
    *,
    events: bool = False,
    width: int | None = None,
    paint: Paint = no_paint,
) -> str:
    """One simulation as text (`liqpolicy simulate`); with `events`, every liquidation.
    `width` and `paint` as for :func:`render_comparison`."""
    lines = [
        f"Policy {result.policy_id}: {result.policy_title} ({result.policy_digest[:19]}…)",
        f"Scenario {result.scenario_id}: {result.steps:,} steps, {result.accounts:,} accounts",
        "",
    ]
    lines += table_lines([result.policy_id], summary_rows([result]), width=width, paint=paint)
    if result.clawbacks:
        lines += ["", paint("Clawbacks:", "heading")]
        lines += [
            f"  t={c.time} s: uncovered {money(c.uncovered)} over profit "
            f"{money(c.total_profit)}, rate {ratio_text(c.rate)}, collected "
            f"{money(c.collected)} from {c.payers:,} accounts, written off "
            f"{money(c.written_off)}"
            for c in result.clawbacks
        ]
    if events:
        lines += ["", paint(f"Liquidations ({len(result.events):,}):", "heading")]
        for event in result.events:
            statement = event.liquidation.statement
            kind = "full" if statement.fully_liquidated else "partial"
            lines.append(
                f"  t={event.time} s  {event.account_id}  {statement.unit}: {kind}, "
                f"{len(statement.orders)} order(s), fees "
                f"{money(statement.fees_collected)}, shortfall "
                f"{money(statement.shortfall)}  [{statement.event_id}]"
            )
            lines += [
                f"      {a.stage}: {money(a.amount)}" + (f"  ({a.detail})" if a.detail else "")
                for a in event.allocations
            ]
        if result.deleverages:
            lines += ["", paint(f"ADL deleverages ({len(result.deleverages):,}):", "heading")]
            lines += [
                f"  t={d.time} s  {d.account_id}  {d.symbol} {d.side} {money(d.quantity)} at "
                f"{money(d.price)}, haircut {money(d.haircut)}"
                for d in result.deleverages
            ]
    return "\n".join(lines) + "\n"
