"""`liqpolicy serve` on the command line: options, start-up failures, graceful stop."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.app import main

ROOT = Path(__file__).resolve().parents[2]


def test_serve_is_registered(capsys):
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--policies", "--max-body", "--decision-log", "--workers"):
        assert option in out


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "70000"],
        ["serve", "--workers", "0"],
        ["serve", "--max-body", "-1"],
        ["serve", "--policies", "/nonexistent/folder"],
    ],
)
def test_bad_options_exit_2(argv, capsys):
    assert main(argv) == 2


def test_invalid_policies_stop_the_start(tmp_path):
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "broken.yaml").write_text(
        "id: broken\ntitle: x\nmarkets: {BTCUSDT: {kind: linear}}\n", encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-m", "engine", "serve", "--port", "0", "--policies", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "broken.yaml" in done.stderr
    assert "error[E1" in done.stderr
    assert "listening" not in done.stdout


def test_address_in_use_is_a_usage_error(service, capsys):
    assert main(["serve", "--port", str(service.port)]) == 2
    assert "cannot listen" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_stops_cleanly(spawn):
    server = spawn()
    assert server.client.get("/healthz").status == 200
    server.signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0
