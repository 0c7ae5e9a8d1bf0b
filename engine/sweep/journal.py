"""The crash-safe record of finished cells: one JSON line per cell, appended and fsynced.

Cells finish in any order, so the journal is written in completion order and only the final
outputs are sorted.  An interrupted sweep leaves at worst one torn last line, which the next run
cuts off before appending; a line is reused only when its cell's content key is the current one,
so a grid that changed since does not pick up stale rows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

JOURNAL = "journal.jsonl"


class Journal:
    """Append-only rows of one output directory, readable after any interruption."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / JOURNAL
        self._stream: IO[str] | None = None

    def read(self) -> dict[str, dict[str, Any]]:
        """Rows by cell key; a torn or unreadable tail is cut off so appends start clean."""
        if not self.path.is_file():
            return {}
        data = self.path.read_bytes()
        rows: dict[str, dict[str, Any]] = {}
        good = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn: the process stopped mid-write
            try:
                entry = json.loads(line)
            except ValueError:
                break
            if not (isinstance(entry, dict) and isinstance(entry.get("key"), str)):
                break
            if isinstance(entry.get("row"), dict):
                rows[entry["key"]] = entry["row"]
            good += len(line)
        if good < len(data):
            with open(self.path, "r+b") as stream:
                stream.truncate(good)
                stream.flush()
                os.fsync(stream.fileno())
        return rows

    def append(self, key: str, row: dict[str, Any]) -> None:
        """Write one row and make it durable before returning."""
        if self._stream is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = open(self.path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115  # kept open across appends; closed by close()
        line = json.dumps({"key": key, "row": row}, ensure_ascii=False, separators=(",", ":"))
        self._stream.write(line + "\n")
        self._stream.flush()
        os.fsync(self._stream.fileno())

    def clear(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
