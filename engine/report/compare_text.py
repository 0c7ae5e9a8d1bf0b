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
from engine.simulation.waterfall import Deleverage, Takeover
from engine.table_layout import Column, Table, TableRow, text_lines

RATIO_PLACES = 6
NOTIONAL_PLACES = 8  # a notional is a valuation, not money moved: shown shortened, marked "…"
# Where the liquidated money went, in two groups that each add up (SimulationResult's
# where_the_money_went): the margin liquidated traders lost, and who paid the losses past it.
MARGIN_DESTINATIONS = (
    ("counterparties", "to counterparties"),
    ("fees", "to fees"),
    ("insurance_fund_takeover_gains", "to the insurance fund: takeover gains"),
    ("insurance_fund", "to the insurance fund: surplus kept"),
)
LOSS_PAYERS = (
    ("insurance_fund_paid", "insurance fund payouts"),
    ("insurance_fund_takeover_losses", "insurance fund takeover losses"),
    ("cross_wallet", "the trader's cross wallet"),
    ("adl", "ADL counterparties"),
    ("clawback", "clawback"),
    ("write_off", "write-off"),
    ("debt", "traders' debt"),
)
MONEY_DESTINATIONS = MARGIN_DESTINATIONS + LOSS_PAYERS

Value = Decimal | str | None


@dataclass(frozen=True, slots=True)
class Row:
    """One figure, one value per policy; rows of `level` n detail the level n - 1 row above.

    A `heading` row groups the rows below it and has no figures; a value of None shows `—`
    (the policy has no such figure, e.g. no pool for that instrument).
    """

    key: str  # where the figure sits in the JSON summary, e.g. "fees.base"
    label: str
    values: tuple[Value, ...]
    kind: str = "money"  # money | notional | count | ratio | text
    level: int = 0
    heading: bool = False

    def shown(self, *, shorten: bool = True) -> list[str]:
        if self.heading:
            return ["" for _ in self.values]
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


def show(value: Value, kind: str, *, shorten: bool = True) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if kind == "count":
        return f"{int(value):,}"
    if kind == "ratio":
        return ratio_text(value, shorten=shorten)
    if kind == "notional" and shorten:
        short = shorten_decimal(value, NOTIONAL_PLACES)
        return money(Decimal(short.rstrip("…"))) + ("…" if short.endswith("…") else "")
    return money(value)


def pool_label(result: SimulationResult, pool: str) -> str:
    """A pool by what it covers, so pools line up across policies: `BTC/USDT` or `shared`."""
    units = result.markets.get(pool)
    return units.instrument if units is not None else pool


def figures(result: SimulationResult) -> dict[str, Value]:
    """Every figure of the side-by-side table, keyed as in the JSON summary.

    Per-pool and per-instrument figures are keyed by instrument (`insurance_funds.BTC/USDT.min`,
    `adl_contracts.BTC/USDT`) so they line up across policies that name markets differently.
    """
    found: dict[str, Value] = {
        f"accounts_liquidated.{k}": Decimal(v) for k, v in result.accounts_liquidated.items()
    }
    found |= {f"fees.{k}": v for k, v in result.fees.items()}
    found |= {f"insurance_fund.{k}": v for k, v in result.insurance_fund.items()}
    for pool, values in result.pools.items():
        label = pool_label(result, pool)
        found |= {f"insurance_funds.{label}.{k}": v for k, v in values.items()}
        found[f"insurance_funds.{label}.currency"] = result.pool_currencies.get(
            pool, result.currency
        )
    for symbol, contracts in result.adl_contracts.items():
        units = result.markets.get(symbol)
        if units is not None:
            found[f"adl_contracts.{units.instrument}"] = contracts * units.contract_size
    found |= {f"where_the_money_went.{k}": v for k, v in result.where_the_money_went().items()}
    found |= {f"charges.{k}": v for k, v in result.charges.items()}
    exhausted = result.adl_exhausted
    found |= {
        "currency": result.currency or "—",
        "notional_currency": result.notional_unit or result.currency or "—",
        "liquidated_notional": result.liquidated_notional,
        "margin_returned": result.margin_returned,
        "adl_count": result.adl["count"],
        "adl_volume": result.adl["volume"],
        "adl_haircut": result.adl["haircut"],
        "adl_residual.count": result.adl_residual["count"],
        "adl_residual.amount": result.adl_residual["amount"],
        "adl_exhausted.count": Decimal(exhausted["count"]),
        "adl_exhausted.amount": exhausted["amount"],
        "clawback_rate": result.clawback_rate,
        "bad_debt": result.bad_debt,
        "write_offs": result.write_offs,
        "debt_outstanding": result.debt_outstanding,
        "liquidated_margin": result.liquidated_margin,
        "losses_past_bankruptcy": result.losses_past_bankruptcy,
        "conservation_error": result.conservation_error,
    }
    return found


# (key, label, kind, level) in report order; a None kind is a heading without figures.
Layout = list[tuple[str, str, str | None, int]]


def _layout(results: Sequence[SimulationResult]) -> Layout:
    pools = sorted({pool_label(r, p) for r in results for p in r.pools})
    instruments: dict[str, str] = {}  # instrument -> what its quantity counts (BTC, USD)
    for result in results:
        for symbol in result.adl_contracts:
            units = result.markets.get(symbol)
            if units is not None:
                instruments.setdefault(units.instrument, units.quantity_unit)
    notional_differs = any((r.notional_unit or r.currency) != r.currency for r in results)
    layout: Layout = [
        ("currency", "Money counted in", "text", 0),
        ("accounts_liquidated.total", "Accounts liquidated", "count", 0),
        ("accounts_liquidated.partial", "partially", "count", 1),
        ("accounts_liquidated.full", "fully", "count", 1),
        ("liquidated_notional", "Liquidated notional", "notional", 0),
    ]
    if notional_differs:
        layout.append(("notional_currency", "notional counted in", "text", 1))
    layout += [
        ("fees.total", "Liquidation fees", "money", 0),
        ("fees.base", "base", "money", 1),
        ("fees.surcharge", "surcharges", "money", 1),
        ("margin_returned", "Margin returned to traders", "money", 0),
        ("insurance_fund.start", "Insurance fund start (all pools)", "money", 0),
        ("insurance_fund.min", "lowest any pool fell to", "money", 1),
        ("insurance_fund.end", "end (all pools)", "money", 1),
    ]
    if len(pools) > 1 or any(len(r.pools) > 1 for r in results):
        for pool in pools:
            layout += [
                (f"insurance_funds.{pool}", f"pool {pool}", None, 1),
                (f"insurance_funds.{pool}.start", "start", "money", 2),
                (f"insurance_funds.{pool}.min", "minimum", "money", 2),
                (f"insurance_funds.{pool}.end", "end", "money", 2),
            ]
    layout += [
        ("adl_count", "ADL deleverages (positions closed)", "count", 0),
        *(
            (f"adl_contracts.{name}", f"volume {name} ({unit})", "money", 1)
            for name, unit in sorted(instruments.items())
        ),
        ("adl_volume", "volume, notional", "notional", 1),
        ("adl_haircut", "counterparties' haircut (vs the mark)", "money", 1),
        ("adl_residual.count", "residual claims paid from profit", "count", 1),
        ("adl_residual.amount", "amount", "money", 2),
        ("adl_exhausted.count", "ADL exhausted: no counterparty left", "count", 1),
        ("adl_exhausted.amount", "loss passed on", "money", 2),
        ("clawback_rate", "Clawback rate", "ratio", 0),
        ("bad_debt", "Bad debt", "money", 0),
        ("write_offs", "written off by the exchange", "money", 1),
        ("debt_outstanding", "owed by traders", "money", 1),
        ("where_the_money_went", "Where the liquidated money went", None, 0),
        ("liquidated_margin", "Liquidated margin", "money", 1),
        *((f"where_the_money_went.{k}", label, "money", 2) for k, label in MARGIN_DESTINATIONS),
        ("losses_past_bankruptcy", "Losses past bankruptcy, paid by", "money", 1),
        *((f"where_the_money_went.{k}", label, "money", 2) for k, label in LOSS_PAYERS),
    ]
    charges = sorted({name for r in results for name in r.charges})
    if charges:
        layout.append(("charges", "Periodic charges paid", None, 0))
        layout += [(f"charges.{name}", name, "money", 1) for name in charges]
    layout.append(("conservation_error", "Conservation error", "money", 0))
    return layout


def summary_rows(results: Sequence[SimulationResult]) -> list[Row]:
    """The headline figures of each result, in report order."""
    values = [figures(r) for r in results]
    rows = []
    for key, label, kind, level in _layout(results):
        if kind is None:
            rows.append(Row(key, label, tuple(None for _ in results), "money", level, True))
        else:
            default = ZERO if kind != "text" and not key.startswith("insurance_funds.") else None
            rows.append(Row(key, label, tuple(v.get(key, default) for v in values), kind, level))
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
    if fate.adl_haircut > 0:
        extras.append(f"ADL haircut {money(fate.adl_haircut)}")
    elif fate.adl_haircut < 0:  # deleveraged at a price better than the mark
        extras.append(f"ADL closed {money(-fate.adl_haircut)} better than the mark")
    if fate.clawback_paid:
        extras.append(f"clawback {money(fate.clawback_paid)}")
    return f"{text}, {', '.join(extras)}"


def curve_caption(curve: LeverageCurve) -> str:
    if curve.kind == "inverse":
        quote = curve.instrument.partition("/")[2]
        what = f"{money(curve.quantity)} {quote} (face value) of {curve.instrument}"
    else:
        what = f"{format_decimal(curve.quantity)} {curve.instrument}"
    return f"Liquidation price of {what} {curve.side} entered at {money(curve.entry_price)}, by leverage"


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
        if row.heading:
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


def takeover_lines(takeover: Takeover) -> list[str]:
    """Where one bankrupt order's contracts went, for `simulate --events`."""
    parts = []
    if takeover.fund_quantity:
        parts.append(
            f"insurance fund took over {money(takeover.fund_quantity)}, sold at "
            f"{show(takeover.fund_price, 'money')} ({money(takeover.fund_result)})"
        )
    if takeover.adl_quantity:
        parts.append(
            f"ADL closed {money(takeover.adl_quantity)} against counterparties at "
            f"{show(takeover.adl_price, 'money')}"
        )
    if takeover.market_quantity:
        parts.append(
            f"no counterparty left: {money(takeover.market_quantity)} sold at "
            f"{show(takeover.market_price, 'money')} ({money(takeover.market_result)})"
        )
    if takeover.passed_on:
        parts.append(f"{money(takeover.passed_on)} passed on")
    return [
        f"      takeover of order #{takeover.order}: {money(takeover.quantity)} {takeover.symbol} "
        f"{takeover.side} settled at {money(takeover.settlement_price)}; " + "; ".join(parts)
    ]


def deleverage_line(d: Deleverage) -> str:
    if d.kind == "residual":
        return (
            f"  t={d.time} s  {d.account_id}  {d.symbol} {d.side}: paid {money(d.haircut)} of "
            f"{d.bankrupt_account}'s residual claim from its profit (nothing closed)"
        )
    return (
        f"  t={d.time} s  {d.account_id}  {d.symbol} {d.side} {money(d.quantity)} at "
        f"{show(d.price, 'money')} for {d.bankrupt_account}, haircut {money(d.haircut)}"
        + ("  (after the fund's sale)" if d.kind == "after_sale" else "")
    )


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
        f"Scenario {result.scenario_id}: {result.steps:,} steps, {result.accounts:,} accounts; "
        f"money in {result.currency or '—'}",
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
            for order in statement.orders:
                if order.requested is not None and order.limit_price is not None:
                    lines.append(
                        f"      order #{order.number} immediate-or-cancel at limit "
                        f"{money(order.limit_price)}: {money(order.quantity)} of "
                        f"{money(order.requested)} filled, {money(order.cancelled)} cancelled"
                    )
            for takeover in event.takeovers:
                lines += takeover_lines(takeover)
            lines += [
                f"      {a.stage}: {money(a.amount)}" + (f"  ({a.detail})" if a.detail else "")
                for a in event.allocations
            ]
        if result.deleverages:
            lines += ["", paint(f"ADL ({len(result.deleverages):,}):", "heading")]
            lines += [deleverage_line(d) for d in result.deleverages]
        if result.exhaustions:
            lines += [
                "",
                paint(
                    f"ADL exhausted: no counterparty left ({len(result.exhaustions):,}):", "heading"
                ),
            ]
            lines += [
                f"  t={e.time} s  {e.account_id}  {e.symbol}: "
                + (f"{money(e.contracts)} contracts sold into the market, " if e.contracts else "")
                + f"{money(e.amount)} passed on"
                for e in result.exhaustions
            ]
    return "\n".join(lines) + "\n"
