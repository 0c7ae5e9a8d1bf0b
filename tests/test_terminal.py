"""The terminal side of the CLI: colour rules, painter, progress display, usage errors with hints."""

from __future__ import annotations

import io
import re

import pytest

from engine.cli import main
from engine.cli.output import Output
from engine.cli.progress import NoProgress, RunProgress, clock_text, run_progress
from engine.cli.terminal import painter, terminal_width, wants_colour
from engine.paint import ROLES, no_paint

SGR = re.compile(r"\x1b\[[0-9;]*m")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests set the variables they are about; the caller's must not leak in."""
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("terminal", "choice", "environ", "expected"),
    [
        (True, "auto", {}, True),
        (False, "auto", {}, False),
        (True, "auto", {"NO_COLOR": "1"}, False),
        (True, "auto", {"NO_COLOR": ""}, True),  # empty means unset (no-color.org)
        (False, "auto", {"FORCE_COLOR": "1"}, True),
        (False, "auto", {"FORCE_COLOR": "0"}, False),
        (True, "auto", {"FORCE_COLOR": "false"}, False),
        (True, "auto", {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
        (True, "auto", {"TERM": "dumb"}, False),
        (False, "auto", {"TERM": "dumb", "FORCE_COLOR": "1"}, True),
        (False, "always", {"NO_COLOR": "1"}, True),
        (True, "never", {"FORCE_COLOR": "1"}, False),
    ],
)
def test_colour_rules(terminal, choice, environ, expected):
    stream = FakeTerminal() if terminal else io.StringIO()
    assert wants_colour(stream, choice, environ) is expected


def test_painter_wraps_each_role_in_escape_codes_only_when_colour_is_on():
    assert painter(FakeTerminal(), colour=False) is no_paint
    paint = painter(io.StringIO(), colour=True)
    for role in ROLES:
        painted = paint("text", role)
        assert painted != "text" and SGR.sub("", painted) == "text", role
    assert paint("x", "heading") == "\x1b[1mx\x1b[0m"


def test_terminal_width():
    assert terminal_width(io.StringIO()) is None  # a pipe: no limit
    assert terminal_width(FakeTerminal(), {"COLUMNS": "123"}) == 123
    assert terminal_width(FakeTerminal(), {}) == 80  # a terminal whose size cannot be read


def test_clock_text():
    assert [clock_text(s) for s in (0, 59.9, 61, 3600 + 62, -3)] == [
        "0:00:00",
        "0:00:59",
        "0:01:01",
        "1:01:02",
        "0:00:00",
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_shows_the_run_its_steps_elapsed_time_and_estimate():
    """Two runs of 1,441 steps; 10 s into the first, at step 720, the share done is
    720 / 1,441 / 2 = 0.2498…, so the time left is 10 × (1 − 0.2498…) / 0.2498… = 30.03 s."""
    clock = Clock()
    stderr = FakeTerminal()
    output = Output(io.StringIO(), stderr)
    with run_progress(output, 2, noun="policy", get_time=clock) as progress:
        assert isinstance(progress, RunProgress)
        step = progress.start("venue-a")
        clock.now = 10.0
        step(720, 1441)
        shown = SGR.sub("", stderr.getvalue())
        assert "venue-a" in shown and "policy 1/2" in shown
        assert "step 720/1,441" in shown
        assert "0:00:10 elapsed, 0:00:30 left" in shown
        assert "25%" in shown
        step(1441, 1441)
        second = progress.start("venue-b")
        clock.now = 20.0
        second(1441, 1441)
        shown = SGR.sub("", stderr.getvalue())
        assert "venue-b" in shown and "policy 2/2" in shown
        assert "0:00:20 elapsed, 0:00:00 left" in shown
    assert "\x1b[?25h" in stderr.getvalue()  # the cursor is shown again when the runs end


def test_progress_estimates_nothing_from_too_little_work():
    clock = Clock()
    stderr = FakeTerminal()
    with run_progress(Output(io.StringIO(), stderr), 1, get_time=clock) as progress:
        step = progress.start("venue-a")
        assert step is not None
        clock.now = 1.0
        step(1, 1441)
        assert "-:--:-- left" in SGR.sub("", stderr.getvalue())


def test_progress_redraws_at_most_ten_times_a_second():
    clock = Clock()
    stderr = FakeTerminal()
    with run_progress(Output(io.StringIO(), stderr), 1, get_time=clock) as progress:
        step = progress.start("venue-a")
        assert step is not None
        before = stderr.getvalue().count("step ")
        for done in range(1, 1000):
            step(done, 1441)  # the clock does not move: no redraw
        assert stderr.getvalue().count("step ") == before
        clock.now = 0.1
        step(1000, 1441)
        assert stderr.getvalue().count("step 1,000/1,441") == 1


def test_no_progress_off_a_terminal():
    stderr = io.StringIO()
    with run_progress(Output(io.StringIO(), stderr), 3) as progress:
        assert isinstance(progress, NoProgress)
        assert progress.start("venue-a") is None
    assert stderr.getvalue() == ""


def test_progress_without_colour_has_no_colour_codes():
    stderr = FakeTerminal()
    output = Output(io.StringIO(), stderr, colour_errors=False)
    with run_progress(output, 1, get_time=Clock()) as progress:
        step = progress.start("venue-a")
        assert step is not None
        step(1441, 1441)
    assert not SGR.search(stderr.getvalue())
    assert "venue-a" in stderr.getvalue()


# -- usage errors ------------------------------------------------------------------------------


def usage_error(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    return captured.err


def test_a_mistyped_command_gets_the_closest_one(capsys):
    err = usage_error(capsys, "compre")
    assert "invalid choice: 'compre'" in err
    assert err.endswith("hint: did you mean 'compare'?\n")


def test_a_mistyped_option_is_reported_against_the_subcommand(capsys):
    err = usage_error(capsys, "compare", "--fromat", "html")
    assert err.startswith("usage: liqpolicy compare ")
    assert "liqpolicy compare: error: unrecognized arguments: --fromat\n" in err
    assert err.endswith("hint: did you mean '--format'?\n")


def test_several_mistyped_options_each_get_a_hint(capsys):
    err = usage_error(
        capsys, "simulate", "binance-usdm", "-b", "demo", "-s", "x", "--fromat=json", "--evnts"
    )
    assert err.startswith("usage: liqpolicy simulate ")
    assert "hint: --fromat: did you mean '--format'?; --evnts: did you mean '--events'?" in err


def test_an_unknown_option_without_a_near_name_gets_no_hint(capsys):
    err = usage_error(capsys, "validate", "binance-usdm", "--zzzzzz")
    assert "unrecognized arguments: --zzzzzz" in err
    assert "hint:" not in err


def test_a_mistyped_choice_gets_the_closest_one(capsys):
    err = usage_error(capsys, "compare", "--format", "htm")
    assert err.startswith("usage: liqpolicy compare ")
    assert err.endswith("hint: did you mean 'html'?\n")


def test_usage_errors_are_painted_only_when_asked(capsys, monkeypatch):
    err = usage_error(capsys, "--color", "always", "compre")
    assert "\x1b[1;31merror:\x1b[0m" in err
    err = usage_error(capsys, "compre")
    assert "\x1b" not in err


def test_a_mistyped_policy_id_gets_the_closest_shipped_one(capsys):
    err = usage_error(capsys, "simulate", "binance-usdn", "-b", "demo", "-s", "short-squeeze")
    assert err.startswith(
        "binance-usdn: error[E001]: no such file or shipped policy 'binance-usdn'"
    )
    assert "hint: did you mean 'binance-usdm'" in err
    assert "cannot read file" not in err


def test_a_mistyped_book_id_gets_the_closest_shipped_one(capsys):
    err = usage_error(capsys, "simulate", "binance-usdm", "-b", "demi", "-s", "short-squeeze")
    assert "no such file or shipped book 'demi'" in err
    assert "hint: did you mean 'demo'?" in err


def test_a_missing_file_path_still_says_it_cannot_be_read(capsys, tmp_path):
    err = usage_error(capsys, "simulate", str(tmp_path / "nothing.yaml"), "-b", "demo", "-s", "x")
    assert "cannot read file" in err


def test_diagnostics_on_a_colour_terminal_are_painted(capsys):
    """The location bold, the severity and caret red, the hint cyan; the words unchanged."""
    stderr = FakeTerminal()
    argv = ["--color", "always", "expr", "position.sise"]
    from engine.cli import build_parser, run

    code = run(build_parser().parse_args(argv), stdout=io.StringIO(), stderr=stderr)
    assert code == 2
    text = stderr.getvalue()
    assert "\x1b[1;31merror[E301]\x1b[0m" in text
    assert "\x1b[1m<expr>:1:10:\x1b[0m" in text
    assert "\x1b[36mhint:\x1b[0m" in text
    assert "\x1b[1;31m^" in text
    plain = io.StringIO()
    run(build_parser().parse_args(argv[2:]), stdout=io.StringIO(), stderr=plain)
    assert SGR.sub("", text) == plain.getvalue()
