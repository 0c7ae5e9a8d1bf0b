"""The tier-table formats `liqpolicy tiers import` reads, loaded from formats/tier-formats.yaml.

The layouts are data (which fields hold the bounds, the rates, the symbol, how bounds are
written), so the reader in :mod:`engine.policy.tier_import` is one generic function and adding a
format is adding an entry to that file.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from engine.policy.packaged import formats_dir
from engine.policy.yaml_reader import read_yaml_file

Bounds = Literal["half_open", "inclusive_integers", "caps"]
BOUNDS: tuple[Bounds, ...] = ("half_open", "inclusive_integers", "caps")


@dataclass(frozen=True, slots=True)
class TierFormat:
    """One declared layout (see the comments at the top of formats/tier-formats.yaml)."""

    name: str
    title: str
    reference: str
    detect: tuple[str, ...]
    groups: tuple[str, ...]
    symbol: tuple[str, ...]
    split: tuple[str, ...]
    tiers: tuple[str, ...]
    exact: Mapping[str, str]
    info: str | None
    key: str
    bounds: Bounds
    suffix: str
    columns: Mapping[str, tuple[str, ...]]
    lead: tuple[str, ...]
    deduction: Mapping[str, str] | None

    def fields(self, column: str) -> tuple[str, ...]:
        return self.columns.get(column, ())

    def matches(self, tier: object) -> bool:
        """Whether a tier object carries this format's identifying fields."""
        return isinstance(tier, Mapping) and all(field in tier for field in self.detect)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value or ())


@functools.cache
def tier_formats() -> dict[str, TierFormat]:
    """Every declared format by name, in the file's order (auto-detection tries them in turn)."""
    data = read_yaml_file(formats_dir() / "tier-formats.yaml").data
    assert isinstance(data, Mapping)
    formats: dict[str, TierFormat] = {}
    for name, spec in data["formats"].items():
        bounds = spec["bounds"]
        assert bounds in BOUNDS, bounds
        formats[name] = TierFormat(
            name=name,
            title=str(spec["title"]),
            reference=str(spec["reference"]),
            detect=_strings(spec.get("detect")),
            groups=_strings(spec.get("groups")),
            symbol=_strings(spec.get("symbol")),
            split=_strings(spec.get("split")),
            tiers=_strings(spec.get("tiers")),
            exact={str(k): str(v) for k, v in (spec.get("exact") or {}).items()},
            info=spec.get("info"),
            key=str(spec["key"]),
            bounds=cast(Bounds, bounds),
            suffix=str(spec["suffix"]),
            columns={str(k): _strings(v) for k, v in spec["columns"].items()},
            lead=_strings(spec.get("lead")),
            deduction=dict(spec["deduction"]) if spec.get("deduction") else None,
        )
    return formats
