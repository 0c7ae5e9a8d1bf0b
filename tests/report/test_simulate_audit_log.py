"""`liqpolicy simulate --audit-log FILE`: every liquidation event of the run, hash-chained."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from engine.audit import verify_log
from engine.cli import main
from engine.policy.load import load_policy


def test_simulate_writes_every_event_to_a_verifiable_chain(
    book_path, scenario_path, tmp_path, capsys
):
    log = tmp_path / "events.jsonl"
    argv = ["simulate", "binance-usdm", "-b", book_path, "-s", scenario_path]
    assert main([*argv, "--format", "json", "--events", "--audit-log", str(log)]) == 0
    captured = capsys.readouterr()
    events = json.loads(captured.out)["events"]
    assert events, "the fixture crash liquidates accounts"
    assert f"wrote {len(events)} events to the audit log {log}" in captured.err
    outcome = verify_log(log)
    assert outcome.ok and outcome.entries == len(events)
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    digest = load_policy("binance-usdm").digest
    book = "sha256:" + hashlib.sha256(Path(book_path).read_bytes()).hexdigest()
    for entry, event in zip(entries, events, strict=True):
        assert entry["kind"] == "simulation-event"
        assert entry["policy"] == {"id": "binance-usdm", "digest": digest}
        assert entry["inputs"]["book"] == book
        assert entry["event"] == event
    # a second run continues the same chain
    assert main([*argv, "--audit-log", str(log)]) == 0
    capsys.readouterr()
    assert verify_log(log).entries == 2 * len(events)
