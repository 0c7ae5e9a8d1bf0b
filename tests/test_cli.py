"""The `liqpolicy` command line, called in-process through `main([...])` (plus two smoke tests)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import __version__
from engine.cli import COMMANDS, build_parser, main, run
from engine.errors import PolicyError
from engine.source import Diagnostic

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = "policies/binance-usdm.yaml"

VALID = """\
id: tiny
title: Tiny
definitions:
  notional: position.size * market.mark_price
"""
INVALID = """\
id: tiny
titel: Tiny
title: Tiny
"""


@pytest.fixture(autouse=True)
def _at_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- global ------------------------------------------------------------------------------------


def test_version(capsys):
    assert call(capsys, "--version") == (0, f"liqpolicy {__version__}\n", "")


def test_no_command_prints_help_and_exits_2(capsys):
    code, out, err = call(capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("usage: liqpolicy")
    for command in COMMANDS:
        assert command.name in err
    assert "exit codes:" in err


def test_top_level_help_lists_commands_and_exit_codes(capsys):
    code, out, _ = call(capsys, "--help")
    assert code == 0
    for command in COMMANDS:
        assert f"    {command.name}" in out
    assert "3  internal error" in out


def test_unknown_command_is_a_usage_error(capsys):
    code, out, err = call(capsys, "valdate", SHIPPED)
    assert (code, out) == (2, "")
    assert "invalid choice: 'valdate'" in err


@pytest.mark.parametrize("name", [command.name for command in COMMANDS])
def test_every_command_has_a_useful_help(name, capsys):
    code, out, err = call(capsys, name, "--help")
    assert (code, err) == (0, "")
    command = next(c for c in COMMANDS if c.name == name)
    assert out.startswith(f"usage: liqpolicy {name}")
    assert command.description.splitlines()[0] in out
    assert "examples:\n  liqpolicy " + name in out
    for line in ("0  success", "1  a check ran", "2  invalid input", "3  internal error"):
        assert line in out


def test_every_command_is_documented_in_cli_md():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for command in COMMANDS:
        assert f"## `liqpolicy {command.name}`" in text


def test_run_writes_only_to_the_streams_it_is_given(capsys):
    stdout, stderr = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(["validate", SHIPPED])
    assert run(args, stdout=stdout, stderr=stderr) == 0
    assert stdout.getvalue().startswith(f"ok: {SHIPPED} (binance-usdm, ")
    assert stderr.getvalue() == ""
    assert capsys.readouterr() == ("", "")


# -- validate ----------------------------------------------------------------------------------


def test_validate_a_file(capsys):
    code, out, err = call(capsys, "validate", SHIPPED)
    assert (code, err) == (0, "")
    first, summary = out.splitlines()
    assert first.startswith(f"ok: {SHIPPED} (binance-usdm, ")
    assert " definitions, digest sha256:" in first
    assert summary == "checked 1 file: 1 valid"


def test_validate_a_shipped_id_shows_its_path(capsys):
    code, out, _ = call(capsys, "validate", "binance-usdm")
    assert code == 0
    assert out.startswith(f"ok: {SHIPPED} (binance-usdm, ")


def test_validate_a_misspelt_shipped_id_suggests_the_right_one(capsys):
    code, out, err = call(capsys, "validate", "binance-usdn")
    assert code == 2
    assert err.startswith(
        "binance-usdn: error[E001]: no such file or shipped policy 'binance-usdn'\n"
    )
    assert "hint: did you mean 'binance-usdm'" in err
    assert out.startswith("invalid: binance-usdn (1 error)")


def test_validate_a_missing_file(capsys):
    code, _, err = call(capsys, "validate", "no/such/policy.yaml")
    assert code == 2
    assert err.startswith("no/such/policy.yaml: error[E001]: cannot read file")


def test_validate_a_directory_checks_every_yaml_inside(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text(VALID, encoding="utf-8")
    (tmp_path / "b.yml").write_text(INVALID, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a policy", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text(INVALID, encoding="utf-8")
    code, out, err = call(capsys, "validate", str(tmp_path))
    assert code == 2
    assert out.splitlines() == [
        f"ok: {tmp_path / 'a.yaml'} (tiny, 1 definition, digest "
        + out.split("digest ")[1].split(")")[0]
        + ")",
        f"invalid: {tmp_path / 'b.yml'} (1 error)",
        "checked 2 files: 1 valid, 1 invalid (1 error)",
    ]
    assert f"{tmp_path / 'b.yml'}:2:1: error[E102]: unknown key 'titel' at the top level" in err
    assert "hint: did you mean 'title'?" in err


def test_validate_the_policies_directory(capsys):
    code, out, _ = call(capsys, "validate", "policies/")
    assert code == 0
    assert f"ok: {SHIPPED} (" in out


def test_validate_an_empty_directory_is_a_usage_error(tmp_path, capsys):
    code, out, err = call(capsys, "validate", str(tmp_path))
    assert (code, out) == (2, "")
    assert err == f"liqpolicy validate: error: no policy files (*.yaml) in directory '{tmp_path}'\n"


def test_validate_drops_repeated_paths(capsys):
    code, out, _ = call(capsys, "validate", SHIPPED, "binance-usdm", "./" + SHIPPED)
    assert code == 0
    assert out.count("ok: ") == 1


def test_validate_warnings_do_not_fail(tmp_path, capsys):
    path = tmp_path / "warned.yaml"
    path.write_text(VALID + "  doubled: notional * 2\n", encoding="utf-8")
    code, out, err = call(capsys, "validate", str(path))
    assert code == 0
    assert "warning[W002]: definition 'doubled' contains numbers" in err
    assert out.splitlines()[-1] == "checked 1 file: 1 valid (0 errors, 1 warning)"


def test_validate_json(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(INVALID, encoding="utf-8")
    code, out, err = call(capsys, "validate", SHIPPED, str(bad), "--format", "json")
    assert (code, err) == (2, "")
    document = json.loads(out)
    assert document["valid"] is False
    good, wrong = document["files"]
    assert good["path"] == SHIPPED
    assert good["valid"] is True
    assert good["policy_id"] == "binance-usdm"
    assert good["digest"].startswith("sha256:")
    assert good["diagnostics"] == []
    assert wrong["valid"] is False
    assert (wrong["policy_id"], wrong["digest"]) == (None, None)
    assert wrong["diagnostics"] == [
        {
            "path": str(bad),
            "line": 2,
            "column": 1,
            "end_line": 2,
            "end_column": 6,
            "severity": "error",
            "code": "E102",
            "message": "unknown key 'titel' at the top level",
            "hint": "did you mean 'title'?",
        }
    ]


def test_validate_json_all_valid(capsys):
    code, out, _ = call(capsys, "validate", "--format", "json", SHIPPED)
    assert code == 0
    assert json.loads(out)["valid"] is True


def test_validate_needs_a_path(capsys):
    code, _, err = call(capsys, "validate")
    assert code == 2
    assert "the following arguments are required: PATH" in err


# -- schema ------------------------------------------------------------------------------------


def test_schema_prints_the_policy_schema(capsys):
    code, out, err = call(capsys, "schema")
    assert (code, err) == (0, "")
    expected = (ROOT / "schemas" / "policy.schema.json").read_text(encoding="utf-8")
    assert json.loads(out) == json.loads(expected)


def test_schema_account(capsys):
    code, out, _ = call(capsys, "schema", "account")
    assert code == 0
    assert json.loads(out)["title"] == "liqpolicy account"


def test_schema_unknown_name_is_a_usage_error(capsys):
    code, _, err = call(capsys, "schema", "scenario")
    assert code == 2
    assert "invalid choice: 'scenario'" in err


def test_schema_markdown(capsys):
    reference_doc = pytest.importorskip("engine.policy.reference_doc")
    code, out, _ = call(capsys, "schema", "--markdown")
    assert code == 0
    assert out.rstrip("\n") == reference_doc.render_policy_reference().rstrip("\n")


def test_schema_markdown_is_only_for_policies(capsys):
    code, out, err = call(capsys, "schema", "account", "--markdown")
    assert (code, out) == (2, "")
    assert err == "liqpolicy schema: error: --markdown is only available for the policy schema\n"


# -- expr --------------------------------------------------------------------------------------


def test_expr_prints_canonical_form_and_type(capsys):
    code, out, err = call(capsys, "expr", "position.size*(market.mark_price)")
    assert (code, err) == (0, "")
    assert out == "canonical: position.size * market.mark_price\ntype: number\n"


def test_expr_evaluates_with_inputs(capsys):
    code, out, err = call(
        capsys,
        "expr",
        'if position.side == "long" then position.size * market.mark_price else 0',
        "--set",
        "position.size=2",
        "--set",
        "market.mark_price=59000",
        "--set",
        "position.side=long",
    )
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == ["type: number", "value: 118000"]


def test_expr_evaluates_constant_expressions(capsys):
    code, out, _ = call(capsys, "expr", 'round(1/3, 0.01, "half_up")')
    assert code == 0
    assert out.splitlines()[-1] == "value: 0.33"


def test_expr_aggregates_over_the_one_position(capsys):
    code, out, _ = call(
        capsys, "expr", "count(p for p in account.positions)", "--set", "position.size=1"
    )
    assert code == 0
    assert out.splitlines()[-1] == "value: 1"


def test_expr_booleans_and_strings(capsys):
    _, out, _ = call(capsys, "expr", "position.size > 1", "--set", "position.size=2")
    assert out.splitlines()[-1] == "value: true"
    _, out, _ = call(capsys, "expr", "position.side", "--set", "position.side=short")
    assert out.splitlines()[1:] == ['type: string (one of "long", "short")', 'value: "short"']


def test_expr_the_tables_root_is_empty_without_a_policy(capsys):
    code, out, _ = call(capsys, "expr", "tables")
    assert code == 0
    assert out == "canonical: tables\ntype: tables\nvalue: {}\n"


def test_expr_json(capsys):
    code, out, err = call(
        capsys, "expr", "position.size * 2", "--set", "position.size=1.5", "--format", "json"
    )
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "expression": "position.size * 2",
        "canonical": "position.size * 2",
        "type": "number",
        "value": "3",
        "diagnostics": [],
    }


def test_expr_syntax_error_has_a_caret(capsys):
    code, out, err = call(capsys, "expr", "position.size = 2")
    assert (code, out) == (2, "")
    assert err == (
        "<expr>:1:15: error[E200]: unexpected character '='\n"
        " 1 | position.size = 2\n"
        "   |               ^\n"
        "hint: use '==' to compare values\n\n"
    )


def test_expr_unknown_field_with_did_you_mean(capsys):
    code, out, err = call(capsys, "expr", "position.sise")
    assert (code, out) == (2, "")
    assert err == (
        "<expr>:1:10: error[E301]: unknown field 'sise' on position\n"
        " 1 | position.sise\n"
        "   |          ^~~~\n"
        "hint: did you mean 'size' or 'side'?\n\n"
    )


def test_expr_check_error_json(capsys):
    code, out, err = call(capsys, "expr", 'position.side == "lnog"', "--format", "json")
    assert (code, err) == (2, "")
    document = json.loads(out)
    assert document["canonical"] == 'position.side == "lnog"'
    assert document["type"] is None
    assert "value" not in document
    assert [d["code"] for d in document["diagnostics"]] == ["E307"]


def test_expr_syntax_error_json(capsys):
    code, out, _ = call(capsys, "expr", "1 +", "--format", "json")
    assert code == 2
    document = json.loads(out)
    assert (document["canonical"], document["type"]) == (None, None)
    assert document["diagnostics"][0]["code"] == "E200"


def test_expr_missing_input_names_the_option_to_give(capsys):
    code, out, err = call(
        capsys, "expr", "position.size * market.mark_price", "--set", "position.size=2"
    )
    assert code == 2
    assert out == "canonical: position.size * market.mark_price\ntype: number\n"
    assert err.splitlines() == [
        "<expr>:1:17: error[E503]: missing input 'market.mark_price'",
        " 1 | position.size * market.mark_price",
        "   |                 ^~~~~~~~~~~~~~~~~",
        "hint: give it with --set market.mark_price=VALUE",
        "",
    ]


def test_expr_division_by_zero(capsys):
    code, _, err = call(
        capsys, "expr", "position.size / 0", "--set", "position.size=1", "--format", "json"
    )
    assert (code, err) == (2, "")


def test_expr_division_by_zero_text(capsys):
    code, _, err = call(capsys, "expr", "1 / (position.size - 1)", "--set", "position.size=1")
    assert code == 2
    assert err.startswith("<expr>:1:1: error[E501]: division by zero")
    assert "hint: values: left = 1, right = 0" in err


def test_expr_leading_minus_after_double_dash(capsys):
    code, out, _ = call(capsys, "expr", "--format", "json", "--", "-1 * 2")
    assert code == 0
    assert json.loads(out)["value"] == "-2"


@pytest.mark.parametrize(
    ("option", "message", "hint"),
    [
        ("position.sise=2", "unknown input 'position.sise'", "did you mean 'position.size'"),
        ("size=2", "unknown input 'size'", None),
        ("position.size=2x", "--set position.size: '2x' is not a decimal number", "numbers are"),
        ("position.size=1e999", "--set position.size: exponent in '1e999' is out of range", None),
        (
            "position.side=lnog",
            '--set position.side: \'lnog\' is not one of "long", "short"',
            "did you mean 'long'?",
        ),
        ("position.size", "--set expects NAME=VALUE, found 'position.size'", "for example"),
        ("account.positions=1", "account.positions cannot be set", None),
    ],
)
def test_expr_bad_inputs_are_usage_errors(option, message, hint, capsys):
    code, out, err = call(capsys, "expr", "position.size", "--set", option)
    assert (code, out) == (2, "")
    assert err.startswith(f"liqpolicy expr: error: {message}")
    if hint:
        assert f"hint: {hint}" in err
    assert "Traceback" not in err


# -- errors around a run -----------------------------------------------------------------------


def _explode(*_args, **_kwargs):
    raise RuntimeError("boom")


def test_internal_error_is_one_line_without_debug(monkeypatch, capsys):
    monkeypatch.setattr("engine.cli.validate.check_policy", _explode)
    code, _, err = call(capsys, "validate", SHIPPED)
    assert code == 3
    assert "Traceback" not in err
    assert err == (
        "liqpolicy: internal error (a bug in liqpolicy, please report it; rerun with --debug"
        " for the traceback): RuntimeError: boom\n"
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_internal_error_traceback_with_debug(where, monkeypatch, capsys):
    monkeypatch.setattr("engine.cli.validate.check_policy", _explode)
    argv = ["validate", SHIPPED]
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    code, _, err = call(capsys, *argv)
    assert code == 3
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith("RuntimeError: boom\n")


def test_policy_errors_raised_by_a_command_are_rendered(monkeypatch, capsys):
    def fail(*_args, **_kwargs):
        raise PolicyError(diagnostics=[Diagnostic("E001", "cannot read file: gone", path="x.yaml")])

    monkeypatch.setattr("engine.cli.validate.check_policy", fail)
    code, _, err = call(capsys, "validate", SHIPPED)
    assert code == 2
    assert err == "x.yaml: error[E001]: cannot read file: gone\n\n"


def test_os_errors_are_rendered_without_traceback(monkeypatch, capsys):
    def fail(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied", "secret.yaml")

    monkeypatch.setattr("engine.cli.validate.check_policy", fail)
    code, _, err = call(capsys, "validate", SHIPPED)
    assert code == 2
    assert err == "liqpolicy validate: error: cannot read 'secret.yaml': Permission denied\n"


# -- the real program --------------------------------------------------------------------------


def test_python_dash_m_engine_smoke():
    result = subprocess.run(
        [sys.executable, "-m", "engine", "validate", SHIPPED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: {SHIPPED} (binance-usdm, ")
    assert result.stderr == ""


def test_installed_console_script_smoke():
    """The script pip installed beside this interpreter (the README's venv), else on PATH."""
    beside = Path(sys.executable).parent / "liqpolicy"
    script = str(beside) if beside.exists() else shutil.which("liqpolicy")
    if script is None:
        pytest.skip("the liqpolicy console script is not installed (pip install -e .)")
    result = subprocess.run(
        [script, "validate", "binance-usdm", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["valid"] is True
