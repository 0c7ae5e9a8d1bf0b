"""The package's shape: what the sdist carries, the CI's package step, the Dockerfile's command.

`.ci/run` builds the sdist and the wheel and smoke-tests the installed wheel (`.ci/smoke`); no
Docker engine runs here, so the Dockerfile's command is checked against the CLI's parser.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from engine.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_sdist_carries_what_the_tests_read():
    included = set(_pyproject()["tool"]["hatch"]["build"]["targets"]["sdist"]["include"])
    read_by_tests = set()
    for test in ROOT.glob("tests/**/*.py"):
        text = test.read_text(encoding="utf-8")
        read_by_tests |= set(re.findall(r'ROOT / "([A-Za-z.][\w.-]*)"', text))
        read_by_tests |= set(re.findall(r'REPO / "([A-Za-z.][\w.-]*)"', text))
    read_by_tests -= {"pyproject.toml"}  # always in an sdist
    assert read_by_tests, "the pattern finds the tests' files"
    assert read_by_tests <= included, read_by_tests - included
    assert {"books", "scenarios", "examples", "policies", "schemas"} <= included


def test_the_wheel_ships_the_data_the_engine_reads():
    forced = _pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert set(forced) == {"schemas", "policies", "scenarios", "books", "formats"}


def test_ci_runs_the_readme_command_first_then_builds_and_smoke_tests_the_wheel():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    order = [
        script.index('bash -c "$command"'),
        script.index(".venv/bin/mypy"),
        script.index(".venv/bin/python -m build"),
        script.index('install --quiet "$wheel[server]"'),
        script.index('bash "$OLDPWD/.ci/smoke"'),
    ]
    assert order == sorted(order)
    assert (ROOT / ".ci" / "smoke").read_text(encoding="utf-8").count("serve --port 0") == 1


def test_the_dockerfile_runs_liqpolicy_serve_with_valid_options():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    command = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    assert entrypoint[:2] == ["liqpolicy", "serve"]
    args = build_parser().parse_args([*entrypoint[1:], *command])
    assert args.command.name == "serve"
    assert (args.host, args.port, args.workers) == ("0.0.0.0", 8080, 2)
    documented = re.findall(r"liqpolicy (--policies /policies .*?)$", text, re.M)
    extra = documented[0].replace("\\", "").split() if documented else []
    build_parser().parse_args([*entrypoint[1:], *extra])  # the documented run's options too


def test_the_dockerfile_builds_with_the_pinned_build_and_the_server_extra():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    pinned = next(
        d
        for d in _pyproject()["project"]["optional-dependencies"]["dev"]
        if d.startswith("build==")
    )
    assert f"pip install --no-cache-dir {pinned}" in text
    assert "[server]" in text and "USER liqpolicy" in text


def test_liqpolicy_works_without_the_server_extra(tmp_path):
    """Only `serve` needs the extra: with its modules unimportable, the other commands run and
    `serve` says what to install (exit 2)."""
    import subprocess
    import sys

    empty_log = tmp_path / "empty.jsonl"
    empty_log.write_text("", encoding="utf-8")
    program = (
        "import importlib.util, sys\n"
        "blocked = ('uvicorn', 'httptools', 'uvloop', 'starlette', 'prometheus_client')\n"
        "for name in blocked:\n"
        "    sys.modules[name] = None\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n in blocked else real(n, *a)\n"
        "from engine.cli import main\n"
        "assert main(['validate', 'binance-usdm']) == 0\n"
        "assert main(['log', 'verify', sys.argv[1]]) == 0\n"
        "sys.exit(main(['serve', '--port', '0']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(empty_log)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "needs the server extra" in done.stderr and "starlette" in done.stderr
