"""A bounded concurrent load on the real server (two worker processes): 200 clients x 5
requests, no 5xx, every request answered exactly once and correctly, in bounded time."""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from decimal import Decimal

import pytest

from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import evaluate_account
from engine.mechanics.quote import quote_prices
from engine.policy.load import load_policy

CLIENTS = 200
REQUESTS = 5
DEADLINE = 240.0  # seconds for the whole load; the test fails rather than hang


@pytest.mark.skipif(sys.platform == "win32", reason="worker processes need fork")
def test_two_hundred_clients(spawn, alice):
    server = spawn("--workers", "2", "--cache", "0")
    # What each answer must be, computed here one at a time: threads must not disturb each other.
    policy = load_policy("binance-usdm")
    account = json.loads(json.dumps(alice), parse_float=Decimal, parse_int=Decimal)
    reference = json.loads(
        json.dumps(evaluate_account(policy, parse_account(account, policy)).as_dict())
    )
    quotes = {
        size: {
            "policy": policy.id,
            **json.loads(
                json.dumps(
                    quote_prices(
                        policy,
                        symbol="BTCUSDT",
                        side="long",
                        size=Decimal(size),
                        entry_price=Decimal(60000),
                        leverage=Decimal(10),
                    ).as_dict()
                )
            ),
        }
        for size in range(1, 8)
    }
    answers: dict[str, list[int]] = {}
    problems: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS, timeout=60)

    def client(number: int) -> None:
        # Half the clients keep one connection for their five requests, half open one each.
        keep = number % 2 == 0
        connection = None
        try:
            start.wait()
            for index in range(REQUESTS):
                request_id = f"c{number}-r{index}"
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
                if index == 2:
                    path, body = (
                        "/v1/policies/binance-usdm/liquidation-price",
                        json.dumps(
                            {
                                "symbol": "BTCUSDT",
                                "side": "long",
                                "size": str(1 + number % 7),
                                "entry_price": "60000",
                                "leverage": "10",
                            }
                        ),
                    )
                else:
                    path = "/v1/policies/binance-usdm/evaluate"
                    body = json.dumps({**alice, "id": request_id})
                connection.request(
                    "POST",
                    path,
                    body=body,
                    headers={"Content-Type": "application/json", "X-Request": request_id},
                )
                response = connection.getresponse()
                payload = json.loads(response.read())
                if response.status == 200 and index == 2:
                    if payload != quotes[1 + number % 7]:
                        raise AssertionError(f"{request_id}: wrong quote {payload}")
                elif response.status == 200:
                    if payload["account"] != request_id:
                        raise AssertionError(
                            f"{request_id} got the answer for {payload['account']}"
                        )
                    if {**payload, "account": "alice"} != reference:
                        raise AssertionError(f"{request_id}: the answer differs from the engine's")
                with lock:
                    answers.setdefault(request_id, []).append(response.status)
                if not keep:
                    connection.close()
                    connection = None
        except Exception as error:  # collected and reported below
            with lock:
                problems.append(f"client {number}: {type(error).__name__}: {error}")
        finally:
            if connection is not None:
                connection.close()

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, DEADLINE - (time.monotonic() - began)))
    elapsed = time.monotonic() - began
    assert not any(t.is_alive() for t in threads), f"load did not finish in {DEADLINE} s"
    assert not problems, problems[:5]
    assert len(answers) == CLIENTS * REQUESTS  # every request answered ...
    assert all(len(statuses) == 1 for statuses in answers.values())  # ... exactly once
    statuses = [s for each in answers.values() for s in each]
    assert all(s == 200 for s in statuses), {s: statuses.count(s) for s in set(statuses)}
    assert elapsed < DEADLINE
    assert server.client.get("/healthz").status == 200
    assert server.stop() == 0
