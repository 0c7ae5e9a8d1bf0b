"""Results as pandas DataFrames: the conversion every result type shares.

Each result type declares its tables as :class:`Field` lists and builds plain records; this
module turns them into DataFrames with proper column types, the same way for every result
(simulation, comparison, account evaluations, sweeps):

- money, prices, ratios and quantities (``"decimal"``): by default the exact
  :class:`~decimal.Decimal` values in an ``object`` column, so sums and comparisons stay exact
  to the last digit (``df["fees"].sum()`` is a Decimal); ``decimals="float"`` converts them to
  ``float64`` for plotting and statistics (binary floats: most decimals are then approximate);
- counts and times in seconds (``"int"``): ``int64``; ``"optional_int"`` (a time that may be
  missing): pandas' nullable ``Int64``;
- closed sets (``"category"``: liquidation kind, side, policy): ``category`` with the declared
  categories in their order; text: pandas' string type; flags: ``bool``.

pandas is an optional dependency (``pip install 'liqpolicy[analysis]'``): it is imported when a
frame is built, never when :mod:`engine` is imported, and a missing pandas raises an
:class:`ImportError` that names the extra.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from engine.numbers import NumberSyntaxError, parse_decimal

if TYPE_CHECKING:
    import pandas as pd

Decimals = Literal["exact", "float"]
Kind = Literal["decimal", "int", "optional_int", "text", "category", "bool"]
INSTALL_HINT = "pip install 'liqpolicy[analysis]'"


@dataclass(frozen=True, slots=True)
class Field:
    """One column: its name, how its values are typed, the categories of a closed set."""

    name: str
    kind: Kind = "decimal"
    categories: tuple[str, ...] = ()


def require_pandas() -> ModuleType:
    """pandas, or an ImportError saying how to install it."""
    try:
        return importlib.import_module("pandas")
    except ImportError as error:
        raise ImportError(
            f"to_pandas() needs pandas, which liqpolicy does not install by default: {INSTALL_HINT}"
        ) from error


def check_decimals(decimals: str) -> Decimals:
    if decimals == "exact":
        return "exact"
    if decimals == "float":
        return "float"
    raise ValueError(f"decimals must be 'exact' or 'float', not {decimals!r}")


def check_table(table: str, tables: Sequence[str], owner: str) -> str:
    if table not in tables:
        raise ValueError(
            f"{owner} has no table {table!r}; choose one of: {', '.join(repr(t) for t in tables)}"
        )
    return table


def _column(field: Field, values: list[Any], decimals: Decimals) -> pd.Series[Any]:
    import pandas as pd  # noqa: PLC0415  # optional: loaded by frame() once it is known present

    if field.kind == "decimal":
        if decimals == "float":
            return pd.Series(
                [float("nan") if v is None else float(v) for v in values], dtype="float64"
            )
        return pd.Series(values, dtype="object")
    if field.kind == "int":
        return pd.Series(values, dtype="int64")
    if field.kind == "optional_int":
        return pd.Series(values, dtype="Int64")
    if field.kind == "category":
        categories = list(field.categories) or sorted({v for v in values if v is not None})
        return pd.Series(pd.Categorical(values, categories=categories))
    if field.kind == "bool":
        return pd.Series(values, dtype="bool")
    return pd.Series(values, dtype="str")


def frame(
    records: Iterable[Mapping[str, Any]],
    fields: Sequence[Field],
    *,
    decimals: str = "exact",
    index: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """A DataFrame of `records` (mappings by field name) typed by `fields`, in their order.

    A record lacks no field; a table with no records still has every column, typed.
    `index` names the column(s) that become the index.
    """
    require_pandas()
    import pandas as pd  # noqa: PLC0415  # optional dependency, loaded when a frame is built

    mode = check_decimals(decimals)
    rows = list(records)
    data = {f.name: _column(f, [row[f.name] for row in rows], mode) for f in fields}
    result = pd.DataFrame(data, columns=[f.name for f in fields])
    if index is not None:
        result = result.set_index(index if isinstance(index, str) else list(index))
    return result


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted keys: ``{"fees": {"base": 1}}`` →
    ``{"fees.base": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def exact_number(value: Any) -> Decimal | int | None:
    """A JSON summary value read back as a number: ints stay ints, decimal text (how the JSON
    forms write exact figures) becomes a Decimal; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return value
    if isinstance(value, str):
        try:
            return parse_decimal(value)
        except NumberSyntaxError:
            return None
    return None


def figure_fields(
    records: Sequence[dict[str, Any]], first: Sequence[Field]
) -> tuple[list[Field], list[dict[str, Any]]]:
    """Fields for records of figures (e.g. flattened JSON summaries read with
    :func:`exact_number`): `first`, then every other key in the order keys first appear, an
    ``int`` column when every value is an int (a count), else ``decimal``.  The records are
    returned with a None for each key they lack (a charge only one policy has)."""
    names = list(dict.fromkeys(key for record in records for key in record))
    known = {f.name: f for f in first}
    fields = list(first)
    for name in names:
        if name in known:
            continue
        counts = all(isinstance(r.get(name), int) for r in records)
        fields.append(Field(name, "int" if counts else "decimal"))
    filled = [{f.name: record.get(f.name) for f in fields} for record in records]
    return fields, filled
