"""The server's probes of issue 14 (causes 1, 3, 6, 9) and what the uvicorn stack adds: the
request deadline, head limits, the connection cap, the audit-chained decision log, metrics,
CORS, TLS, quiet client disconnects, internal errors logged with the policy digest."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.audit import verify_log
from engine.cli.app import main
from engine.policy.load import load_policy

EVALUATE = "/v1/policies/binance-usdm/evaluate"
QUOTE = "/v1/policies/binance-usdm/liquidation-price"


def _exchange(port: int, data: bytes, *, timeout: float = 20) -> bytes:
    """Send raw bytes, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def _status_and_problem(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _post(port: int, path: str, body: bytes | str, **headers: str) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST", path, body=body, headers={"Content-Type": "application/json", **headers}
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


# -- cause 1: a numeric string "0" in a positive field -----------------------------------------


def test_a_zero_leverage_string_is_a_422_not_a_500(client, alice):
    """`leverage: "0"` on an isolated position without isolated_margin divided by zero: 500."""
    position = {k: v for k, v in alice["positions"][0].items() if k != "isolated_margin"}
    body = {**alice, "positions": [{**position, "leverage": "0"}]}
    reply = client.post(EVALUATE, body)
    assert reply.status == 422
    assert [d["code"] for d in reply.json["diagnostics"]] == ["E104"]
    quote = {"symbol": "BTCUSDT", "side": "long", "size": 1, "entry_price": 1, "leverage": "0"}
    reply = client.post(QUOTE, quote)
    assert reply.status == 422
    assert "expected above 0" in reply.json["diagnostics"][0]["message"]


# -- cause 3: a Content-Length that str.isdigit() accepts ---------------------------------------


def test_a_superscript_content_length_is_answered_400(service):
    """`Content-Length: ²` passed `str.isdigit()`: the connection dropped, a 500 was logged."""
    head = f"POST {EVALUATE} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    raw = _exchange(service.port, head.encode() + "Content-Length: ²\r\n\r\n{}".encode("latin-1"))
    status, problem = _status_and_problem(raw)
    assert (status, problem["type"]) == (400, "/problems/malformed-request")


# -- cause 6: a total deadline for each request -------------------------------------------------


@pytest.fixture
def quick(make_service):
    """A server whose requests must arrive within 2 s."""
    return make_service(timeout=2.0)


def _trickle(port: int, head: bytes, drip: bytes, *, every: float = 0.3, limit: float = 15):
    """Send `head`, then a byte of `drip` every `every` seconds until the server answers or
    closes; returns (answer, seconds from the first byte)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        received = b""
        for byte in drip:
            if time.monotonic() - started > limit:
                break
            time.sleep(every)
            try:
                sock.send(bytes([byte]))
            except OSError:
                break
            with contextlib.suppress(BlockingIOError):
                chunk = sock.recv(65536)
                received += chunk
                if not chunk:
                    break
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                received += chunk
    return received, time.monotonic() - started


def test_a_trickled_body_gets_408_at_the_deadline(quick):
    """A byte every 29 s held a connection forever; 1,024 such denied service to everyone."""
    head = (
        f"POST {EVALUATE} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Content-Length: 400\r\n\r\n{"
    ).encode()
    answer, seconds = _trickle(quick.port, head, b" " * 200)
    status, problem = _status_and_problem(answer)
    assert (status, problem["type"]) == (408, "/problems/request-timeout")
    assert 1.5 < seconds < 8


def test_a_trickled_head_gets_408_at_the_deadline(quick):
    answer, seconds = _trickle(quick.port, b"GET /healthz HTTP/1.1\r\n", b"X-Slow: " + b"a" * 200)
    status, problem = _status_and_problem(answer)
    assert (status, problem["status"]) == (408, 408)
    assert 1.5 < seconds < 8


def test_a_silent_connection_is_closed_at_the_deadline(quick):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", quick.port), timeout=15) as sock:
        answer = sock.recv(65536)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert 1.5 < time.monotonic() - started < 8


def test_a_request_in_time_keeps_its_connection(quick, alice):
    connection = http.client.HTTPConnection("127.0.0.1", quick.port, timeout=30)
    try:
        for _ in range(3):
            connection.request(
                "POST", EVALUATE, json.dumps(alice), {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            time.sleep(0.8)  # idle between requests, under the deadline
    finally:
        connection.close()


def test_connections_beyond_the_cap_get_503(make_service):
    running = make_service(max_connections=3)
    held = [socket.create_connection(("127.0.0.1", running.port), timeout=10) for _ in range(3)]
    try:
        time.sleep(0.2)
        status, problem = _status_and_problem(_exchange(running.port, b""))
        assert (status, problem["type"]) == (503, "/problems/unavailable")
    finally:
        for sock in held:
            sock.close()


def test_a_head_over_64_kib_is_431(service):
    raw = _exchange(service.port, b"GET /healthz HTTP/1.1\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n")
    assert _status_and_problem(raw)[0] == 431


# -- cause 9: the decision log fails closed when it is required ---------------------------------


def test_an_unwritable_decision_log_answers_503_when_required(make_service, alice, caplog):
    """With an unwritable log, evaluate still answered 200."""
    running = make_service(decision_log=Path("/dev/full"), decision_log_required=True)
    status, headers, body = _post(running.port, EVALUATE, json.dumps(alice))
    problem = json.loads(body)
    assert (status, problem["type"]) == (503, "/problems/decision-log-unavailable")
    assert "liquidation_price" not in body.decode()
    assert headers["retry-after"] == "5"
    digest = load_policy("binance-usdm").digest
    assert any(
        "cannot write the decision log" in r.getMessage() and digest in r.getMessage()
        for r in caplog.records
    )


def test_an_unwritable_decision_log_is_logged_when_not_required(make_service, alice, caplog):
    running = make_service(decision_log=Path("/dev/full"))
    status, _, _ = _post(running.port, EVALUATE, json.dumps(alice))
    assert status == 200
    assert any("cannot write the decision log" in r.getMessage() for r in caplog.records)


def test_the_decision_log_is_a_verifiable_chain(make_service, alice, tmp_path):
    log = tmp_path / "decisions.jsonl"
    running = make_service(decision_log=log, decision_log_fsync="always")
    bodies = [json.dumps({**alice, "id": f"a{i}"}) for i in range(4)] + ["{oops"]
    for body in bodies:
        _post(running.port, EVALUATE, body)
    outcome = verify_log(log)
    assert outcome.ok and outcome.entries == 5
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    digest = load_policy("binance-usdm").digest
    for entry, body in zip(entries, bodies, strict=True):
        assert entry["input_digest"] == "sha256:" + hashlib.sha256(body.encode()).hexdigest()
        assert entry["policy"]["digest"] == digest
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[1]["prev"] == entries[0]["hash"]


@pytest.mark.skipif(sys.platform == "win32", reason="worker processes need fork")
def test_two_workers_write_one_chain(spawn, alice, tmp_path):
    log = tmp_path / "decisions.jsonl"
    server = spawn("--workers", "2", "--decision-log", str(log), "--cache", "0")
    errors: list[BaseException] = []

    def send(number: int) -> None:
        try:
            for i in range(10):
                _post(server.port, EVALUATE, json.dumps({**alice, "id": f"c{number}-{i}"}))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    server.stop()
    outcome = verify_log(log)
    assert outcome.ok, outcome.message
    assert outcome.entries == 60


# -- internal errors, disconnects ------------------------------------------------------------


def test_an_internal_error_is_logged_with_the_policy_digest(
    make_service, alice, monkeypatch, caplog
):
    running = make_service()

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("engine.server.app.evaluate_account", broken)
    status, _, body = _post(running.port, EVALUATE, json.dumps(alice))
    assert status == 500 and b"secret" not in body
    digest = load_policy("binance-usdm").digest
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert f"(policy binance-usdm, digest {digest})" in record.getMessage()
    assert record.exc_info is not None


def test_a_client_going_away_is_an_info_line_without_traceback(service, caplog):
    caplog.set_level(logging.INFO, logger="liqpolicy.server")
    head = (
        f"POST {EVALUATE} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{"
    ).encode()
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(head)
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while not any("went away" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert all(r.levelno < logging.WARNING for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records)


# -- metrics, CORS, TLS, the extra ----------------------------------------------------------------


def test_metrics_count_requests_by_route_and_status(make_service, alice):
    running = make_service(cache_entries=4)
    for _ in range(2):
        _post(running.port, EVALUATE, json.dumps(alice))
    _post(running.port, "/v1/policies/nope/evaluate", json.dumps(alice))
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/plain")
    route = 'route="/v1/policies/{policy_id}/evaluate"'
    assert f'liqpolicy_http_requests_total{{method="POST",{route},status="200"}} 2.0' in text
    assert f'liqpolicy_http_requests_total{{method="POST",{route},status="404"}} 1.0' in text
    assert 'liqpolicy_decisions_total{cached="true",endpoint="evaluate",status="200"} 1.0' in text
    assert f'liqpolicy_http_request_duration_seconds_count{{method="POST",{route}}} 3.0' in text


def test_cors_only_when_configured(make_service, service):
    running = make_service(cors_origins=("https://dash.example",))
    for port, allowed in ((running.port, True), (service.port, False)):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request(
            "OPTIONS",
            EVALUATE,
            headers={
                "Origin": "https://dash.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        response = connection.getresponse()
        response.read()
        connection.close()
        if allowed:
            assert response.status == 200
            assert response.getheader("access-control-allow-origin") == "https://dash.example"
        else:
            assert response.status == 405
            assert response.getheader("access-control-allow-origin") is None


def test_tls(make_service, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    done = subprocess.run(
        [
            *["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"],
            *["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
            *["-keyout", str(key), "-out", str(cert)],
        ],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        pytest.skip("openssl cannot make a test certificate here")
    running = make_service(ssl_certfile=cert, ssl_keyfile=key)
    assert running.url.startswith("https://")
    context = ssl.create_default_context(cafile=str(cert))
    connection = http.client.HTTPSConnection("127.0.0.1", running.port, context=context, timeout=30)
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())["status"]) == (200, "ok")
    connection.close()


def test_serve_without_the_server_extra_says_what_to_install(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "uvicorn" else real(name, *args),
    )
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "needs the server extra" in err and "missing: uvicorn" in err
    assert "pip install 'liqpolicy[server]'" in err


# -- cause 2 over HTTP -------------------------------------------------------------------------


def test_thousands_of_duplicate_positions_get_every_diagnostic(service, alice):
    """3,000 duplicates on one 0.35 MB line cost the server 6 s and 2.8 GB: every diagnostic
    quoted the whole line.  Now they are located and listed without rendering any line."""
    position = {**alice["positions"][0], "margin_mode": "cross"}
    position.pop("isolated_margin")
    body = json.dumps({**alice, "positions": [position] * 3000})
    assert len(body) > 300_000
    status, _, answer = _post(service.port, EVALUATE, body)
    problem = json.loads(answer)
    assert status == 422
    assert [d["code"] for d in problem["diagnostics"]] == ["E604"] * 2999
    assert problem["diagnostics"][0]["line"] == 1
    assert len(answer) < 2999 * 400
