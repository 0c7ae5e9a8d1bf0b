"""What the commands write on a terminal and in a pipe, and `compare` with many policies.

Colour and width come from the terminal: a colour terminal gets escape codes and tables fitted
to its width; a pipe, a file, NO_COLOR and every JSON output get none (checked byte for byte,
in-process for every command and through real pipes and a real pseudo-terminal).
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import build_parser, main, run
from engine.table_layout import cell_width

ROOT = Path(__file__).resolve().parents[2]
SGR = re.compile(r"\x1b\[[0-9;]*m")
ESC = "\x1b"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


def run_on(argv: list[str], stdout: io.StringIO, stderr: io.StringIO) -> int:
    return run(build_parser().parse_args(argv), stdout=stdout, stderr=stderr)


def test_compare_on_a_colour_terminal_paints_headings_and_differing_figures(
    book_path, scenario_path
):
    stdout, stderr = FakeTerminal(), FakeTerminal()
    argv = ["compare", "binance-usdm", "huobi-linear-swap", "-b", book_path, "-s", scenario_path]
    assert run_on(argv, stdout, stderr) == 0
    text = stdout.getvalue()
    assert "\x1b[1mWhere the liquidated money went\x1b[0m" in text  # a group heading: bold
    assert "\x1b[1mbinance-usdm\x1b[0m" in text  # a column header: bold
    fees = next(line for line in text.splitlines() if line.startswith("Liquidation fees"))
    assert "\x1b[33m" in fees  # the fees differ between the two policies: yellow
    conservation = next(line for line in text.splitlines() if line.startswith("Conservation"))
    assert ESC not in conservation  # the same under both: plain
    assert "policy 2/2" in SGR.sub("", stderr.getvalue())  # the progress display
    # Without the escape codes, the text is what a pipe gets.
    plain, piped_err = io.StringIO(), io.StringIO()
    assert run_on(argv, plain, piped_err) == 0
    assert SGR.sub("", text) == plain.getvalue()
    assert piped_err.getvalue() == ""


@pytest.mark.parametrize(
    ("environment", "flag"),
    [({"NO_COLOR": "1"}, []), ({}, ["--color", "never"]), ({"TERM": "dumb"}, [])],
)
def test_no_colour_on_a_terminal_when_asked(
    monkeypatch, book_path, scenario_path, environment, flag
):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    stdout, stderr = FakeTerminal(), FakeTerminal()
    argv = ["compare", "binance-usdm", "-b", book_path, "-s", scenario_path, *flag]
    assert run_on(argv, stdout, stderr) == 0
    assert ESC not in stdout.getvalue()
    assert not SGR.search(stderr.getvalue())  # the progress display moves the cursor, no colour


def test_force_color_paints_a_pipe_but_never_json(monkeypatch, book_path, scenario_path):
    monkeypatch.setenv("FORCE_COLOR", "1")
    argv = ["compare", "binance-usdm", "-b", book_path, "-s", scenario_path]
    stdout = io.StringIO()
    assert run_on(argv, stdout, io.StringIO()) == 0
    assert ESC in stdout.getvalue()
    stdout = io.StringIO()
    assert run_on([*argv, "--format", "json"], stdout, io.StringIO()) == 0
    assert ESC not in stdout.getvalue()
    json.loads(stdout.getvalue())


def test_a_report_written_to_a_file_is_plain_and_unlimited(
    monkeypatch, tmp_path, book_path, scenario_path
):
    monkeypatch.setenv("COLUMNS", "40")
    target = tmp_path / "report.txt"
    argv = ["compare", "binance-usdm", "huobi-linear-swap", "-b", book_path, "-s", scenario_path]
    assert run_on([*argv, "-o", str(target)], FakeTerminal(), FakeTerminal()) == 0
    written = target.read_text(encoding="utf-8")
    assert ESC not in written
    piped = io.StringIO()
    assert run_on(argv, piped, io.StringIO()) == 0
    assert written == piped.getvalue()  # the same bytes as a pipe: no colour, no width limit


def test_tables_fit_the_terminal(monkeypatch, book_path, scenario_path):
    monkeypatch.setenv("COLUMNS", "70")
    stdout = FakeTerminal()
    argv = ["compare", "binance-usdm", "huobi-linear-swap", "-b", book_path, "-s", scenario_path]
    assert run_on([*argv, "--color", "never"], stdout, io.StringIO()) == 0
    lines = stdout.getvalue().splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("Accounts whose fate"))
    table = lines[lines.index("") + 1 : end]
    assert max(map(cell_width, table)) <= 70
    assert sum(1 for line in table if line.startswith("Liquidation fees")) == 2  # two blocks


# -- every command, piped ------------------------------------------------------------------------

COMMAND_LINES = [
    ["validate", "binance-usdm"],
    ["validate", "tests/golden/multiple-errors.yaml"],
    ["test", "binance-usdm-faq-example"],
    ["evaluate", "binance-usdm", "examples/alice.json"],
    ["evaluate", "binance-usdm", "examples/alice.json", "--trace"],
    [
        "liq-price",
        "binance-usdm",
        "--symbol",
        "BTCUSDT",
        "--side",
        "long",
        "--size",
        "1",
        "--entry",
        "60000",
        "--leverage",
        "10",
    ],
    ["book", "check", "{book}"],
    ["simulate", "binance-usdm", "-b", "{book}", "-s", "{scenario}", "--events"],
    ["compare", "binance-usdm", "huobi-linear-swap", "-b", "{book}", "-s", "{scenario}"],
    ["compare", "-b", "{book}", "-s", "{scenario}", "--format", "markdown"],
    ["diff", "binance-usdm", "huobi-linear-swap"],
    ["expr", "position.size * 2", "--set", "position.size=3"],
    ["schema"],
    ["serve", "--help"],
    ["compre"],
    ["simulate", "binance-usdn", "-b", "demo", "-s", "x"],
]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=[" ".join(a[:2]) for a in COMMAND_LINES])
def test_piped_output_of_every_command_has_no_escape_codes(capsys, argv, book_path, scenario_path):
    filled = [a.format(book=book_path, scenario=scenario_path) for a in argv]
    main(filled)
    captured = capsys.readouterr()
    assert captured.out or captured.err
    assert ESC not in captured.out
    assert ESC not in captured.err


def test_real_pipes_carry_no_escape_codes(book_path, scenario_path):
    environment = {
        k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")
    }
    for argv in (
        ["compare", "binance-usdm", "huobi-linear-swap", "-b", book_path, "-s", scenario_path],
        ["compare", "--fromat", "html"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "engine", *argv],
            cwd=ROOT,
            capture_output=True,
            env=environment,
            timeout=300,
            check=False,
        )
        assert b"\x1b" not in result.stdout + result.stderr
        assert result.stdout or result.stderr


def _on_a_terminal(argv: list[str], environment: dict[str, str]) -> tuple[int, str]:
    """Run liqpolicy with stdout and stderr on a pseudo-terminal; its exit code and screen."""
    main_fd, child_fd = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", *argv],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=child_fd,
        stderr=child_fd,
        env=environment,
    )
    os.close(child_fd)
    chunks = []
    while True:
        ready, _, _ = select.select([main_fd], [], [], 300)
        if not ready:
            process.kill()
            break
        try:
            data = os.read(main_fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main_fd)
    return process.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_a_real_terminal_gets_colour_progress_and_fitted_tables(book_path, scenario_path):
    environment = {
        k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")
    }
    environment |= {"COLUMNS": "70", "TERM": "xterm-256color"}
    argv = ["compare", "binance-usdm", "huobi-linear-swap", "-b", book_path, "-s", scenario_path]
    code, screen = _on_a_terminal(argv, environment)
    assert code == 0
    assert "\x1b[1mWhere the liquidated money went\x1b[0m" in screen
    assert "huobi-linear-swap" in screen and "policy 2/2" in SGR.sub("", screen)
    table = [
        line
        for line in SGR.sub("", screen).replace("\r\n", "\n").split("\n")
        if line.lstrip().startswith(("Liquidated notional", "to fees"))
    ]
    assert len(table) == 4 and max(map(cell_width, table)) <= 70  # two blocks of one policy
    code, screen = _on_a_terminal(argv, environment | {"NO_COLOR": "1"})
    assert code == 0
    assert not SGR.search(screen)  # the progress display still moves the cursor


# -- many policies ------------------------------------------------------------------------------

VARIANT = """\
id: {id}
title: Variant {number} of binance-usdm (test fixture)
extends: binance-usdm
markets:
  BTCUSDT:
    parameters:
      clearance_fee_rate: 0.00{number}
"""


@pytest.fixture(scope="module")
def seven(tmp_path_factory) -> list[str]:
    """Seven policies with long ids: binance-usdm with clearance fees of 0.1 % to 0.7 %."""
    folder = tmp_path_factory.mktemp("seven")
    paths = []
    for number in range(1, 8):
        path = folder / f"venue-{number}-usdt-perpetual.yaml"
        path.write_text(VARIANT.format(id=path.stem, number=number), encoding="utf-8")
        paths.append(str(path))
    return paths


def test_seven_policies_in_text_fit_the_width_in_blocks(capsys, seven, book_path, scenario_path):
    code = main(["compare", *seven, "-b", book_path, "-s", scenario_path, "--width", "100"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("Accounts whose fate"))
    table = lines[lines.index("") + 1 : end]
    assert max(map(cell_width, table)) <= 100
    fees = [line.split()[2:] for line in table if line.startswith("Liquidation fees")]
    assert sum(map(len, fees)) == 7 and len(fees) > 1  # every policy once, in blocks
    assert max(map(len, fees)) - min(map(len, fees)) <= 1
    for number in range(1, 8):
        assert f"venue-{number}-" in out
    curve = lines[lines.index(next(x for x in lines if x.startswith("Liquidation price of"))) :]
    assert max(map(cell_width, curve)) <= 100


def test_seven_policies_without_a_width_stay_on_one_line_each(
    capsys, seven, book_path, scenario_path
):
    main(["compare", *seven, "-b", book_path, "-s", scenario_path])
    out = capsys.readouterr().out
    assert sum(1 for line in out.splitlines() if line.startswith("Liquidation fees")) == 1


def test_seven_policies_in_markdown_are_tables_of_at_most_four(
    capsys, seven, book_path, scenario_path
):
    main(["compare", *seven, "-b", book_path, "-s", scenario_path, "--format", "markdown"])
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line.startswith("|  | venue-")]
    assert [line.count("venue-") for line in headers] == [4, 3]
    leverage = [line for line in out.splitlines() if line.startswith("| Leverage |")]
    assert [line.count("venue-") for line in leverage] == [4, 3]


def test_seven_policies_in_html_scroll_sideways(capsys, seven, book_path, scenario_path):
    main(["compare", *seven, "-b", book_path, "-s", scenario_path, "--format", "html"])
    out = capsys.readouterr().out
    assert out.count('<div class="table-scroll">') >= 3  # summary, differences, leverage
    assert ".table-scroll" in out and "position: sticky" in out


def test_width_never_changes_json(capsys, seven, book_path, scenario_path):
    argv = ["compare", *seven[:3], "-b", book_path, "-s", scenario_path, "--format", "json"]
    main(argv)
    wide = capsys.readouterr().out
    main([*argv, "--width", "30"])
    assert capsys.readouterr().out == wide
    assert "skipped" not in json.loads(wide)


# -- policies without the book's instruments -----------------------------------------------------

ELSEWHERE = """\
id: elsewhere
title: binance-usdm trading another instrument (test fixture)
extends: binance-usdm
markets:
  BTCUSDT:
    instrument: XBT/USDT
  ETHUSDT:
    instrument: XETH/USDT
"""


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("elsewhere") / "elsewhere.yaml"
    path.write_text(ELSEWHERE, encoding="utf-8")
    return str(path)


def test_a_policy_without_the_books_instrument_stops_compare(
    capsys, elsewhere, book_path, scenario_path
):
    code = main(["compare", "binance-usdm", elsewhere, "-b", book_path, "-s", scenario_path])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert (
        "error[E620]: elsewhere has no market for BTC/USDT (50 accounts of the book trade it)"
        in captured.err
    )
    assert "--skip-missing" in captured.err


def test_skip_missing_reports_and_leaves_the_policy_out(
    capsys, elsewhere, book_path, scenario_path
):
    argv = ["compare", "binance-usdm", elsewhere, "huobi-linear-swap", "-b", book_path]
    code = main([*argv, "-s", scenario_path, "--skip-missing"])
    captured = capsys.readouterr()
    assert code == 0
    assert "warning: skipped elsewhere: no market for BTC/USDT (50 accounts" in captured.err
    assert "Skipped elsewhere: no market for BTC/USDT" in captured.out
    header = next(
        line
        for line in captured.out.splitlines()
        if "binance-usdm" in line and line.startswith(" ")
    )
    assert "elsewhere" not in header and "huobi-linear-swap" in header
    main([*argv, "-s", scenario_path, "--skip-missing", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert [p["policy"] for p in document["policies"]] == ["binance-usdm", "huobi-linear-swap"]
    assert document["skipped"] == [
        {"policy": "elsewhere", "missing_instruments": ["BTC/USDT"], "accounts": 50}
    ]
    main([*argv, "-s", scenario_path, "--skip-missing", "--format", "markdown"])
    assert "skipped: no market for BTC/USDT" in capsys.readouterr().out
    main([*argv, "-s", scenario_path, "--skip-missing", "--format", "html"])
    assert "skipped: no market for BTC/USDT" in capsys.readouterr().out


def test_skipping_every_policy_is_an_error(capsys, elsewhere, book_path, scenario_path):
    code = main(["compare", elsewhere, "-b", book_path, "-s", scenario_path, "--skip-missing"])
    captured = capsys.readouterr()
    assert code == 2
    assert "error[E624]: no policy has markets for every instrument the book trades" in captured.err
    assert "hint: elsewhere: no market for BTC/USDT" in captured.err
