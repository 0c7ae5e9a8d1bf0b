"""What a simulation reports: events, insurance-fund path, where the money went, account fates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.mechanics.liquidate import Liquidation
from engine.numbers import ZERO, format_decimal
from engine.simulation.result_display import result_html
from engine.simulation.result_frames import result_frame
from engine.simulation.waterfall import Allocation, Deleverage

if TYPE_CHECKING:
    import pandas as pd


def _s(value: Decimal) -> str:
    return format_decimal(value)


@dataclass(frozen=True, slots=True)
class LiquidationEvent:
    time: int
    account_id: str
    liquidation: Liquidation
    allocations: tuple[Allocation, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "account": self.account_id,
            **self.liquidation.as_dict(),
            "waterfall": [a.as_dict() for a in self.allocations],
        }


@dataclass(frozen=True, slots=True)
class Clawback:
    time: int
    uncovered: Decimal
    total_profit: Decimal
    rate: Decimal
    collected: Decimal
    written_off: Decimal
    payers: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "uncovered": _s(self.uncovered),
            "total_profit": _s(self.total_profit),
            "rate": _s(self.rate),
            "collected": _s(self.collected),
            "written_off": _s(self.written_off),
            "payers": self.payers,
        }


@dataclass(frozen=True, slots=True)
class Fate:
    """What happened to one account: enough to explain why two policies treated it differently."""

    account_id: str
    liquidation: str  # none | partial | full
    orders: int
    liquidated_notional: Decimal
    fees: Decimal
    start_equity: Decimal
    end_equity: Decimal
    debt: Decimal
    adl_haircut: Decimal
    clawback_paid: Decimal
    first_liquidation_time: int | None

    @property
    def loss(self) -> Decimal:
        return self.start_equity - self.end_equity

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account_id,
            "liquidation": self.liquidation,
            "orders": self.orders,
            "liquidated_notional": _s(self.liquidated_notional),
            "fees": _s(self.fees),
            "start_equity": _s(self.start_equity),
            "end_equity": _s(self.end_equity),
            "loss": _s(self.loss),
            "debt": _s(self.debt),
            "adl_haircut": _s(self.adl_haircut),
            "clawback_paid": _s(self.clawback_paid),
            "first_liquidation_time": self.first_liquidation_time,
        }


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """One policy run through one scenario over one book."""

    policy_id: str
    policy_title: str
    policy_digest: str
    scenario_id: str
    accounts: int
    steps: int
    events: tuple[LiquidationEvent, ...]
    deleverages: tuple[Deleverage, ...]
    clawbacks: tuple[Clawback, ...]
    insurance_fund_series: tuple[tuple[int, Decimal], ...]  # (time, total across pools)
    insurance_fund_start: Decimal
    flows: Mapping[str, Decimal]
    fates: Mapping[str, Fate]
    conservation_error: Decimal
    fee_revenue: Decimal
    write_offs: Decimal
    debt_outstanding: Decimal
    charges: Mapping[str, Decimal] = field(default_factory=dict)
    pools: Mapping[str, Mapping[str, Decimal]] = field(
        default_factory=dict
    )  # start/min/end per pool

    # -- headline figures ----------------------------------------------------------------------
    @property
    def accounts_liquidated(self) -> dict[str, int]:
        partial = sum(1 for f in self.fates.values() if f.liquidation == "partial")
        full = sum(1 for f in self.fates.values() if f.liquidation == "full")
        return {"total": partial + full, "partial": partial, "full": full}

    @property
    def liquidated_notional(self) -> Decimal:
        return sum((f.liquidated_notional for f in self.fates.values()), ZERO)

    @property
    def fees(self) -> dict[str, Decimal]:
        base = self.flows.get("fees_base", ZERO)
        surcharge = self.flows.get("fees_surcharge", ZERO)
        return {"total": base + surcharge, "base": base, "surcharge": surcharge}

    @property
    def insurance_fund(self) -> dict[str, Decimal]:
        values = [value for _, value in self.insurance_fund_series] or [self.insurance_fund_start]
        return {"start": self.insurance_fund_start, "min": min(values), "end": values[-1]}

    @property
    def adl(self) -> dict[str, Decimal]:
        return {
            "count": Decimal(len(self.deleverages)),
            "volume": sum((d.notional for d in self.deleverages), ZERO),
            "haircut": sum((d.haircut for d in self.deleverages), ZERO),
        }

    @property
    def clawback_rate(self) -> Decimal:
        return max((c.rate for c in self.clawbacks), default=ZERO)

    @property
    def bad_debt(self) -> Decimal:
        """Losses nobody in the market paid: written off by the exchange, or still owed by traders."""
        return self.write_offs + self.debt_outstanding

    @property
    def margin_returned(self) -> Decimal:
        return sum(
            (
                e.liquidation.statement.final_balance
                for e in self.events
                if e.liquidation.statement.unit != "cross"
            ),
            ZERO,
        )

    def where_the_money_went(self) -> dict[str, Decimal]:
        """Where liquidations' money went, in two parts that each add up.

        `counterparties` + `fees` + `insurance_fund` is the margin the liquidated units lost
        (the market's share of their losses, fees, surplus kept by the fund).
        `insurance_fund_paid` (payouts and takeover losses) + `adl` + `clawback` + `write_off` +
        `debt` is who paid the losses past bankruptcy that the margin could not cover.
        """
        flows = self.flows
        return {
            "counterparties": flows.get("traders_to_counterparties", ZERO),
            "fees": self.fees["total"],
            "insurance_fund": flows.get("insurance_fund_surplus", ZERO),
            "insurance_fund_paid": flows.get("insurance_fund", ZERO)
            + flows.get("insurance_fund_takeover_loss", ZERO),
            "adl": flows.get("adl", ZERO),
            "clawback": flows.get("clawback", ZERO),
            "write_off": flows.get("write_off", ZERO),
            "debt": flows.get("debt", ZERO),
        }

    @property
    def liquidated_margin(self) -> Decimal:
        """Margin the liquidated units lost (equals counterparties + fees + insurance_fund)."""
        return self.flows.get("liquidated_margin", ZERO)

    @property
    def takeover_result(self) -> Decimal:
        """What the insurance fund made (positive) or lost on positions it took over."""
        return self.flows.get("insurance_fund_takeover", ZERO)

    def summary(self) -> dict[str, Any]:
        """The stable JSON summary other tools rely on (see docs/simulation.md)."""
        return {
            "policy": self.policy_id,
            "title": self.policy_title,
            "digest": self.policy_digest,
            "scenario": self.scenario_id,
            "accounts": self.accounts,
            "steps": self.steps,
            "accounts_liquidated": self.accounts_liquidated,
            "liquidated_notional": _s(self.liquidated_notional),
            "fees_total": _s(self.fees["total"]),
            "fees": {k: _s(v) for k, v in self.fees.items()},
            "margin_returned": _s(self.margin_returned),
            "insurance_fund": {k: _s(v) for k, v in self.insurance_fund.items()},
            "adl_count": len(self.deleverages),
            "adl_volume": _s(self.adl["volume"]),
            "adl_haircut": _s(self.adl["haircut"]),
            "clawback_rate": _s(self.clawback_rate),
            "bad_debt": _s(self.bad_debt),
            "write_offs": _s(self.write_offs),
            "debt_outstanding": _s(self.debt_outstanding),
            "fee_revenue": _s(self.fee_revenue),
            "charges": {k: _s(v) for k, v in sorted(self.charges.items())},
            "where_the_money_went": {k: _s(v) for k, v in self.where_the_money_went().items()},
            "liquidated_margin": _s(self.liquidated_margin),
            "insurance_fund_takeover_result": _s(self.takeover_result),
            "insurance_funds": {
                pool: {k: _s(v) for k, v in values.items()}
                for pool, values in sorted(self.pools.items())
            },
            "conservation_error": _s(self.conservation_error),
        }

    def as_dict(self, *, events: bool = True) -> dict[str, Any]:
        data = self.summary()
        data["insurance_fund_series"] = [[t, _s(v)] for t, v in self.insurance_fund_series]
        data["clawbacks"] = [c.as_dict() for c in self.clawbacks]
        if events:
            data["events"] = [e.as_dict() for e in self.events]
            data["deleverages"] = [d.as_dict() for d in self.deleverages]
            data["fates"] = [f.as_dict() for _, f in sorted(self.fates.items())]
        return data

    def to_pandas(self, table: str = "fates", *, decimals: str = "exact") -> pd.DataFrame:
        """One of the result's tables as a pandas DataFrame (needs ``liqpolicy[analysis]``).

        `table`: ``fates`` (default, one row per account), ``events``, ``orders``,
        ``allocations``, ``deleverages``, ``clawbacks``, ``insurance_fund`` or ``summary``
        (engine/simulation/result_frames.py).  Money stays exact (Decimal objects) unless
        `decimals` is ``"float"``.
        """
        return result_frame(self, table, decimals)

    def _repr_html_(self) -> str:
        """Jupyter's display: the headline figures as a compact table."""
        return result_html(self)
