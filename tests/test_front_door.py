"""The README's two commands and CI's script agree, and engine/ never names an exchange."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _command_after(marker: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text.split(marker, 1)[1]
    return next(line for line in after.splitlines() if line.startswith("python"))


def test_readme_commands_exist_and_use_a_fresh_venv():
    for marker in ("<!-- main-command -->", "<!-- test-command -->"):
        command = _command_after(marker)
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install")


def test_ci_script_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "<!-- test-command -->" in script
    assert "pytest" in _command_after("<!-- test-command -->")


def test_engine_names_no_exchange():
    pattern = re.compile(r"binance|huobi|htx|okx|okex|bybit|bitmex|dydx|hyperliquid", re.I)
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "engine").rglob("*"))
        if path.suffix in (".py", ".lark")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
