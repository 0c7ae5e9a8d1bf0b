"""The decision log: one JSON line per decision with id, time, endpoint, policy and digest,
input, result or error, status and duration."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from engine.policy.load import load_policy

EVALUATE = "/v1/policies/binance-usdm/evaluate"


def _lines(path: Path) -> list[dict]:
    return [
        json.loads(line, parse_float=Decimal, parse_int=Decimal)
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def test_decision_log_records_each_decision(make_service, tmp_path, alice, client_for):

    log = tmp_path / "decisions.jsonl"
    running = make_service(decision_log=log)
    client = client_for(running.port)
    # the input exactly as sent: a number with trailing zeros and pretty-printing across lines
    pretty = json.dumps({**alice, "wallet_balance": 10000.50}, indent=2).replace(
        "10000.5", "10000.50"
    )
    first = client.post(EVALUATE, pretty)
    second = client.post(
        "/v1/policies/binance-usdm/liquidation-price",
        {"symbol": "BTCUSDT", "side": "short", "size": 1, "entry_price": 60000, "leverage": 20},
    )
    third = client.post(EVALUATE, {"wallet_balance": "x", "positions": []})
    fourth = client.post("/v1/policies/nope/evaluate", alice)
    fifth = client.post(EVALUATE, "{oops")
    client.get("/v1/policies")  # not a decision
    assert [r.status for r in (first, second, third, fourth, fifth)] == [200, 200, 422, 404, 400]

    records = _lines(log)
    assert len(records) == 5
    policy = load_policy("binance-usdm")
    for record, reply in zip(records, (first, second, third, fourth, fifth), strict=True):
        assert uuid.UUID(record["decision_id"]).version == 4
        assert record["decision_id"] == reply.headers["liqpolicy-decision-id"]
        stamp = datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
        offset = stamp.utcoffset()
        assert offset is not None and offset.total_seconds() == 0
        assert record["status"] == reply.status
        assert record["duration_ms"] >= 0
        assert record["cached"] is False

    ok, quote, invalid, unknown, malformed = records
    assert ok["endpoint"] == "evaluate"
    assert ok["policy"] == {"id": "binance-usdm", "digest": policy.digest}
    assert ok["input"]["wallet_balance"] == Decimal("10000.50")
    assert str(ok["input"]["wallet_balance"]) == "10000.50"  # spliced as sent, not re-formatted
    assert ok["result"] == json.loads(first.body, parse_float=Decimal, parse_int=Decimal)
    assert ok["error"] is None

    assert quote["endpoint"] == "liquidation-price"
    assert quote["input"]["side"] == "short"
    assert quote["result"]["liquidation_price"] == second.json["liquidation_price"]

    assert invalid["result"] is None
    assert invalid["error"]["status"] == 422
    assert invalid["error"]["diagnostics"][0]["code"] == "E104"
    assert invalid["input"] == {"wallet_balance": "x", "positions": []}

    assert unknown["policy"] == {"id": "nope", "digest": None}
    assert unknown["error"]["status"] == 404

    assert malformed["input"] is None
    assert malformed["input_text"] == "{oops"
    assert malformed["error"]["diagnostics"][0]["code"] == "E010"


def test_decision_log_marks_cached_answers(make_service, tmp_path, alice, client_for):

    log = tmp_path / "decisions.jsonl"
    running = make_service(decision_log=log, cache_entries=8)
    client = client_for(running.port)
    replies = [client.post(EVALUATE, alice) for _ in range(2)]
    assert replies[0].body == replies[1].body
    first, second = _lines(log)
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["decision_id"] != second["decision_id"]
    assert first["result"] == second["result"]
    assert second["input"] == first["input"]


def test_decision_log_is_off_by_default(service, tmp_path):
    assert service.app.decision_log is None
