"""The sweep's result files: JSON lines, CSV and (with pyarrow) Parquet, one row per cell.

Rows are written in cell order and every value is an exact string, an int or null, so the files
depend only on the grid: the same grid gives byte-identical files whatever the number of workers
or the order cells finished in.  Files are replaced atomically (written beside, then renamed).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from engine.sweep.figures import IDENTITY_COLUMNS

ROWS_JSONL = "rows.jsonl"
ROWS_CSV = "rows.csv"
ROWS_PARQUET = "rows.parquet"
LEAD_COLUMNS = tuple(c for c in IDENTITY_COLUMNS if c != "error")
_DECIMAL = re.compile(r"-?(\d+)(?:\.(\d+))?")
MAX_PRECISION = 38  # Arrow's decimal128

ColumnKind = Literal["int", "decimal", "text"]


def error_line(row: Mapping[str, Any]) -> str | None:
    """A failed row's first error on one line, `path:line:col: error[CODE]: message`."""
    errors = row.get("errors") or []
    if not errors:
        return None
    first = errors[0]
    where = first.get("path") or "<input>"
    if first.get("line") is not None:
        where += f":{first['line']}:{first['column']}"
    text = f"{where}: {first.get('severity', 'error')}[{first['code']}]: {first['message']}"
    return text + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else "")


def flat(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as one level of columns: identity, parameters, figures, then the error."""
    columns: dict[str, Any] = {name: row.get(name) for name in LEAD_COLUMNS}
    columns.update(row.get("parameters", {}))
    columns.update(row.get("figures", {}))
    columns["error"] = error_line(row)
    return columns


def columns_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every column of the flat rows, in order of first appearance (fixed for a given grid)."""
    seen: dict[str, None] = {}
    for row in rows:
        for name in row:
            if name != "error":
                seen.setdefault(name, None)
    seen["error"] = None
    return list(seen)


def column_kind(values: Sequence[Any]) -> tuple[ColumnKind, int, int]:
    """(kind, precision, scale): ints, decimals that fit Arrow's decimal128, or text."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int", 0, 0
    whole = scale = 0
    for value in present:
        match = _DECIMAL.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            return "text", 0, 0
        whole = max(whole, len(match.group(1)))
        scale = max(scale, len(match.group(2) or ""))
    if present and whole + scale <= MAX_PRECISION:
        return "decimal", whole + scale, scale
    return "text", 0, 0


def _replace(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def rows_jsonl(rows: Sequence[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def rows_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    table = [flat(row) for row in rows]
    names = columns_of(table)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for row in table:
        writer.writerow(["" if row.get(n) is None else row[n] for n in names])
    return buffer.getvalue().encode("utf-8")


def typed_columns(
    rows: Sequence[Mapping[str, Any]],
) -> Iterator[tuple[str, ColumnKind, int, int, list[Any]]]:
    """Each flat column with its kind and values: decimals as Decimal, ints as int."""
    table = [flat(row) for row in rows]
    for name in columns_of(table):
        values = [row.get(name) for row in table]
        kind, precision, scale = column_kind(values)
        if kind == "decimal":
            values = [Decimal(v) if v is not None else None for v in values]
        yield name, kind, precision, scale, values


def rows_parquet(rows: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Parquet bytes with exact decimal columns, or None when pyarrow is not installed."""
    try:
        import pyarrow as pa  # noqa: PLC0415  # optional: the `parquet` extra
        import pyarrow.parquet as pq  # noqa: PLC0415  # optional
    except ImportError:
        return None
    arrays = {}
    for name, kind, precision, scale, values in typed_columns(rows):
        if kind == "int":
            arrays[name] = pa.array(values, type=pa.int64())
        elif kind == "decimal":
            arrays[name] = pa.array(values, type=pa.decimal128(max(precision, 1), scale))
        else:
            arrays[name] = pa.array(
                [None if v is None else str(v) for v in values], type=pa.string()
            )
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(arrays), sink, compression="zstd")
    data: bytes = sink.getvalue().to_pybytes()
    return data


def write_outputs(directory: Path, rows: Sequence[Mapping[str, Any]]) -> list[Path]:
    """Write every result file under `directory`; return the paths written."""
    written: list[Path] = []
    for name, data in (
        (ROWS_JSONL, rows_jsonl(rows)),
        (ROWS_CSV, rows_csv(rows)),
        (ROWS_PARQUET, rows_parquet(rows)),
    ):
        if data is not None:
            _replace(directory / name, data)
            written.append(directory / name)
    return written
