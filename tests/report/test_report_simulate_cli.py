"""`liqpolicy simulate`: text and JSON summaries, --events and --output (progress: tests/test_terminal.py)."""

from __future__ import annotations

import json

from engine.cli import main
from engine.errors import ConservationError

SUMMARY_KEYS = {
    "policy",
    "title",
    "digest",
    "scenario",
    "accounts",
    "steps",
    "accounts_liquidated",
    "liquidated_notional",
    "fees_total",
    "fees",
    "margin_returned",
    "insurance_fund",
    "adl_count",
    "adl_volume",
    "adl_haircut",
    "clawback_rate",
    "bad_debt",
    "write_offs",
    "debt_outstanding",
    "fee_revenue",
    "charges",
    "where_the_money_went",
    "conservation_error",
}


def call(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_simulate_text_summary(capsys, book_path, scenario_path):
    code, out, err = call(
        capsys, "simulate", "binance-usdm", "--book", book_path, "--scenario", scenario_path
    )
    assert code == 0, err
    assert err == ""  # no progress bar outside a terminal
    assert out.startswith("Policy binance-usdm: ")
    assert "Scenario mini-crash: 31 steps, 50 accounts" in out
    for label in (
        "Accounts liquidated",
        "partially",
        "fully",
        "Liquidated notional",
        "Liquidation fees",
        "surcharges",
        "Margin returned to traders",
        "Insurance fund start",
        "lowest any pool fell to",
        "ADL deleverages",
        "Clawback rate",
        "Bad debt",
        "Where the liquidated money went",
        "counterparties",
        "write-off",
    ):
        assert label in out, label
    conservation = next(line for line in out.splitlines() if line.startswith("Conservation error"))
    assert conservation.split()[-1] == "0"
    assert "Liquidations (" not in out


def test_simulate_text_with_events_lists_liquidations(
    capsys, book_path, scenario_path, clawback_policy_path
):
    code, out, _ = call(
        capsys, "simulate", clawback_policy_path, "-b", book_path, "-s", scenario_path, "--events"
    )
    assert code == 0
    assert "Liquidations (" in out
    assert "Clawbacks:" in out  # the fixture's crash exhausts the fund: clawback


def test_simulate_json(capsys, book_path, scenario_path):
    code, out, _ = call(
        capsys,
        "simulate",
        "binance-usdm",
        "--book",
        book_path,
        "--scenario",
        scenario_path,
        "--format",
        "json",
    )
    assert code == 0
    data = json.loads(out)
    assert set(data) >= SUMMARY_KEYS
    assert data["conservation_error"] == "0"
    assert set(data["insurance_fund"]) == {"start", "min", "end"}
    assert isinstance(data["fees_total"], str)
    assert data["insurance_fund_series"][0][0] == 0
    assert "events" not in data
    total = data["accounts_liquidated"]
    assert total["total"] == total["partial"] + total["full"] > 0


def test_simulate_json_events(capsys, book_path, scenario_path):
    code, out, _ = call(
        capsys,
        "simulate",
        "binance-usdm",
        "--book",
        book_path,
        "--scenario",
        scenario_path,
        "--format",
        "json",
        "--events",
    )
    assert code == 0
    data = json.loads(out)
    assert data["events"] and "fates" in data and "deleverages" in data


def test_simulate_output_file(capsys, tmp_path, book_path, scenario_path):
    target = tmp_path / "run.json"
    code, out, err = call(
        capsys,
        "simulate",
        "binance-usdm",
        "--book",
        book_path,
        "--scenario",
        scenario_path,
        "--format",
        "json",
        "--output",
        str(target),
    )
    assert code == 0
    assert out == ""
    assert f"wrote {target}" in err
    assert json.loads(target.read_text(encoding="utf-8"))["conservation_error"] == "0"


def test_simulate_requires_book_and_scenario(capsys):
    code, _, err = call(capsys, "simulate", "binance-usdm")
    assert code == 2
    assert "--book" in err


def test_simulate_unknown_instrument_is_an_input_error(capsys, tmp_path, scenario_path):
    book = tmp_path / "eth.jsonl"
    book.write_text(
        json.dumps(
            {
                "id": "x",
                "wallet_balance": "100",
                "positions": [
                    {
                        "instrument": "ETH/USDT",
                        "side": "long",
                        "quantity": "1",
                        "entry_price": "4000",
                        "margin_mode": "cross",
                        "leverage": "10",
                    }
                ],
            }
        )
        + "\n",
        encoding="utf-8",
    )
    code, out, err = call(
        capsys, "simulate", "huobi-linear-swap", "--book", str(book), "--scenario", scenario_path
    )
    assert code == 2
    assert out == ""
    assert "E620" in err


def test_a_conservation_failure_is_an_internal_error_exit_3(
    capsys, monkeypatch, book_path, scenario_path
):
    """A leak means liqpolicy is wrong, not the input: exit 3 and a bug report, never exit 2."""

    def leak(self, time):
        raise ConservationError(f"money is not conserved at t={time}")

    monkeypatch.setattr("engine.simulation.simulate._Simulation.check_conservation", leak)
    code, out, err = call(
        capsys, "simulate", "binance-usdm", "--book", book_path, "--scenario", scenario_path
    )
    assert code == 3
    assert out == ""
    assert "internal error" in err and "ConservationError" in err and "not conserved" in err
