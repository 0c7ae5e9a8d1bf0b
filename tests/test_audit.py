"""The hash-chained audit log: what `liqpolicy log verify` catches, and appends that keep the
chain across threads, processes and rotation."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading
from pathlib import Path

import pytest

from engine.audit import GENESIS, AuditLog, AuditLogError, verify_log
from engine.cli import main


def _write(path: Path, count: int) -> list[str]:
    log = AuditLog(path, fsync="never")
    try:
        return [log.append(f'"kind":"test","n":{i}') for i in range(count)]
    finally:
        log.close()


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _save(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    _write(path, 5)
    return path


def test_entries_chain_by_hand(log):
    """Each hash is the SHA-256 of the line before `,"hash":`; each `prev` the hash before."""
    previous = GENESIS
    for number, line in enumerate(_lines(log), start=1):
        entry = json.loads(line)
        assert entry["prev"] == previous and entry["seq"] == number
        prefix = line[: line.index(b',"hash":')]
        assert entry["hash"] == "sha256:" + hashlib.sha256(prefix).hexdigest()
        previous = entry["hash"]


def test_a_sound_log_verifies_and_names_its_head(log):
    outcome = verify_log(log)
    assert outcome.ok and outcome.entries == 5
    assert (outcome.first_seq, outcome.last_seq, outcome.anchor) == (1, 5, GENESIS)
    assert outcome.head == json.loads(_lines(log)[-1])["hash"]


def test_an_edited_entry(log):
    lines = _lines(log)
    lines[2] = lines[2].replace(b'"n":2', b'"n":9')
    _save(log, lines)
    outcome = verify_log(log)
    assert (outcome.status, outcome.line, outcome.entries) == ("edited", 3, 2)
    assert outcome.message == "entry 3 (line 3) was edited: its content does not match its hash"


def test_an_edited_entry_with_its_hash_recomputed(log):
    """The forger fixes the edited entry's own hash: the next entry's link still breaks."""
    lines = _lines(log)
    edited = lines[1].replace(b'"n":1', b'"n":7')
    prefix = edited[: edited.index(b',"hash":')]
    lines[1] = prefix + b',"hash":"sha256:' + hashlib.sha256(prefix).hexdigest().encode() + b'"}\n'
    _save(log, lines)
    outcome = verify_log(log)
    assert (outcome.status, outcome.line) == ("edited", 3)
    assert "does not link to entry 2" in outcome.message


def test_a_deleted_entry(log):
    lines = _lines(log)
    del lines[2]
    _save(log, lines)
    outcome = verify_log(log)
    assert (outcome.status, outcome.line) == ("deleted", 3)
    assert outcome.message == "entry 3 missing before line 3: deleted from the log"


def test_reordered_entries(log):
    lines = _lines(log)
    lines[1], lines[3] = lines[3], lines[1]
    _save(log, lines)
    outcome = verify_log(log)
    assert (outcome.status, outcome.line) == ("reordered", 2)
    assert outcome.message == "entry 4 (line 2) comes before entry 2: entries were reordered"


def test_an_entry_repeated(log):
    lines = _lines(log)
    _save(log, [*lines[:3], lines[1], *lines[3:]])
    assert (verify_log(log).status, verify_log(log).line) == ("reordered", 4)


def test_a_log_cut_mid_entry(log):
    data = log.read_bytes()
    log.write_bytes(data[:-40])
    outcome = verify_log(log)
    assert (outcome.status, outcome.line, outcome.entries) == ("truncated", 5, 4)


def test_whole_entries_cut_from_the_end_are_caught_by_the_published_head(log):
    head = verify_log(log).head
    _save(log, _lines(log)[:3])
    assert verify_log(log).ok  # a shorter chain is still a chain
    outcome = verify_log(log, head=head)
    assert outcome.status == "head"
    assert verify_log(log, head=json.loads(_lines(log)[1])["hash"]).ok


def test_a_foreign_line(log):
    lines = _lines(log)
    lines.insert(1, b'{"kind":"test"}\n')
    _save(log, lines)
    assert (verify_log(log).status, verify_log(log).line) == ("not-an-entry", 2)


def test_appends_refuse_a_log_cut_mid_entry(log):
    log.write_bytes(log.read_bytes()[:-10])
    with pytest.raises(AuditLogError):
        _write(log, 1)


def test_appends_continue_after_rotation(log):
    """Rotation by copy and truncate: the new file's first entry links to the old head."""
    head = verify_log(log).head
    audit = AuditLog(log, fsync="never")
    audit.append('"n":"before"')
    head = verify_log(log).head
    log.write_bytes(b"")
    audit.append('"n":"after"')
    audit.close()
    outcome = verify_log(log)
    assert outcome.ok and outcome.anchor == head and outcome.first_seq == 7


def test_threads_append_one_chain(tmp_path):
    path = tmp_path / "threads.jsonl"
    audit = AuditLog(path, fsync="never")
    threads = [
        threading.Thread(target=lambda: [audit.append('"t":1') for _ in range(50)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    audit.close()
    outcome = verify_log(path)
    assert outcome.ok and outcome.entries == 400


def _append_many(path: str) -> None:
    audit = AuditLog(path, fsync="never")
    for _ in range(100):
        audit.append('"p":1')
    audit.close()


def test_processes_append_one_chain(tmp_path):
    """Server workers share one decision log: flock serialises them, each reads the head."""
    path = tmp_path / "processes.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(path),)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    outcome = verify_log(path)
    assert outcome.ok and outcome.entries == 300


def test_fsync_always_syncs_each_entry(tmp_path, monkeypatch):
    synced: list[int] = []
    monkeypatch.setattr("engine.audit.os.fsync", synced.append)
    audit = AuditLog(tmp_path / "a.jsonl", fsync="always")
    audit.append('"a":1')
    audit.append('"a":2')
    assert len(synced) == 2
    audit.close()


# -- the command ---------------------------------------------------------------------------------


def test_log_verify_command(log, capsys):
    assert main(["log", "verify", str(log)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {log}: 5 entries, seq 1 to 5")
    lines = _lines(log)
    del lines[1]
    _save(log, lines)
    assert main(["log", "verify", str(log)]) == 1
    assert capsys.readouterr().out.startswith(f"TAMPERED: {log}: entry 2 missing before line 2")
    assert main(["log", "verify", str(log), "--format", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert (document["ok"], document["status"], document["line"]) == (False, "deleted", 2)


def test_log_verify_usage(tmp_path, capsys):
    assert main(["log", "verify", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["log", "verify", str(tmp_path), "--head", "nope"]) == 2
