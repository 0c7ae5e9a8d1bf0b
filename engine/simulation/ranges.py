"""Range minimum and maximum queries over a fixed series, in constant time (sparse tables)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal


class RangeExtremes:
    """min/max of `values[i..j]` (inclusive) for any i <= j, after O(n log n) preparation."""

    __slots__ = ("_max", "_min")

    def __init__(self, values: Sequence[Decimal]) -> None:
        self._min: list[list[Decimal]] = [list(values)]
        self._max: list[list[Decimal]] = [list(values)]
        width = 1
        while 2 * width <= len(values):
            low, high = self._min[-1], self._max[-1]
            self._min.append([min(low[i], low[i + width]) for i in range(len(low) - width)])
            self._max.append([max(high[i], high[i + width]) for i in range(len(high) - width)])
            width *= 2

    def _level(self, start: int, end: int) -> tuple[int, int]:
        length = end - start + 1
        level = length.bit_length() - 1
        return level, end - (1 << level) + 1

    def min(self, start: int, end: int) -> Decimal:
        level, other = self._level(start, end)
        row = self._min[level]
        return min(row[start], row[other])

    def max(self, start: int, end: int) -> Decimal:
        level, other = self._level(start, end)
        row = self._max[level]
        return max(row[start], row[other])
