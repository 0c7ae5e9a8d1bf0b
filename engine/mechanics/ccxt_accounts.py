"""Accounts in ccxt's shapes: `fetch_positions()` and `fetch_balance()` as a bot already holds them.

`{"ccxt": {"positions": [...], "balance": {...}}}` is converted to the account format
(docs/accounts.md) before the account is read, so every way in (evaluate, the Python API, JSON
lines, HTTP) takes it.  The mapping, field by field (schemas/ccxt-account.schema.json):

- a position's unified `symbol` (`BTC/USDT:USDT`) names the market whose `instrument` is the
  symbol itself, or `BTC/USDT` with settlement currency USDT, or whose symbol is the symbol;
- size = `contracts` * `contractSize` / the market's `contract_size` (exact; a contract of the
  venue need not be one of the policy's);
- `side`, `entryPrice`, `leverage`, `marginMode` (or the older `marginType`) as they are;
- an isolated position's margin is `collateral` - `unrealizedPnl` (ccxt's collateral includes
  the PnL), else `initialMargin`, else the account format's default;
- each position's `markPrice` is its market's `mark_price`; `market` adds other data;
- the wallet is the balance's `total` of the positions' one settlement currency, unless
  `wallet_balance` is given (what `total` includes differs between venues).

ccxt returns Python floats it parsed from the venue's text; a float is read through its shortest
repr, which gives that text back for up to 15 significant digits (JSON input is read exactly).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from engine.dsl.check import did_you_mean
from engine.errors import InputError
from engine.numbers import DECIMAL_CONTEXT, NumberSyntaxError, format_decimal, parse_decimal
from engine.policy.model import Market, Policy
from engine.policy.schema import Pointer, schema_diagnostics
from engine.source import Diagnostic, Span

Locate = Callable[[Pointer, bool], Span | None]


def is_ccxt_account(data: Any) -> bool:
    """Whether account data is the ccxt envelope rather than the account format."""
    return isinstance(data, Mapping) and "ccxt" in data


def _number(value: Any) -> Decimal | None:
    """A ccxt number: None when absent; a float through its shortest repr."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, float):
        value = repr(value)
    try:
        return parse_decimal(str(value).strip())
    except NumberSyntaxError:
        return None


def _split(symbol: str) -> tuple[str, str | None]:
    """`BASE/QUOTE:SETTLE` → (`BASE/QUOTE`, `SETTLE`); other names → (name, None)."""
    name, colon, settle = symbol.partition(":")
    return (name, settle or None) if colon else (symbol, None)


def market_for(symbol: str, policy: Policy) -> Market | None:
    """The policy's market for a ccxt unified symbol (see the module docstring)."""
    for market in policy.markets.values():
        if market.instrument == symbol:
            return market
    name, settle = _split(symbol)
    for market in policy.markets.values():
        if market.instrument == name and (settle is None or market.settlement_currency == settle):
            return market
    return policy.markets.get(symbol)


class _Converter:
    def __init__(self, policy: Policy, locate: Locate, path: str) -> None:
        self.policy = policy
        self.locate = locate
        self.path = path
        self.diagnostics: list[Diagnostic] = []

    def problem(self, code: str, message: str, pointer: Pointer, hint: str | None = None) -> None:
        span = self.locate(pointer, False)
        self.diagnostics.append(Diagnostic(code, message, span, hint, path=self.path))

    def required(self, position: Mapping[str, Any], field: str, pointer: Pointer) -> Decimal | None:
        value = _number(position.get(field))
        if value is None or value <= 0:
            shown = (
                "missing"
                if position.get(field) is None
                else f"not a positive number ({position.get(field)!r})"
            )
            self.problem(
                "E617",
                f"{_where(pointer)}.{field} is {shown}",
                (*pointer, field),
                "the conversion needs it; the venue's raw value is usually in the position's `info`",
            )
            return None
        return value

    def position(
        self, raw: Mapping[str, Any], pointer: Pointer, market: dict[str, dict[str, Decimal]]
    ) -> dict[str, Any] | None:
        contracts = _number(raw.get("contracts"))
        if contracts is None or contracts == 0:
            return None  # ccxt lists flat positions too
        symbol = raw["symbol"]
        found = market_for(symbol, self.policy)
        if found is None:
            instruments = {m.instrument for m in self.policy.markets.values()}
            self.problem(
                "E618",
                f"{symbol} ({_where(pointer)}.symbol) matches no market of {self.policy.id}",
                (*pointer, "symbol"),
                did_you_mean(_split(symbol)[0], instruments)
                or "a market matches by `instrument` (BASE/QUOTE) and settlement currency",
            )
            return None
        side = raw.get("side")
        mode = raw.get("marginMode") or raw.get("marginType")
        mode = "cross" if mode == "crossed" else mode
        for field, value, allowed in (
            ("side", side, ("long", "short")),
            ("marginMode", mode, ("cross", "isolated")),
        ):
            if value not in allowed:
                self.problem(
                    "E617",
                    f"{_where(pointer)}.{field} is {value!r}, expected "
                    + " or ".join(f"'{a}'" for a in allowed),
                    (*pointer, field),
                )
        entry = self.required(raw, "entryPrice", pointer)
        leverage = self.required(raw, "leverage", pointer)
        size_of = _number(raw.get("contractSize"))
        with decimal.localcontext(DECIMAL_CONTEXT) as context:
            context.clear_flags()
            base = abs(contracts) * size_of if size_of is not None else None
            size = base / found.contract_size if base is not None else abs(contracts)
            if context.flags[decimal.Inexact]:
                self.problem(
                    "E619",
                    f"{_where(pointer)}: {format_decimal(base or contracts)} is not an exact number"
                    f" of {symbol} contracts of {format_decimal(found.contract_size)}",
                    (*pointer, "contracts"),
                )
        mark = _number(raw.get("markPrice"))
        if mark is not None and mark > 0:
            market.setdefault(found.symbol, {})["mark_price"] = mark
        if None in (entry, leverage) or side not in ("long", "short"):
            return None
        converted: dict[str, Any] = {
            "symbol": found.symbol,
            "side": side,
            "size": size,
            "entry_price": entry,
            "margin_mode": mode,
            "leverage": leverage,
        }
        if mode == "isolated":
            collateral, pnl = _number(raw.get("collateral")), _number(raw.get("unrealizedPnl"))
            initial = _number(raw.get("initialMargin"))
            if collateral is not None and pnl is not None:
                with decimal.localcontext(DECIMAL_CONTEXT):
                    converted["isolated_margin"] = collateral - pnl
            elif initial is not None:
                converted["isolated_margin"] = initial
        return converted

    def wallet(self, data: Mapping[str, Any], currencies: set[str]) -> Decimal | None:
        given = data.get("wallet_balance")
        if given is not None:
            value = _number(given)
            if value is None:
                self.problem(
                    "E617", f"wallet_balance is not a number ({given!r})", ("wallet_balance",)
                )
            return value
        if not currencies:
            currencies = {m.settlement_currency for m in self.policy.markets.values()}
        if len(currencies) != 1:
            self.problem(
                "E619",
                "the positions settle in " + ", ".join(sorted(currencies)) + ": one account, one"
                " settlement currency",
                ("ccxt", "positions"),
                "evaluate each currency's positions as their own account, each with its wallet",
            )
            return None
        (currency,) = currencies
        balance = data["ccxt"].get("balance")
        entry = balance.get(currency) if isinstance(balance, Mapping) else None
        total = entry.get("total") if isinstance(entry, Mapping) else None
        if (
            total is None
            and isinstance(balance, Mapping)
            and isinstance(balance.get("total"), Mapping)
        ):
            total = balance["total"].get(currency)
        value = _number(total)
        if value is None:
            self.problem(
                "E617",
                f"the balance has no {currency} total",
                ("ccxt", "balance") if isinstance(balance, Mapping) else ("ccxt",),
                f"pass fetch_balance()'s result as ccxt.balance, or give wallet_balance in {currency}",
            )
        return value

    def convert(self, data: Mapping[str, Any]) -> dict[str, Any]:
        market: dict[str, dict[str, Decimal]] = {}
        positions: list[dict[str, Any]] = []
        currencies: set[str] = set()
        for index, raw in enumerate(data["ccxt"]["positions"]):
            pointer: Pointer = ("ccxt", "positions", index)
            converted = self.position(raw, pointer, market)
            if converted is not None:
                positions.append(converted)
                currencies.add(self.policy.markets[converted["symbol"]].settlement_currency)
        wallet = self.wallet(data, currencies)
        for name, fields in (data.get("market") or {}).items():
            found = self.policy.markets.get(name) or market_for(name, self.policy)
            if found is None:
                self.problem(
                    "E618",
                    f"market.{name} names no market of {self.policy.id}",
                    ("market", name),
                    did_you_mean(name, self.policy.markets),
                )
                continue
            for field, value in fields.items():
                number = _number(value)
                if number is None:
                    self.problem(
                        "E617",
                        f"market.{name}.{field} is not a number ({value!r})",
                        ("market", name, field),
                    )
                    continue
                market.setdefault(found.symbol, {})[field] = number
        if self.diagnostics:
            raise InputError(diagnostics=self.diagnostics)
        account: dict[str, Any] = {
            "wallet_balance": wallet,
            "positions": positions,
            "market": market,
        }
        if "id" in data:
            account["id"] = data["id"]
        return account


def _where(pointer: Pointer) -> str:
    text = ""
    for part in pointer:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def from_ccxt(data: Mapping[str, Any], policy: Policy, locate: Locate, path: str) -> dict[str, Any]:
    """The account-format data of a ccxt envelope; raise InputError listing every problem."""
    found = schema_diagnostics(data, "ccxt-account.schema.json", locate)  # type: ignore[arg-type]  # a None span renders by path
    if found:
        raise InputError(
            diagnostics=[Diagnostic(d.code, d.message, d.span, d.hint, path=path) for d in found]
        )
    return _Converter(policy, locate, path).convert(data)
