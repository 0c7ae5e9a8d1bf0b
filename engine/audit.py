"""The tamper-evident audit log: hash-chained JSON lines, and their verification.

Each entry is one JSON object on one line, written as

    {"prev":"sha256:<previous entry's hash>", <the record's members>, "seq":N, "hash":"sha256:<h>"}

where `h` is the SHA-256 of the line's bytes before `,"hash":` and `prev` is the `hash` of the
entry before it (`sha256:000…0` for the first entry of a chain).  Editing an entry changes its
hash; deleting or reordering entries breaks the links of `prev` and the run of `seq`; cutting
the file mid-entry leaves a line without its hash.  Removing whole entries from the end leaves
a valid, shorter chain: publish the head (`liqpolicy log verify` prints it) somewhere else and
verify against it later (`--head`) to catch that too.

Writers: threads of a process and processes sharing the file (server workers) append under an
exclusive `flock`, reading the head from the end of the file (`seq` and `hash` end each line,
so the last 128 bytes hold them).  Durability is the caller's choice (:data:`FsyncPolicy`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

FsyncPolicy = Literal["always", "interval", "never"]
FSYNC_POLICIES: tuple[FsyncPolicy, ...] = ("always", "interval", "never")
FSYNC_INTERVAL = 1.0  # seconds between fsyncs under the `interval` policy

GENESIS = "sha256:" + "0" * 64
_TAIL = re.compile(rb',"seq":([0-9]+),"hash":"(sha256:[0-9a-f]{64})"\}\n\Z')
_HEAD = re.compile(rb'\{"prev":"(sha256:[0-9a-f]{64})",')
_TAIL_BYTES = 128


class AuditLogError(OSError):
    """The audit log cannot take another entry (its last line is incomplete or foreign)."""


def sha256_text(data: bytes) -> str:
    """`sha256:<hex>`: how digests are written in entries (as policy digests are)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class AuditLog:
    """Appends hash-chained entries to one file.

    `fsync`: `always` makes every entry durable before :meth:`append` returns; `interval`
    syncs at most once a second from a background thread (a crash loses at most the last
    second); `never` leaves it to the operating system.
    """

    def __init__(self, path: str | Path, *, fsync: FsyncPolicy = "interval") -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        self._lock = threading.Lock()
        self._known: tuple[int, int, str] | None = None  # (file size, seq, hash) after our write
        self._dirty = False
        self._closed = threading.Event()
        if fsync == "interval":
            threading.Thread(
                target=self._sync_periodically, name="audit-fsync", daemon=True
            ).start()

    def append(self, members: str) -> str:
        """Append one entry whose members (JSON text, `"a":1,"b":2`) sit between `prev` and
        `seq`; return its hash.  Raises OSError (an AuditLogError for a broken file)."""
        with self._lock:
            if self._fd < 0:
                raise AuditLogError(f"the audit log {self.path} is closed")
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                size, seq, prev = self._head()
                prefix = f'{{"prev":"{prev}",{members},"seq":{seq + 1}'.encode()
                digest = sha256_text(prefix)
                line = prefix + b',"hash":"' + digest.encode() + b'"}\n'
                view = memoryview(line)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                if self.fsync == "always":
                    os.fsync(self._fd)
                else:
                    self._dirty = True
                self._known = (size + len(line), seq + 1, digest)
                return digest
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _head(self) -> tuple[int, int, str]:
        """(size, seq, hash) of the file's last entry: from our own last write when nobody
        wrote since, else read from the end of the file."""
        size = os.fstat(self._fd).st_size
        if self._known is not None and self._known[0] == size:
            return self._known
        if size == 0:  # a new file, or one truncated by rotation: continue our chain if any
            _, seq, digest = self._known if self._known is not None else (0, 0, GENESIS)
            return 0, seq, digest
        tail = os.pread(self._fd, min(size, _TAIL_BYTES), max(0, size - _TAIL_BYTES))
        found = _TAIL.search(tail)
        if found is None:
            raise AuditLogError(
                f"the audit log {self.path} does not end with a complete entry; "
                "check it with `liqpolicy log verify` and start a new file"
            )
        return size, int(found.group(1)), found.group(2).decode()

    def _sync_periodically(self) -> None:
        while not self._closed.wait(FSYNC_INTERVAL):
            self.sync()

    def sync(self) -> None:
        with self._lock:
            if self._dirty and self._fd >= 0:
                self._dirty = False
                os.fsync(self._fd)

    def close(self) -> None:
        self._closed.set()
        self.sync()
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


# -- verification -------------------------------------------------------------------------------

Finding = Literal["ok", "edited", "deleted", "reordered", "truncated", "not-an-entry", "head"]


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of checking a log: `ok`, or the first problem found, where, and why."""

    status: Finding
    message: str
    entries: int  # entries checked and found sound (before the problem, if any)
    line: int | None = None  # 1-based line of the problem
    first_seq: int | None = None
    last_seq: int | None = None
    head: str | None = None  # hash of the last sound entry
    anchor: str | None = None  # `prev` of the first entry (GENESIS, or a previous file's head)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "status": self.status,
            "message": self.message,
            "entries": self.entries,
            "line": self.line,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head": self.head,
            "anchor": self.anchor,
        }


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as handle:
        yield from enumerate(handle, start=1)


def _appears_later(lines: Iterator[tuple[int, bytes]], seqs: range) -> bool:
    """Whether a later line holds an entry numbered in `seqs` (reordered, not deleted)."""
    for _, line in lines:
        tail = _TAIL.search(line)
        if tail is not None and int(tail.group(1)) in seqs:
            return True
    return False


def verify_log(path: str | Path, *, head: str | None = None) -> Verification:
    """Check every entry of the log at `path`; stop at the first problem.

    `head`: a hash published earlier; the log must still contain it (entries removed from
    the end are otherwise undetectable).  Raises OSError when the file cannot be read.
    """
    count = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    anchor: str | None = None
    seen_head = head is None

    def problem(status: Finding, message: str, line: int | None) -> Verification:
        return Verification(status, message, count, line, first_seq, last_seq, last_hash, anchor)

    lines = _lines(Path(path))
    for number, line in lines:
        if not line.endswith(b"\n"):
            return problem(
                "truncated",
                f"line {number} is incomplete: the log was cut in the middle of an entry",
                number,
            )
        tail = _TAIL.search(line)
        start = _HEAD.match(line)
        if tail is None or start is None:
            return problem(
                "not-an-entry",
                f"line {number} is not an audit entry (no `prev`, `seq` and `hash`): "
                "edited, or not part of this log",
                number,
            )
        seq, digest, prev = int(tail.group(1)), tail.group(2).decode(), start.group(1).decode()
        if sha256_text(line[: tail.start()] + b',"seq":' + tail.group(1)) != digest:
            return problem(
                "edited",
                f"entry {seq} (line {number}) was edited: its content does not match its hash",
                number,
            )
        if last_seq is None:
            anchor = prev
            first_seq = seq
        elif prev != last_hash or seq != last_seq + 1:
            if seq > last_seq + 1 and _appears_later(lines, range(last_seq + 1, seq)):
                return problem(
                    "reordered",
                    f"entry {seq} (line {number}) comes before entry {last_seq + 1}: "
                    "entries were reordered",
                    number,
                )
            if seq > last_seq + 1:
                missing = (
                    f"entry {last_seq + 1}"
                    if seq == last_seq + 2
                    else f"entries {last_seq + 1} to {seq - 1}"
                )
                return problem(
                    "deleted",
                    f"{missing} missing before line {number}: deleted from the log",
                    number,
                )
            if seq <= last_seq:
                return problem(
                    "reordered",
                    f"entry {seq} (line {number}) comes after entry {last_seq}: "
                    "entries were reordered or repeated",
                    number,
                )
            return problem(
                "edited",
                f"entry {seq} (line {number}) does not link to entry {last_seq} before it: "
                f"entry {last_seq} was rewritten with a new hash",
                number,
            )
        count += 1
        last_seq, last_hash = seq, digest
        if digest == head:
            seen_head = True
    if not seen_head:
        return problem(
            "head",
            f"the published head {head} is not in the log: entries were removed from its end "
            "(or the head belongs to another log)",
            None,
        )
    if count == 0:
        return problem("ok", "the log is empty", None)
    return problem(
        "ok",
        f"{count} entries, seq {first_seq} to {last_seq}, chained from {anchor}; head {last_hash}",
        None,
    )
