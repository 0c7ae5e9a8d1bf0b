"""The standard input names every policy's expressions may read.

These are the shapes of accounts, positions and market data (documented in docs/accounts.md);
they are generic: any exchange's rules are written against the same vocabulary.  The policy adds
its own names on top: definitions, `tables.<name>`, `market.tiers` and per-market parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.dsl.types import (
    BOOL,
    NUMBER,
    STRING,
    ListType,
    RecordType,
    StringType,
    Type,
)

SIDES = frozenset({"long", "short"})
MARGIN_MODES = frozenset({"isolated", "cross"})
CONTRACT_KINDS = frozenset({"linear", "inverse"})

POSITION_FIELDS: dict[str, tuple[Type, str]] = {
    "symbol": (STRING, "market symbol, e.g. BTCUSDT"),
    "side": (StringType(SIDES), '"long" or "short"'),
    "size": (NUMBER, "position size in contracts of the policy's market (never negative)"),
    "entry_price": (NUMBER, "average entry price"),
    "leverage": (NUMBER, "leverage chosen for the position"),
    "margin_mode": (StringType(MARGIN_MODES), '"isolated" or "cross"'),
    "isolated_margin": (
        NUMBER,
        "margin held by an isolated position (defaults to notional at entry / leverage)",
    ),
}

ACCOUNT_FIELDS: dict[str, tuple[Type, str]] = {
    "id": (STRING, "account identifier"),
    "wallet_balance": (NUMBER, "futures wallet balance (cross collateral), settlement currency"),
    "debt": (
        NUMBER,
        "amount the trader owes after a liquidation left a negative balance (0 if none)",
    ),
    "debt_age": (NUMBER, "seconds since the debt arose (0 if none); for penalty interest"),
}

MARKET_DATA_FIELDS: dict[str, tuple[Type, str]] = {
    "mark_price": (NUMBER, "mark price"),
    "last_price": (NUMBER, "last traded price"),
    "index_price": (NUMBER, "index (spot) price"),
    "previous_mark_price": (NUMBER, "mark price one step earlier (for jump surcharges)"),
    "book_depth": (
        NUMBER,
        "order-book depth now, in the quote currency (USD of face value for an inverse contract)",
    ),
    "average_book_depth": (NUMBER, "average order-book depth, same unit as book_depth"),
    "funding_rate": (NUMBER, "current funding rate per funding interval"),
}

ORDER_FIELDS: dict[str, tuple[Type, str]] = {
    "kind": (
        StringType(frozenset({"liquidation", "offset"})),
        '"liquidation", or "offset" for a leg of an offset_opposite step (self-trade at the mark)',
    ),
    "quantity": (NUMBER, "contracts this liquidation order closes"),
    "notional": (NUMBER, "notional of the closed contracts at the mark price"),
    "fill_price": (NUMBER, "price the order executes at (known to fees and settlement)"),
    "bankruptcy_price": (NUMBER, "bankruptcy price of the position before the order"),
    "is_partial": (BOOL, "true when the order leaves part of the position open"),
    "step": (NUMBER, "1-based number of the order within the liquidation"),
    "margin_before": (NUMBER, "margin balance of the liquidated unit before the order"),
    "remaining_margin": (
        NUMBER,
        "margin left after the order (read by `surplus_to_insurance_fund` after a full liquidation)",
    ),
}

MARKET_SPEC_FIELDS: dict[str, tuple[Type, str]] = {
    "symbol": (STRING, "market symbol"),
    "kind": (StringType(CONTRACT_KINDS), '"linear" (USDT-margined) or "inverse" (coin-margined)'),
    "contract_size": (NUMBER, "base units per contract (linear) or quote value per contract"),
    "tick_size": (NUMBER, "price increment"),
    "quantity_step": (
        NUMBER,
        "smallest tradable quantity in contracts (every market must declare it once it is read)",
    ),
}


def _record(name: str, fields: Mapping[str, tuple[Type, str]], **extra: Type) -> RecordType:
    types = {key: value for key, (value, _) in fields.items()}
    types.update(extra)
    return RecordType(name, types, descriptions={k: d for k, (_, d) in fields.items()})


def position_type() -> RecordType:
    return _record("position", POSITION_FIELDS)


def build_roots(
    *,
    tier_table: Type | None = None,
    market_parameters: Mapping[str, Type] | None = None,
    tables: Mapping[str, Type] | None = None,
    account_fields: Mapping[str, str] | None = None,
    with_definitions: bool = True,
) -> dict[str, Type]:
    """The root names (`position`, `account`, `market`, `tables`) and their record types.

    `account_fields` are the policy's declared account fields (name → description), numbers
    read as `account.<name>` next to the standard ones.
    """
    position = RecordType(
        "position",
        {key: value for key, (value, _) in POSITION_FIELDS.items()},
        with_definitions=with_definitions,
        descriptions={k: d for k, (_, d) in POSITION_FIELDS.items()},
    )
    account_types: dict[str, Type] = {key: value for key, (value, _) in ACCOUNT_FIELDS.items()}
    account_types.update(dict.fromkeys(account_fields or {}, NUMBER))
    account_types["positions"] = ListType(position)
    account = RecordType(
        "account",
        account_types,
        descriptions={
            **{k: d for k, (_, d) in ACCOUNT_FIELDS.items()},
            **dict(account_fields or {}),
        },
    )
    market_fields: dict[str, Type] = {k: v for k, (v, _) in MARKET_SPEC_FIELDS.items()}
    market_fields.update({k: v for k, (v, _) in MARKET_DATA_FIELDS.items()})
    if tier_table is not None:
        market_fields["tiers"] = tier_table
    market_fields.update(market_parameters or {})
    market = RecordType("market", market_fields)
    roots: dict[str, Type] = {
        "position": position,
        "account": account,
        "market": market,
        "order": _record("order", ORDER_FIELDS),
    }
    roots["tables"] = RecordType("tables", dict(tables or {}))
    return roots


RESERVED_NAMES = frozenset(
    {
        "position",
        "account",
        "market",
        "order",
        "tables",
        "if",
        "then",
        "else",
        "and",
        "or",
        "not",
        "true",
        "false",
        "for",
        "in",
        "where",
    }
)
