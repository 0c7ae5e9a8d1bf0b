"""Reload by endpoint and by SIGHUP: all or nothing, the last good set stays served."""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path

import pytest

from engine.policy.packaged import policies_dir

BROKEN = "id: broken\ntitle: Broken\nmarkets: {BTCUSDT: {kind: linear}}\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A --policies directory holding a copy of binance-usdm."""
    target = tmp_path / "policies"
    target.mkdir()
    shutil.copy(policies_dir() / "binance-usdm.yaml", target / "binance-usdm.yaml")
    return target


def _ids(client) -> list[str]:
    reply = client.get("/v1/policies")
    assert reply.status == 200
    return [p["id"] for p in reply.json["policies"]]


def test_reload_success_adds_a_policy(make_service, folder, client_for):

    running = make_service(policies_dir=folder)
    client = client_for(running.port)
    assert _ids(client) == ["binance-usdm"]
    shutil.copy(policies_dir() / "huobi-linear-swap.yaml", folder / "huobi.yaml")
    reply = client.post("/v1/reload")
    assert reply.status == 200
    assert reply.json["reloaded"] is True
    assert [p["id"] for p in reply.json["policies"]] == ["binance-usdm", "huobi-linear-swap"]
    assert _ids(client) == ["binance-usdm", "huobi-linear-swap"]


def test_reload_failure_keeps_the_last_good_set(make_service, folder, alice, client_for):

    running = make_service(policies_dir=folder)
    client = client_for(running.port)
    before = client.get("/v1/policies").json
    (folder / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    reply = client.post("/v1/reload")
    assert reply.status == 422
    assert reply.content_type == "application/problem+json"
    problem = reply.json
    assert problem["reloaded"] is False
    assert problem["diagnostics"], problem
    assert all(d["path"].endswith("broken.yaml") for d in problem["diagnostics"])
    errors = {d["code"] for d in problem["diagnostics"] if d["severity"] == "error"}
    assert errors <= {"E101", "E102", "E103", "E104"}
    assert [p["id"] for p in problem["policies"]] == ["binance-usdm"]
    assert client.get("/v1/policies").json == before
    assert client.post("/v1/policies/binance-usdm/evaluate", alice).status == 200


def test_reload_refuses_duplicate_ids_and_empty_folders(make_service, folder, client_for):

    running = make_service(policies_dir=folder)
    client = client_for(running.port)
    shutil.copy(folder / "binance-usdm.yaml", folder / "again.yaml")
    problem = client.post("/v1/reload").json
    assert problem["status"] == 422
    assert "binance-usdm" in problem["detail"]
    for path in folder.iterdir():
        path.unlink()
    problem = client.post("/v1/reload").json
    assert problem["status"] == 422
    assert "no policy files" in problem["detail"]
    assert _ids(client) == ["binance-usdm"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGHUP and fork are POSIX")
def test_sighup_reloads_every_worker(spawn, folder, wait_until):
    """Two worker processes: a failed SIGHUP reload is logged and changes nothing; a good one
    reaches both workers; the endpoint's reload reaches the other worker too."""
    server = spawn("--policies", str(folder), "--workers", "2")
    client = server.client

    def every_worker_serves(expected: list[str]) -> bool:
        # New connections land on either worker; enough of them reach both.
        return all(_ids(client) == expected for _ in range(12))

    assert every_worker_serves(["binance-usdm"])
    (folder / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: server.stderr().count("SIGHUP: reload failed") >= 2, timeout=60)
    assert "broken.yaml" in server.stderr()
    assert every_worker_serves(["binance-usdm"])

    (folder / "broken.yaml").unlink()
    shutil.copy(policies_dir() / "huobi-linear-swap.yaml", folder / "huobi.yaml")
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: server.stderr().count("SIGHUP: reloaded 2 policies") >= 2, timeout=60)
    assert every_worker_serves(["binance-usdm", "huobi-linear-swap"])

    (folder / "huobi.yaml").unlink()
    reply = client.post("/v1/reload")
    assert reply.status == 200
    assert wait_until(lambda: every_worker_serves(["binance-usdm"]), timeout=60)
    assert server.stop() == 0
