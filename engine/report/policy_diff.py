"""Two policies' rules side by side, before anything runs (`liqpolicy diff A B`).

:func:`diff_policies` is pure: it returns sections of labelled rows, each holding A's and B's
text (None when a policy lacks the item) and whether they are the same.  Expressions are shown
in canonical form (:func:`engine.dsl.printer.print_expression`), so formatting differences in the
YAML do not count as differences.  :func:`render_diff_text` and :func:`render_diff_markdown` lay
the sections out; the JSON form is :meth:`PolicyDiff.as_dict`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.dsl.printer import print_expression
from engine.dsl.table import Table
from engine.numbers import format_decimal
from engine.policy.model import Market, Policy
from engine.policy.procedure import DEFAULT_BANKRUPTCY
from engine.report.account_text import money
from engine.report.compare_markdown import cell, table

ABSENT = "—"
NOTHING = "none in either policy"
DEFAULT_BANKRUPTCY_TEXT = f"{DEFAULT_BANKRUPTCY} (default)"


@dataclass(frozen=True, slots=True)
class DiffRow:
    label: str
    a: str | None
    b: str | None

    @property
    def same(self) -> bool:
        return self.a == self.b

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "a": self.a, "b": self.b, "same": self.same}


@dataclass(frozen=True, slots=True)
class DiffSection:
    title: str
    rows: tuple[DiffRow, ...]
    note: str = ""
    code: bool = False  # rows hold expressions (shown as code in Markdown)

    @property
    def differences(self) -> int:
        return sum(1 for row in self.rows if not row.same)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "note": self.note,
            "differences": self.differences,
            "expressions": self.code,
            "rows": [row.as_dict() for row in self.rows],
        }


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    a: Mapping[str, str]  # id, title, digest, path
    b: Mapping[str, str]
    sections: tuple[DiffSection, ...]

    @property
    def differences(self) -> int:
        return sum(section.differences for section in self.sections)

    def section(self, title: str) -> DiffSection:
        return next(s for s in self.sections if s.title == title)

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": dict(self.a),
            "b": dict(self.b),
            "differences": self.differences,
            "sections": [s.as_dict() for s in self.sections],
        }


# -- reading a policy ---------------------------------------------------------------------------
def _value(value: object) -> str:
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _shown(value: object) -> str:
    return money(value) if isinstance(value, Decimal) else _value(value)


def expression(policy: Policy, key: str | None) -> str | None:
    """The canonical text of the expression at a dotted location, or None."""
    compiled = policy.expression(key)
    return print_expression(compiled.expr) if compiled is not None else None


def tier_rows(tiers: Table | None) -> list[str]:
    """One line per tier: the exact keys, `min ≤ key < max`, then the other columns."""
    if tiers is None:
        return []
    keys = tiers.type.keys
    interval = tiers.interval_key
    hidden = {"tier"} | {k.name for k in keys}
    if interval is not None:
        hidden |= {f"min_{interval.name}", f"max_{interval.name}"}
    lines = []
    for row in tiers.rows:
        parts = [f"{k.name} {_shown(row[k.name])}" for k in keys if k.kind == "exact"]
        if interval is not None:
            low, high = row.get(f"min_{interval.name}"), row.get(f"max_{interval.name}")
            parts.append(
                f"{money(low)} ≤ {interval.name} < {money(high)}"
                if high is not None
                else f"{interval.name} ≥ {money(low)}"
            )
        parts += [f"{name} {_shown(value)}" for name, value in row.items() if name not in hidden]
        lines.append(", ".join(parts))
    return lines


def _markets(policy: Policy) -> dict[str, Market]:
    return {market.instrument or symbol: market for symbol, market in policy.markets.items()}


def _market_fields(market: Market | None) -> dict[str, str]:
    if market is None:
        return {}
    fields = {
        "symbol": market.symbol,
        "kind": market.kind,
        "contract size": format_decimal(market.contract_size),
        "tick size": format_decimal(market.tick_size),
        "settlement currency": market.settlement_currency or ABSENT,
        "quantity step": format_decimal(market.quantity_step) if market.quantity_step else ABSENT,
        "tier table": market.tiers.name if market.tiers is not None else ABSENT,
    }
    fields.update({f"parameter {k}": _value(v) for k, v in sorted(market.parameters.items())})
    return fields


def _pairs(a: Mapping[str, str], b: Mapping[str, str]) -> tuple[DiffRow, ...]:
    labels = list(a) + [label for label in b if label not in a]
    return tuple(DiffRow(label, a.get(label), b.get(label)) for label in labels)


def _indexed(a: Sequence[str], b: Sequence[str], label: str) -> tuple[DiffRow, ...]:
    count = max(len(a), len(b))
    return tuple(
        DiffRow(f"{label} {i + 1}", a[i] if i < len(a) else None, b[i] if i < len(b) else None)
        for i in range(count)
    )


def _price_rule(policy: Policy, name: str) -> str:
    rule = getattr(policy.procedure, name)
    formula = expression(policy, rule.formula)
    step = f" {format_decimal(rule.step)}" if rule.step is not None else ""
    found = f"formula {formula}" if formula else "solved from the condition"
    if rule.rounding == "trigger":
        return f"{found}; first tick{step} where the condition holds"
    return f"{found}; rounded {rule.rounding} to the step{step}"


def _steps(policy: Policy) -> list[str]:
    lines = []
    for step in policy.procedure.steps:
        repeat = f", up to {step.repeat} times" if step.repeat > 1 else ""
        text = f"{step.name} ({step.kind}{repeat})"
        when, quantity = expression(policy, step.when), expression(policy, step.quantity)
        limit = expression(policy, step.limit_price)
        text += f"; when {when}" if when else ""
        text += f"; quantity {quantity}" if quantity else ""
        text += f"; immediate-or-cancel at {limit}" if limit else ""
        lines.append(text)
    return lines


def _fees(policy: Policy) -> list[str]:
    lines = []
    for fee in policy.procedure.fees:
        when = expression(policy, fee.when)
        lines.append(
            f"{fee.name} ({fee.kind}, to {fee.to}): {expression(policy, fee.amount)}"
            + (f" when {when}" if when else "")
        )
    return lines


def _charges(policy: Policy) -> list[str]:
    lines = []
    for charge in policy.waterfall.charges:
        every = f" every {charge.every_seconds} s" if charge.every_seconds else ""
        accrues = f", accruing to {charge.accrue_to}" if charge.accrue_to else ""
        lines.append(
            f"{charge.name} (at {charge.at}{every}, per {charge.scope}, to {charge.to}{accrues}): "
            f"{expression(policy, charge.amount)}"
        )
    return lines


def _clawback(policy: Policy) -> str:
    spec = policy.waterfall
    text = f"base {spec.clawback_base}, cap {format_decimal(spec.clawback_cap)}"
    return text + (f", step {format_decimal(spec.clawback_step)}" if spec.clawback_step else "")


def _waterfall(policy: Policy) -> dict[str, str]:
    spec = policy.waterfall
    order = spec.order
    return {
        "order": " → ".join(order),
        "insurance fund pool": spec.pool,
        "ADL ranking": (expression(policy, spec.adl_ranking) or ABSENT)
        if "adl" in order
        else ABSENT,
        "ADL eligibility": (expression(policy, spec.adl_eligible) or "profitable positions")
        if "adl" in order
        else ABSENT,
        "ADL mode": spec.adl_mode if "adl" in order else ABSENT,
        "ADL price": (expression(policy, spec.adl_price) or "order.bankruptcy_price (default)")
        if "adl" in order
        else ABSENT,
        "clawback": _clawback(policy) if "clawback" in order else ABSENT,
        "debt waived below": format_decimal(spec.waive_below)
        if "debt" in order and spec.waive_below is not None
        else ABSENT,
    }


def _validity(policy: Policy) -> str:
    if policy.valid_from is None and policy.valid_until is None:
        return ABSENT
    return f"{policy.valid_from or '…'} to {policy.valid_until or 'today'}"


def _definitions(a: Policy, b: Policy) -> DiffSection:
    texts_a = {name: print_expression(d.expr) for name, d in a.definitions.items()}
    texts_b = {name: print_expression(d.expr) for name, d in b.definitions.items()}
    names = list(texts_a) + [name for name in texts_b if name not in texts_a]
    rows = tuple(
        DiffRow(name, texts_a.get(name), texts_b.get(name))
        for name in names
        if texts_a.get(name) != texts_b.get(name)
    )
    same = [name for name in names if texts_a.get(name) == texts_b.get(name)]
    note = (
        (
            f"{len(same)} definition{'' if len(same) == 1 else 's'} with the same text: "
            + ", ".join(same)
        )
        if same
        else "no definition has the same text in both"
    )
    return DiffSection("Definitions that differ", rows, note, code=True)


FULL_MARKETS = 4  # beyond this many one-sided or identical markets, a summary line instead


def _market_sections(
    markets_a: Mapping[str, Market], markets_b: Mapping[str, Market]
) -> list[DiffSection]:
    """A section per market and per tier table, by instrument.  Policies covering hundreds of
    markets would bury the differences: identical markets and markets of one side only are
    listed by name once there are more than FULL_MARKETS of them."""
    instruments = sorted(set(markets_a) | set(markets_b))
    pairs: dict[str, tuple[DiffSection, DiffSection]] = {}
    for instrument in instruments:
        market_a, market_b = markets_a.get(instrument), markets_b.get(instrument)
        names = " | ".join(
            m.tiers.name if m is not None and m.tiers is not None else ABSENT
            for m in (market_a, market_b)
        )
        fields = _pairs(_market_fields(market_a), _market_fields(market_b))
        tiers = _indexed(
            tier_rows(market_a.tiers if market_a else None),
            tier_rows(market_b.tiers if market_b else None),
            "tier",
        )
        pairs[instrument] = (
            DiffSection(f"Market {instrument}", fields),
            DiffSection(f"Tiers {instrument}", tiers, f"tables: {names}"),
        )
    only_a = [i for i in instruments if i not in markets_b]
    only_b = [i for i in instruments if i not in markets_a]
    same = [
        i
        for i in instruments
        if i in markets_a and i in markets_b and not any(s.differences for s in pairs[i])
    ]
    folded: list[tuple[str, list[str]]] = []
    for label, group in (
        ("Markets only in A", only_a),
        ("Markets only in B", only_b),
        ("Markets the same in both", same),
    ):
        if len(group) > FULL_MARKETS:
            folded.append((label, group))
    hidden = {i for _, group in folded for i in group}
    shown = [i for i in instruments if i not in hidden]
    sections = [pairs[i][0] for i in shown] + [pairs[i][1] for i in shown]
    for label, group in folded:
        sections.append(DiffSection(label, (), f"{len(group)} markets: " + ", ".join(group)))
    return sections


def diff_policies(a: Policy, b: Policy) -> PolicyDiff:
    """Compare the rules of two loaded policies, section by section."""
    sections = [
        DiffSection(
            "Policy",
            _pairs(
                {
                    "id": a.id,
                    "title": a.title,
                    "extends": a.extends or ABSENT,
                    "valid": _validity(a),
                    "digest": a.digest,
                    "sources cited": str(len(a.sources)),
                },
                {
                    "id": b.id,
                    "title": b.title,
                    "extends": b.extends or ABSENT,
                    "valid": _validity(b),
                    "digest": b.digest,
                    "sources cited": str(len(b.sources)),
                },
            ),
        )
    ]
    sections += _market_sections(_markets(a), _markets(b))
    procedure_a, procedure_b = a.procedure, b.procedure
    sections.append(
        DiffSection(
            "Trigger",
            _pairs(
                {
                    "trigger": expression(a, procedure_a.trigger) or ABSENT,
                    "price inputs": ", ".join(procedure_a.price_inputs),
                    "bankruptcy": expression(a, procedure_a.bankruptcy) or DEFAULT_BANKRUPTCY_TEXT,
                    "liquidation price": _price_rule(a, "liquidation_price"),
                    "bankruptcy price": _price_rule(a, "bankruptcy_price"),
                },
                {
                    "trigger": expression(b, procedure_b.trigger) or ABSENT,
                    "price inputs": ", ".join(procedure_b.price_inputs),
                    "bankruptcy": expression(b, procedure_b.bankruptcy) or DEFAULT_BANKRUPTCY_TEXT,
                    "liquidation price": _price_rule(b, "liquidation_price"),
                    "bankruptcy price": _price_rule(b, "bankruptcy_price"),
                },
            ),
            code=True,
        )
    )
    sections.append(_definitions(a, b))
    sections.append(DiffSection("Steps", _indexed(_steps(a), _steps(b), "step"), code=True))
    sections.append(
        DiffSection(
            "Fill and settlement",
            _pairs(
                {
                    "fill price": expression(a, procedure_a.fill_price) or ABSENT,
                    "settlement price": expression(a, procedure_a.settlement_price) or ABSENT,
                },
                {
                    "fill price": expression(b, procedure_b.fill_price) or ABSENT,
                    "settlement price": expression(b, procedure_b.settlement_price) or ABSENT,
                },
            ),
            code=True,
        )
    )
    sections.append(DiffSection("Fees", _indexed(_fees(a), _fees(b), "fee"), code=True))
    sections.append(
        DiffSection(
            "Consumption and surplus",
            _pairs(
                {
                    "consumption order": " → ".join(procedure_a.consumption_order),
                    "surplus to insurance fund": expression(
                        a, procedure_a.surplus_to_insurance_fund
                    )
                    or ABSENT,
                },
                {
                    "consumption order": " → ".join(procedure_b.consumption_order),
                    "surplus to insurance fund": expression(
                        b, procedure_b.surplus_to_insurance_fund
                    )
                    or ABSENT,
                },
            ),
            code=True,
        )
    )
    sections.append(DiffSection("Waterfall", _pairs(_waterfall(a), _waterfall(b)), code=True))
    sections.append(DiffSection("Charges", _indexed(_charges(a), _charges(b), "charge"), code=True))
    header = {"id": a.id, "title": a.title, "digest": a.digest, "path": a.path}
    return PolicyDiff(
        header, {"id": b.id, "title": b.title, "digest": b.digest, "path": b.path}, tuple(sections)
    )


# -- rendering ----------------------------------------------------------------------------------
MAX_LABEL_WIDTH = 30


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def render_diff_text(diff: PolicyDiff, *, width: int = 110) -> str:
    """Sections of three wrapped columns (label, A, B); `≠` marks rows that differ."""
    labels = [len(row.label) for section in diff.sections for row in section.rows]
    label_width = min(MAX_LABEL_WIDTH, max(labels, default=10))
    column = max(20, (width - label_width - 6) // 2)
    lines = [
        f"A: {diff.a['id']} — {diff.a['title']}",
        f"B: {diff.b['id']} — {diff.b['title']}",
        f"{diff.differences} difference{'' if diff.differences == 1 else 's'} "
        "(≠ marks them; expressions in canonical form)",
    ]
    head = f"  {'':<{label_width}}  {'A: ' + diff.a['id']:<{column}}  B: {diff.b['id']}"
    for section in diff.sections:
        lines += ["", section.title]
        note = section.note or ("" if section.rows else NOTHING)
        lines += [f"  {line}" for line in _wrap(note, width - 2)] if note else []
        if not section.rows:
            continue
        lines.append(head.rstrip())
        for row in section.rows:
            mark = "≠" if not row.same else " "
            label = _wrap(row.label, label_width)
            left = _wrap(row.a if row.a is not None else ABSENT, column)
            right = _wrap(row.b if row.b is not None else ABSENT, column)
            for index in range(max(len(label), len(left), len(right))):
                parts = [
                    label[index] if index < len(label) else "",
                    left[index] if index < len(left) else "",
                    right[index] if index < len(right) else "",
                ]
                prefix = mark if index == 0 else " "
                lines.append(
                    f"{prefix} {parts[0]:<{label_width}}  {parts[1]:<{column}}  {parts[2]}".rstrip()
                )
    return "\n".join(lines) + "\n"


def _markdown_value(value: str | None, code: bool) -> str:
    if value is None or value == ABSENT:
        return ABSENT
    return f"`{cell(value, code=True)}`" if code else cell(value)


def render_diff_markdown(diff: PolicyDiff) -> str:
    lines = [
        f"# {cell(diff.a['id'])} vs {cell(diff.b['id'])}",
        "",
        f"- **A**: {cell(diff.a['title'])} (`{diff.a['digest'][:19]}…`)",
        f"- **B**: {cell(diff.b['title'])} (`{diff.b['digest'][:19]}…`)",
        "",
        f"{diff.differences} difference{'' if diff.differences == 1 else 's'}, marked ≠; "
        "expressions in canonical form.",
    ]
    for section in diff.sections:
        lines += ["", f"## {cell(section.title)}", ""]
        note = section.note or ("" if section.rows else NOTHING.capitalize() + ".")
        if note:
            lines += [cell(note), ""]
        if not section.rows:
            continue
        rows = [
            [
                "≠" if not row.same else "",
                cell(row.label),
                _markdown_value(row.a, section.code),
                _markdown_value(row.b, section.code),
            ]
            for row in section.rows
        ]
        headers = ["", "", f"A: {cell(diff.a['id'])}", f"B: {cell(diff.b['id'])}"]
        lines += table(headers, rows, right=[])
    return "\n".join(lines) + "\n"
