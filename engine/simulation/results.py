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
from engine.simulation.waterfall import Allocation, Deleverage, Exhaustion, Takeover

if TYPE_CHECKING:
    import pandas as pd


def _s(value: Decimal) -> str:
    return format_decimal(value)


@dataclass(frozen=True, slots=True)
class LiquidationEvent:
    time: int
    account_id: str
    liquidation: Liquidation
    allocations: tuple[Allocation, ...]  # who paid its money claims
    takeovers: tuple[Takeover, ...] = ()  # where its bankrupt contracts went

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "account": self.account_id,
            **self.liquidation.as_dict(),
            "takeovers": [t.as_dict() for t in self.takeovers],
            "waterfall": [a.as_dict() for a in self.allocations],
        }


@dataclass(frozen=True, slots=True)
class MarketUnits:
    """How to read one market's quantities: contracts of `contract_size` book units."""

    symbol: str
    instrument: str
    contract_size: Decimal
    quantity_unit: str  # the book's unit: the base (linear) or the quote face value (inverse)

    @property
    def contract(self) -> str:
        """What one contract is, e.g. `0.001 BTC` or `100 USD`."""
        return f"{format_decimal(self.contract_size)} {self.quantity_unit}"


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
    """One policy run through one scenario over one book.

    Money is in `currency` (the settlement currency of every market the book trades under the
    policy); notional figures in `notional_unit` (the policy's `notional` definition's unit).
    """

    policy_id: str
    policy_title: str
    policy_digest: str
    scenario_id: str
    accounts: int
    steps: int
    events: tuple[LiquidationEvent, ...]
    deleverages: tuple[Deleverage, ...]
    clawbacks: tuple[Clawback, ...]
    insurance_fund_series: tuple[tuple[int, Decimal], ...]  # (time, total of the pools)
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
    currency: str = ""
    notional_unit: str = ""
    pool_currencies: Mapping[str, str] = field(default_factory=dict)
    pool_series: Mapping[str, tuple[tuple[int, Decimal], ...]] = field(default_factory=dict)
    exhaustions: tuple[Exhaustion, ...] = ()
    markets: Mapping[str, MarketUnits] = field(default_factory=dict)

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

    def _in_currency(self) -> list[str]:
        """Pools counted in the result's currency (a policy's other markets may settle elsewhere)."""
        return [
            p for p in self.pools if self.pool_currencies.get(p, self.currency) == self.currency
        ]

    @property
    def insurance_fund(self) -> dict[str, Decimal]:
        """Start and end of the pools together; `min` is the lowest any one pool fell to."""
        pools = self._in_currency()
        if not pools:
            return {"start": ZERO, "min": ZERO, "end": ZERO}
        return {
            "start": sum((self.pools[p]["start"] for p in pools), ZERO),
            "min": min(self.pools[p]["min"] for p in pools),
            "end": sum((self.pools[p]["end"] for p in pools), ZERO),
        }

    @property
    def adl(self) -> dict[str, Decimal]:
        """Counterparty positions closed (`count`), their notional (`volume`), their haircut."""
        closed = [d for d in self.deleverages if d.kind != "residual"]
        return {
            "count": Decimal(len(closed)),
            "volume": sum((d.notional for d in closed), ZERO),
            "haircut": sum((d.haircut for d in closed), ZERO),
        }

    @property
    def adl_residual(self) -> dict[str, Decimal]:
        """Money claims ADL counterparties paid from their profit, nothing closed."""
        paid = [d for d in self.deleverages if d.kind == "residual"]
        return {"count": Decimal(len(paid)), "amount": sum((d.haircut for d in paid), ZERO)}

    @property
    def adl_contracts(self) -> dict[str, Decimal]:
        """Counterparty contracts closed by ADL, per symbol (in that market's contracts)."""
        found: dict[str, Decimal] = {}
        for d in self.deleverages:
            if d.kind != "residual":
                found[d.symbol] = found.get(d.symbol, ZERO) + d.quantity
        return dict(sorted(found.items()))

    @property
    def adl_exhausted(self) -> dict[str, Any]:
        """When ADL found no counterparty left: how often, contracts sold, loss passed on."""
        contracts: dict[str, Decimal] = {}
        for e in self.exhaustions:
            if e.contracts:
                contracts[e.symbol] = contracts.get(e.symbol, ZERO) + e.contracts
        return {
            "count": len(self.exhaustions),
            "contracts": dict(sorted(contracts.items())),
            "amount": sum((e.amount for e in self.exhaustions), ZERO),
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

        `counterparties` + `fees` + `insurance_fund_takeover_gains` + `insurance_fund` (surplus)
        is the margin the liquidated units lost (:attr:`liquidated_margin`).
        `insurance_fund_paid` + `insurance_fund_takeover_losses` + `cross_wallet` + `adl` +
        `clawback` + `write_off` + `debt` is who paid the losses past bankruptcy
        (:attr:`losses_past_bankruptcy`).
        """
        flows = self.flows
        gains = flows.get("insurance_fund_takeover_gain", ZERO)
        return {
            "counterparties": flows.get("traders_to_counterparties", ZERO) - gains,
            "fees": self.fees["total"],
            "insurance_fund_takeover_gains": gains,
            "insurance_fund": flows.get("insurance_fund_surplus", ZERO),
            "insurance_fund_paid": flows.get("insurance_fund", ZERO),
            "insurance_fund_takeover_losses": flows.get("insurance_fund_takeover_loss", ZERO),
            "cross_wallet": flows.get("cross_wallet", ZERO),
            "adl": flows.get("adl", ZERO),
            "clawback": flows.get("clawback", ZERO),
            "write_off": flows.get("write_off", ZERO),
            "debt": flows.get("debt", ZERO),
        }

    @property
    def liquidated_margin(self) -> Decimal:
        """Margin the liquidated units lost (the first four rows of where the money went)."""
        return self.flows.get("liquidated_margin", ZERO)

    @property
    def losses_past_bankruptcy(self) -> Decimal:
        """Shortfalls plus takeover losses: what the margin did not cover (the other rows)."""
        flows = self.flows
        return (
            flows.get("shortfall", ZERO)
            + flows.get("insurance_fund_takeover_loss", ZERO)
            + flows.get("takeover_loss_passed_on", ZERO)
        )

    @property
    def takeover_result(self) -> Decimal:
        """What the insurance fund made (positive) or lost on positions it took over."""
        return self.flows.get("insurance_fund_takeover", ZERO)

    def summary(self) -> dict[str, Any]:
        """The stable JSON summary other tools rely on (see docs/compare.md)."""
        exhausted = self.adl_exhausted
        return {
            "policy": self.policy_id,
            "title": self.policy_title,
            "digest": self.policy_digest,
            "scenario": self.scenario_id,
            "currency": self.currency,
            "notional_currency": self.notional_unit,
            "accounts": self.accounts,
            "steps": self.steps,
            "accounts_liquidated": self.accounts_liquidated,
            "liquidated_notional": _s(self.liquidated_notional),
            "fees_total": _s(self.fees["total"]),
            "fees": {k: _s(v) for k, v in self.fees.items()},
            "margin_returned": _s(self.margin_returned),
            "insurance_fund": {k: _s(v) for k, v in self.insurance_fund.items()},
            "adl_count": int(self.adl["count"]),
            "adl_volume": _s(self.adl["volume"]),
            "adl_haircut": _s(self.adl["haircut"]),
            "adl_contracts": {
                symbol: {
                    "contracts": _s(quantity),
                    **self._units(symbol, quantity),
                }
                for symbol, quantity in self.adl_contracts.items()
            },
            "adl_residual": {
                "count": int(self.adl_residual["count"]),
                "amount": _s(self.adl_residual["amount"]),
            },
            "adl_exhausted": {
                "count": exhausted["count"],
                "contracts": {k: _s(v) for k, v in exhausted["contracts"].items()},
                "amount": _s(exhausted["amount"]),
            },
            "clawback_rate": _s(self.clawback_rate),
            "bad_debt": _s(self.bad_debt),
            "write_offs": _s(self.write_offs),
            "debt_outstanding": _s(self.debt_outstanding),
            "fee_revenue": _s(self.fee_revenue),
            "charges": {k: _s(v) for k, v in sorted(self.charges.items())},
            "where_the_money_went": {k: _s(v) for k, v in self.where_the_money_went().items()},
            "liquidated_margin": _s(self.liquidated_margin),
            "losses_past_bankruptcy": _s(self.losses_past_bankruptcy),
            "insurance_fund_takeover_result": _s(self.takeover_result),
            "insurance_funds": {
                pool: {
                    "currency": self.pool_currencies.get(pool, self.currency),
                    **{k: _s(v) for k, v in values.items()},
                }
                for pool, values in sorted(self.pools.items())
            },
            "conservation_error": _s(self.conservation_error),
        }

    def _units(self, symbol: str, contracts: Decimal) -> dict[str, str]:
        units = self.markets.get(symbol)
        if units is None:
            return {}
        return {
            "instrument": units.instrument,
            "contract": units.contract,
            "quantity": _s(contracts * units.contract_size),
            "unit": units.quantity_unit,
        }

    def as_dict(self, *, events: bool = True) -> dict[str, Any]:
        data = self.summary()
        data["insurance_fund_series"] = [[t, _s(v)] for t, v in self.insurance_fund_series]
        data["insurance_fund_series_by_pool"] = {
            pool: [[t, _s(v)] for t, v in series]
            for pool, series in sorted(self.pool_series.items())
        }
        data["clawbacks"] = [c.as_dict() for c in self.clawbacks]
        if events:
            data["events"] = [e.as_dict() for e in self.events]
            data["deleverages"] = [d.as_dict() for d in self.deleverages]
            data["adl_exhaustions"] = [e.as_dict() for e in self.exhaustions]
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
