"""HTTP/1.1 on the standard library: a thread per connection, keep-alive, bounded bodies.

`http.server` parses request lines and headers; this module adds what a service needs on top:
the body read within a size limit (from `Content-Length` before reading, and while reading a
chunked body), `Expect: 100-continue` answered only for acceptable sizes, every error as problem
details (the standard library's HTML error page is replaced), one `write` per response, a
lingering close after refusing an unread body (so the client sees the 413 instead of a reset),
idle and slow-client timeouts, and a cap on open connections.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from engine._version import __version__
from engine.server.app import Application
from engine.server.config import ServerConfig
from engine.server.problems import ConnectionLost, Problem
from engine.server.wire import Request, Response

log = logging.getLogger("liqpolicy.server")

MAX_CHUNK_LINE = 1024
MAX_HEADER_LINE = 65536
MAX_HEADERS = 100
MAX_TRAILERS = 64
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 1024 * 1024


class Headers:
    """Request header fields, names case-insensitive; `get` gives the first value of a name.

    A lean stand-in for the `email.message.Message` that `http.server` builds with the email
    package's parser, which costs more than the rest of a cached answer.
    """

    __slots__ = ("_fields",)

    def __init__(self) -> None:
        self._fields: dict[str, list[str]] = {}

    def add(self, name: str, value: str) -> None:
        self._fields.setdefault(name.lower(), []).append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._fields.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str] | None:
        return self._fields.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields


_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The Date header value, formatted once per second."""
    global _date_cache  # noqa: PLW0603  # a per-second cache shared by all threads (atomic swap)
    now = int(time.time())
    second, text = _date_cache
    if second != now:
        text = formatdate(now, usegmt=True)
        _date_cache = (now, text)
    return text


class _Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    server_version = f"liqpolicy/{__version__}"
    sys_version = ""
    disable_nagle_algorithm = True

    _body: bytes | None = None  # the request body once read

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.config.timeout)  # idle keep-alive and slow bodies

    # Any method token reaches the router, which answers 405 (known path) or 404 (unknown path)
    # instead of the standard library's 501 for methods without a do_* method.
    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's name
        log.debug("%s %s", self.address_string(), format % args)

    def parse_request(self) -> bool:  # mirrors the standard library's checks
        """The request line and header fields, as `http.server` checks them, parsed leanly."""
        self.command = None  # type: ignore[assignment]  # the stdlib's own initial value
        self.request_version = version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if not words:
            return False
        if len(words) >= 3:
            version = words[-1]
            try:
                if not version.startswith("HTTP/"):
                    raise ValueError
                major, minor = version.split("/", 1)[1].split(".")
                if len(major) > 10 or len(minor) > 10:
                    raise ValueError
                number = int(major), int(minor)
            except ValueError:
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
                return False
            if number >= (2, 0):
                self.send_error(
                    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid HTTP version ({version})"
                )
                return False
            if number >= (1, 1):
                self.close_connection = False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
                return False
        self.command, self.path = command, path
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")
        headers = Headers()
        for _ in range(MAX_HEADERS + 1):
            line = self.rfile.readline(MAX_HEADER_LINE + 1)
            if len(line) > MAX_HEADER_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            text = line.decode("iso-8859-1")
            name, colon, value = text.partition(":")
            if not colon or not name or name != name.strip() or text[0] in " \t":
                self.send_error(HTTPStatus.BAD_REQUEST, "Malformed header field")
                return False
            headers.add(name, value.strip())
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        self.headers = headers  # type: ignore[assignment]  # read through get/get_all only
        connection = (headers.get("Connection") or "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        expect = (headers.get("Expect") or "").lower()
        if (
            expect == "100-continue"
            and self.protocol_version >= "HTTP/1.1"
            and self.request_version >= "HTTP/1.1"
        ):
            return self.handle_expect_100()
        return True

    # -- bodies -----------------------------------------------------------------------------------
    def _declared_length(self) -> int | None:
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return None
        texts = {v.strip() for value in values for v in value.split(",")}
        if len(texts) != 1:
            raise Problem(400, "conflicting Content-Length headers", close=True)
        text = texts.pop()
        if not text.isdigit():
            raise Problem(400, f"invalid Content-Length '{text}'", close=True)
        return int(text)

    def _too_large(self, size: int | None) -> Problem:
        limit = self.server.config.max_body
        shown = f"{size} bytes" if size is not None else "more than that"
        return Problem(
            413,
            f"the request body is {shown}; the limit is {limit} bytes",
            title="Content too large",
            extra={"limit": limit},
            close=True,
        )

    def _read_body(self) -> bytes:
        if self._body is not None:
            return self._body
        try:
            body = self._receive_body()
        except TimeoutError:
            raise Problem(408, "the request body did not arrive in time", close=True) from None
        except ConnectionError:
            raise ConnectionLost from None
        self._body = body
        return body

    def _receive_body(self) -> bytes:
        limit = self.server.config.max_body
        encoding = self.headers.get("Transfer-Encoding")
        length = self._declared_length()
        if encoding is not None:
            if length is not None:
                raise Problem(
                    400,
                    "a request cannot have both Transfer-Encoding and Content-Length",
                    close=True,
                )
            if encoding.strip().lower() != "chunked":
                raise Problem(
                    400,
                    f"unsupported Transfer-Encoding '{encoding}'; use chunked or Content-Length",
                    close=True,
                )
            body = self._read_chunked(limit)
        elif length is None or length == 0:
            body = b""
        else:
            if length > limit:
                raise self._too_large(length)  # before reading a byte of it
            body = self.rfile.read(length)
            if len(body) != length:
                raise ConnectionLost
        return body

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(MAX_CHUNK_LINE + 1)
            if not line.endswith(b"\n") or len(line) > MAX_CHUNK_LINE:
                raise (
                    ConnectionLost
                    if not line
                    else Problem(400, "malformed chunked body", close=True)
                )
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise Problem(400, "malformed chunk size in the chunked body", close=True) from None
            if size < 0:
                raise Problem(400, "malformed chunk size in the chunked body", close=True)
            if size == 0:
                break
            total += size
            if total > limit:
                raise self._too_large(None)  # while reading: the rest is never read
            data = self.rfile.read(size)
            if len(data) != size:
                raise ConnectionLost
            parts.append(data)
            if self.rfile.readline(MAX_CHUNK_LINE + 1) not in (b"\r\n", b"\n"):
                raise Problem(400, "malformed chunked body", close=True)
        for _ in range(MAX_TRAILERS):  # trailer fields, ignored, up to the blank line
            line = self.rfile.readline(MAX_CHUNK_LINE + 1)
            if line in (b"\r\n", b"\n"):
                return b"".join(parts)
            if not line:
                raise ConnectionLost
        raise Problem(400, "too many trailer fields", close=True)

    def _discard_body(self) -> bool:
        """Read an unused body so the connection can carry the next request; False: close it."""
        if self._body is not None:
            return True
        try:
            if self.headers.get("Transfer-Encoding") is not None:
                return False
            length = self._declared_length()
            if not length:
                return True
            if length > self.server.config.max_body:
                return False
            self._body = self.rfile.read(length)
            return len(self._body) == length
        except (Problem, OSError):
            return False

    # -- responses --------------------------------------------------------------------------------
    def _write(self, response: Response, *, head_only: bool = False) -> None:
        status = HTTPStatus(response.status)
        lines = [
            f"HTTP/1.1 {status.value} {status.phrase}",
            f"Server: {self.server_version}",
            f"Date: {http_date()}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if response.close or self.close_connection:
            lines.append("Connection: close")
            self.close_connection = True
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head if head_only else head + response.body)
        self.wfile.flush()

    def _linger(self) -> None:
        """After refusing an unread body: stop sending, drain what the client still sends.

        Closing a socket with unread data makes the kernel send a reset, which can destroy the
        response before the client reads it; reading the rest (bounded in time and bytes) first
        lets the client finish sending and then read the answer.
        """
        connection: socket.socket = self.connection
        try:
            connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            drained = 0
            while drained < LINGER_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                connection.settimeout(remaining)
                chunk = connection.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass

    def _dispatch(self) -> None:
        self._body = None
        self.server.request_started()
        try:
            self._answer()
        finally:
            self.server.request_finished()

    def _answer(self) -> None:
        app = self.server.app
        target = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=target.path or "/",
            query=target.query,
            headers=self.headers,
            client_host=self.client_address[0] if self.client_address else "",
            read_body=self._read_body,
        )
        try:
            response = app.handle(request)
        except ConnectionLost:
            self.close_connection = True
            return
        if not response.close and not self._discard_body():
            response.close = True
        unread = response.close and self._body is None
        try:
            self._write(response, head_only=self.command == "HEAD")
        except OSError:
            self.close_connection = True
            return
        if unread:
            self._linger()

    # -- the standard library's own errors (bad request line, headers too long, ...) ---------------
    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        detail = explain or message or phrase
        path = getattr(self, "path", "") or "/"
        problem = Problem(code, detail, title=phrase, close=True)
        if not hasattr(self, "request_version"):
            self.request_version = "HTTP/1.1"
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._write(
                self.server.app.problem_response(problem, urlsplit(path).path or "/"),
                head_only=getattr(self, "command", None) == "HEAD",
            )

    def handle_expect_100(self) -> bool:
        """Refuse an oversized body before the client sends it."""
        try:
            length = self._declared_length()
        except Problem as problem:
            self._refuse(problem)
            return False
        if length is not None and length > self.server.config.max_body:
            self._refuse(self._too_large(length))
            return False
        return super().handle_expect_100()

    def _refuse(self, problem: Problem) -> None:
        self.close_connection = True
        path = urlsplit(self.path).path or "/"
        with contextlib.suppress(OSError):
            self._write(self.server.app.problem_response(problem, path))


class Server(ThreadingHTTPServer):
    """The HTTP server of one process, on a socket bound elsewhere (shared between workers)."""

    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, sock: socket.socket, app: Application, config: ServerConfig) -> None:
        self.app = app
        self.config = config
        self._lock = threading.Lock()
        self._connections = 0
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        self.address_family = sock.family
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    # Connections: one thread each, up to max_connections; beyond, a 503 and close, no thread.
    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = self._connections >= self.config.max_connections
            if not full:
                self._connections += 1
        if full:
            self._overloaded(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._connections -= 1

    def _overloaded(self, request: socket.socket) -> None:
        body = (
            b'{"type":"/problems/unavailable","title":"Service Unavailable","status":503,'
            b'"detail":"too many open connections; retry shortly","instance":"/","diagnostics":[]}'
        )
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        )
        try:
            request.settimeout(1.0)
            request.sendall(head.encode("latin-1") + body)
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("connection from %s failed", client_address)

    # In-flight requests, so a shutdown can let them finish.
    def request_started(self) -> None:
        with self._lock:
            self._in_flight += 1

    def request_finished(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being answered; False if some still are after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    @property
    def connections(self) -> int:
        return self._connections


def listening_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A TCP socket bound to (host, port) and listening; port 0 picks a free port."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock
