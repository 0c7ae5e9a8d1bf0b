"""The decision log (JSON lines for audits) and the cache of recent decisions.

Decision log: one entry per decision request (evaluate, liquidation-price, compare), answered or
refused: decision id (uuid4), time (UTC), endpoint, policy id and digest, the input exactly as
sent and its digest, the result or the problem, HTTP status and duration; hash-chained
(:mod:`engine.audit`), so an edited, deleted or reordered entry shows.

Decision cache: the engine is deterministic (a loaded policy is immutable, evaluation depends only
on the policy and the input), so the answer to the same bytes under the same policy digest is the
same answer.  A small LRU cache of response bodies keyed by (endpoint, policy digest, options,
request body) lets repeated requests skip the engine.  Per process; bounded in entries and in the
size of each entry.

Decision: what the log records about one request, filled in by its handler as it goes.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

from engine.audit import AuditLog, FsyncPolicy
from engine.policy.model import Policy

MAX_CACHED_BODY = 64 * 1024  # larger answers (long traces) are not kept


def utc_now() -> str:
    return utc_text(time.time())


def utc_text(seconds: float) -> str:
    """A Unix time as ISO 8601 UTC text with microseconds, e.g. 2026-11-21T21:40:00.123456Z."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_decision_id() -> str:
    """A random version-4 UUID from `random`, which makes no system call (`uuid.uuid4` reads
    the OS's randomness, and under load its system call hands the GIL to another thread).
    Unique, not secret: each forked worker's generator is reseeded by `random` itself."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


@dataclass(slots=True)
class Decision:
    """What the decision log records about one decision request, filled in by its handler."""

    endpoint: str
    id: str = field(default_factory=new_decision_id)
    time: float = field(default_factory=time.time)  # formatted only for the decision log
    started: float = field(default_factory=perf_counter)
    policy_id: str | None = None
    policy_digest: str | None = None
    input_text: str | None = None
    input_json: bool = False  # input_text is valid JSON (spliced as is into the log line)
    input_digest: str | None = None  # sha256 of the body's bytes as received
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def use(self, policy: Policy) -> None:
        self.policy_id, self.policy_digest = policy.id, policy.digest


def one_line_json(text: str) -> str:
    """Valid JSON text on one line: raw newlines can only be whitespace between tokens."""
    return text.replace("\r", " ").replace("\n", " ")


class DecisionLog:
    """Appends decision records to a hash-chained audit log (:mod:`engine.audit`), one JSON
    object per line."""

    def __init__(self, path: str | Path, *, fsync: FsyncPolicy = "interval") -> None:
        self.path = Path(path)
        self._log = AuditLog(self.path, fsync=fsync)

    def write(
        self,
        *,
        decision_id: str,
        time: str,
        endpoint: str,
        policy_id: str | None,
        policy_digest: str | None,
        status: int,
        duration_ms: float,
        input_json: str | None,
        input_text: str | None,
        input_digest: str | None,
        result_json: str | None,
        error: dict[str, Any] | None,
        cached: bool,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """One entry; `input_json` and `result_json` are JSON texts spliced in as they are.
        Returns the entry's hash.  Raises OSError when it cannot be written.

        Splicing keeps the input exactly as the client wrote it (numbers are not re-formatted)
        and avoids serializing the result twice.
        """
        head = {
            "kind": "decision",
            "decision_id": decision_id,
            "time": time,
            "endpoint": endpoint,
            "policy": {"id": policy_id, "digest": policy_digest},
            "input_digest": input_digest,
            "status": status,
            "duration_ms": round(duration_ms, 3),
            "cached": cached,
            **(extra or {}),
        }
        parts = [json.dumps(head, ensure_ascii=False, separators=(",", ":"))[1:-1]]
        if input_json is not None:
            parts.append(',"input":' + one_line_json(input_json))
        else:
            parts.append(',"input":null,"input_text":' + json.dumps(input_text, ensure_ascii=False))
        if result_json is not None:
            parts.append(',"result":' + one_line_json(result_json))
        else:
            parts.append(',"result":null')
        parts.append(',"error":' + json.dumps(error, ensure_ascii=False, separators=(",", ":")))
        return self._log.append("".join(parts))

    def close(self) -> None:
        self._log.close()


class DecisionCache:
    """A thread-safe LRU map from a request's identity to its response body."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._data: OrderedDict[tuple[str, ...] | tuple[object, ...], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[object, ...]) -> bytes | None:
        if self.entries <= 0:
            return None
        with self._lock:
            found = self._data.get(key)
            if found is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: tuple[object, ...], body: bytes) -> None:
        if self.entries <= 0 or len(body) > MAX_CACHED_BODY:
            return
        with self._lock:
            self._data[key] = body
            self._data.move_to_end(key)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
