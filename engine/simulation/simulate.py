"""Run a book of accounts through a scenario under one policy, with exact conservation.

Each step updates the market, accrues the policy's periodic charges, and liquidates the accounts
whose trigger holds; every liquidation's shortfall goes through the loss waterfall.  Accounts are
not re-evaluated at every step: the scenario's path is known, so for each account the first step
at which its trigger can hold (prices at their most adverse so far) is found by binary search
over time, once, and again only when the account changes; accounts are evaluated exactly only
then.  After every step traders' balances plus every ledger balance must equal the start, to the
last digit, or the simulation stops with an error rather than report.
"""

from __future__ import annotations

import decimal
import heapq
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from engine.errors import ConservationError, EngineError, InputError
from engine.mechanics.liquidate import liquidate
from engine.mechanics.state import AccountState, Evaluator
from engine.numbers import DECIMAL_CONTEXT, ZERO, quantize_to_step
from engine.policy.model import Policy
from engine.simulation.book_accounts import (
    book_accounts,
    book_currency,
    quantity_unit,
    symbols_by_instrument,
)
from engine.simulation.ledger import Ledger
from engine.simulation.model import Book, Scenario, book_instruments
from engine.simulation.pools import pool_currency, pool_names, pool_of, pool_start
from engine.simulation.ranges import RangeExtremes
from engine.simulation.results import (
    Clawback,
    Fate,
    LiquidationEvent,
    MarketUnits,
    SimulationResult,
)
from engine.simulation.waterfall import Waterfall
from engine.source import Diagnostic

Progress = Callable[[int, int], None]


class _Simulation:
    def __init__(self, policy: Policy, book: Book, scenario: Scenario) -> None:
        self.policy = policy
        self.scenario = scenario
        self.evaluator = Evaluator(policy)
        self.instruments = symbols_by_instrument(policy)
        self.market: dict[str, dict[str, Decimal]] = {symbol: {} for symbol in policy.markets}
        self.previous_mark: dict[str, Decimal] = {}
        accounts = book_accounts(policy, book, self.instruments)
        self.currency = book_currency(policy, accounts)
        self.ledger = Ledger(
            {
                pool: pool_start(policy, scenario, pool, self.currency)
                for pool in pool_names(policy, set(scenario.paths) | book_instruments(book))
            }
        )
        self.states: dict[str, AccountState] = {}
        for account in accounts:
            if account.id in self.states:
                raise InputError(
                    diagnostics=[
                        Diagnostic(
                            "E621",
                            f"account id '{account.id}' appears twice",
                            path=book.path or "<book>",
                        )
                    ]
                )
            self.states[account.id] = AccountState(account, self.market)
        self.balances = {aid: s.balance() for aid, s in self.states.items()}
        self.traders_total = sum(self.balances.values(), ZERO)
        self.start_total = self.traders_total + self.ledger.total()
        self.dirty: set[str] = set(self.states)
        self.versions: dict[str, int] = {}
        self.queue: list[
            tuple[int, str, int]
        ] = []  # (first step the trigger can hold, account, version)
        self.debtors: set[str] = set()
        self.always: set[str] = set()
        self.events: list[LiquidationEvent] = []
        self.clawbacks: list[Clawback] = []
        self.charges: dict[str, Decimal] = {}
        self.fund_series: list[tuple[int, Decimal]] = []
        self.pool_series: dict[str, list[tuple[int, Decimal]]] = {
            pool: [] for pool in self.ledger.insurance_funds
        }
        self.fund_start = sum(self.ledger.insurance_funds.values(), ZERO)
        self.pool_start = dict(self.ledger.insurance_funds)
        self.pool_min: dict[str, Decimal] = dict(self.ledger.insurance_funds)
        self.waterfall = Waterfall(
            self.evaluator, self.ledger, self.states, self._pool, self.dirty.add
        )
        self.conservation_error = ZERO
        self.clawback_paid: dict[str, Decimal] = {}

    def _pool(self, symbol: str) -> str:
        return pool_of(self.policy, symbol)

    # -- market ------------------------------------------------------------------------------
    def set_market(self, time: int, points: dict[str, Any]) -> None:
        for instrument, point in points.items():
            for symbol in self.instruments.get(instrument, ()):
                data = point.market_data(self.previous_mark.get(symbol))
                target = self.market[symbol]
                target.clear()
                target.update(data)
                target["funding_rate"] = ZERO
                self.previous_mark[symbol] = point.mark_price
        self.evaluator.market_changed()

    # -- screening ---------------------------------------------------------------------------
    def _worst(self, symbol: str, side: str, start: int, end: int) -> dict[str, Decimal]:
        """The most adverse value of each price input between steps `start` and `end`."""
        ranges = self.ranges[symbol]
        if side == "long":
            return {name: extremes.min(start, end) for name, extremes in ranges.items()}
        return {name: extremes.max(start, end) for name, extremes in ranges.items()}

    def schedule(self, account_id: str, start: int) -> None:
        """Find the first step from `start` at which the account's trigger can hold, and queue it.

        The path ahead is known, so instead of solving a liquidation price the simulator binary
        searches time: with prices at their most adverse since `start` (monotone in time), the
        trigger flips at most once.  That step is a lower bound for the real first trigger; the
        account is evaluated exactly there and rescheduled if it survives.
        """
        state = self.states[account_id]
        version = self.versions.get(account_id, 0) + 1
        self.versions[account_id] = version
        cross_symbols = {p["symbol"] for p in state.positions if p["margin_mode"] == "cross"}
        if len(cross_symbols) > 1:
            self.always.add(account_id)
            return
        self.always.discard(account_id)
        last = self.last_step
        if start > last:
            return
        evaluator = self.evaluator
        first: int | None = None
        for position in state.positions:
            symbol = position["symbol"]
            if symbol not in self.ranges:
                continue
            side = position["side"]

            def holds(
                end: int,
                symbol: str = symbol,
                side: str = side,
                position: dict[str, Any] = position,
            ) -> bool:
                context = evaluator.context(state, {symbol: self._worst(symbol, side, start, end)})
                try:
                    return bool(
                        evaluator.expression("liquidation.trigger", context.frame_for(position))
                    )
                except EngineError:
                    return True  # let the exact evaluation report it

            if not holds(last):
                continue
            low, high = start, last
            while low < high:
                middle = (low + high) // 2
                if holds(middle):
                    high = middle
                else:
                    low = middle + 1
            first = low if first is None else min(first, low)
        if first is not None:
            heapq.heappush(self.queue, (first, account_id, version))

    def candidates(self, step: int) -> set[str]:
        found = set(self.always)
        queue = self.queue
        while queue and queue[0][0] <= step:
            _, account_id, version = heapq.heappop(queue)
            if version == self.versions.get(account_id):
                found.add(account_id)
        return found

    # -- liquidation -------------------------------------------------------------------------
    def check_account(self, time: int, account_id: str) -> None:
        state = self.states[account_id]
        evaluator = self.evaluator
        units: list[list[dict[str, Any]]] = []
        cross_triggered = False
        for position in list(state.positions):
            frame = evaluator.context(state).frame_for(position)
            try:
                triggered = bool(evaluator.expression("liquidation.trigger", frame))
            except EngineError:
                continue
            if not triggered:
                continue
            if position["margin_mode"] == "isolated":
                units.append([position])
            else:
                cross_triggered = True
        if cross_triggered:
            units.append([p for p in state.positions if p["margin_mode"] == "cross"])
        if not units:
            return
        inputs = {"time": time, "account": account_id}
        for candidates in units:
            unit = [p for p in candidates if any(p is q for q in state.positions)]
            if not unit:
                continue
            result = liquidate(evaluator, state, unit, inputs, report_bankruptcy=False, sales=True)
            settled = self.waterfall.settle(time, state, result)
            self.events.append(
                LiquidationEvent(
                    time, account_id, settled.liquidation, settled.allocations, settled.takeovers
                )
            )
            if state.debt > 0:
                self.debtors.add(account_id)
        self.dirty.add(account_id)

    # -- charges -----------------------------------------------------------------------------
    def apply_charges(self, time: int, funding: dict[str, Decimal]) -> None:
        for charge in self.policy.waterfall.charges:
            if charge.at == "funding":
                symbols = {
                    s: rate for i, rate in funding.items() for s in self.instruments.get(i, ())
                }
                if not symbols:
                    continue
            elif not (time > 0 and charge.every_seconds and time % charge.every_seconds == 0):
                continue
            else:
                symbols = {}
            for symbol, rate in symbols.items():
                self.market[symbol]["funding_rate"] = rate
            self.evaluator.market_changed()
            for account_id in sorted(self.states):
                state = self.states[account_id]
                targets: list[dict[str, Any] | None]
                if charge.scope == "account":
                    targets = [None] if (state.positions or state.debt) else []
                else:
                    targets = [p for p in state.positions if not symbols or p["symbol"] in symbols]
                for position in targets:
                    frame = (
                        self.evaluator.context(state).frame_for(position)
                        if position is not None
                        else self.evaluator.context(state).frame_for(None)
                    )
                    amount: Decimal = self.evaluator.expression(charge.amount, frame)
                    if amount == 0:
                        continue
                    if position is not None and position["margin_mode"] == "isolated":
                        position["isolated_margin"] -= amount
                    else:
                        state.wallet_balance -= amount
                    if charge.accrue_to == "debt":  # a liability the charge grows
                        state.debt += amount
                    elif charge.accrue_to is not None:
                        state.fields[charge.accrue_to] = (
                            state.fields.get(charge.accrue_to, ZERO) + amount
                        )
                    if charge.to == "exchange":
                        self.ledger.fee_revenue += amount
                    elif charge.to == "insurance_fund":
                        pool = (
                            self._pool(position["symbol"])
                            if position is not None
                            else next(iter(self.ledger.insurance_funds))
                        )
                        self.ledger.insurance_funds[pool] += amount
                    else:
                        self.ledger.market += amount
                    self.charges[charge.name] = self.charges.get(charge.name, ZERO) + amount
                    self.dirty.add(account_id)

    # -- clawback ----------------------------------------------------------------------------
    def equity(self, state: AccountState) -> Decimal:
        total = state.balance()
        for position in state.positions:
            try:
                total += self.evaluator.definition(
                    "unrealized_pnl", self.evaluator.context(state).frame_for(position)
                )
            except EngineError:
                continue
        return total

    def settle_clawback(self, time: int, start_equity: dict[str, Decimal]) -> None:
        uncovered = -self.ledger.clawback_receivable
        if uncovered <= 0:
            return
        base = self.policy.waterfall.clawback_base
        profits: dict[str, Decimal] = {}
        for account_id in sorted(self.states):
            state = self.states[account_id]
            now = self.equity(state) if base == "equity" else state.balance()
            start = (
                start_equity[account_id] if base == "equity" else self.start_balances[account_id]
            )
            if now - start > 0:
                profits[account_id] = now - start
        total = sum(profits.values(), ZERO)
        cap = self.policy.waterfall.clawback_cap
        target = min(uncovered, cap * total) if total > 0 else ZERO
        rate = target / total if total > 0 else ZERO
        paid = ZERO
        payers = sorted(profits)
        step = self.policy.waterfall.clawback_step
        for index, account_id in enumerate(payers):
            if index == len(payers) - 1:
                share = target - paid
            else:
                share = rate * profits[account_id]
                if step is not None:
                    share = quantize_to_step(share, step, "down")
            self.clawback_paid[account_id] = share
            self.states[account_id].wallet_balance -= share
            paid += share
            self.dirty.add(account_id)
        self.ledger.clawback_receivable += paid
        rest = uncovered - paid
        if rest > 0:  # the cap left part of the loss unpaid: the exchange writes it off
            self.ledger.clawback_receivable += rest
            self.ledger.exchange -= rest
            self.ledger.add_flow("write_off", rest)
            self.ledger.add_flow("clawback", -rest)
        self.ledger.add_flow("clawback_collected", paid)
        self.clawbacks.append(Clawback(time, uncovered, total, rate, paid, rest, len(payers)))

    # -- bookkeeping -------------------------------------------------------------------------
    def refresh_balances(self, account_ids: set[str]) -> None:
        for account_id in account_ids:
            new = self.states[account_id].balance()
            self.traders_total += new - self.balances[account_id]
            self.balances[account_id] = new

    def check_conservation(self, time: int) -> None:
        difference = self.traders_total + self.ledger.total() - self.start_total
        if difference != 0:
            raise ConservationError(
                f"money is not conserved at t={time}: traders + ledger differ from the start by "
                f"{difference}; refusing to report"
            )

    def path_ranges(self, times: list[int]) -> None:
        """Range-extreme tables of every price input along each symbol's path."""
        inputs = self.policy.procedure.price_inputs
        self.ranges: dict[str, dict[str, RangeExtremes]] = {}
        for instrument, path in self.scenario.paths.items():
            series: dict[str, list[Decimal]] = {name: [] for name in inputs}
            index = 0
            for time in times:
                while index + 1 < len(path.points) and path.points[index + 1].time <= time:
                    index += 1
                point = path.points[index]
                for name in inputs:
                    series[name].append(getattr(point, name))
            tables = {name: RangeExtremes(values) for name, values in series.items()}
            for symbol in self.instruments.get(instrument, ()):
                self.ranges[symbol] = tables
        self.last_step = len(times) - 1

    def run(self, progress: Progress | None) -> SimulationResult:
        scenario = self.scenario
        times = scenario.times()
        self.path_ranges(times)
        paths = scenario.paths
        cursor = dict.fromkeys(paths, 0)
        start_equity: dict[str, Decimal] = {}
        self.start_balances = dict(self.balances)
        settlement = scenario.settlement_seconds
        for step, time in enumerate(times):
            self.waterfall.new_step(time)
            points = {}
            funding: dict[str, Decimal] = {}
            for instrument, path in paths.items():
                index = cursor[instrument]
                while index + 1 < len(path.points) and path.points[index + 1].time <= time:
                    index += 1
                cursor[instrument] = index
                points[instrument] = path.points[index]
                for event in path.funding:
                    if event.time == time:
                        funding[instrument] = event.rate
            self.set_market(time, points)
            if step == 0:
                start_equity = {aid: self.equity(s) for aid, s in self.states.items()}
            self.apply_charges(time, funding)
            touched = set(self.dirty)
            self.refresh_balances(touched)
            for account_id in sorted(self.dirty):
                self.schedule(account_id, step)
            self.dirty.clear()
            for account_id in sorted(self.candidates(step)):
                before = self.versions.get(account_id)
                self.check_account(time, account_id)
                if account_id not in self.dirty and self.versions.get(account_id) == before:
                    self.schedule(account_id, step + 1)  # survived: look further ahead
            for account_id in self.debtors:
                self.states[account_id].debt_age += Decimal(scenario.step_seconds)
            if settlement and time > 0 and time % settlement == 0:
                self.settle_clawback(time, start_equity)
            self.refresh_balances(set(self.dirty))
            self.check_conservation(time)
            self.fund_series.append((time, sum(self.ledger.insurance_funds.values(), ZERO)))
            for pool, balance in self.ledger.insurance_funds.items():
                self.pool_series[pool].append((time, balance))
                self.pool_min[pool] = min(self.pool_min[pool], balance)
            if progress is not None:
                progress(step + 1, len(times))
        end = times[-1] if times else 0
        self.settle_clawback(end, start_equity)
        self.refresh_balances(set(self.states))
        self.check_conservation(end)
        return self.result(start_equity, len(times))

    def result(self, start_equity: dict[str, Decimal], steps: int) -> SimulationResult:
        fates: dict[str, Fate] = {}
        by_account: dict[str, list[LiquidationEvent]] = {}
        for event in self.events:
            by_account.setdefault(event.account_id, []).append(event)
        haircuts: dict[str, Decimal] = {}
        for deleverage in self.waterfall.deleverages:
            haircuts[deleverage.account_id] = (
                haircuts.get(deleverage.account_id, ZERO) + deleverage.haircut
            )
        clawback_paid = self.clawback_paid
        for account_id in sorted(self.states):
            state = self.states[account_id]
            events = by_account.get(account_id, [])
            kind = "none"
            if events:
                kind = (
                    "full"
                    if any(e.liquidation.statement.fully_liquidated for e in events)
                    else "partial"
                )
            notional = sum(
                (o.notional for e in events for o in e.liquidation.statement.orders), ZERO
            )
            fates[account_id] = Fate(
                account_id,
                kind,
                sum(len(e.liquidation.statement.orders) for e in events),
                notional,
                sum((e.liquidation.statement.fees_collected for e in events), ZERO),
                start_equity.get(account_id, ZERO),
                self.equity(state),
                state.debt,
                haircuts.get(account_id, ZERO),
                clawback_paid.get(account_id, ZERO),
                events[0].time if events else None,
            )
        return SimulationResult(
            policy_id=self.policy.id,
            policy_title=self.policy.title,
            policy_digest=self.policy.digest,
            scenario_id=self.scenario.id,
            accounts=len(self.states),
            steps=steps,
            events=tuple(self.events),
            deleverages=tuple(self.waterfall.deleverages),
            clawbacks=tuple(self.clawbacks),
            insurance_fund_series=tuple(self.fund_series),
            insurance_fund_start=self.fund_start,
            flows=dict(self.ledger.flows),
            fates=fates,
            conservation_error=self.traders_total + self.ledger.total() - self.start_total,
            fee_revenue=self.ledger.fee_revenue,
            write_offs=-self.ledger.exchange,
            debt_outstanding=sum((s.debt for s in self.states.values()), ZERO),
            charges=dict(self.charges),
            pools={
                pool: {"start": self.pool_start[pool], "min": self.pool_min[pool], "end": balance}
                for pool, balance in self.ledger.insurance_funds.items()
            },
            currency=self.currency,
            notional_unit=self.policy.definitions["notional"].unit or self.currency,
            pool_currencies={
                pool: pool_currency(self.policy, pool, self.currency)
                for pool in self.ledger.insurance_funds
            },
            pool_series={pool: tuple(series) for pool, series in self.pool_series.items()},
            exhaustions=tuple(self.waterfall.exhaustions),
            markets={
                symbol: MarketUnits(
                    symbol, market.instrument, market.contract_size, quantity_unit(market)
                )
                for symbol, market in self.policy.markets.items()
            },
        )


def simulate(
    policy: Policy, book: Book, scenario: Scenario, *, progress: Progress | None = None
) -> SimulationResult:
    """Run `book` through `scenario` under `policy`; raises ConservationError if money leaks."""
    with decimal.localcontext(DECIMAL_CONTEXT):
        return _Simulation(policy, book, scenario).run(progress)
