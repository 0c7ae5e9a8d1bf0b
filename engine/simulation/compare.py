"""The same book through the same scenario under several policies, side by side.

Besides the per-policy results, a comparison explains itself: the accounts whose fate differs
most between policies, with the rule that made the difference, and how each policy's
liquidation price moves with leverage for a reference position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError, InputError
from engine.mechanics.quote import quote_prices
from engine.numbers import format_decimal
from engine.policy.model import Policy
from engine.simulation.model import Book, Scenario
from engine.simulation.result_display import comparison_html
from engine.simulation.result_frames import comparison_frame
from engine.simulation.results import Fate, SimulationResult
from engine.simulation.simulate import Progress, simulate
from engine.source import Diagnostic

if TYPE_CHECKING:
    import pandas as pd

RunStart = Callable[[str], Progress | None]
"""Called with a policy's id as its run starts; returns the step callback for that run."""

CURVE_LEVERAGES = tuple(Decimal(x) for x in (1, 2, 3, 5, 10, 20, 25, 50, 75, 100, 125))


@dataclass(frozen=True, slots=True)
class AccountDifference:
    account_id: str
    spread: Decimal  # largest minus smallest loss across policies
    fates: tuple[Fate, ...]  # one per policy, in policy order
    reasons: tuple[str, ...]

    def as_dict(self, policy_ids: Sequence[str]) -> dict[str, Any]:
        return {
            "account": self.account_id,
            "loss_spread": format_decimal(self.spread),
            "fates": {
                pid: fate.as_dict() for pid, fate in zip(policy_ids, self.fates, strict=True)
            },
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class LeverageCurve:
    """Liquidation price of a reference position at each leverage, per policy."""

    instrument: str
    side: str
    quantity: Decimal  # in the book's unit: base units, or face value if `kind` is inverse
    entry_price: Decimal
    points: dict[str, tuple[tuple[Decimal, Decimal | None], ...]]  # policy id -> (leverage, price)
    kind: str = "linear"

    def as_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "kind": self.kind,
            "side": self.side,
            "quantity": format_decimal(self.quantity),
            "entry_price": format_decimal(self.entry_price),
            "points": {
                pid: [
                    [format_decimal(lev), format_decimal(price) if price is not None else None]
                    for lev, price in points
                ]
                for pid, points in self.points.items()
            },
        }


@dataclass(frozen=True, slots=True)
class SkippedPolicy:
    """A policy left out of a comparison: it has no market for instruments the book trades."""

    policy_id: str
    instruments: tuple[str, ...]
    accounts: int  # accounts of the book holding a position in them

    @property
    def reason(self) -> str:
        return (
            f"no market for {', '.join(self.instruments)} "
            f"({self.accounts:,} account{'' if self.accounts == 1 else 's'} of the book trade "
            f"{'it' if len(self.instruments) == 1 else 'them'})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy_id,
            "missing_instruments": list(self.instruments),
            "accounts": self.accounts,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Several policies run on one book and scenario, with the differences explained."""

    scenario: Scenario
    book_size: int
    book_path: str
    results: tuple[SimulationResult, ...]
    differences: tuple[AccountDifference, ...]
    curve: LeverageCurve | None
    skipped: tuple[SkippedPolicy, ...] = ()  # left out by `skip_missing`, in the order given

    @property
    def policy_ids(self) -> list[str]:
        return [r.policy_id for r in self.results]

    def as_dict(self, *, events: bool = False) -> dict[str, Any]:
        skipped = {"skipped": [s.as_dict() for s in self.skipped]} if self.skipped else {}
        return {
            "scenario": {
                "id": self.scenario.id,
                "title": self.scenario.title,
                "steps": len(self.scenario.times()),
            },
            "book": {"path": self.book_path, "accounts": self.book_size},
            "policies": [r.as_dict(events=events) for r in self.results],
            "differences": [d.as_dict(self.policy_ids) for d in self.differences],
            "leverage_curve": self.curve.as_dict() if self.curve else None,
            **skipped,
        }

    def to_pandas(self, table: str = "summary", *, decimals: str = "exact") -> pd.DataFrame:
        """One of the comparison's tables as a pandas DataFrame (needs ``liqpolicy[analysis]``).

        `table`: ``summary`` (default: one row per policy, a column per figure), the
        simulation tables stacked with a ``policy`` column (``fates``, ``events``, ``orders``,
        ``allocations``, ``deleverages``, ``clawbacks``, ``insurance_fund``), ``differences``
        or ``leverage_curve`` (engine/simulation/result_frames.py).  Money stays exact
        (Decimal objects) unless `decimals` is ``"float"``.
        """
        return comparison_frame(self, table, decimals)

    def _repr_html_(self) -> str:
        """Jupyter's display: the figures side by side, differences in bold."""
        return comparison_html(self)


def _reasons(ids: Sequence[str], fates: Sequence[Fate]) -> list[str]:
    """Name the rule behind each difference, most decisive first."""
    reasons: list[str] = []
    kinds = {pid: fate.liquidation for pid, fate in zip(ids, fates, strict=True)}
    if len(set(kinds.values())) > 1:
        liquidated = [pid for pid, kind in kinds.items() if kind != "none"]
        spared = [pid for pid, kind in kinds.items() if kind == "none"]
        if liquidated and spared:
            reasons.append(
                f"trigger and maintenance margin: liquidated under {', '.join(liquidated)}, "
                f"not under {', '.join(spared)}"
            )
        partial = [pid for pid, kind in kinds.items() if kind == "partial"]
        full = [pid for pid, kind in kinds.items() if kind == "full"]
        if partial and full:
            reasons.append(
                f"steps: partially liquidated under {', '.join(partial)}, "
                f"fully under {', '.join(full)}"
            )
    times = {
        pid: f.first_liquidation_time
        for pid, f in zip(ids, fates, strict=True)
        if f.first_liquidation_time is not None
    }
    if len(set(times.values())) > 1:
        order = sorted(times.items(), key=lambda item: item[1])
        reasons.append(
            "trigger timing: first liquidated " + ", ".join(f"{pid} at t={t}s" for pid, t in order)
        )
    for label, attribute in (
        ("fees", "fees"),
        ("ADL haircut vs the mark", "adl_haircut"),
        ("clawback", "clawback_paid"),
        ("debt", "debt"),
    ):
        values = {pid: getattr(f, attribute) for pid, f in zip(ids, fates, strict=True)}
        if len(set(values.values())) > 1 and any(values.values()):
            shown = ", ".join(f"{pid} {format_decimal(v)}" for pid, v in values.items())
            reasons.append(f"{label}: {shown}")
    if not reasons:
        reasons.append("settlement: different fill or settlement prices and margin left")
    return reasons


def _differences(results: Sequence[SimulationResult], limit: int) -> tuple[AccountDifference, ...]:
    ids = [r.policy_id for r in results]
    common = set.intersection(*(set(r.fates) for r in results)) if results else set()
    found: list[AccountDifference] = []
    for account_id in common:
        fates = tuple(r.fates[account_id] for r in results)
        losses = [f.loss for f in fates]
        spread = max(losses) - min(losses)
        kinds = {f.liquidation for f in fates}
        if spread == 0 and len(kinds) == 1:
            continue
        found.append(AccountDifference(account_id, spread, fates, tuple(_reasons(ids, fates))))
    found.sort(key=lambda d: (-d.spread, d.account_id))
    return tuple(found[:limit])


def leverage_curve(
    policies: Sequence[Policy], scenario: Scenario, instrument: str | None = None
) -> LeverageCurve | None:
    """Liquidation price of a long at the scenario's first price, for each leverage.

    The position is 1 base unit of a linear instrument, or one coin's worth of face value (the
    entry price in the quote currency) of an inverse one.  `instrument` defaults to the first
    of the scenario's.
    """
    if not scenario.paths:
        return None
    if instrument is None or instrument not in scenario.paths:
        instrument = sorted(scenario.paths)[0]
    entry = scenario.paths[instrument].points[0].mark_price
    markets = [m for p in policies for m in p.markets.values() if m.instrument == instrument]
    kind = markets[0].kind if markets else "linear"
    quantity = entry if kind == "inverse" else Decimal(1)
    points: dict[str, tuple[tuple[Decimal, Decimal | None], ...]] = {}
    for policy in policies:
        symbol = next(
            (s for s, m in policy.markets.items() if (m.instrument or s) == instrument), None
        )
        if symbol is None or policy.markets[symbol].kind != kind:
            continue
        size = quantity / policy.markets[symbol].contract_size
        row: list[tuple[Decimal, Decimal | None]] = []
        for leverage in CURVE_LEVERAGES:
            try:
                price = quote_prices(
                    policy,
                    symbol=symbol,
                    side="long",
                    size=size,
                    entry_price=entry,
                    leverage=leverage,
                ).liquidation_price
            except EngineError:
                price = None
            row.append((leverage, price))
        points[policy.id] = tuple(row)
    return LeverageCurve(instrument, "long", quantity, entry, points, kind)


def missing_instruments(policy: Policy, book: Book) -> SkippedPolicy | None:
    """The book's instruments `policy` has no market for (None: it has every one)."""
    have = {market.instrument or symbol for symbol, market in policy.markets.items()}
    missing: set[str] = set()
    accounts = 0
    for account in book.accounts:
        lacking = {p.instrument for p in account.positions} - have
        if lacking:
            missing |= lacking
            accounts += 1
    if not missing:
        return None
    return SkippedPolicy(policy.id, tuple(sorted(missing)), accounts)


def compare(
    policies: Sequence[Policy],
    book: Book,
    scenario: Scenario,
    *,
    limit: int = 10,
    progress: RunStart | None = None,
    skip_missing: bool = False,
) -> Comparison:
    """Simulate each policy on the same book and scenario and explain the differences.

    A policy without a market for an instrument the book trades cannot run on that book: with
    `skip_missing` it is left out (listed in `Comparison.skipped`); otherwise nothing runs and
    :class:`InputError` E620 names every such policy.  `progress(policy_id)` is called as each
    run starts and returns that run's step callback (or None).
    """
    lacking = [found for p in policies if (found := missing_instruments(p, book)) is not None]
    if lacking and not skip_missing:
        raise InputError(
            diagnostics=[
                Diagnostic(
                    "E620",
                    f"{item.policy_id} has {item.reason}",
                    path=book.path or "<book>",
                    hint="add a market with that `instrument` to the policy, or leave the "
                    "policy out of the comparison (`--skip-missing`, `skip_missing=True`)",
                )
                for item in lacking
            ]
        )
    left_out = {item.policy_id for item in lacking}
    kept = [p for p in policies if p.id not in left_out]
    if not kept:
        raise InputError(
            diagnostics=[
                Diagnostic(
                    "E624",
                    "no policy has markets for every instrument the book trades: nothing to compare",
                    path=book.path or "<book>",
                    hint="; ".join(f"{item.policy_id}: {item.reason}" for item in lacking),
                )
            ]
        )
    results = tuple(
        simulate(policy, book, scenario, progress=progress(policy.id) if progress else None)
        for policy in kept
    )
    traded = sorted({p.instrument for a in book.accounts for p in a.positions})
    return Comparison(
        scenario,
        len(book.accounts),
        book.path,
        results,
        _differences(results, limit),
        leverage_curve(kept, scenario, traded[0] if traded else None),
        tuple(lacking),
    )
