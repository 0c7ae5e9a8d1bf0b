"""The `market` records an evaluation reads, built per symbol on first use.

A record is the market's specification (the policy's `Market.record`) with its data (prices,
depth) and any overrides (a candidate price while solving) merged over it.  A policy may cover
hundreds of markets and an account trades a few, so records are merged only for the symbols an
evaluation actually reads, and an override shares every other record instead of copying them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from engine.policy.model import Market

Record = Mapping[str, Any]


class MarketRecords(Mapping[str, Record]):
    """Records by symbol: every market of the policy, merged lazily."""

    __slots__ = ("_built", "_data", "_overrides", "_specs")

    def __init__(
        self,
        specs: Mapping[str, Market],
        data: Mapping[str, Mapping[str, Decimal]],
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        built: dict[str, Record] | None = None,
    ) -> None:
        self._specs = specs
        self._data = data
        self._overrides = overrides or {}
        self._built: dict[str, Record] = built if built is not None else {}

    def __getitem__(self, symbol: str) -> Record:
        record = self._built.get(symbol)
        if record is None:
            spec = self._specs[symbol]  # KeyError for a symbol the policy lacks, as a dict
            record = {
                **spec.record,
                **self._data.get(symbol, {}),
                **self._overrides.get(symbol, {}),
            }
            self._built[symbol] = record
        return record

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._specs

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> MarketRecords:
        """These records with `overrides` merged over some symbols; the others are shared."""
        merged = {s: {**self._overrides.get(s, {}), **fields} for s, fields in overrides.items()}
        shared = {s: r for s, r in self._built.items() if s not in merged}
        combined = {**self._overrides, **merged}
        return MarketRecords(self._specs, self._data, combined, shared)
