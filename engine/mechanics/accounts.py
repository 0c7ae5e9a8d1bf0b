"""Account input: validated against schemas/account.schema.json and the policy, read exactly.

Numbers arrive as YAML/JSON numbers (read as decimals from their text) or numeric strings; a
Python float is refused rather than silently rounded.  Every problem names the field.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.dsl.runtime import EvaluationContext
from engine.errors import EngineError, InputError, PolicyError
from engine.mechanics.ccxt_accounts import from_ccxt, is_ccxt_account
from engine.numbers import DECIMAL_CONTEXT, NumberSyntaxError, format_decimal, parse_decimal
from engine.policy.model import Policy
from engine.policy.schema import Pointer, schema_diagnostics
from engine.policy.yaml_reader import SourceMap, read_yaml_file, span_locator
from engine.source import Diagnostic, Span

_NUMBER_FIELDS = ("size", "entry_price", "isolated_margin", "leverage")


@dataclass(frozen=True, slots=True)
class Account:
    """A validated account: positions and market data as exact records for the policy."""

    id: str
    wallet_balance: Decimal
    positions: tuple[Mapping[str, Any], ...]
    market: Mapping[str, Mapping[str, Decimal]]
    source: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)
    fields: Mapping[str, Decimal] = field(default_factory=dict)  # the policy's account_fields

    def as_dict(self) -> dict[str, Any]:
        """The account in the documented JSON form (numbers as strings)."""

        def text(value: Any) -> str:
            return format_decimal(value) if isinstance(value, Decimal) else str(value)

        data: dict[str, Any] = {
            "id": self.id,
            "wallet_balance": text(self.wallet_balance),
            "positions": [{k: text(v) for k, v in p.items()} for p in self.positions],
            "market": {s: {k: text(v) for k, v in m.items()} for s, m in self.market.items()},
        }
        if self.fields:
            data["fields"] = {k: text(v) for k, v in self.fields.items()}
        return data


def _where(pointer: Pointer) -> str:
    text = ""
    for part in pointer:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _floats(data: Any, pointer: Pointer = ()) -> list[Pointer]:
    if isinstance(data, float):
        return [pointer]
    if isinstance(data, Mapping):
        return [p for k, v in data.items() for p in _floats(v, (*pointer, str(k)))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _floats(v, (*pointer, i))]
    return []


def _number(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise NumberSyntaxError(f"'{value}' is not a decimal number")
    return parse_decimal(str(value))


_SIGNED = re.compile(r"[+-]?[0-9][0-9_]*(\.[0-9][0-9_]*)?([eE][+-]?[0-9]+)?")
_UNSIGNED = re.compile(r"\+?[0-9][0-9_]*(\.[0-9][0-9_]*)?([eE][+-]?[0-9]+)?")
_NONZERO_MANTISSA = re.compile("[^eE]*[1-9]")  # a digit 1-9 before any exponent
_POSITION_KEYS = {
    "symbol": "text",
    "side": "side",
    "size": "non_negative",
    "entry_price": "positive",
    "margin_mode": "mode",
    "isolated_margin": "non_negative",
    "leverage": "positive",
}
_POSITION_REQUIRED = frozenset({"symbol", "side", "size", "entry_price", "margin_mode", "leverage"})
_MARKET_KEYS = {
    "mark_price": "positive",
    "last_price": "positive",
    "index_price": "positive",
    "previous_mark_price": "positive",
    "book_depth": "non_negative",
    "average_book_depth": "non_negative",
    "funding_rate": "decimal",
}


def _value_ok(value: Any, kind: str) -> bool:
    """One value against the account schema's rule for it (schemas/account.schema.json)."""
    if kind == "text":
        return isinstance(value, str)
    if kind == "side":
        return value in ("long", "short")
    if kind == "mode":
        return value in ("isolated", "cross")
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        pattern = _SIGNED if kind == "decimal" else _UNSIGNED
        if pattern.fullmatch(value) is None:
            return False
        # "0", "0.000" or "0e5" are numbers but not positive ones
        return kind != "positive" or _NONZERO_MANTISSA.match(value) is not None
    if isinstance(value, int):
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite():
        return False
    if kind == "non_negative":
        return value >= 0
    if kind == "positive":
        return value > 0
    return True


def _plainly_valid(data: Any) -> bool:
    """A quick structural check mirroring the account schema for the common, valid case.

    True only when the data certainly satisfies the schema; anything unusual goes to the full
    JSON Schema validation, which also produces the located messages.  Saves most of the cost
    of validating an account in batch and HTTP use.
    """
    if not isinstance(data, dict) or not {"wallet_balance", "positions"} <= data.keys():
        return False
    if not data.keys() <= {"id", "wallet_balance", "positions", "market", "fields"}:
        return False
    fields = data.get("fields", {})
    if not isinstance(fields, dict) or not all(
        isinstance(k, str) and _value_ok(v, "decimal") for k, v in fields.items()
    ):
        return False
    if "id" in data and not isinstance(data["id"], str):
        return False
    if not _value_ok(data["wallet_balance"], "decimal"):
        return False
    positions = data["positions"]
    if not isinstance(positions, list):
        return False
    for position in positions:
        if not isinstance(position, dict) or not position.keys() >= _POSITION_REQUIRED:
            return False
        for key, value in position.items():
            kind = _POSITION_KEYS.get(key)
            if kind is None or not _value_ok(value, kind):
                return False
    market = data.get("market", {})
    if not isinstance(market, dict):
        return False
    for symbol, fields in market.items():
        if not isinstance(symbol, str) or not isinstance(fields, dict):
            return False
        for key, value in fields.items():
            kind = _MARKET_KEYS.get(key)
            if kind is None or not _value_ok(value, kind):
                return False
    return True


def parse_account(
    data: Any,
    policy: Policy,
    *,
    spans: SourceMap | None = None,
    path: str = "<account>",
) -> Account:
    """Validate and convert account data; raise InputError listing every problem.

    `data` is the account format, or ccxt's `fetch_positions` + `fetch_balance` output wrapped
    as `{"ccxt": {...}}` (engine/mechanics/ccxt_accounts.py), converted here first.
    """
    locate = span_locator(spans)
    if is_ccxt_account(data):
        data = from_ccxt(data, policy, locate, path)
        locate = span_locator(None)  # the converted account has no place in the input text
    diagnostics: list[Diagnostic] = []

    def problem(code: str, message: str, pointer: Pointer, hint: str | None = None) -> None:
        diagnostics.append(Diagnostic(code, message, locate(pointer, False), hint, path=path))

    plain = _plainly_valid(data)  # no floats either: the quick check refuses them
    for pointer in () if plain else _floats(data):
        problem(
            "E601",
            f"{_where(pointer)} is a binary float; pass the number as text or JSON",
            pointer,
            "floats cannot hold most decimals exactly, e.g. 0.1",
        )
    if diagnostics:
        raise InputError(diagnostics=diagnostics)

    def schema_locate(pointer: Pointer, key: bool) -> Span:
        return locate(pointer, key)  # type: ignore[return-value]  # None is fine: rendered by path

    if not plain:  # JSON Schema only when the quick check has doubts
        found = schema_diagnostics(data, "account.schema.json", schema_locate)
        diagnostics += [Diagnostic(d.code, d.message, d.span, d.hint, path=path) for d in found]
    if diagnostics:
        raise InputError(diagnostics=diagnostics)
    try:
        market: dict[str, dict[str, Decimal]] = {
            symbol: {name: _number(value) for name, value in fields.items()}
            for symbol, fields in data.get("market", {}).items()
        }
        wallet_balance = _number(data["wallet_balance"])
        given_fields = {name: _number(value) for name, value in data.get("fields", {}).items()}
        numbers = [
            {name: _number(raw[name]) for name in _NUMBER_FIELDS if name in raw}
            for raw in data["positions"]
        ]
    except NumberSyntaxError as error:  # out of range: too many digits or a huge exponent
        raise InputError(diagnostics=[Diagnostic("E015", str(error), None, path=path)]) from None
    for name in given_fields:
        if name not in policy.account_fields:
            from engine.dsl.check import did_you_mean  # noqa: PLC0415  # only on the error path

            problem(
                "E607",
                f"unknown account field '{name}' in fields",
                ("fields", name),
                did_you_mean(name, policy.account_fields)
                or (
                    "the policy declares: " + ", ".join(policy.account_fields)
                    if policy.account_fields
                    else "the policy declares no account_fields"
                ),
            )
    positions: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    for index, raw in enumerate(data["positions"]):
        symbol = raw["symbol"]
        if symbol not in policy.markets:
            from engine.dsl.check import did_you_mean  # noqa: PLC0415  # only on the error path

            problem(
                "E602",
                f"unknown symbol '{symbol}' in positions[{index}].symbol",
                ("positions", index, "symbol"),
                did_you_mean(symbol, policy.markets)
                or "policy markets: " + ", ".join(policy.markets),
            )
            continue
        if symbol not in market:
            problem(
                "E603",
                f"no market data for '{symbol}' (needed by positions[{index}])",
                ("market",) if "market" in data else (),
                f"add market.{symbol}.mark_price",
            )
        key = (symbol, raw["side"])
        if key in seen:
            problem(
                "E604",
                f"positions[{index}] repeats {symbol} {raw['side']} of positions[{seen[key]}]",
                ("positions", index),
                "one-way positions: one per symbol and side",
            )
        seen[key] = index
        position: dict[str, Any] = {
            "symbol": symbol,
            "side": raw["side"],
            "margin_mode": raw["margin_mode"],
        }
        position.update(numbers[index])
        positions.append(position)
    if diagnostics:
        raise InputError(diagnostics=diagnostics)
    account = Account(
        id=str(data.get("id", "account")),
        wallet_balance=wallet_balance,
        positions=tuple(positions),
        market=market,
        source=data,
        fields=account_fields(policy, given_fields),
    )
    return _with_default_margins(account, policy, locate, path)


def account_fields(policy: Policy, given: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Every account field the policy declares: the value given, or the field's default."""
    return {name: given.get(name, spec.default) for name, spec in policy.account_fields.items()}


def _with_default_margins(account: Account, policy: Policy, locate: Any, path: str) -> Account:
    """Fill `isolated_margin` of isolated positions that omit it: notional at entry / leverage."""
    missing = [
        i
        for i, p in enumerate(account.positions)
        if p["margin_mode"] == "isolated" and "isolated_margin" not in p
    ]
    if not missing:
        return account
    if "notional" not in policy.program.definitions:
        raise InputError(
            diagnostics=[
                Diagnostic(
                    "E605",
                    f"positions[{i}] needs isolated_margin: the policy has no `notional` to derive it",
                    locate(("positions", i), False),
                    path=path,
                )
                for i in missing
            ]
        )
    positions = [dict(p) for p in account.positions]
    for index in missing:
        position = positions[index]
        market = {
            **policy.markets[position["symbol"]].record,
            **account.market.get(position["symbol"], {}),
            "mark_price": position["entry_price"],
        }
        context = EvaluationContext(
            {"positions": [position], "wallet_balance": account.wallet_balance},
            {position["symbol"]: market},
        )
        try:
            notional = policy.program.definitions["notional"](context.frame_for(position))
        except EngineError as error:
            raise InputError(
                diagnostics=[
                    Diagnostic(
                        "E605",
                        f"cannot derive isolated_margin of positions[{index}]: {error}",
                        locate(("positions", index), False),
                        path=path,
                    )
                ]
            ) from None
        with decimal.localcontext(DECIMAL_CONTEXT):
            position["isolated_margin"] = notional / position["leverage"]
    return Account(
        account.id,
        account.wallet_balance,
        tuple(positions),
        account.market,
        account.source,
        account.fields,
    )


def read_account_file(path: str | Path, policy: Policy) -> Account:
    """Read a JSON or YAML account file (numbers exact), located diagnostics on error."""
    try:
        document = read_yaml_file(path)
    except PolicyError as error:
        raise InputError(diagnostics=error.diagnostics) from None
    return parse_account(document.data, policy, spans=document.spans, path=str(path))


def accounts_from(items: Sequence[Any], policy: Policy) -> list[Account]:
    return [item if isinstance(item, Account) else parse_account(item, policy) for item in items]
