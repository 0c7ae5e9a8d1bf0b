"""Auto-deleveraging: ranked profitable counterparties, closed at a price or paying a residual.

Candidates are the positions on the other side of a bankrupt order's symbol for which the
policy's `adl.eligible` holds (default: a profit at the mark), best `adl.ranking` first, ties by
account id.  The ranking is a snapshot (like the exchanges' ADL indicators), kept for
`adl.refresh_seconds` of scenario time.  Counterparties are met in one of three ways:

- :meth:`Counterparties.close` (`replace_market_sale`): contracts the insurance fund cannot take
  over are closed against them at the ADL price, in place of a market sale;
- :meth:`Counterparties.residual`: a money claim that is not contracts (a sub-tick overshoot of
  the bankruptcy price, a cross wallet's deficit) is paid from their profit, nothing closed;
- :meth:`Counterparties.after_sale` (`after_market_sale`): after the fund sold into the
  market, they give up profit against the mark to cover what the sale lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.errors import EngineError
from engine.mechanics.state import AccountState, Evaluator
from engine.mechanics.takeover import position_notional, position_pnl
from engine.numbers import ZERO, format_decimal, quantize_to_step
from engine.simulation.ledger import Ledger

Candidate = tuple[Decimal, str, AccountState, dict[str, Any]]  # (rank, account id, state, position)


@dataclass(frozen=True, slots=True)
class Deleverage:
    """One counterparty position met by ADL."""

    time: int
    account_id: str  # the counterparty
    symbol: str
    side: str
    quantity: Decimal  # contracts closed (0 for a residual payment)
    price: Decimal | None  # where they were closed (None for a residual payment)
    haircut: Decimal  # profit given up against the mark: what this counterparty absorbed
    notional: Decimal = ZERO  # the policy's `notional` of the closed contracts, at the mark
    kind: str = "fill"  # fill | residual | after_sale
    bankrupt_account: str = ""  # whose liquidation it served

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "kind": self.kind,
            "account": self.account_id,
            "bankrupt_account": self.bankrupt_account,
            "symbol": self.symbol,
            "side": self.side,
            "quantity": format_decimal(self.quantity),
            "price": format_decimal(self.price) if self.price is not None else None,
            "haircut": format_decimal(self.haircut),
            "notional": format_decimal(self.notional),
        }


class Counterparties:
    """The ADL queue of a simulation, and the deleverages it has made."""

    def __init__(
        self,
        evaluator: Evaluator,
        ledger: Ledger,
        states: Mapping[str, AccountState],
        touched: Callable[[str], None],
    ) -> None:
        self.evaluator = evaluator
        self.policy = evaluator.policy
        self.spec = evaluator.policy.waterfall
        self.ledger = ledger
        self.states = states
        self.touched = touched
        self.deleverages: list[Deleverage] = []
        self._ranked: dict[tuple[str, str], list[Candidate]] = {}
        self._ranked_at = 0
        self._residual_paid: dict[int, Decimal] = {}  # by position, at this step's mark

    def new_step(self, time: int) -> None:
        """Forget the ranking once older than `adl.refresh_seconds` (0: at every step)."""
        self._residual_paid.clear()
        refresh = self.spec.adl_refresh_seconds
        if refresh <= 0 or time - self._ranked_at >= refresh:
            self._ranked.clear()
            self._ranked_at = time

    def queue(self, symbol: str, bankrupt_side: str) -> Iterator[Candidate]:
        """Open candidates opposite a bankrupt `bankrupt_side` position of `symbol`, best first."""
        side = "short" if bankrupt_side == "long" else "long"
        candidates = self._ranked.get((symbol, side))
        if candidates is None:
            candidates = self._rank(symbol, side)
            self._ranked[(symbol, side)] = candidates
        for candidate in candidates:
            position, state = candidate[3], candidate[2]
            if position["size"] > 0 and any(p is position for p in state.positions):
                yield candidate

    def _rank(self, symbol: str, side: str) -> list[Candidate]:
        assert self.spec.adl_ranking is not None
        candidates: list[Candidate] = []
        for account_id in sorted(self.states):
            state = self.states[account_id]
            for position in state.positions:
                if position["symbol"] != symbol or position["side"] != side:
                    continue
                frame = self.evaluator.context(state).frame_for(position)
                try:
                    eligible = (
                        self.evaluator.expression(self.spec.adl_eligible, frame)
                        if self.spec.adl_eligible
                        else self.evaluator.definition("unrealized_pnl", frame) > 0
                    )
                    if not eligible:
                        continue
                    rank = self.evaluator.expression(self.spec.adl_ranking, frame)
                except EngineError:
                    continue
                candidates.append((rank, account_id, state, position))
        candidates.sort(key=lambda item: (-item[0], item[1]))
        return candidates

    # -- the three ways to meet a counterparty ----------------------------------------------
    def close(
        self, time: int, bankrupt: str, symbol: str, side: str, quantity: Decimal, price: Decimal
    ) -> Decimal:
        """Close up to `quantity` contracts of ranked counterparties at `price`; return how many.

        Each counterparty realises its PnL at `price` (its haircut is what that is worse than
        at the mark); the quantities are the counterparties' own sizes or what is left, both on
        the market's grid, so nothing is rounded.
        """
        left = quantity
        for _rank, account_id, state, position in self.queue(symbol, side):
            if left <= 0:
                break
            closed = min(position["size"], left)
            context = self.evaluator.context(state)
            mark = state.market[symbol]["mark_price"]
            at_mark = position_pnl(self.evaluator, context, position, closed, mark)
            at_price = position_pnl(self.evaluator, context, position, closed, price)
            notional = position_notional(self.evaluator, context, position, closed)
            self.ledger.market -= at_price
            self._close(state, position, closed, at_price)
            left -= closed
            self.touched(account_id)
            self.deleverages.append(
                Deleverage(
                    time,
                    account_id,
                    symbol,
                    position["side"],
                    closed,
                    price,
                    at_mark - at_price,
                    notional,
                    "fill",
                    bankrupt,
                )
            )
        return quantity - left

    def residual(
        self, time: int, bankrupt: str, symbol: str, side: str, amount: Decimal
    ) -> Decimal:
        """Pay up to `amount` from ranked counterparties' profit at the mark; return what was paid.

        Nothing is closed: each pays from its margin at most its unrealised profit (less what it
        already paid at this mark), so the payment never costs it more than it has gained.
        """
        paid = ZERO
        for _rank, account_id, state, position in self.queue(symbol, side):
            if paid >= amount:
                break
            frame = self.evaluator.context(state).frame_for(position)
            profit: Decimal = self.evaluator.definition("unrealized_pnl", frame)
            capacity = profit - self._residual_paid.get(id(position), ZERO)
            if capacity <= 0:
                continue
            take = min(capacity, amount - paid)
            if position["margin_mode"] == "isolated":
                position["isolated_margin"] -= take
            else:
                state.wallet_balance -= take
            self._residual_paid[id(position)] = self._residual_paid.get(id(position), ZERO) + take
            paid += take
            self.touched(account_id)
            self.deleverages.append(
                Deleverage(
                    time,
                    account_id,
                    symbol,
                    position["side"],
                    ZERO,
                    None,
                    take,
                    ZERO,
                    "residual",
                    bankrupt,
                )
            )
        return paid

    def after_sale(
        self,
        time: int,
        bankrupt: str,
        symbol: str,
        side: str,
        quantity: Decimal,
        price: Decimal,
        need: Decimal,
    ) -> Decimal:
        """`after_market_sale`: counterparties give up profit against the mark to cover `need`.

        Each gives up, per contract, its PnL at the mark minus its PnL at `price`; at most
        `quantity` contracts (those the bankrupt orders left to close) are deleveraged in all,
        rounded up to the market's quantity step, and the amount taken is exactly what is
        still needed.
        """
        paid = ZERO
        left = quantity
        step = self.policy.markets[symbol].quantity_step
        for _rank, account_id, state, position in self.queue(symbol, side):
            if paid >= need or left <= 0:
                break
            context = self.evaluator.context(state)
            mark = state.market[symbol]["mark_price"]
            per_contract = position_pnl(
                self.evaluator, context, position, Decimal(1), mark
            ) - position_pnl(self.evaluator, context, position, Decimal(1), price)
            if per_contract <= 0:
                continue
            most = min(position["size"], left)
            if most * per_contract >= need - paid:
                closed, haircut = (need - paid) / per_contract, need - paid
                if step is not None:
                    closed = min(most, quantize_to_step(closed, step, "up"))
            else:
                closed, haircut = most, most * per_contract
            at_mark = position_pnl(self.evaluator, context, position, closed, mark)
            notional = position_notional(self.evaluator, context, position, closed)
            self.ledger.market -= at_mark
            self._close(state, position, closed, at_mark - haircut)
            paid += haircut
            left -= closed
            self.touched(account_id)
            self.deleverages.append(
                Deleverage(
                    time,
                    account_id,
                    symbol,
                    position["side"],
                    closed,
                    price,
                    haircut,
                    notional,
                    "after_sale",
                    bankrupt,
                )
            )
        return paid

    @staticmethod
    def _close(
        state: AccountState, position: dict[str, Any], quantity: Decimal, realized: Decimal
    ) -> None:
        if position["margin_mode"] == "isolated":
            position["isolated_margin"] += realized
        else:
            state.wallet_balance += realized
        position["size"] -= quantity
        if position["size"] <= 0:
            if position["margin_mode"] == "isolated":
                state.wallet_balance += position["isolated_margin"]
            state.positions.remove(position)
