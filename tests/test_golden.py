"""Golden diagnostics: what `liqpolicy validate` prints for each invalid policy, verbatim.

Each case is a policy file `tests/golden/<case>.yaml`; `tests/golden/<case>.expected` holds the
exact text the command writes to stderr when run from the repository root as
`liqpolicy validate tests/golden/<case>.yaml`: every diagnostic with its source line, caret and
hint.  Messages are API, so any change to them shows up here as a diff.  Cases named `valid-*`
must exit 0 (their .expected holds only warnings, or nothing); every other case must exit 2.
Files under `tests/golden/lib/` are parents for `extends` cases, not cases themselves.

Updating: after an intended change to a message, regenerate the expected files with

    LIQPOLICY_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py

and review the result with `git diff tests/golden/` before committing.  To add a case, write
the .yaml file and run the same command; the new .expected appears next to it.

Absolute paths of the checkout are written as `$ROOT/` so the files do not depend on where the
repository lives (the engine currently reports parents reached through `extends` by absolute
path; once it keeps them relative, regenerating drops the placeholder).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
CASES = sorted(GOLDEN.glob("*.yaml"))
UPDATE = os.environ.get("LIQPOLICY_UPDATE_GOLDEN") == "1"

# At least one case per layer and code; a case may cover several.
REQUIRED_CODES = {
    "E010",
    "E011",
    "E012",
    "E013",  # YAML
    "E101",
    "E102",
    "E103",
    "E104",  # schema
    "E200",  # expression syntax
    "E300",
    "E301",
    "E302",
    "E303",
    "E304",
    "E306",
    "E307",  # expression checks
    "E400",
    "E402",
    "E403",
    "E404",
    "E405",
    "E426",
    "E427",  # policy semantics
    "W001",
    "W002",
    "W003",
    "W006",  # warnings
}

_HEAD = re.compile(
    r"^(?P<path>[^\s:]+):(?P<line>\d+):(?P<column>\d+): (?:error|warning)\[[EW]\d{3}\]: "
)


def _stderr_of(case: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["validate", str(case.relative_to(ROOT))])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.replace(str(ROOT) + os.sep, "$ROOT/")


@pytest.fixture(autouse=True)
def _at_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_golden_diagnostics(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _stderr_of(case, capsys)
    expected_path = case.with_suffix(".expected")
    if UPDATE:
        expected_path.write_text(err, encoding="utf-8")
    assert expected_path.is_file(), f"no {expected_path.name}: run with LIQPOLICY_UPDATE_GOLDEN=1"
    assert err == expected_path.read_text(encoding="utf-8")
    shown = case.relative_to(ROOT)
    if case.stem.startswith("valid-"):
        assert code == 0
        assert out.startswith(f"ok: {shown} (")
        assert "error[" not in err
    else:
        assert code == 2
        assert out.startswith(f"invalid: {shown} (")
        assert "error[" in err


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_golden_source_lines_are_the_files_lines(case: Path) -> None:
    """Every `path:line:col` header is followed by that very line of that file, caret in range."""
    lines = case.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
    for index, text in enumerate(lines):
        head = _HEAD.match(text)
        if head is None or index + 2 >= len(lines) or " | " not in lines[index + 1]:
            continue
        path = Path(head["path"].replace("$ROOT/", str(ROOT) + os.sep))
        number, column = int(head["line"]), int(head["column"])
        file_line = (ROOT / path).read_text(encoding="utf-8").splitlines()[number - 1]
        gutter, shown = lines[index + 1].split(" | ", 1)
        assert gutter.strip() == str(number)
        assert shown == file_line.expandtabs()
        caret = lines[index + 2].split(" | ", 1)[1]
        assert caret.index("^") == len(file_line[: column - 1].expandtabs())


def test_dsl_caret_inside_a_block_scalar_points_at_the_bad_token() -> None:
    """A syntax error on the 2nd line of a `|` expression is located in the YAML file itself."""
    expected = (GOLDEN / "e200-syntax-in-block.expected").read_text(encoding="utf-8")
    head = _HEAD.match(expected)
    assert head is not None
    line, column = int(head["line"]), int(head["column"])
    source = (GOLDEN / "e200-syntax-in-block.yaml").read_text(encoding="utf-8").splitlines()
    assert source[line - 2].strip().startswith("if ")  # the block's first line is just above
    assert source[line - 1][column - 1] == "*"


def test_every_expected_file_has_its_case() -> None:
    orphans = [p.name for p in GOLDEN.glob("*.expected") if not p.with_suffix(".yaml").is_file()]
    assert orphans == []


def test_golden_cases_cover_every_required_code() -> None:
    found = set()
    for expected in GOLDEN.glob("*.expected"):
        found |= set(re.findall(r"(?:error|warning)\[([EW]\d{3})\]", expected.read_text("utf-8")))
    assert REQUIRED_CODES - found == set()


def test_multiple_errors_are_reported_at_once_and_sorted() -> None:
    text = (GOLDEN / "multiple-errors.expected").read_text(encoding="utf-8")
    positions = [
        (int(m["line"]), int(m["column"])) for m in map(_HEAD.match, text.splitlines()) if m
    ]
    assert len(positions) >= 4
    assert positions == sorted(positions)


# -- docs/errors.md lists every code ------------------------------------------------------------

_CODE = re.compile(r"""["']([EW]\d{3})["']""")


def _codes_in_source() -> set[str]:
    codes: set[str] = set()
    for path in (ROOT / "engine").rglob("*.py"):
        codes |= set(_CODE.findall(path.read_text(encoding="utf-8")))
    return codes


def _codes_in_docs() -> set[str]:
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([EW]\d{3})` \|", text, flags=re.M))


def test_every_code_the_engine_emits_is_documented() -> None:
    source = _codes_in_source()
    assert len(source) > 20  # the pattern still finds the codes
    assert source - _codes_in_docs() == set()


def test_every_documented_code_is_still_emitted() -> None:
    assert _codes_in_docs() - _codes_in_source() == set()
