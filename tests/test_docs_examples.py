"""The documentation's examples are real: policies load, accounts parse, outputs match the engine.

- Every ```yaml block in docs/*.md whose first line starts with `# policy:` is a complete
  policy (possibly `extends:` a shipped one) and must load without errors.
- Every ```yaml block whose first line is `# account: <policy>` must parse under that policy.
- Every key named in docs/accounts.md's result section exists in a real `as_dict()` output,
  and every quoted value there (`"executed"`) occurs as a value in one.
- The worked statement in docs/mechanics.md is what the engine prints for that example.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import evaluate_account
from engine.mechanics.quote import quote_prices
from engine.policy.load import check_policy, load_policy

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def _blocks(language: str) -> Iterator[tuple[str, int, str]]:
    """(doc name, line, text) of every fenced block of `language` in docs/*.md."""
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            if match.group(1) == language:
                line = text.count("\n", 0, match.start()) + 1
                yield path.name, line, match.group(2)


def _marked(marker: str) -> list[tuple[str, str]]:
    found = []
    for name, line, text in _blocks("yaml"):
        first = text.split("\n", 1)[0]
        if first.startswith(marker):
            found.append((f"{name}:{line}", text))
    return found


POLICY_SNIPPETS = _marked("# policy:")
ACCOUNT_SNIPPETS = _marked("# account:")


def test_the_docs_have_policy_snippets() -> None:
    # policies.md has the what-if variants (the other venues are shipped policies now).
    assert len(POLICY_SNIPPETS) >= 2


@pytest.mark.parametrize(("where", "text"), POLICY_SNIPPETS, ids=[w for w, _ in POLICY_SNIPPETS])
def test_policy_snippet_loads(where: str, text: str, tmp_path: Path) -> None:
    name = re.sub(
        r"[^a-z0-9-]+", "-", text.split("\n", 1)[0].removeprefix("# policy:").strip().lower()
    )
    path = tmp_path / f"{name or 'snippet'}.yaml"
    path.write_text(text, encoding="utf-8")
    policy, diagnostics = check_policy(path)
    errors = [
        f"{d.code} {d.message} (line {d.span.line if d.span else '?'})"
        for d in diagnostics
        if d.severity == "error"
    ]
    assert errors == [], f"{where}: {errors}"
    assert policy is not None


@pytest.mark.parametrize(("where", "text"), ACCOUNT_SNIPPETS, ids=[w for w, _ in ACCOUNT_SNIPPETS])
def test_account_snippet_parses(where: str, text: str, tmp_path: Path) -> None:
    from engine.mechanics.accounts import read_account_file

    policy_id = text.split("\n", 1)[0].removeprefix("# account:").strip()
    path = tmp_path / "account.yaml"
    path.write_text(text, encoding="utf-8")
    account = read_account_file(path, load_policy(policy_id))
    assert account.positions, where


# -- docs/accounts.md: the result section names real keys ---------------------------------------


def _section(doc: str, heading: str) -> str:
    """The prose of a `## ` section, without its fenced blocks."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    start = text.index(heading)
    following = re.search(r"^## ", text[start + len(heading) :], re.M)
    section = text[start : start + len(heading) + following.start()] if following else text[start:]
    return _FENCE.sub("", section)


def _stepped(policy_id: str, name: str) -> dict[str, Any]:
    policy = load_policy(policy_id)
    example = next(e for e in policy.examples if e.name.startswith(name))
    return evaluate_account(policy, parse_account(example.account, policy), trace=True).as_dict()


_VARIANT = """\
id: docs-variant
title: binance-usdm with a skipped step, no closing step, an exchange fee and a surplus rule
extends: binance-usdm
liquidation:
  steps:
    - {name: cancel open orders, kind: cancel_orders, when: 'false'}
    - {name: one large reduce-only IOC order, kind: reduce, quantity: reduce_to_lower_bracket}
  fees:
    - {name: clearance_fee, amount: order.notional * market.clearance_fee_rate}
    - {name: exchange_fee, amount: order.notional * 0.0001, to: exchange}
  surplus_to_insurance_fund: order.remaining_margin
"""

_SMALL_LONG = {
    "wallet_balance": "0",
    "positions": [
        {
            "symbol": "BTCUSDT",
            "side": "long",
            "size": "1",
            "entry_price": "50000",
            "margin_mode": "isolated",
            "isolated_margin": "400",
            "leverage": "125",
        }
    ],
    "market": {"BTCUSDT": {"mark_price": "49780", "book_depth": "100000000"}},
}

_HEDGED_CROSS = {
    "wallet_balance": "20000",
    "positions": [
        {
            "symbol": "BTC-USDT",
            "side": "short",
            "size": "30000",
            "entry_price": "50000",
            "margin_mode": "cross",
            "leverage": "125",
        },
        {
            "symbol": "BTC-USDT",
            "side": "long",
            "size": "12000",
            "entry_price": "50000",
            "margin_mode": "cross",
            "leverage": "125",
        },
    ],
    "market": {
        "BTC-USDT": {"mark_price": "50800", "last_price": "50800", "book_depth": "100000000"}
    },
}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """Real outputs covering every key, status and kind the result section names."""
    binance = load_policy("binance-usdm")
    huobi = load_policy("huobi-linear-swap")
    path = tmp_path_factory.mktemp("variant") / "docs-variant.yaml"
    path.write_text(_VARIANT, encoding="utf-8")
    variant = load_policy(path)
    erin = next(e for e in binance.examples if e.name.startswith("stepped liquidation")).account
    found: list[Any] = [
        _stepped("binance-usdm", "stepped liquidation"),
        evaluate_account(binance, parse_account(_SMALL_LONG, binance)).as_dict(),
        evaluate_account(variant, parse_account(_SMALL_LONG, variant)).as_dict(),
        evaluate_account(variant, parse_account(erin, variant)).as_dict(),
        evaluate_account(huobi, parse_account(_HEDGED_CROSS, huobi)).as_dict(),
        quote_prices(
            binance,
            symbol="BTCUSDT",
            side="long",
            size=Decimal(2),
            entry_price=Decimal(60000),
            leverage=Decimal(10),
        ).as_dict(),
    ]
    found += [
        evaluate_account(huobi, parse_account(e.account, huobi)).as_dict() for e in huobi.examples
    ]
    margin = load_policy("binance-cross-margin")  # account fields in `account_after`
    found += [
        evaluate_account(margin, parse_account(e.account, margin)).as_dict()
        for e in margin.examples
    ]
    return found


def _keys_and_values(data: Any, keys: set[str], values: set[str]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            keys.add(key)
            _keys_and_values(value, keys, values)
    elif isinstance(data, list):
        for item in data:
            _keys_and_values(item, keys, values)
    elif isinstance(data, str):
        values.add(data)


RESULT_HEADING = "## The result"
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_KEY_PATH = re.compile(r"^[a-z_][a-z0-9_]*(?:\[\])?(?:\.[a-z_][a-z0-9_]*(?:\[\])?)*$")
_QUOTED = re.compile(r'^"([^"]+)"$')


def test_result_section_names_only_real_keys(outputs: list[Any]) -> None:
    keys: set[str] = set()
    values: set[str] = set()
    for output in outputs:
        _keys_and_values(output, keys, values)
    section = _section("accounts.md", RESULT_HEADING)
    named_keys: set[str] = set()
    named_values: set[str] = set()
    for span in _CODE_SPAN.findall(section):
        if span in ("null", "true", "false"):
            continue
        if _KEY_PATH.match(span):
            named_keys.update(part.removesuffix("[]") for part in span.split("."))
        elif quoted := _QUOTED.match(span):
            named_values.add(quoted.group(1))
    assert len(named_keys) > 60  # the pattern still finds the keys
    assert sorted(named_keys - keys) == []
    assert sorted(named_values - values) == []


def test_every_top_level_and_position_key_is_documented() -> None:
    section = _section("accounts.md", RESULT_HEADING)
    named = {
        part.removesuffix("[]")
        for span in _CODE_SPAN.findall(section)
        if _KEY_PATH.match(span)
        for part in span.split(".")
    }
    result = _stepped("binance-usdm", "stepped liquidation")
    liquidation = result["liquidations"][0]
    statement = liquidation["statement"]
    shapes = [
        result,
        result["positions"][0],
        liquidation,
        statement,
        statement["orders"][0],
        statement["orders"][0]["fees"][0],
        statement["items"][0],
        liquidation["steps"][0],
        result["trace"][0],
        result["policy"],
    ]
    undocumented = sorted({key for shape in shapes for key in shape} - named)
    assert undocumented == []


def test_error_codes_in_accounts_md_are_documented() -> None:
    text = (DOCS / "accounts.md").read_text(encoding="utf-8")
    errors = (DOCS / "errors.md").read_text(encoding="utf-8")
    codes = set(re.findall(r"\bE6\d\d\b", text))
    assert {"E601", "E602", "E603", "E604", "E605", "E606"} <= codes
    assert sorted(code for code in codes if f"`{code}`" not in errors) == []


# -- docs/mechanics.md: the worked statement is the engine's ------------------------------------


def test_worked_statement_matches_the_engine() -> None:
    text = (DOCS / "mechanics.md").read_text(encoding="utf-8")
    marker = "<!-- output: binance-usdm stepped liquidation statement -->"
    block = text.split(marker, 1)[1]
    shown = json.loads(_FENCE.search(block).group(2))  # type: ignore[union-attr]
    actual = _stepped("binance-usdm", "stepped liquidation")["liquidations"][0]["statement"]
    assert re.fullmatch(r"liq-[0-9a-f]{24}", shown.pop("event_id"))
    actual.pop("event_id")
    assert shown == actual


# -- sessions: pages whose commands are run (docs/authoring.md) ---------------------------------
#
# A page is a session when it has `<!-- check -->` markers.  In document order, in an empty
# directory: `<!-- file: NAME -->` before a fenced block writes the block to NAME;
# `<!-- edit: NAME -->` before a ```diff block replaces each `-` line of NAME by the `+` line
# after it; `<!-- check -->` before a ```console block runs each `$ liqpolicy ...` (or `$ cat
# FILE`) and compares what it prints (stdout and stderr as a terminal shows them) with the lines
# below it.  `…` in an expected line stands for any text (a digest).

_MARKED = re.compile(r"<!-- (check|file: [^ ]+|edit: [^ ]+) -->\n```\w*\n(.*?)^```", re.M | re.S)


def _session_pages() -> list[str]:
    return sorted(p.name for p in DOCS.glob("*.md") if "<!-- check -->" in p.read_text("utf-8"))


def _run(command: str) -> str:
    import io
    import shlex

    from engine.cli.app import build_parser, run

    argv = shlex.split(command)
    if argv[0] == "cat":
        return Path(argv[1]).read_text(encoding="utf-8")
    assert argv[0] == "liqpolicy", command
    buffer = io.StringIO()
    args = build_parser().parse_args(argv[1:])
    run(args, stdout=buffer, stderr=buffer)
    return buffer.getvalue()


def _matches(expected: list[str], shown: list[str]) -> bool:
    if len(expected) != len(shown):
        return False
    for want, got in zip(expected, shown, strict=True):
        pattern = ".*".join(re.escape(part) for part in want.split("…"))
        if re.fullmatch(pattern, got) is None:
            return False
    return True


@pytest.mark.parametrize("page", _session_pages())
def test_session_commands_print_what_the_page_shows(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = (DOCS / page).read_text(encoding="utf-8")
    checked = 0
    for match in _MARKED.finditer(text):
        marker, body = match.group(1), match.group(2)
        where = f"{page}:{text.count(chr(10), 0, match.start()) + 1}"
        if marker.startswith("file: "):
            Path(marker.removeprefix("file: ")).write_text(body, encoding="utf-8")
        elif marker.startswith("edit: "):
            path = Path(marker.removeprefix("edit: "))
            content = path.read_text(encoding="utf-8")
            lines = body.splitlines()
            for old, new in zip(lines[::2], lines[1::2], strict=True):
                assert old.startswith("-") and new.startswith("+"), where
                assert old[1:] in content, f"{where}: {old[1:]!r} not in {path}"
                content = content.replace(old[1:], new[1:], 1)
            path.write_text(content, encoding="utf-8")
        else:
            blocks = re.split(r"^\$ ", body, flags=re.M)[1:]
            for block in blocks:
                command, _, expected = block.partition("\n")
                shown = _run(command).rstrip("\n").split("\n")
                want = expected.rstrip("\n").split("\n")
                assert _matches(want, shown), f"{where}: $ {command}\n" + "\n".join(shown)
                checked += 1
    assert checked >= 5
