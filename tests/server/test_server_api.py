"""Happy paths of every endpoint, over real HTTP, each answer validated against the OpenAPI
document; the answers are the same documents the CLI prints."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import evaluate_account
from engine.mechanics.quote import quote_prices
from engine.policy.load import load_policy
from engine.policy.packaged import shipped_policy_paths
from engine.server.routes import ROUTES

ROOT = Path(__file__).resolve().parents[2]
EVALUATE = "/v1/policies/binance-usdm/evaluate"
QUOTE = "/v1/policies/binance-usdm/liquidation-price"


def exact(text: str | bytes) -> object:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def test_health(client):
    reply = client.get("/healthz")
    assert reply.status == 200
    assert reply.content_type == "application/json"
    assert reply.json["status"] == "ok"
    assert reply.json["policies"] == len(shipped_policy_paths())


def test_openapi_served_is_the_file(client):
    reply = client.get("/openapi.json")
    assert reply.status == 200
    assert reply.body == (ROOT / "schemas" / "openapi.json").read_bytes()
    for name in ("account.schema.json", "book.schema.json"):
        assert client.get(f"/{name}").body == (ROOT / "schemas" / name).read_bytes()


def test_openapi_document_is_sound(openapi):
    document = openapi.document
    assert document["openapi"].startswith("3.1")
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        # every reference resolves: validating anything walks the $refs lazily, so resolve them
        openapi.validator({"$ref": f"#/components/schemas/{name}"})
    # the evaluate body is the account file format itself
    body = document["paths"]["/v1/policies/{policy_id}/evaluate"]["post"]["requestBody"]
    account = body["content"]["application/json"]["schema"]["$ref"]
    assert (
        document["components"]["schemas"][account.rsplit("/", 1)[1]]["$ref"]
        == "account.schema.json"
    )


def test_openapi_documents_every_route(openapi):
    documented = {
        (template, method.upper())
        for template, item in openapi.document["paths"].items()
        for method in item
        if method != "parameters"
    }
    served = set()
    for route in ROUTES:
        template = route.pattern.pattern.strip("^$").replace("(?P<policy_id>[^/]+)", "{policy_id}")
        served |= {(template, method) for method in route.methods}
    assert served == documented


def test_openapi_spec_validator(openapi):
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(openapi.document, base_uri=str((ROOT / "schemas" / "openapi.json").as_uri()))


def test_list_policies(client):
    reply = client.get("/v1/policies")
    assert reply.status == 200
    listed = {p["id"]: p for p in reply.json["policies"]}
    usdm = load_policy("binance-usdm")
    assert listed["binance-usdm"]["digest"] == usdm.digest
    assert listed["binance-usdm"]["source_count"] == len(usdm.sources)
    assert listed["binance-usdm"]["title"] == usdm.title
    assert reply.json["source"] == "shipped"


def test_get_policy(client):
    reply = client.get("/v1/policies/binance-usdm")
    assert reply.status == 200
    detail = reply.json
    usdm = load_policy("binance-usdm")
    assert detail["digest"] == usdm.digest
    assert [s["url"] for s in detail["sources"]] == [s.url for s in usdm.sources]
    markets = {m["symbol"]: m for m in detail["markets"]}
    assert set(markets) == set(usdm.markets)
    assert markets["BTCUSDT"]["tiers"]["rows"][0]["min_notional"] == "0"
    assert markets["BTCUSDT"]["tick_size"] == str(usdm.markets["BTCUSDT"].tick_size)


def test_head_has_headers_only(client):
    reply = client.request("HEAD", "/healthz")
    assert reply.status == 200
    assert reply.body == b""
    assert int(reply.headers["content-length"]) > 0


def test_evaluate_matches_the_engine(client, alice):
    reply = client.post(EVALUATE, alice)
    assert reply.status == 200
    policy = load_policy("binance-usdm")
    expected = evaluate_account(policy, parse_account(exact(json.dumps(alice)), policy)).as_dict()
    assert reply.json == json.loads(json.dumps(expected))
    assert reply.json["trace"] == []
    assert reply.headers["liqpolicy-policy-digest"] == policy.digest
    assert len(reply.headers["liqpolicy-decision-id"]) == 36


def test_evaluate_with_trace_matches_the_cli(client):
    """The same document `liqpolicy evaluate --format json` prints (it always traces)."""
    reply = client.post(EVALUATE + "?trace=true", (ROOT / "examples" / "alice.json").read_bytes())
    assert reply.status == 200
    assert reply.json["trace"]
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "evaluate",
            "binance-usdm",
            "examples/alice.json",
            "--format",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert reply.json == json.loads(cli.stdout)


def test_evaluate_liquidation_statement(client):
    """An account past its trigger: the liquidation and the account after it come back."""
    erin = {
        "id": "erin",
        "wallet_balance": 0,
        "positions": [
            {
                "symbol": "BTCUSDT",
                "side": "long",
                "size": 2,
                "entry_price": 60000,
                "margin_mode": "isolated",
                "isolated_margin": 12000,
                "leverage": 10,
            }
        ],
        "market": {
            "BTCUSDT": {
                "mark_price": 54200,
                "last_price": 54150,
                "book_depth": 2500000,
                "average_book_depth": 5000000,
                "previous_mark_price": 56000,
            }
        },
    }
    reply = client.post(EVALUATE, erin)
    assert reply.status == 200
    assert reply.json["triggered"] is True
    assert reply.json["liquidations"]
    assert reply.json["liquidations"][0]["statement"]["reconciles"] is True
    assert reply.json["account_after"]["id"] == "erin"


def test_evaluate_numbers_are_exact(client):
    """JSON numbers are read from their text: 0.1 stays 0.1 (no binary float on the way)."""
    body = (
        '{"id":"x","wallet_balance":1000.1,"positions":[{"symbol":"BTCUSDT","side":"long",'
        '"size":0.1,"entry_price":60000.3,"margin_mode":"cross","leverage":10}],'
        '"market":{"BTCUSDT":{"mark_price":60000.7}}}'
    )
    reply = client.post(EVALUATE, body)
    assert reply.status == 200
    position = reply.json["positions"][0]
    assert position["size"] == "0.1"
    assert position["notional"] == "6000.07"


def test_liquidation_price_matches_the_cli(client):
    body = {
        "symbol": "BTCUSDT",
        "side": "long",
        "size": "2",
        "entry_price": "60000",
        "leverage": "10",
    }
    reply = client.post(QUOTE, body)
    assert reply.status == 200
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "liq-price",
            "binance-usdm",
            "--symbol",
            "BTCUSDT",
            "--side",
            "long",
            "--size",
            "2",
            "--entry",
            "60000",
            "--leverage",
            "10",
            "--format",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert reply.json == json.loads(cli.stdout)
    assert reply.json["policy"] == "binance-usdm"


def test_liquidation_price_cross_with_margin_and_numbers(client):
    policy = load_policy("binance-usdm")
    body = {
        "symbol": "ETHUSDT",
        "side": "short",
        "size": 10,
        "entry_price": 3000,
        "margin": 5000,
        "mode": "cross",
        "mark_price": 3100,
    }
    reply = client.post(QUOTE, body)
    assert reply.status == 200
    expected = quote_prices(
        policy,
        symbol="ETHUSDT",
        side="short",
        size=Decimal(10),
        entry_price=Decimal(3000),
        margin=Decimal(5000),
        mode="cross",
        mark_price=Decimal(3100),
    )
    assert reply.json == {"policy": "binance-usdm", **json.loads(json.dumps(expected.as_dict()))}


def test_other_policies_evaluate(client):
    huobi = load_policy("huobi-linear-swap")
    symbol = next(iter(huobi.markets))
    account = {
        "id": "h",
        "wallet_balance": "5000",
        "positions": [
            {
                "symbol": symbol,
                "side": "short",
                "size": "100",
                "entry_price": "60000",
                "margin_mode": "cross",
                "leverage": "20",
            }
        ],
        "market": {symbol: {"mark_price": "61000", "last_price": "61000", "index_price": "61000"}},
    }
    reply = client.post("/v1/policies/huobi-linear-swap/evaluate", account)
    assert reply.status == 200, reply.body
    assert reply.json["policy"] == {"id": huobi.id, "digest": huobi.digest}


def test_a_margin_account_with_fields_evaluates_and_answers_its_fields(client):
    """binance-cross-margin's forced-sale example: the account after the liquidation keeps its
    declared fields (the answer is validated against schemas/openapi.json)."""
    account = {
        "id": "m",
        "wallet_balance": "1998.8",
        "fields": {"borrowed": "4000", "interest": "1.2"},
        "positions": [
            {
                "symbol": "BTCUSDT",
                "side": "long",
                "size": "0.1",
                "entry_price": "60000",
                "margin_mode": "cross",
                "leverage": "3",
            }
        ],
        "market": {"BTCUSDT": {"mark_price": "44000", "book_depth": "10000000"}},
    }
    reply = client.post("/v1/policies/binance-cross-margin/evaluate", account)
    assert reply.status == 200, reply.body
    assert reply.json["triggered"] is True
    assert reply.json["account_after"]["fields"] == {"borrowed": "4000", "interest": "1.2"}
    assert reply.json["account_after"]["wallet_balance"] == "309.832"


def test_keep_alive_serves_many_requests_on_one_connection(service, alice):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
    try:
        for index in range(5):
            account = {**alice, "id": f"alice-{index}"}
            connection.request(
                "POST",
                EVALUATE,
                body=json.dumps(account),
                headers={"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["account"] == f"alice-{index}"
            connection.request("GET", "/nope")
            response = connection.getresponse()
            assert response.status == 404
            response.read()
    finally:
        connection.close()


def test_decision_cache_answers_the_same(make_service, alice):
    """With the cache on, a repeated request gets the identical answer without the engine."""
    import http.client

    running = make_service(cache_entries=16)
    bodies = []
    for _ in range(3):
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=60)
        connection.request(
            "POST", EVALUATE, body=json.dumps(alice), headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        assert response.status == 200
        bodies.append(response.read())
        connection.close()
    assert bodies[0] == bodies[1] == bodies[2]
    assert running.app.cache.hits == 2


def test_compare_matches_the_cli(client, tmp_path):
    """A small book through a shipped scenario: the document `liqpolicy compare` prints."""
    lines = [
        line
        for line in (ROOT / "books" / "demo.jsonl").read_text(encoding="utf-8").splitlines()
        if "ETH/USDT" not in line
    ][:12]
    book = tmp_path / "small.jsonl"
    book.write_text("\n".join(lines) + "\n", encoding="utf-8")
    body = {
        "policies": ["binance-usdm", "huobi-linear-swap"],
        "accounts": [exact(line) for line in lines],
        "scenario": "flash-crash-2025-10-10",
        "limit": 5,
    }
    reply = client.post("/v1/compare", json.dumps(body, default=str))
    assert reply.status == 200, reply.body[:500]
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "compare",
            "binance-usdm",
            "huobi-linear-swap",
            "--book",
            str(book),
            "--scenario",
            "flash-crash-2025-10-10",
            "--limit",
            "5",
            "--format",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    expected = json.loads(cli.stdout)
    assert reply.json["book"]["accounts"] == expected["book"]["accounts"] == 12
    assert reply.json["book"]["path"] == "<request>"
    for key in ("scenario", "policies", "differences", "leverage_curve"):
        assert reply.json[key] == expected[key], key
