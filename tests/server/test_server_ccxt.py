"""The HTTP service takes accounts in ccxt's shapes too (issue 11): the server calls
`parse_account`, which converts them (engine/mechanics/ccxt_accounts.py)."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ccxt" / "binance-account.json"


def test_evaluate_a_ccxt_account(client):
    reply = client.post("/v1/policies/binance-usdm/evaluate", json.loads(FIXTURE.read_text()))
    assert reply.status == 200, reply.body
    assert reply.json["account"] == "bot-7"
    # hand-derived in tests/mechanics/test_ccxt_accounts.py
    assert [p["liquidation_price"] for p in reply.json["positions"]] == ["51330.6", "3860.06"]


def test_a_ccxt_problem_is_a_422(client):
    data = json.loads(FIXTURE.read_text())
    data["ccxt"]["positions"][0]["symbol"] = "DOGE/USD:DOGE"
    reply = client.post("/v1/policies/binance-usdm/evaluate", data)
    assert reply.status == 422
    assert [d["code"] for d in reply.json["diagnostics"]] == ["E618"]
