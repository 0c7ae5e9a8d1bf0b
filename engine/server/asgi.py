"""The service as an ASGI application: requests in, :class:`Application` answers out.

The HTTP work is uvicorn's (:mod:`engine.server.protocol` adds the limits it lacks); this layer
turns an ASGI request into the :class:`~engine.server.wire.Request` the application dispatches,
after the checks that must come before a body is read (the route, the media type, the declared
size), reads the body within the size limit and the request's deadline, answers, and counts.

Decisions are computed on the event loop: an evaluation is about a millisecond of CPU and a
thread hop would cost a good part of that again (docs/server.md has the measurements).
Comparisons and reloads take up to seconds, so they run in a worker thread and the loop keeps
serving other connections meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware

from engine._version import __version__
from engine.server.app import Application
from engine.server.bodies import check_media_type
from engine.server.problems import ConnectionLost, Problem
from engine.server.protocol import DEADLINE_KEY, UNREAD_KEY
from engine.server.routes import Route
from engine.server.wire import Request, Response

log = logging.getLogger("liqpolicy.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SERVER_HEADER = (b"server", f"liqpolicy/{__version__}".encode())
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class ServiceApp:
    """ASGI entry point of one worker, over its :class:`Application`."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.config = app.config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no lifespan work: everything is built before serving
            return
        started = perf_counter()
        method: str = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        client = scope.get("client")
        headers = Headers(scope=scope)
        body: bytes = b""
        request = Request(
            method=method,
            path=raw_path.decode("latin-1") or "/",
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            client_host=client[0] if client else "",
            read_body=lambda: body,
        )
        route: Route | None = None
        try:
            route, _ = self.app.match(request)
        except Problem as problem:
            response = self.app.problem_response(problem, request.path)
        else:
            try:
                if method in _BODY_METHODS:
                    if route.decision is not None:  # a JSON body, checked before it is read
                        check_media_type(headers.get("content-type"))
                    body = await self._read_body(scope, receive, headers)
                response = await self._answer(route, request)
            except Problem as problem:
                response = self.app.refuse(request, route, problem)
                if problem.status in (408, 413):  # the body was not read: close once drained
                    scope.setdefault("extensions", {})[UNREAD_KEY] = True
            except ConnectionLost:
                log.info(
                    "client %s went away during %s %s", request.client_host, method, request.path
                )
                return
        await _send(send, response, head_only=method == "HEAD")
        self.app.metrics.request(
            route.template if route is not None else "(no route)",
            method,
            response.status,
            perf_counter() - started,
        )

    async def _answer(self, route: Route, request: Request) -> Response:
        if route.blocking:
            return await asyncio.to_thread(self.app.handle, request)
        return self.app.handle(request)

    async def _read_body(self, scope: Scope, receive: Receive, headers: Headers) -> bytes:
        """The whole body within the size limit and the request's deadline (413, 408);
        ConnectionLost when the client goes away first."""
        limit = self.config.max_body
        declared = headers.get("content-length")
        if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit, int(declared))  # before a byte of it is read
        loop = asyncio.get_running_loop()
        deadline = scope.get("extensions", {}).get(DEADLINE_KEY) or (
            loop.time() + self.config.timeout
        )
        chunks: list[bytes] = []
        total = 0
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ConnectionLost
                    chunk: bytes = message.get("body", b"")
                    total += len(chunk)
                    if total > limit:
                        raise _too_large(limit, None)  # while reading: the rest is never read
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise Problem(
                408, "the request body did not arrive in time", title="Request timeout"
            ) from None
        return b"".join(chunks)


def _too_large(limit: int, size: int | None) -> Problem:
    shown = f"{size} bytes" if size is not None else "more than that"
    return Problem(
        413,
        f"the request body is {shown}; the limit is {limit} bytes",
        title="Content too large",
        extra={"limit": limit},
    )


async def _send(send: Send, response: Response, *, head_only: bool) -> None:
    headers = [
        SERVER_HEADER,
        (b"content-type", response.content_type.encode("latin-1")),
        (b"content-length", str(len(response.body)).encode("latin-1")),
    ]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else response.body})


def asgi_app(app: Application) -> ASGIApp:
    """The ASGI application for `app`, behind CORS when the configuration allows origins."""
    service: ASGIApp = ServiceApp(app)
    origins = app.config.cors_origins
    if not origins:
        return service
    return CORSMiddleware(
        service,
        allow_origins=list(origins),
        allow_methods=["GET", "HEAD", "POST"],
        allow_headers=["Content-Type"],
        expose_headers=["Liqpolicy-Decision-Id", "Liqpolicy-Policy-Digest"],
        max_age=600,
    )
