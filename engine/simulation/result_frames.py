"""Simulation results and comparisons as pandas DataFrames (`to_pandas()`, engine/frames.py).

A simulation's tables, one row per:

- ``fates`` (the default): account, indexed by account id: how it was liquidated, its loss, debt,
  ADL haircut and clawback;
- ``events``: liquidation (one account's unit at one time), with its statement's totals;
- ``orders``: liquidation order, with its mark, fill and settlement prices;
- ``allocations``: stage of the loss waterfall a liquidation's shortfall went through;
- ``deleverages``: counterparty position deleveraged by ADL;
- ``clawbacks``: clawback round;
- ``insurance_fund``: step, the insurance fund's total balance;
- ``summary``: the result, its headline figures as columns (the JSON summary's numbers, keys
  dotted: ``fees.base``, ``where_the_money_went.adl``), indexed by policy.

A comparison has the same tables with the policy first (``policy``, a category in the order
compared; ``fates`` indexed by policy and account), plus ``differences`` (the accounts whose fate
differs most, their loss under each policy) and ``leverage_curve`` (liquidation price by
leverage, a column per policy).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from engine.frames import Field, check_table, exact_number, figure_fields, flatten, frame

if TYPE_CHECKING:
    import pandas as pd

    from engine.simulation.compare import Comparison
    from engine.simulation.results import SimulationResult

RESULT_TABLES = (
    "fates",
    "events",
    "orders",
    "allocations",
    "deleverages",
    "clawbacks",
    "insurance_fund",
    "summary",
)
COMPARISON_TABLES = (*RESULT_TABLES, "differences", "leverage_curve")
IDENTITY = ("policy", "title", "digest", "scenario")  # summary keys that are not figures
SIDES = ("long", "short")

FIELDS: dict[str, tuple[Field, ...]] = {
    "fates": (
        Field("account", "text"),
        Field("liquidation", "category", ("none", "partial", "full")),
        Field("orders", "int"),
        Field("liquidated_notional"),
        Field("fees"),
        Field("start_equity"),
        Field("end_equity"),
        Field("loss"),
        Field("debt"),
        Field("adl_haircut"),
        Field("clawback_paid"),
        Field("first_liquidation_time", "optional_int"),
    ),
    "events": (
        Field("time", "int"),
        Field("account", "text"),
        Field("event_id", "text"),
        Field("unit", "text"),
        Field("liquidation", "category", ("partial", "full")),
        Field("orders", "int"),
        Field("starting_margin"),
        Field("closed_quantity"),
        Field("fees"),
        Field("surplus_to_insurance_fund"),
        Field("shortfall"),
        Field("final_balance"),
        Field("takeover_result"),
    ),
    "orders": (
        Field("time", "int"),
        Field("account", "text"),
        Field("event_id", "text"),
        Field("number", "int"),
        Field("step", "text"),
        Field("kind", "text"),
        Field("symbol", "text"),
        Field("side", "category", SIDES),
        Field("quantity"),
        Field("partial", "bool"),
        Field("mark_price"),
        Field("fill_price"),
        Field("settlement_price"),
        Field("bankruptcy_price"),
        Field("fees"),
        Field("slippage"),
        Field("shortfall"),
    ),
    "allocations": (
        Field("time", "int"),
        Field("account", "text"),
        Field("event_id", "text"),
        Field("stage", "text"),
        Field("amount"),
        Field("detail", "text"),
    ),
    "deleverages": (
        Field("time", "int"),
        Field("account", "text"),
        Field("symbol", "text"),
        Field("side", "category", SIDES),
        Field("quantity"),
        Field("price"),
        Field("notional"),
        Field("haircut"),
    ),
    "clawbacks": (
        Field("time", "int"),
        Field("uncovered"),
        Field("total_profit"),
        Field("rate"),
        Field("collected"),
        Field("written_off"),
        Field("payers", "int"),
    ),
    "insurance_fund": (Field("time", "int"), Field("balance")),
}


def _records(result: SimulationResult, table: str) -> Iterator[dict[str, Any]]:
    if table == "fates":
        for account_id, fate in sorted(result.fates.items()):
            yield {
                "account": account_id,
                "liquidation": fate.liquidation,
                "orders": fate.orders,
                "liquidated_notional": fate.liquidated_notional,
                "fees": fate.fees,
                "start_equity": fate.start_equity,
                "end_equity": fate.end_equity,
                "loss": fate.loss,
                "debt": fate.debt,
                "adl_haircut": fate.adl_haircut,
                "clawback_paid": fate.clawback_paid,
                "first_liquidation_time": fate.first_liquidation_time,
            }
    elif table in ("events", "orders", "allocations"):
        for event in result.events:
            statement = event.liquidation.statement
            where = {
                "time": event.time,
                "account": event.account_id,
                "event_id": statement.event_id,
            }
            if table == "events":
                yield where | {
                    "unit": statement.unit,
                    "liquidation": "full" if statement.fully_liquidated else "partial",
                    "orders": len(statement.orders),
                    "starting_margin": statement.starting_margin,
                    "closed_quantity": statement.closed_quantity,
                    "fees": statement.fees_collected,
                    "surplus_to_insurance_fund": statement.surplus_to_insurance_fund,
                    "shortfall": statement.shortfall,
                    "final_balance": statement.final_balance,
                    "takeover_result": event.liquidation.takeover_result,
                }
            elif table == "orders":
                for order in statement.orders:
                    yield where | {
                        "number": order.number,
                        "step": order.step,
                        "kind": order.kind,
                        "symbol": order.symbol,
                        "side": order.side,
                        "quantity": order.quantity,
                        "partial": order.is_partial,
                        "mark_price": order.mark_price,
                        "fill_price": order.fill_price,
                        "settlement_price": order.settlement_price,
                        "bankruptcy_price": order.bankruptcy_price,
                        "fees": order.fees_collected,
                        "slippage": order.slippage,
                        "shortfall": order.shortfall,
                    }
            else:
                for allocation in event.allocations:
                    yield where | {
                        "stage": allocation.stage,
                        "amount": allocation.amount,
                        "detail": allocation.detail,
                    }
    elif table == "deleverages":
        for d in result.deleverages:
            yield {
                "time": d.time,
                "account": d.account_id,
                "symbol": d.symbol,
                "side": d.side,
                "quantity": d.quantity,
                "price": d.price,
                "notional": d.notional,
                "haircut": d.haircut,
            }
    elif table == "clawbacks":
        for c in result.clawbacks:
            yield {
                "time": c.time,
                "uncovered": c.uncovered,
                "total_profit": c.total_profit,
                "rate": c.rate,
                "collected": c.collected,
                "written_off": c.written_off,
                "payers": c.payers,
            }
    elif table == "insurance_fund":
        for time, balance in result.insurance_fund_series:
            yield {"time": time, "balance": balance}
    else:  # summary
        figures = {
            key: exact_number(value)
            for key, value in flatten(result.summary()).items()
            if key not in IDENTITY
        }
        yield {"policy": result.policy_id} | figures


def _summary(results: Sequence[SimulationResult], decimals: str) -> pd.DataFrame:
    records = [record for r in results for record in _records(r, "summary")]
    fields, filled = figure_fields(records, [Field("policy", "text")])
    return frame(filled, fields, decimals=decimals, index="policy")


def result_frame(result: SimulationResult, table: str, decimals: str) -> pd.DataFrame:
    check_table(table, RESULT_TABLES, "SimulationResult")
    if table == "summary":
        return _summary([result], decimals)
    return frame(
        _records(result, table),
        FIELDS[table],
        decimals=decimals,
        index="account" if table == "fates" else None,
    )


def comparison_frame(comparison: Comparison, table: str, decimals: str) -> pd.DataFrame:
    check_table(table, COMPARISON_TABLES, "Comparison")
    ids = tuple(comparison.policy_ids)
    policy = Field("policy", "category", ids)
    if table == "summary":
        return _summary(comparison.results, decimals)
    if table == "differences":
        losses = [Field(f"loss.{pid}") for pid in ids]
        records = [
            {"account": d.account_id, "loss_spread": d.spread}
            | {f"loss.{pid}": fate.loss for pid, fate in zip(ids, d.fates, strict=True)}
            | {"reasons": "; ".join(d.reasons)}
            for d in comparison.differences
        ]
        fields = [Field("account", "text"), Field("loss_spread"), *losses, Field("reasons", "text")]
        return frame(records, fields, decimals=decimals, index="account")
    if table == "leverage_curve":
        curve = comparison.curve
        points = curve.points if curve is not None else {}
        leverages = sorted({lev for row in points.values() for lev, _ in row})
        records = [
            {"leverage": lev} | {pid: dict(points.get(pid, ())).get(lev) for pid in ids}
            for lev in leverages
        ]
        fields = [Field("leverage"), *(Field(pid) for pid in ids)]
        return frame(records, fields, decimals=decimals, index="leverage")
    records = [
        {"policy": r.policy_id} | record
        for r in comparison.results
        for record in _records(r, table)
    ]
    return frame(
        records,
        [policy, *FIELDS[table]],
        decimals=decimals,
        index=["policy", "account"] if table == "fates" else None,
    )
