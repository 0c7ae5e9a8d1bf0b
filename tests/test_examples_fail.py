"""A worked example with a wrong expectation must fail `liqpolicy test`: the example runner is
itself checked, one wrong figure at a time (an always-passing runner would let every shipped
policy's examples prove nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli.app import main
from engine.policy.packaged import policies_dir

# The seed-huobi-formula article's 10x long (its own example, hand-derived in the policy): at a
# mark of 92,000 the maintenance ratio is 20 %, the trigger holds, liquidation 94,999.9,
# bankruptcy 90,000.  Each case below changes one expected figure.
RIGHT = {
    "definitions": {"maintenance_ratio": "0.2"},
    "trigger": "true",
    "liquidation_price": "94999.9",
    "bankruptcy_price": "90000",
}
ACCOUNT = """\
    account:
      id: article-10x-long
      wallet_balance: 0
      positions:
        - {symbol: BTC-USDT, side: long, size: 1000, entry_price: 100000, margin_mode: isolated, leverage: 10}
      market:
        BTC-USDT: {mark_price: 92000, last_price: 92000, book_depth: 100000000}
"""


def child(folder: Path, expect: dict[str, object]) -> Path:
    (folder / "parent.yaml").write_text(
        (policies_dir() / "seed-huobi-formula.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    definitions = expect["definitions"]
    assert isinstance(definitions, dict)
    lines = [
        "id: wrong-example",
        "title: one wrong expectation",
        "extends: parent.yaml",
        "examples:",
        "  - name: the article's 10x long",
        ACCOUNT.rstrip("\n"),
        "    expect:",
        "      definitions: {" + ", ".join(f"{k}: {v}" for k, v in definitions.items()) + "}",
        *(f"      {k}: {expect[k]}" for k in ("trigger", "liquidation_price", "bankruptcy_price")),
    ]
    path = folder / "wrong-example.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_right_expectations_pass(tmp_path, capsys):
    assert main(["test", str(child(tmp_path, RIGHT))]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("key", "wrong"),
    [
        ("definitions", {"maintenance_ratio": "0.21"}),
        ("trigger", "false"),
        ("liquidation_price", "95000"),
        ("bankruptcy_price", "90000.1"),
    ],
)
def test_one_wrong_expectation_fails_the_example(tmp_path, capsys, key, wrong):
    expect = {**RIGHT, key: wrong}
    assert main(["test", str(child(tmp_path, expect)), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False
    [example] = report["examples"]
    assert example["passed"] is False
