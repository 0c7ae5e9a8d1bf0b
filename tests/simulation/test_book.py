"""Books: JSON lines and CSV round-trip exactly, every bad line is reported at once with its line
and field, and the generator is deterministic with realistic spreads."""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.errors import InputError
from engine.json_exact import loads_exact
from engine.policy.schema import schema_diagnostics
from engine.simulation.book import (
    CSV_COLUMNS,
    books_dir,
    load_book,
    read_book,
    summarize_book,
    write_book_csv,
    write_book_jsonl,
)
from engine.simulation.book_jsonl import _account_from_json, _Malformed
from engine.simulation.generate import generate_book, price_tick, quantity_step
from engine.simulation.model import Book, BookAccount, BookPosition

ROOT = Path(__file__).resolve().parents[2]

GOOD = (
    '{"id": "a1", "wallet_balance": 1000.5, "positions": [{"instrument": "BTC/USDT", '
    '"side": "long", "quantity": 0.01, "entry_price": 60000, "margin_mode": "cross", '
    '"leverage": 10}]}'
)
ISOLATED = (
    '{"id": "a2", "wallet_balance": "20", "positions": [{"instrument": "ETH/USDT", '
    '"side": "short", "quantity": "1.5", "entry_price": 2400.10, "margin_mode": '
    '"isolated", "leverage": 5, "isolated_margin": 720.03}]}'
)
HEADER = ",".join(CSV_COLUMNS)


def jsonl(book: Book) -> str:
    stream = io.StringIO()
    write_book_jsonl(book, stream)
    return stream.getvalue()


def csv_text(book: Book) -> str:
    stream = io.StringIO()
    write_book_csv(book, stream)
    return stream.getvalue()


def diagnostics(text: str, path: str = "book.jsonl") -> list[tuple[str, int, int, str]]:
    with pytest.raises(InputError) as caught:
        read_book(text, path)
    return [
        (d.code, d.span.line if d.span else 0, d.span.column if d.span else 0, d.message)
        for d in caught.value.diagnostics
    ]


def walk_numbers(value: Any) -> list[Any]:
    """Every non-str, non-bool scalar inside dataclasses and tuples."""
    if is_dataclass(value):
        return [n for f in fields(value) for n in walk_numbers(getattr(value, f.name))]
    if isinstance(value, tuple | list):
        return [n for item in value for n in walk_numbers(item)]
    if isinstance(value, Mapping):  # e.g. an account's fields
        return [n for item in value.values() for n in walk_numbers(item)]
    if isinstance(value, str | bool) or value is None:
        return []
    return [value]


# -- reading -----------------------------------------------------------------------------------


def test_jsonl_reads_exact_decimals_from_numbers_and_strings():
    book = read_book(GOOD + "\n\n" + ISOLATED + "\n", "b.jsonl")
    assert book.accounts == (
        BookAccount(
            "a1",
            Decimal("1000.5"),
            (
                BookPosition(
                    "BTC/USDT", "long", Decimal("0.01"), Decimal(60000), "cross", Decimal(10)
                ),
            ),
        ),
        BookAccount(
            "a2",
            Decimal(20),
            (
                BookPosition(
                    "ETH/USDT",
                    "short",
                    Decimal("1.5"),
                    Decimal("2400.10"),
                    "isolated",
                    Decimal(5),
                    Decimal("720.03"),
                ),
            ),
        ),
    )
    assert book.path == "b.jsonl"
    assert str(book.accounts[1].positions[0].entry_price) == "2400.10"  # the text, exactly


def test_floats_never_appear():
    book = read_book(
        GOOD
        + "\n"
        + ISOLATED
        + "\n"
        + '{"id": "z", "wallet_balance": 0.1, "positions": [], "fields": {"borrowed": 2.5}}',
        "b.jsonl",
    )
    numbers = walk_numbers(book.accounts)
    assert numbers and all(type(n) is Decimal for n in numbers)
    assert book.accounts[2].wallet_balance == Decimal("0.1")
    assert book.accounts[2].fields == {"borrowed": Decimal("2.5")}
    generated = walk_numbers(generate_book(300, 5, multi_instrument_share=Decimal("0.5")).accounts)
    assert generated and all(type(n) is Decimal for n in generated)


def test_format_is_chosen_by_suffix_or_content(tmp_path):
    csv = f"{HEADER}\na1,10,BTC/USDT,long,1,100,cross,2,\n"
    for name, text in (("b.jsonl", GOOD), ("b.csv", csv), ("b.txt", GOOD), ("b.dat", csv)):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        assert len(load_book(path).accounts) == 1, name


def test_shipped_demo_book_loads_by_id():
    assert books_dir().resolve() == (ROOT / "books").resolve()
    book = load_book("demo")
    assert len(book.accounts) == 2000
    assert Path(book.path).name == "demo.jsonl"


def test_demo_book_is_the_documented_generator_output():
    """books/demo.jsonl is `book generate --accounts 2000 --seed 7 --instrument BTC/USDT=122000`:
    BTC only, at the flash crash's start, so every shipped policy has a market for it."""
    expected = generate_book(2000, 7, instruments={"BTC/USDT": Decimal(122000)})
    assert jsonl(expected) == (ROOT / "books" / "demo.jsonl").read_text(encoding="utf-8")


def test_unreadable_files(tmp_path):
    with pytest.raises(InputError) as caught:
        load_book(tmp_path / "absent.jsonl")
    assert caught.value.diagnostics[0].code == "E001"
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(GOOD.encode() + b"\n\xff\n")
    with pytest.raises(InputError) as caught:
        load_book(bad)
    assert "line 2" in caught.value.diagnostics[0].message


# -- round trips -------------------------------------------------------------------------------


def test_jsonl_round_trip_is_exact(tmp_path):
    book = generate_book(500, 11, multi_instrument_share=Decimal("0.2"))
    text = jsonl(book)
    again = read_book(text, "x.jsonl")
    assert again.accounts == book.accounts
    assert jsonl(again) == text
    path = tmp_path / "book.jsonl"
    path.write_text(text, encoding="utf-8")
    assert load_book(path).accounts == book.accounts


def test_csv_round_trip_is_exact(tmp_path):
    book = generate_book(500, 11, multi_instrument_share=Decimal("0.2"))
    book = Book((*book.accounts, BookAccount('odd, "quoted" id', Decimal(5), ())))
    text = csv_text(book)
    assert text.splitlines()[0] == HEADER
    again = read_book(text, "x.csv")
    assert again.accounts == book.accounts
    assert csv_text(again) == text


def test_csv_rows_of_one_account_group_and_may_interleave():
    text = (
        f"{HEADER}\n"
        "a,100,BTC/USDT,long,1,100,cross,2,\n"
        "b,5,BTC/USDT,short,1,100,isolated,2,50\n"
        "a,100.00,ETH/USDT,short,3,10,cross,4,\n"
        " c , 7 ,,,,,,,\n"
    )
    book = read_book(text, "x.csv")
    assert [a.id for a in book.accounts] == ["a", "b", "c"]
    assert [p.instrument for p in book.accounts[0].positions] == ["BTC/USDT", "ETH/USDT"]
    assert book.accounts[1].positions[0].isolated_margin == Decimal(50)
    assert book.accounts[2] == BookAccount("c", Decimal(7), ())


def test_csv_header_may_omit_isolated_margin_and_reorder():
    text = (
        "side,account_id,wallet_balance,instrument,quantity,entry_price,margin_mode,leverage\n"
        "long,a,1,BTC/USDT,1,2,isolated,3\n"
    )
    position = read_book(text, "x.csv").accounts[0].positions[0]
    assert (position.side, position.isolated_margin) == ("long", None)


# -- every bad line, located, all at once --------------------------------------------------------


def test_every_bad_jsonl_line_is_reported_at_once_with_line_and_field():
    lines = [
        GOOD,
        GOOD.replace('"a1"', '"b1"').replace('"long"', '"lnog"'),
        "",
        GOOD.replace('"a1"', '"b2"').replace("1000.5", "-1"),
        GOOD.replace('"a1"', '"b3"').replace('"quantity": 0.01', '"quantity": "0"'),
        GOOD.replace('"a1"', '"b4"').replace("wallet_balance", "walet_balance"),
        ISOLATED,
    ]
    found = diagnostics("\n".join(lines))
    assert [(code, line) for code, line, _, _ in found] == [
        ("E104", 2),
        ("E104", 4),
        ("E104", 5),
        ("E101", 6),
        ("E102", 6),
    ]
    messages = [message for _, _, _, message in found]
    assert "'lnog' is not allowed in positions[0].side" in messages[0]
    assert messages[1] == "-1 is out of range in wallet_balance; expected at least 0"
    assert messages[2] == "'0' is out of range in positions[0].quantity; expected above 0"
    assert "missing required key 'wallet_balance'" in messages[3]
    assert "unknown key 'walet_balance'" in messages[4]
    column = found[0][2]
    assert lines[1][column - 1 :].startswith('"lnog"')


@pytest.mark.parametrize(
    ("line", "code", "words"),
    [
        ('{"id": "x", "wallet_balance": 1, "positions": [}', "E610", "not valid JSON"),
        ('{"id": "x", "wallet_balance": NaN, "positions": []}', "E610", "'NaN' is not a decimal"),
        ('{"id": "x", "id": "y", "wallet_balance": 1, "positions": []}', "E610", "duplicate key"),
        ("[1, 2]", "E103", "expected a mapping"),
        ('{"id": "", "wallet_balance": 1, "positions": []}', "E104", "must not be empty"),
        ('{"id": "x", "wallet_balance": 1e500, "positions": []}', "E104", "out of range"),
        ('{"id": "x", "wallet_balance": "1,5", "positions": []}', "E104", "not a valid value"),
        (GOOD.replace('"BTC/USDT"', '"BTCUSDT"'), "E104", "not a valid value"),
        (GOOD.replace('"leverage": 10', '"leverage": true'), "E103", "expected a number"),
        (
            GOOD.replace('"leverage": 10', '"leverage": 10, "isolated_margin": null'),
            "E103",
            "found null",
        ),
        (
            GOOD.replace('"leverage": 10', '"leverage": 10, "isolated_margin": 5'),
            "E613",
            "isolated_margin is given for a cross position",
        ),
        (
            GOOD.replace("}]}", "}, " + GOOD[GOOD.index('{"instrument') :]),
            "E612",
            "two long positions in BTC/USDT",
        ),
    ],
)
def test_each_jsonl_problem(line, code, words):
    found = diagnostics(GOOD + "\n" + line + "\n")
    assert [(c, n) for c, n, _, _ in found][:1] == [(code, 2)], found
    assert words in found[0][3]


def test_duplicate_account_ids():
    found = diagnostics(GOOD + "\n" + ISOLATED + "\n" + GOOD + "\n")
    assert [(c, n, col) for c, n, col, _ in found] == [("E611", 3, 8)]
    assert "account id 'a1' appears twice" in found[0][3]


def test_an_empty_book_is_an_error():
    assert diagnostics("\n  \n")[0][0] == "E616"
    assert diagnostics(HEADER + "\n", "b.csv")[0][0] == "E616"


def test_every_bad_csv_row_is_reported_at_once_with_line_and_column():
    text = (
        f"{HEADER}\n"
        "a1,1000,BTC/USDT,long,0.01,60000,cross,10,\n"
        "a3,-5,BTC/USDT,shrt,abc,0,cross,10,\n"
        "a2,50,BTC/USDT,short,0.5,60000,isolated,20,\n"
        "a2,51,ETH/USDT,long,1,2400,cross,3,\n"
        'a5,"1,5",BTC/USDT,long,1,1,cross,1\n'
        "a6,1,BTC/USDT,long,1,1,cross,1,2\n"
        "a7,1,BTC/USDT,long,1,1,isolated,1,\n"
        "a7,1,BTC/USDT,long,2,1,isolated,1,\n"
        ",1,,,,,,,\n"
    )
    found = diagnostics(text, "b.csv")
    assert [(c, n, col) for c, n, col, _ in found] == [
        ("E104", 3, 4),
        ("E104", 3, 16),
        ("E103", 3, 21),
        ("E104", 3, 25),
        ("E614", 5, 4),
        ("E615", 6, 1),
        ("E613", 7, 32),
        ("E612", 9, 6),
        ("E101", 10, 1),
    ]
    messages = [m for _, _, _, m in found]
    assert messages[0] == "'-5' is out of range in column wallet_balance; expected at least 0"
    assert messages[2] == "expected a number in column quantity, found 'abc'"
    assert messages[4] == "account 'a2' has wallet_balance 51 here but 50 at line 4"
    assert messages[5] == "line 6 has 8 cells, the header has 9"


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (HEADER.replace("leverage,", "levrage,"), "unknown column 'levrage'"),
        (HEADER.replace(",leverage", ""), "lacks column 'leverage'"),
        (HEADER + ",side", "column 'side' appears twice"),
        ('"account_id,' + HEADER, "cannot be read"),
    ],
)
def test_csv_header_problems(header, words):
    found = diagnostics(header + "\na,1,BTC/USDT,long,1,1,cross,1,\n", "b.csv")
    assert {(code, line) for code, line, _, _ in found} == {("E615", 1)}
    assert any(words in message for _, _, _, message in found), found


def test_misspelt_csv_column_gets_a_hint():
    with pytest.raises(InputError) as caught:
        read_book(HEADER.replace("leverage,", "levrage,") + "\n", "b.csv")
    hints = {d.message: d.hint for d in caught.value.diagnostics}
    assert hints["unknown column 'levrage' in the CSV header"] == "did you mean 'leverage'?"


def test_rendered_diagnostic_shows_the_line_and_caret():
    with pytest.raises(InputError) as caught:
        read_book(GOOD + "\n" + GOOD.replace('"long"', '"lnog"').replace('"a1"', '"b"'), "b.jsonl")
    text = str(caught.value)
    assert text.startswith("b.jsonl:2:")
    assert ' 2 | {"id": "b"' in text and "^~~~~~" in text


def _schema_rejects(data: Any) -> bool:
    return bool(schema_diagnostics(data, "book.schema.json", lambda pointer, key: None))


@pytest.mark.parametrize(
    "line",
    [
        GOOD,
        ISOLATED,
        GOOD.replace('"long"', '"lnog"'),
        GOOD.replace("1000.5", "-1"),
        GOOD.replace("1000.5", "0"),
        GOOD.replace('"quantity": 0.01', '"quantity": 0'),
        GOOD.replace('"quantity": 0.01', '"quantity": "-1"'),
        GOOD.replace('"quantity": 0.01', '"quantity": "1e3"'),
        GOOD.replace('"quantity": 0.01', '"quantity": "x"'),
        GOOD.replace('"cross"', '"Cross"'),
        GOOD.replace('"BTC/USDT"', '"BTC-USDT"'),
        GOOD.replace('"BTC/USDT"', "5"),
        GOOD.replace('"a1"', "1"),
        GOOD.replace('"a1"', '""'),
        GOOD.replace('"positions": [', '"extra": 1, "positions": ['),
        GOOD.replace('"leverage": 10', '"leverage": 10, "margin": 1'),
        GOOD.replace(', "leverage": 10', ""),
        GOOD.replace('"leverage": 10', '"leverage": [10]'),
        GOOD.replace('"leverage": 10', '"leverage": 10, "isolated_margin": null'),
        '{"id": "x", "wallet_balance": 1, "positions": {}}',
        '{"id": "x", "wallet_balance": 1, "positions": [1]}',
        '"text"',
        "[]",
        "null",
    ],
)
def test_fast_path_and_schema_agree(line):
    """The fast path may only accept what the schema accepts (its errors come from the schema)."""
    data = loads_exact(line, limits=False)
    try:
        _account_from_json(data, lambda *args: None)
    except _Malformed:
        assert _schema_rejects(data)
    else:
        assert not _schema_rejects(data)


# -- the generator -------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_differs():
    first = jsonl(generate_book(1000, 42))
    assert first == jsonl(generate_book(1000, 42))
    assert first != jsonl(generate_book(1000, 43))
    assert csv_text(generate_book(200, 42)) == csv_text(generate_book(200, 42))


def test_generated_book_is_a_valid_book_with_exact_grids():
    book = generate_book(2000, 3)
    assert read_book(jsonl(book), "g.jsonl").accounts == book.accounts
    assert [a.id for a in book.accounts[:2]] == ["acct-000001", "acct-000002"]
    steps = {"BTC/USDT": Decimal("0.001"), "ETH/USDT": Decimal("0.01")}
    ticks = {"BTC/USDT": Decimal("0.1"), "ETH/USDT": Decimal("0.01")}
    for account in book.accounts:
        assert account.wallet_balance >= 0
        assert account.wallet_balance == account.wallet_balance.quantize(Decimal("0.01"))
        assert len(account.positions) == 1
        for p in account.positions:
            assert p.quantity > 0 and p.quantity % steps[p.instrument] == 0
            assert p.entry_price % ticks[p.instrument] == 0
            assert p.leverage == p.leverage.to_integral_value()


def test_grids_follow_the_price():
    assert (quantity_step(Decimal(60000)), quantity_step(Decimal(122000))) == (
        Decimal("0.001"),
        Decimal("0.001"),
    )
    assert (quantity_step(Decimal(2400)), quantity_step(Decimal("0.5"))) == (
        Decimal("0.01"),
        Decimal(100),
    )
    assert (price_tick(Decimal(60000)), price_tick(Decimal(2400))) == (
        Decimal("0.1"),
        Decimal("0.01"),
    )


def test_distributions_are_realistic():
    book = generate_book(5000, 7)
    positions = [p for a in book.accounts for p in a.positions]
    sides = Counter(p.side for p in positions)
    assert 0.45 <= sides["long"] / len(positions) <= 0.65
    for instrument in ("BTC/USDT", "ETH/USDT"):
        mine = [p for p in positions if p.instrument == instrument]
        assert {p.side for p in mine} == {"long", "short"}
        assert {p.margin_mode for p in mine} == {"cross", "isolated"}
    modes = Counter(p.margin_mode for p in positions)
    assert 0.5 <= modes["cross"] / len(positions) <= 0.7
    leverages = [p.leverage for p in positions]
    assert min(leverages) >= 1 and max(leverages) == 125
    assert sum(1 for lev in leverages if 2 <= lev <= 20) / len(leverages) > 0.6
    assert sum(1 for lev in leverages if lev >= 50) / len(leverages) > 0.03
    notionals = sorted(p.quantity * p.entry_price for p in positions)
    assert notionals[0] >= 50 and notionals[-1] <= Decimal("5100000")
    median = notionals[len(notionals) // 2]
    assert 2500 <= median <= 10000
    assert notionals[-1] >= 500_000  # a few whales
    for p in positions:  # larger positions get less leverage
        if p.quantity * p.entry_price > 1_000_000:
            assert p.leverage <= 20


def test_margins_and_wallets():
    book = generate_book(3000, 9, instruments={"BTC/USDT": Decimal(60000)})
    for account in book.accounts:
        (p,) = account.positions
        margin = (p.quantity * p.entry_price / p.leverage).quantize(
            Decimal("0.01"), rounding=ROUND_CEILING
        )
        if p.margin_mode == "isolated":
            assert p.isolated_margin == margin
            assert account.wallet_balance <= margin * Decimal("0.26")
        else:
            assert p.isolated_margin is None
            assert account.wallet_balance >= margin - Decimal("0.01")
        # nobody starts close to liquidation: about a quarter of the margin lost at most
        direction = 1 if p.side == "long" else -1
        loss = -direction * p.quantity * (Decimal(60000) - p.entry_price)
        assert loss <= margin * Decimal("0.26") + p.quantity * Decimal("0.1")


def test_multi_instrument_share():
    assert all(len(a.positions) == 1 for a in generate_book(300, 1).accounts)
    every = generate_book(300, 1, multi_instrument_share=Decimal(1))
    assert all(
        [p.instrument for p in a.positions] == ["BTC/USDT", "ETH/USDT"] for a in every.accounts
    )
    some = generate_book(2000, 1, multi_instrument_share=Decimal("0.3"))
    share = sum(1 for a in some.accounts if len(a.positions) > 1) / 2000
    assert 0.25 <= share <= 0.35
    assert all(len({p.margin_mode for p in a.positions}) == 1 for a in some.accounts)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"accounts": 0, "seed": 1},
        {"accounts": 1, "seed": 1, "instruments": {}},
        {"accounts": 1, "seed": 1, "instruments": {"X/Y": Decimal(0)}},
        {"accounts": 1, "seed": 1, "multi_instrument_share": Decimal(2)},
    ],
)
def test_generator_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        generate_book(**kwargs)


def test_100k_accounts_generate_in_reasonable_time():
    start = time.perf_counter()
    book = generate_book(100_000, 7)
    elapsed = time.perf_counter() - start
    print(f"\ngenerated 100,000 accounts in {elapsed:.1f} s")
    assert len(book.accounts) == 100_000
    assert book.accounts[-1].id == "acct-100000"
    assert elapsed < 60


def test_summary_counts_everything():
    summary = summarize_book(read_book(GOOD + "\n" + ISOLATED, "b.jsonl"))
    assert (summary["accounts"], summary["positions"]) == (2, 2)
    assert summary["notional"] == Decimal("600") + Decimal("3600.150")
    btc = summary["instruments"]["BTC/USDT"]
    assert (btc["long"], btc["short"], btc["cross"], btc["isolated"]) == (1, 0, 1, 0)


# -- the command line ------------------------------------------------------------------------


def test_cli_generate_is_deterministic_and_check_summarises(tmp_path, capsys):
    out = tmp_path / "b.jsonl"
    assert main(["book", "generate", "--accounts", "50", "--seed", "3", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == jsonl(generate_book(50, 3))
    assert main(["book", "generate", "--accounts", "50", "--seed", "3"]) == 0
    assert capsys.readouterr().out == out.read_text(encoding="utf-8")
    assert main(["book", "check", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"ok: {out}: 50 accounts, 50 positions")
    assert "BTC/USDT" in text and "ETH/USDT" in text
    assert main(["book", "check", str(out), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["accounts"] == 50 and isinstance(data["notional"], str)


def test_cli_generate_csv_with_instruments_and_scenario(tmp_path, capsys):
    out = tmp_path / "b.csv"
    assert (
        main(
            [
                "book",
                "generate",
                "--accounts",
                "20",
                "--seed",
                "1",
                "--instrument",
                "SOL/USDT=150",
                "--multi-instrument-share",
                "0",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    book = load_book(out)
    assert {p.instrument for a in book.accounts for p in a.positions} == {"SOL/USDT"}
    assert (
        main(
            [
                "book",
                "generate",
                "--accounts",
                "5",
                "--seed",
                "7",
                "--instrument",
                "BTC/USDT=122000",
            ]
        )
        == 0
    )
    demo_head = (ROOT / "books" / "demo.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    assert capsys.readouterr().out.splitlines() == demo_head


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--accounts", "0", "--seed", "1"], "--accounts must lie between"),
        (["--accounts", "1", "--seed", "1", "--instrument", "BTCUSDT=1"], "BASE/QUOTE=PRICE"),
        (["--accounts", "1", "--seed", "1", "--instrument", "B/U=-1"], "must be positive"),
        (["--accounts", "1", "--seed", "1", "--instrument", "B/U=x"], "not a decimal number"),
        (
            ["--accounts", "1", "--seed", "1", "--instrument", "B/U=1", "--instrument", "B/U=2"],
            "given twice",
        ),
        (["--accounts", "1", "--seed", "1", "--instrument", "B/U=0"], "must be positive"),
        (["--accounts", "1", "--seed", "1", "--multi-instrument-share", "1.5"], "between 0 and 1"),
        (
            [
                "--accounts",
                "1",
                "--seed",
                "1",
                "--scenario",
                "short-squeeze",
                "--instrument",
                "B/U=1",
            ],
            "the start price comes from the scenario",
        ),
    ],
)
def test_cli_generate_usage_errors(argv, words, capsys):
    assert main(["book", "generate", *argv]) == 2
    assert words in capsys.readouterr().err


def test_cli_check_reports_every_bad_line(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text(GOOD + "\n" + GOOD.replace('"long"', '"lnog"') + "\n{oops\n", encoding="utf-8")
    assert main(["book", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2:" in err and f"{path}:3:" in err and "error[E610]" in err
