"""JSON-lines batch mode: `liqpolicy evaluate POLICY -` and `engine.mechanics.batch`."""

from __future__ import annotations

import copy
import io
import itertools
import json
import select
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.cli import main
from engine.mechanics.batch import MAX_DEPTH, evaluate_lines, parse_line

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = "binance-usdm"

ALICE: dict[str, Any] = json.loads((ROOT / "examples" / "alice.json").read_text("utf-8"))


def account(name: str, **position: object) -> dict[str, Any]:
    data = copy.deepcopy(ALICE)
    data["id"] = name
    data["positions"][0].update(position)
    return data


def line(data: object) -> str:
    return json.dumps(data)


GOOD = [line(account("a")), line(account("b", size="1")), line(account("c", side="short"))]
MALFORMED = '{"id": "broken", "wallet_balance": '
UNKNOWN_SYMBOL = line(account("d", symbol="BTCUSDX"))


@pytest.fixture(autouse=True)
def _at_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def policy() -> engine.Policy:
    return engine.load_policy(SHIPPED)


def run_batch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str, *args: str
) -> tuple[int, list[dict[str, Any]], str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    code = main(["evaluate", SHIPPED, "-", *args])
    captured = capsys.readouterr()
    return code, [json.loads(row) for row in captured.out.splitlines()], captured.err


# -- through the CLI -----------------------------------------------------------------------------


def test_good_and_bad_lines_each_get_one_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "\n".join([GOOD[0], MALFORMED, GOOD[1], UNKNOWN_SYMBOL, GOOD[2]]) + "\n"
    code, rows, err = run_batch(monkeypatch, capsys, text)
    assert code == 2  # some line failed
    assert err == ""
    assert len(rows) == 5
    assert [row["line"] for row in rows] == [1, 2, 3, 4, 5]
    assert [row.get("account") for row in rows] == ["a", None, "b", None, "c"]
    malformed, unknown = rows[1]["error"], rows[3]["error"]
    assert malformed["type"] == "InputError"
    assert [d["code"] for d in malformed["diagnostics"]] == ["E010"]
    assert malformed["message"].startswith("invalid JSON: ")
    assert malformed["diagnostics"][0]["path"] == "<stdin>:2"
    assert unknown["type"] == "InputError"
    assert unknown["message"] == "unknown symbol 'BTCUSDX' in positions[0].symbol"
    assert unknown["diagnostics"][0]["code"] == "E602"
    assert (
        unknown["diagnostics"][0]["hint"] == "did you mean 'BTCUSDT' or 'BTCSTUSDT' or 'LTCUSDT'?"
    )
    assert unknown["diagnostics"][0]["path"] == "<stdin>:4"


def test_results_are_the_single_account_json_plus_the_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], policy: engine.Policy
) -> None:
    code, rows, _ = run_batch(monkeypatch, capsys, GOOD[0] + "\n", "--trace")
    assert code == 0
    (row,) = rows
    expected = json.loads(engine.to_json(engine.evaluate(policy, account("a"), trace=True)))
    assert row == {"line": 1, **expected}
    assert next(iter(row)) == "line"


def test_trace_is_off_unless_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, rows, _ = run_batch(monkeypatch, capsys, GOOD[0] + "\n")
    assert rows[0]["trace"] == []
    _, rows, _ = run_batch(monkeypatch, capsys, GOOD[0] + "\n", "--trace")
    assert rows[0]["trace"]


def test_all_good_lines_exit_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows, err = run_batch(monkeypatch, capsys, "\n".join(GOOD), "--format", "json")
    assert (code, len(rows), err) == (0, 3, "")


def test_blank_lines_are_skipped_but_counted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f"\n{GOOD[0]}\n   \n\r\n{GOOD[1]}\r\n\n"
    code, rows, _ = run_batch(monkeypatch, capsys, text)
    assert code == 0
    assert [row["line"] for row in rows] == [2, 5]


def test_empty_input_writes_nothing_and_succeeds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_batch(monkeypatch, capsys, "") == (0, [], "")


def test_numbers_stay_exact(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # JSON numbers, not strings: read from their text as decimals, never through a float.
    text = (
        '{"id": "exact", "wallet_balance": 0, "positions": [{"symbol": "BTCUSDT", '
        '"side": "long", "size": 3, "entry_price": 0.1, "margin_mode": "isolated", '
        '"isolated_margin": 0.1, "leverage": 3}], "market": {"BTCUSDT": {"mark_price": 0.1}}}'
    )
    code, rows, _ = run_batch(monkeypatch, capsys, text + "\n")
    assert code == 0
    position = rows[0]["positions"][0]
    assert position["notional"] == "0.3"  # 3 * 0.1 in binary floats is 0.30000000000000004
    assert position["definitions"]["notional"] == "0.3"
    assert rows[0]["account"] == "exact"


def test_format_text_is_refused_in_batch_mode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows, err = run_batch(monkeypatch, capsys, GOOD[0], "--format", "text")
    assert (code, rows) == (2, [])
    assert "batch mode (ACCOUNT '-') writes JSON lines only" in err


def test_an_invalid_policy_stops_before_reading(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(GOOD[0]))
    assert main(["evaluate", "binance-usdn", "-"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error[E001]" in captured.err


def test_single_account_mode_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", SHIPPED, "examples/alice.json"]) == 0
    assert capsys.readouterr().out.startswith("Account alice under binance-usdm")
    assert main(["evaluate", SHIPPED, "examples/alice.json", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert "line" not in document
    assert document["trace"]  # the single-account JSON always has the trace


# -- the generator -------------------------------------------------------------------------------


def test_the_generator_is_lazy_on_an_infinite_input(policy: engine.Policy) -> None:
    consumed = 0

    def endless() -> Any:
        nonlocal consumed
        for text in itertools.cycle([GOOD[0], MALFORMED, "", GOOD[1]]):
            consumed += 1
            yield text

    answers = list(itertools.islice(evaluate_lines(policy, endless()), 10))
    assert len(answers) == 10
    assert consumed == 13  # 10 answers and the 3 blank lines between them, nothing more
    assert [a["line"] for a in answers] == [1, 2, 4, 5, 6, 8, 9, 10, 12, 13]
    assert ["error" in a for a in answers[:3]] == [False, True, False]


def test_the_generator_takes_itertools_cycle_directly(policy: engine.Policy) -> None:
    answers = evaluate_lines(policy, itertools.cycle([GOOD[0], UNKNOWN_SYMBOL]))
    first = list(itertools.islice(answers, 10))
    assert [("error" in a) for a in first] == [False, True] * 5
    assert first[-1]["line"] == 10


def test_the_generator_accepts_bytes_and_reports_bad_encoding(policy: engine.Policy) -> None:
    lines = [GOOD[0].encode(), b'{"id": "\xff"}\n', b"\xef\xbb\xbf" + GOOD[1].encode()]
    answers = list(evaluate_lines(policy, lines, source="<bytes>"))
    assert answers[0]["account"] == "a"
    assert answers[1]["error"]["diagnostics"][0]["code"] == "E001"
    assert answers[1]["error"]["diagnostics"][0]["path"] == "<bytes>:2"
    assert "error" in answers[2]  # a byte order mark is only skipped on the first line


def test_a_byte_order_mark_on_the_first_line_is_skipped(policy: engine.Policy) -> None:
    (answer,) = evaluate_lines(policy, ["\ufeff" + GOOD[0]])
    assert answer["account"] == "a"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "E010"),
        ('{"id": "x", "id": "y"}', "E011"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "E014"),
        ("[" * 100_000 + "]" * 100_000, "E014"),
        ('{"wallet_balance": NaN}', "E015"),
        ('{"wallet_balance": -Infinity}', "E015"),
        ('{"wallet_balance": 1e999999999}', "E015"),
        ('{"wallet_balance": 1' + "0" * 80 + "}", "E015"),
        ("[1, 2]", "E103"),
        ('"just a string"', "E103"),
        ('{"positions": []}', "E101"),
        (line(account("x", size="-1")), "E104"),
        (line({**ALICE, "market": {}}), "E603"),
    ],
)
def test_every_kind_of_bad_line_is_an_input_error(
    policy: engine.Policy, text: str, code: str
) -> None:
    (answer,) = evaluate_lines(policy, [text])
    error = answer["error"]
    assert error["type"] == "InputError"
    assert code in [d["code"] for d in error["diagnostics"]]
    assert set(error) == {"type", "message", "diagnostics"}


def test_evaluation_errors_are_reported_per_line(policy: engine.Policy) -> None:
    answers = list(evaluate_lines(policy, [line(account("huge", size="1e50")), GOOD[0]]))
    error = answers[0]["error"]
    assert error["type"] == "EvaluationError"
    (diagnostic,) = error["diagnostics"]
    assert diagnostic["code"] == "E504"
    assert diagnostic["path"].endswith("binance-usdm.yaml")  # located in the policy
    assert diagnostic["line"] is not None
    assert answers[1]["account"] == "a"


def test_parse_line_reads_numbers_exactly() -> None:
    data = parse_line('{"a": 0.1, "b": 2, "c": [1e-3, "0.2"], "d": true, "e": null}')
    assert data == {
        "a": Decimal("0.1"),
        "b": Decimal(2),
        "c": [Decimal("0.001"), "0.2"],
        "d": True,
        "e": None,
    }
    assert isinstance(data["b"], Decimal)


# -- through a real pipe -------------------------------------------------------------------------


def test_a_thousand_lines_through_a_subprocess() -> None:
    text = "".join(line(account(f"acct-{i}", size=str(1 + i % 7))) + "\n" for i in range(1000))
    done = subprocess.run(
        [sys.executable, "-m", "engine", "evaluate", SHIPPED, "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()
    assert len(rows) == 1000
    assert json.loads(rows[0])["account"] == "acct-0"
    assert json.loads(rows[-1])["line"] == 1000


@pytest.mark.skipif(sys.platform == "win32", reason="select() on pipes is POSIX only")
def test_answers_stream_out_before_the_input_ends() -> None:
    """Each answer is written and flushed as soon as its line is read: write, read, repeat."""
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "evaluate", SHIPPED, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        for number, text in enumerate([GOOD[0], MALFORMED, GOOD[1]], start=1):
            process.stdin.write(text.encode() + b"\n")
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], 60)
            assert ready, f"no answer to line {number} while the input is still open"
            answer = json.loads(process.stdout.readline())
            assert answer["line"] == number
        process.stdin.close()
        assert process.stdout.read() == b""
        assert process.wait(timeout=60) == 2
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()


# -- docs/batch.md shows real output -------------------------------------------------------------


def _console_after(text: str, command: str) -> list[str]:
    """The output lines printed under `$ command` in a console block of the doc."""
    after = text.split(f"$ {command}\n", 1)[1]
    output = []
    for row in after.splitlines():
        if row.startswith(("$ ", "```")):
            break
        output.append(row)
    return output


def test_the_batch_guide_example_is_real_output(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    guide = (ROOT / "docs" / "batch.md").read_text(encoding="utf-8")
    accounts = _console_after(guide, "cat accounts.jsonl")
    shown = _console_after(guide, "liqpolicy evaluate binance-usdm - < accounts.jsonl")
    assert len(accounts) == 5 and len(shown) == 4
    code, rows, _ = run_batch(monkeypatch, capsys, "\n".join(accounts) + "\n")
    assert code == 2
    documented = [json.loads(row) for row in shown]
    for row in documented + rows:
        if "policy" in row:
            row["policy"]["digest"] = "sha256:…"  # changes whenever the policy file does
    assert rows == documented
