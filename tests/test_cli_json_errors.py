"""Under `--format json` a failing command still writes one JSON document on stdout: what went
wrong (kind, code, message), where (the first error's location), and every diagnostic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
ALICE = str(ROOT / "examples" / "alice.json")


def _run(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_evaluate_invalid_account(capsys, tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"wallet_balance": "1",\n "positions": "none"}', encoding="utf-8")
    code, document, err = _run(capsys, "evaluate", "binance-usdm", str(path), "--format", "json")
    assert code == 2 and document["ok"] is False and document["exit_code"] == 2
    error = document["error"]
    assert (error["kind"], error["code"]) == ("invalid-input", "E103")
    assert error["location"] == {
        "path": str(path),
        "line": 2,
        "column": 15,
        "end_line": 2,
        "end_column": 21,
    }
    assert [d["code"] for d in error["diagnostics"]] == ["E103"]
    assert "error[E103]" in err  # the text on stderr stays


def test_evaluate_unknown_policy(capsys):
    code, document, _ = _run(capsys, "evaluate", "binance-usdx", ALICE, "--format", "json")
    assert code == 2
    assert (document["error"]["kind"], document["error"]["code"]) == ("invalid-policy", "E001")


def test_liq_price_usage_error(capsys):
    argv = ["liq-price", "binance-usdm", "--symbol", "BTCUSDT", "--side", "long", "--size", "1"]
    code, document, _ = _run(capsys, *argv, "--entry", "1", "--leverage", "0", "--format", "json")
    assert code == 2
    error = document["error"]
    assert (error["kind"], error["code"], error["location"]) == ("usage", "usage", None)
    assert error["message"] == "--leverage must be positive, was 0"


def test_simulate_unreadable_book(capsys, tmp_path):
    missing = str(tmp_path / "nope.jsonl")
    code, document, _ = _run(
        capsys, "simulate", "binance-usdm", "-b", missing, "-s", "short-squeeze", "--format", "json"
    )
    assert code == 2
    assert document["error"]["code"].startswith("E")
    assert missing in json.dumps(document)


def test_compare_unknown_scenario(capsys):
    code, document, _ = _run(capsys, "compare", "--scenario", "flash-crsh", "--format", "json")
    assert code == 2
    assert document["error"]["diagnostics"], document


def test_an_evaluation_error(capsys, tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "id: p\ntitle: p\nextends: binance-usdm\nliquidation:\n"
        "  trigger: 1 / (position.size - 2) > 0\n",
        encoding="utf-8",
    )
    code, document, _ = _run(capsys, "evaluate", str(policy), ALICE, "--format", "json")
    assert code == 2
    error = document["error"]
    assert (error["kind"], error["code"]) == ("evaluation-failed", "E501")
    assert (error["location"]["path"], error["location"]["line"]) == (str(policy), 5)


def test_an_internal_error(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("engine.cli.evaluate.evaluate_account", broken)
    code, document, err = _run(capsys, "evaluate", "binance-usdm", ALICE, "--format", "json")
    assert code == 3 and document["exit_code"] == 3
    assert (document["error"]["kind"], document["error"]["code"]) == ("internal", "internal")
    assert "RuntimeError: boom" in document["error"]["message"]
    assert "internal error" in err


@pytest.mark.parametrize("fmt", ["text", None])
def test_text_errors_leave_stdout_empty(capsys, fmt):
    argv = ["evaluate", "binance-usdx", ALICE] + (["--format", fmt] if fmt else [])
    assert main(argv) == 2
    assert capsys.readouterr().out == ""
