"""Every error class answered as RFC 9457 problem details with the CLI's diagnostics; bad input
never gets a 5xx."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import ConservationError
from engine.server.wire import Request

EVALUATE = "/v1/policies/binance-usdm/evaluate"
QUOTE = "/v1/policies/binance-usdm/liquidation-price"
PROBLEM = "application/problem+json"


def assert_problem(reply, status: int) -> dict:
    assert reply.status == status, reply.body
    assert reply.content_type == PROBLEM
    problem = reply.json
    assert problem["status"] == status
    assert problem["type"].startswith("/problems/")
    assert problem["instance"] == reply.path.split("?")[0]
    assert isinstance(problem["title"], str) and isinstance(problem["detail"], str)
    for diagnostic in problem["diagnostics"]:
        assert set(diagnostic) == {
            "path",
            "line",
            "column",
            "end_line",
            "end_column",
            "severity",
            "code",
            "message",
            "hint",
        }
    return dict(problem)


def codes(problem: dict) -> list[str]:
    return [d["code"] for d in problem["diagnostics"]]


# -- 400 malformed --------------------------------------------------------------------------------


def test_malformed_json_is_located(client):
    problem = assert_problem(client.post(EVALUATE, '{"wallet_balance": 1,\n "positions": [}'), 400)
    (diagnostic,) = problem["diagnostics"]
    assert diagnostic["code"] == "E010"
    assert (diagnostic["path"], diagnostic["line"], diagnostic["column"]) == ("<request>", 2, 16)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "E010"),
        (b"   ", "E010"),
        (b'{"wallet_balance": NaN, "positions": []}', "E010"),
        (b'{"wallet_balance": 1, "wallet_balance": 2, "positions": []}', "E011"),
        (b'{"wallet_balance": "\xff"}', "E001"),
        (b"[" * 100_000 + b"]" * 100_000, "E014"),
    ],
)
def test_malformed_bodies(client, body, code):
    problem = assert_problem(client.post(EVALUATE, body), 400)
    assert codes(problem) == [code]


def test_duplicate_key_is_located(client):
    problem = assert_problem(client.post(EVALUATE, '{"positions": [],\n "positions": []}'), 400)
    assert problem["diagnostics"][0]["line"] == 2


# -- 422 wrong types and values -------------------------------------------------------------------


def test_schema_errors_match_the_cli_diagnostics(client):
    body = (
        '{"wallet_balance": "lots",\n "positions": [{"symbol": "BTCUSDT", "side": "lnog",'
        ' "size": 1, "entry_price": 60000, "margin_mode": "isolated", "leverage": 10}],'
        ' "colour": 1}'
    )
    problem = assert_problem(client.post(EVALUATE, body), 422)
    found = {(d["code"], d["line"]) for d in problem["diagnostics"]}
    assert found == {("E104", 1), ("E104", 2), ("E102", 2)}
    side = next(d for d in problem["diagnostics"] if "lnog" in d["message"])
    assert side["hint"] == "did you mean 'long'?"


def test_account_errors(client):
    body = {
        "wallet_balance": 1,
        "positions": [
            {
                "symbol": "BTCUSDX",
                "side": "long",
                "size": 1,
                "entry_price": 1,
                "margin_mode": "cross",
                "leverage": 1,
            }
        ],
    }
    problem = assert_problem(client.post(EVALUATE, body), 422)
    assert codes(problem) == ["E602"]
    assert "BTCUSDT" in problem["diagnostics"][0]["hint"]


@pytest.mark.parametrize("number", ["1" * 80, "1e999999999", '"1e999999999"', '"' + "9" * 70 + '"'])
def test_numbers_out_of_range_are_422(client, number):
    body = (
        '{"wallet_balance": ' + number + ', "positions": [{"symbol": "BTCUSDT", "side": "long", '
        '"size": 1, "entry_price": 60000, "margin_mode": "cross", "leverage": 10}], '
        '"market": {"BTCUSDT": {"mark_price": 60000}}}'
    )
    problem = assert_problem(client.post(EVALUATE, body), 422)
    assert codes(problem) == ["E015"]


def test_wrong_top_level_type(client):
    problem = assert_problem(client.post(EVALUATE, "[1, 2]"), 422)
    assert codes(problem) == ["E103"]


def test_evaluation_error_is_422(client):
    """A value the policy cannot compute (no market data for a cross position's symbol)."""
    body = {
        "wallet_balance": 1,
        "positions": [
            {
                "symbol": "BTCUSDT",
                "side": "long",
                "size": 1,
                "entry_price": 1,
                "margin_mode": "cross",
                "leverage": 1,
            }
        ],
    }
    problem = assert_problem(client.post(EVALUATE, body), 422)
    assert codes(problem) == ["E603"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"symbol": "BTCUSDT", "side": "long", "size": 1, "entry_price": 60000}, "E606"),
        (
            {
                "symbol": "BTCUSDT",
                "side": "long",
                "size": 1,
                "entry_price": 60000,
                "leverage": 5,
                "margin": 9,
            },
            "E606",
        ),
        (
            {"symbol": "BTCUSDT", "side": "up", "size": 1, "entry_price": 60000, "leverage": 5},
            "E104",
        ),
        (
            {"symbol": "BTCUSDT", "side": "long", "size": 0, "entry_price": 60000, "leverage": 5},
            "E104",
        ),
        (
            {
                "symbol": "BTCUSDT",
                "side": "long",
                "size": True,
                "entry_price": 60000,
                "leverage": 5,
            },
            "E103",
        ),
        (
            {
                "symbol": "BTCUSDT",
                "side": "long",
                "size": 1,
                "entry_price": 60000,
                "leverage": 5,
                "x": 1,
            },
            "E102",
        ),
        ({"symbol": "XYZUSDT", "side": "long", "size": 1, "entry_price": 1, "leverage": 5}, "E602"),
        (
            {
                "symbol": "BTCUSDT",
                "side": "long",
                "size": 1,
                "entry_price": 60000,
                "margin": 5,
                "mode": "cross",
                "wallet": "x",
            },
            "E104",
        ),
    ],
)
def test_liquidation_price_errors(client, body, code):
    problem = assert_problem(client.post(QUOTE, body), 422)
    assert code in codes(problem)


@pytest.mark.parametrize("query", ["?trace=maybe", "?verbose=1", "?trace=true&tracee=1"])
def test_query_errors(client, alice, query):
    assert_problem(client.post(EVALUATE + query, alice), 422)


# -- 404, 405 -------------------------------------------------------------------------------------


def test_unknown_policy(client, alice):
    problem = assert_problem(client.post("/v1/policies/binance-usdn/evaluate", alice), 404)
    assert problem["hint"].startswith("did you mean 'binance-usdm'")
    assert_problem(client.get("/v1/policies/nope"), 404)
    assert_problem(client.post("/v1/policies/nope/liquidation-price", {}), 404)


@pytest.mark.parametrize(
    "path", ["/", "/v1", "/v1/policies/", "/v2/policies", "/v1/policies/a/b/c"]
)
def test_unknown_route(client, path):
    assert_problem(client.get(path), 404)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", EVALUATE, "POST"),
        ("DELETE", "/v1/policies", "GET, HEAD"),
        ("PUT", "/v1/policies/binance-usdm", "GET, HEAD"),
        ("POST", "/healthz", "GET, HEAD"),
        ("GET", "/v1/reload", "POST"),
        ("PATCH", "/v1/compare", "POST"),
    ],
)
def test_wrong_method(client, method, path, allow):
    reply = client.request(method, path)
    assert_problem(reply, 405)
    assert reply.headers["allow"] == allow


def test_a_method_http_does_not_define_is_a_malformed_request(small):
    """The HTTP parser (llhttp) knows the registered methods only: 400, as a problem."""
    status, problem = _status_and_body(_raw_exchange(small.port, b"BREW /healthz HTTP/1.1\r\n\r\n"))
    assert status == 400
    assert problem["type"] == "/problems/malformed-request"


# -- 413 ------------------------------------------------------------------------------------------


@pytest.fixture
def small(make_service):
    return make_service(max_body=1000)


def _raw_exchange(port: int, data: bytes, *, read_timeout: float = 30) -> bytes:
    """Send raw bytes, read the whole answer (the server closes after refusing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _status_and_body(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_oversized_body_from_content_length(small, alice):
    """Refused from the header, before the body is read; the client still gets the answer."""
    body = json.dumps({**alice, "id": "x" * 5000}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", small.port, timeout=30)
    try:
        connection.request(
            "POST", EVALUATE, body=body, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        payload = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 413
    assert response.getheader("Content-Type") == PROBLEM
    assert payload["limit"] == 1000


def test_a_refused_body_is_drained_then_the_connection_closed(small):
    """Closing at once, with the body still arriving, could reset the connection before the
    client reads its 413: the server discards the rest, then closes (the read ends at EOF)."""
    body = b'{"x": "' + b"a" * 5000 + b'"}'
    head = (
        f"POST {EVALUATE} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    status, problem = _status_and_body(_raw_exchange(small.port, head + body, read_timeout=10))
    assert (status, problem["limit"]) == (413, 1000)


def test_oversized_body_of_megabytes(small):
    """A large body the server never reads: the lingering close still delivers the 413."""
    body = b'{"x": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    head = (
        f"POST {EVALUATE} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    status, problem = _status_and_body(_raw_exchange(small.port, head + body))
    assert status == 413
    assert problem["status"] == 413


def test_oversized_chunked_body_while_reading(small):
    chunk = b"a" * 400
    chunks = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    head = (
        f"POST {EVALUATE} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    status, problem = _status_and_body(_raw_exchange(small.port, head + chunks))
    assert status == 413
    assert "limit" in problem["detail"]


def test_chunked_body_within_the_limit_is_read(make_service, alice):
    running = make_service()
    body = json.dumps(alice).encode()
    chunks = (
        b"".join(b"%x\r\n" % len(part) + part + b"\r\n" for part in (body[:50], body[50:]))
        + b"0\r\n\r\n"
    )
    head = (
        f"POST {EVALUATE} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    status, result = _status_and_body(_raw_exchange(running.port, head + chunks))
    assert status == 200
    assert result["account"] == "alice"


def test_expect_100_continue_refused_before_the_body(small):
    head = (
        f"POST {EVALUATE} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Content-Length: 50000\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    status, _ = _status_and_body(_raw_exchange(small.port, head))
    assert status == 413


def test_bad_framing_is_400(small):
    for head in (
        f"POST {EVALUATE} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Content-Length: -4\r\n\r\n",
        f"POST {EVALUATE} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GARBAGE\r\n\r\n",
    ):
        status, problem = _status_and_body(_raw_exchange(small.port, head.encode()))
        assert status == 400, head
        assert problem["status"] == 400


BOOK_ACCOUNT: dict[str, Any] = {
    "id": "a1",
    "wallet_balance": "1000",
    "positions": [
        {
            "instrument": "BTC/USDT",
            "side": "long",
            "quantity": "0.1",
            "entry_price": "60000",
            "margin_mode": "cross",
            "leverage": "10",
        }
    ],
}


def test_book_too_large(client):
    accounts = [BOOK_ACCOUNT] * 201
    problem = assert_problem(
        client.post("/v1/compare", {"policies": ["binance-usdm"], "accounts": accounts}), 413
    )
    assert problem["limit"] == 200


# -- 415 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/json; charset=latin-1"},
    ],
)
def test_unsupported_media_type(client, alice, headers):
    reply = client.request("POST", EVALUATE, json.dumps(alice), headers, json_body=False)
    assert_problem(reply, 415)


def test_json_with_charset_and_suffix_types_are_accepted(client, alice):
    for media in ("application/json; charset=utf-8", "application/vnd.liqpolicy+json"):
        assert client.post(EVALUATE, alice, headers={"Content-Type": media}).status == 200


# -- compare, reload, 500 -------------------------------------------------------------------------


def test_compare_not_available_without_the_engine(client, monkeypatch):
    monkeypatch.setattr("engine.server.app.comparison_backend", lambda: None)
    body = {"policies": ["binance-usdm"], "accounts": [BOOK_ACCOUNT], "scenario": "short-squeeze"}
    problem = assert_problem(client.post("/v1/compare", body), 501)
    assert problem["title"] == "Comparison not available yet"


def test_compare_errors(client):
    assert_problem(client.post("/v1/compare", {"policies": [], "accounts": []}), 422)
    body = {"policies": ["nope"], "accounts": [BOOK_ACCOUNT], "scenario": "short-squeeze"}
    assert_problem(client.post("/v1/compare", body), 404)
    body = {"policies": ["binance-usdm"], "accounts": [BOOK_ACCOUNT], "scenario": "flash-crsh"}
    problem = assert_problem(client.post("/v1/compare", body), 422)
    assert "flash-crash-2025-10-10" in problem["diagnostics"][0]["hint"]
    eth = {
        **BOOK_ACCOUNT,
        "id": "a2",
        "positions": [{**BOOK_ACCOUNT["positions"][0], "instrument": "ETH/USDT"}],
    }
    body = {
        "policies": ["huobi-linear-swap"],
        "accounts": [BOOK_ACCOUNT, eth],
        "scenario": "short-squeeze",
    }
    problem = assert_problem(client.post("/v1/compare", body), 422)
    assert codes(problem) == ["E620"]
    body = {
        "policies": ["binance-usdm"],
        "accounts": [{"id": "a", "positions": []}],
        "scenario": "x",
    }
    problem = assert_problem(client.post("/v1/compare", body), 422)
    assert codes(problem) == ["E101"]


def test_reload_refused_from_other_addresses(service):
    request = Request("POST", "/v1/reload", "", {}, "192.0.2.7", lambda: b"")
    response = service.app.handle(request)
    assert response.status == 403
    assert json.loads(response.body)["status"] == 403


def test_unexpected_exception_is_a_500_without_traceback(make_service, alice, monkeypatch, caplog):
    running = make_service()

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("engine.server.app.evaluate_account", broken)
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
    try:
        connection.request(
            "POST", EVALUATE, body=json.dumps(alice), headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    assert response.status == 500
    assert "secret" not in text and "Traceback" not in text
    assert json.loads(text)["status"] == 500
    assert any("secret internals" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_connection_survives_client_errors(service):
    """A 4xx with a fully read body keeps the connection; the next request is answered."""
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    try:
        connection.request("POST", EVALUATE, body="{", headers={"Content-Type": "application/json"})
        first = connection.getresponse()
        first.read()
        connection.request("GET", "/healthz")
        second = connection.getresponse()
        second.read()
    finally:
        connection.close()
    assert (first.status, second.status) == (400, 200)


# -- never a 5xx for bad input --------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.text(max_size=8)
    | st.sampled_from(
        [
            "BTCUSDT",
            "long",
            "short",
            "cross",
            "isolated",
            "1e5",
            "0",
            "-1",
            "60000",
            "BTC/USDT",
            "binance-usdm",
            "short-squeeze",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "wallet_balance",
                    "positions",
                    "market",
                    "symbol",
                    "side",
                    "size",
                    "entry_price",
                    "margin_mode",
                    "leverage",
                    "isolated_margin",
                    "mark_price",
                    "id",
                    "BTCUSDT",
                    "x",
                    "policies",
                    "accounts",
                    "scenario",
                    "instrument",
                    "quantity",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=json_values)
def test_arbitrary_json_never_gets_a_5xx(service, body):
    for path in (EVALUATE, QUOTE, "/v1/compare"):
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
        try:
            connection.request(
                "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        assert response.status < 500, (path, body)


@pytest.mark.parametrize(
    ("head", "status"),
    [
        ("GET /healthz HTTP/1.1\r\nHost : t\r\n\r\n", 400),  # space before the colon
        ("GET /healthz HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", 400),  # obsolete line folding
        ("GET /healthz HTTP/1.1\r\nNoColon\r\n\r\n", 400),
        ("GET /healthz HTTP/x.y\r\n\r\n", 400),
        ("GET /healthz HTTP/1.1\r\n" + "X-A: b\r\n" * 101 + "\r\n", 431),
        ("GET /healthz HTTP/1.1\r\nX-Long: " + "a" * 70000 + "\r\n\r\n", 431),
    ],
)
def test_malformed_head_is_a_problem(small, head, status):
    answer, problem = _status_and_body(_raw_exchange(small.port, head.encode()))
    assert answer == status
    assert problem["status"] == status


def test_http_10_and_header_case(small):
    raw = _raw_exchange(small.port, b"GET /healthz HTTP/1.0\r\nhOsT: t\r\n\r\n")
    status, health = _status_and_body(raw)
    assert status == 200
    assert health["status"] == "ok"
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_conservation_failure_is_a_500_not_a_422(client, monkeypatch):
    """An internal error (money not conserved) is the server's fault: 500, never a 4xx."""

    def leak(self, time):
        raise ConservationError(f"money is not conserved at t={time}")

    monkeypatch.setattr("engine.simulation.simulate._Simulation.check_conservation", leak)
    body = {"policies": ["binance-usdm"], "accounts": [BOOK_ACCOUNT], "scenario": "short-squeeze"}
    reply = client.post("/v1/compare", body)
    assert reply.status == 500
    assert "not conserved" not in reply.body.decode()
