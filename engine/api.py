"""The Python API: load a policy, evaluate accounts, quote prices, run a policy's examples.

A thin, typed layer over the engine for programs that use liqpolicy as their policy backend
(backtesters, risk dashboards, bots).  Everything here is re-exported from :mod:`engine`; the
guide with runnable examples is ``docs/api.md``.

- Policies are given as a loaded :class:`~engine.policy.model.Policy`, a file path, or the id of
  a shipped policy.  Load once and reuse: a loaded policy is immutable and safe to share between
  threads (each evaluation builds its own working state).
- Accounts are given as an :class:`~engine.mechanics.accounts.Account` or as plain data in the
  documented JSON form (``docs/accounts.md``), numbers as strings, ints or
  :class:`~decimal.Decimal`.  A ``float`` is refused with :class:`~engine.errors.InputError`
  (code ``E601``): it cannot hold most decimals exactly.
- Results are frozen objects; ``result.as_dict()`` is the documented JSON form (the same document
  ``liqpolicy evaluate --format json`` prints) and :func:`to_json` serialises any of them.
- Every mistake in the input raises a subclass of :class:`~engine.errors.EngineError` carrying
  :class:`~engine.source.Diagnostic` objects; anything else escaping is a bug.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias

from engine.errors import EngineError, InputError
from engine.mechanics.account_frames import positions_frame
from engine.mechanics.accounts import Account, parse_account
from engine.mechanics.batch import error_as_dict
from engine.mechanics.evaluate import AccountResult, evaluate_account
from engine.mechanics.examples import ExampleResult
from engine.mechanics.examples import run_examples as _run_examples
from engine.mechanics.quote import PriceQuote, quote_prices
from engine.numbers import NumberSyntaxError, format_decimal, parse_decimal
from engine.policy.load import check_policy, load_policy
from engine.policy.model import Policy
from engine.policy.packaged import shipped_policy_paths
from engine.simulation.book import load_book
from engine.simulation.compare import Comparison
from engine.simulation.compare import compare as _compare
from engine.simulation.model import Book, Scenario
from engine.simulation.results import SimulationResult
from engine.simulation.scenario import load_scenario
from engine.simulation.simulate import simulate as _simulate
from engine.source import Diagnostic

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AccountLike",
    "Number",
    "PolicyLike",
    "check_policy",
    "error_as_dict",
    "evaluate",
    "liquidation_price",
    "load_policy",
    "run_examples",
    "shipped_policies",
    "to_json",
    "to_pandas",
]

PolicyLike: TypeAlias = "Policy | str | os.PathLike[str]"
"""A loaded policy, a policy file path, or the id of a shipped policy (see `shipped_policies`)."""

AccountLike: TypeAlias = "Account | Mapping[str, Any]"
"""A parsed account, or account data in the documented JSON form."""

Number: TypeAlias = "str | int | Decimal"
"""An exact number: decimal text (``"0.004"``, ``"50_000"``), an int or a Decimal; not a float."""

_QUOTE_PATH = "<liquidation_price>"


def _policy(policy: PolicyLike) -> Policy:
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str | os.PathLike):
        return load_policy(os.fspath(policy))
    raise TypeError(
        f"policy must be a Policy, a path or a shipped policy id, not {type(policy).__name__}"
    )


def _account(account: AccountLike, policy: Policy) -> Account:
    if isinstance(account, Account):
        return account
    if isinstance(account, Mapping) and not isinstance(account, dict):
        account = dict(account)  # the schema validator wants a dict at the top level
    return parse_account(account, policy)


def _number(name: str, value: Number | None) -> Decimal | None:
    """An exact Decimal from text, an int or a Decimal; located InputError otherwise."""
    if value is None:
        return None
    if isinstance(value, float):
        raise InputError(
            diagnostics=[
                Diagnostic(
                    "E601",
                    f"{name} is a binary float; pass the number as text, an int or a Decimal",
                    hint="floats cannot hold most decimals exactly, e.g. 0.1",
                    path=_QUOTE_PATH,
                )
            ]
        )
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InputError(
            diagnostics=[
                Diagnostic(
                    "E103",
                    f"{name} must be a number as text, an int or a Decimal, "
                    f"not {type(value).__name__}",
                    path=_QUOTE_PATH,
                )
            ]
        )
    try:
        return parse_decimal(str(value))
    except NumberSyntaxError as error:
        raise InputError(
            diagnostics=[
                Diagnostic(
                    "E015",
                    f"{name}: {error}",
                    hint="write an ordinary decimal such as 0.004 or 50_000",
                    path=_QUOTE_PATH,
                )
            ]
        ) from None


def evaluate(policy: PolicyLike, account: AccountLike, *, trace: bool = False) -> AccountResult:
    """Evaluate an account under a policy: figures, trigger, prices and any liquidation.

    `account` is an :class:`Account` or plain data in the documented JSON form (as parsed
    JSON).  With `trace`, the result also lists every definition and condition evaluated with
    the values read and its policy line (slower).  Raises :class:`InputError` for a malformed
    account (every problem listed), :class:`EvaluationError` when a formula cannot be computed
    for it, and :class:`PolicyError` when `policy` is a path or id that does not load.
    """
    loaded = _policy(policy)
    return evaluate_account(loaded, _account(account, loaded), trace=trace)


def liquidation_price(
    policy: PolicyLike,
    *,
    symbol: str,
    side: str,
    size: Number,
    entry_price: Number,
    leverage: Number | None = None,
    margin: Number | None = None,
    mode: str = "isolated",
    wallet: Number | None = None,
    mark_price: Number | None = None,
) -> PriceQuote:
    """Liquidation and bankruptcy price of one position opened at `entry_price`.

    Give `leverage` (the margin is then notional at entry / leverage) or `margin`.  In cross
    mode `wallet` backs the position (or `margin` when no wallet is given).  `mark_price`
    defaults to the entry price.  The tier reported is the one at the liquidation price.  The
    same answer as ``liqpolicy liq-price``; numbers are text, ints or Decimals, never floats.
    """
    loaded = _policy(policy)
    size_value = _number("size", size)
    entry_value = _number("entry_price", entry_price)
    assert size_value is not None and entry_value is not None
    return quote_prices(
        loaded,
        symbol=symbol,
        side=side,
        size=size_value,
        entry_price=entry_value,
        leverage=_number("leverage", leverage),
        margin=_number("margin", margin),
        mode=mode,
        wallet=_number("wallet", wallet),
        mark_price=_number("mark_price", mark_price),
    )


def run_examples(policy: PolicyLike) -> list[ExampleResult]:
    """Run the worked examples kept in the policy file; each result says whether it passed."""
    return _run_examples(_policy(policy))


BookLike: TypeAlias = "Book | str | os.PathLike[str]"
"""A loaded book, a JSON-lines or CSV book file, or the id of a shipped book (`demo`)."""

ScenarioLike: TypeAlias = "Scenario | str | os.PathLike[str]"
"""A loaded scenario, a scenario file, or the id of a shipped scenario."""


def _book(book: BookLike) -> Book:
    return book if isinstance(book, Book) else load_book(os.fspath(book))


def _scenario(scenario: ScenarioLike) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(os.fspath(scenario))


def simulate(policy: PolicyLike, book: BookLike, scenario: ScenarioLike) -> SimulationResult:
    """Run a book through a scenario under one policy (exact; refuses to report a leak)."""
    return _simulate(_policy(policy), _book(book), _scenario(scenario))


def compare(
    policies: Sequence[PolicyLike],
    book: BookLike,
    scenario: ScenarioLike,
    *,
    limit: int = 10,
    skip_missing: bool = False,
) -> Comparison:
    """The same book and scenario under several policies, with the accounts that differ most.

    With `skip_missing`, policies without a market for an instrument the book trades are left
    out (``Comparison.skipped``) instead of raising :class:`InputError` E620.
    """
    return _compare(
        [_policy(p) for p in policies],
        _book(book),
        _scenario(scenario),
        limit=limit,
        skip_missing=skip_missing,
    )


def shipped_policies() -> list[str]:
    """The ids of the policies shipped with liqpolicy, sorted (usable wherever a path is)."""
    return sorted(path.stem for path in shipped_policy_paths())


def _plain(value: Any) -> Any:
    """`json.dumps` fallback: results by their `as_dict()`, decimals as exact text."""
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, EngineError):
        return error_as_dict(value)
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


def to_json(result: Any, *, indent: int | None = None) -> str:
    """Serialise a result (or anything JSON-like holding results) as JSON, decimals as text.

    Accepts every result object of the API (anything with ``as_dict()``), an
    :class:`EngineError` (as :func:`error_as_dict`), and dicts, lists and tuples of them;
    :class:`~decimal.Decimal` values become exact strings (``"0.1"``, never a binary float).
    Compact on one line by default, so it suits JSON lines; `indent` pretty-prints.
    """
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(
        result, default=_plain, ensure_ascii=False, indent=indent, separators=separators
    )


def to_pandas(result: Any, table: str | None = None, *, decimals: str = "exact") -> pd.DataFrame:
    """A result as a pandas DataFrame (needs ``pip install 'liqpolicy[analysis]'``).

    `result` is anything with a ``to_pandas`` method (a :class:`SimulationResult`, a
    :class:`Comparison`; `table` picks one of its tables), or several :class:`AccountResult`
    (a batch of evaluations: one row per position).  Money stays exact, as Decimal objects,
    unless `decimals` is ``"float"`` (docs/notebook.md).
    """
    method = getattr(result, "to_pandas", None)
    if callable(method) and not isinstance(result, AccountResult):
        frame: pd.DataFrame = (
            method(decimals=decimals) if table is None else method(table, decimals=decimals)
        )
        return frame
    results = [result] if isinstance(result, AccountResult) else list(result)
    if table not in (None, "positions") or not all(isinstance(r, AccountResult) for r in results):
        raise TypeError(
            "to_pandas takes a result with a to_pandas() method or AccountResults "
            "(table 'positions')"
        )
    return positions_frame(results, decimals)
