"""uvicorn's HTTP/1.1 protocol (httptools) with the limits a public service needs on top.

uvicorn parses requests, keeps connections alive, closes idle ones and speaks TLS; it does not
bound how long a request may take to *arrive*.  A client that trickles its head or body a byte
at a time holds a connection forever, and a thousand such clients deny service to everyone
(issue 14, cause 6).  This subclass adds, per connection:

- a total deadline for each request to arrive, head and body (`timeout` seconds from its first
  byte, or from the connection for the first request): past it the request gets 408 and the
  connection is closed.  The application enforces the same deadline while reading a body
  (:mod:`engine.server.asgi`), so it answers the 408 itself when it can;
- limits on the head: 100 header fields, 64 KiB in all (431);
- a cap on open connections per worker (503 at once, before any request is read);
- problem details (RFC 9457) instead of uvicorn's plain-text 400 for a malformed request.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from engine.server.problems import PROBLEM_MEDIA_TYPE, problem_type

MAX_HEADERS = 100
MAX_HEAD_BYTES = 64 * 1024
DEADLINE_KEY = "liqpolicy.deadline"  # in scope["extensions"]: loop time the request must be in by
UNREAD_KEY = "liqpolicy.unread"  # in scope["extensions"]: answered without reading the body
LINGER_SECONDS = 2.0  # how long an unread body may still drain after the answer


def problem_bytes(status: int, detail: str, *, retry_after: int | None = None) -> bytes:
    """A whole HTTP/1.1 answer with a problem document, closing the connection."""
    body = json.dumps(
        {
            "type": problem_type(status),
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "instance": "/",
            "diagnostics": [],
        },
        separators=(",", ":"),
    ).encode()
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"content-type: {PROBLEM_MEDIA_TYPE}",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """One connection: uvicorn's protocol plus the deadline and limits above."""

    max_connections = 1024  # set per server by :func:`protocol_for`
    deadline_seconds = 30.0
    grace = 1.0  # the application answers a late body itself; this is the backstop

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._in_body = False  # between a request's head and the end of its body
        self._head_bytes = 0
        self._header_count = 0

    # -- connections ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(
                problem_bytes(503, "too many open connections; retry shortly", retry_after=1)
            )
            transport.close()
            return
        self._arm(self.deadline_seconds)  # the first request must arrive in time too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- the deadline -----------------------------------------------------------------------------
    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline_timer = self.loop.call_later(seconds, self._deadline_passed)

    def _disarm(self) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None

    def _deadline_passed(self) -> None:
        self._deadline_timer = None
        if self.transport.is_closing():
            return
        if not self._in_body:  # the head is incomplete: nobody else can answer
            self.transport.write(problem_bytes(408, "the request did not arrive in time"))
        # A body still trickling in: the application answered 408 (or had answered already).
        self.transport.close()

    # -- the head ---------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        in_head = not self._in_body
        super().data_received(data)
        if in_head and not self._in_body and not self.transport.is_closing():
            # still no complete head: what the parser holds is bounded
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head("the request head is larger than 64 KiB")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        deadline = self.loop.time() + self.deadline_seconds
        self.scope["extensions"] = {DEADLINE_KEY: deadline}  # type: ignore[dict-item]  # ours
        self._arm(self.deadline_seconds)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            self._refuse_head(f"more than {MAX_HEADERS} header fields")
        elif not self.transport.is_closing():
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self.transport.is_closing():
            return
        self._in_body = True
        self._head_bytes = 0
        deadline: float = self.scope["extensions"][DEADLINE_KEY]  # type: ignore[assignment]  # ours
        self._arm(max(0.0, deadline - self.loop.time()) + self.grace)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self.transport.is_closing():
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()  # the request is in; idle time is uvicorn's keep-alive timeout
        if self.transport.is_closing():
            return
        super().on_message_complete()
        if self._answered_unread():
            self.transport.close()  # the refused body has drained: now the close is clean

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._answered_unread() or self.transport.is_closing():
            return
        if self._in_body:
            # Refused without reading the body (413, 408): closing now, with the body still
            # arriving, would send a reset that can destroy the answer before the client
            # reads it.  Let the rest drain (discarded) for a moment, then close.
            self._arm(LINGER_SECONDS)
        else:
            self.transport.close()

    def _answered_unread(self) -> bool:
        cycle = self.cycle
        if cycle is None or not cycle.response_complete:
            return False
        return bool(cycle.scope.get("extensions", {}).get(UNREAD_KEY))

    def _refuse_head(self, detail: str) -> None:
        if not self.transport.is_closing():
            self.transport.write(problem_bytes(431, detail))
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():
            self.transport.write(problem_bytes(400, "malformed HTTP request"))
            self.transport.close()


def protocol_for(max_connections: int, deadline: float) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for one server's limits (uvicorn instantiates it per connection)."""
    return type(
        "LiqpolicyHttpProtocol",
        (LimitedHttpToolsProtocol,),
        {"max_connections": max_connections, "deadline_seconds": deadline},
    )
