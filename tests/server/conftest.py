"""Fixtures for the HTTP service tests: real servers on loopback ports, an HTTP client, and a
checker that validates every answer against schemas/openapi.json.

In-process servers (`Service`, serving from a thread) keep most tests fast; the tests of signals,
worker processes and the command line start `python -m engine serve` as a subprocess.  Every
server listens on 127.0.0.1 on a port the OS picks (`--port 0`), and every wait is bounded.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from engine.server.config import ServerConfig
from engine.server.runner import Service

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
ALICE = ROOT / "examples" / "alice.json"
TIMEOUT = 60.0  # seconds any single HTTP exchange may take


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    method: str = "GET"
    path: str = "/"

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass
class Client:
    """One HTTP/1.1 client for a server at 127.0.0.1:port; a new connection per request."""

    port: int
    host: str = "127.0.0.1"
    replies: list[Reply] = field(default_factory=list)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        *,
        json_body: bool = True,
    ) -> Reply:
        sent_headers = dict(headers or {})
        data: bytes | None
        if isinstance(body, dict):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        if data is not None and json_body:
            sent_headers.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        try:
            connection.request(method, path, body=data, headers=sent_headers)
            response = connection.getresponse()
            reply = Reply(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
                method,
                path,
            )
        finally:
            connection.close()
        self.replies.append(reply)
        return reply

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, body, **kwargs)


# -- OpenAPI -------------------------------------------------------------------------------------


def _openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SCHEMAS / "openapi.json").read_text(encoding="utf-8"))
    return document


def _registry(document: dict[str, Any]) -> tuple[Registry[Any], str]:
    """The document beside the account schema's `$id`, so `account.schema.json` resolves."""
    schemas = [
        json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
        for name in ("account.schema.json", "book.schema.json")
    ]
    base = schemas[0]["$id"].rsplit("/", 1)[0]
    resources = [
        (schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012))
        for schema in schemas
    ]
    resources.append(
        (
            f"{base}/openapi.json",
            Resource.from_contents(document, default_specification=DRAFT202012),
        )
    )
    registry: Registry[Any] = Registry().with_resources(resources)
    return registry, f"{base}/openapi.json"


class OpenAPI:
    """Validates answers against the response schema the document gives for their route."""

    def __init__(self) -> None:
        self.document = _openapi()
        self.registry, self.uri = _registry(self.document)

    def _operation(self, method: str, path: str) -> dict[str, Any] | None:
        for template, item in self.document["paths"].items():
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if re.match(pattern, path):
                return item.get(method.lower())  # type: ignore[no-any-return]
        return None

    def schema_for(self, reply: Reply) -> dict[str, Any] | None:
        path = reply.path.split("?", 1)[0]
        operation = self._operation(reply.method, path)
        if operation is None:  # no such route or method: the answer is a plain problem
            assert reply.status in (404, 405), f"{reply.method} {path} is not documented"
            assert reply.content_type == "application/problem+json"
            return {"$ref": "#/components/schemas/Problem"}
        response = operation["responses"].get(str(reply.status))
        assert response is not None, (
            f"status {reply.status} of {reply.method} {path} is not documented"
        )
        if "$ref" in response:
            name = response["$ref"].rsplit("/", 1)[1]
            response = self.document["components"]["responses"][name]
        media = reply.content_type.split(";")[0].strip()
        content = response.get("content", {})
        assert media in content, (
            f"{media} is not documented for {reply.status} of {reply.method} {path}"
        )
        return content[media]["schema"]  # type: ignore[no-any-return]

    def validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        wrapped = (
            {"$ref": f"{self.uri}#/components/schemas/{schema['$ref'].rsplit('/', 1)[1]}"}
            if "$ref" in schema and schema["$ref"].startswith("#/")
            else schema
        )
        return Draft202012Validator(wrapped, registry=self.registry)

    def check(self, reply: Reply) -> None:
        schema = self.schema_for(reply)
        if schema is None:
            return
        errors = sorted(self.validator(schema).iter_errors(reply.json), key=lambda e: list(e.path))
        assert not errors, f"{reply.method} {reply.path} -> {reply.status}: " + "; ".join(
            f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]
        )


@pytest.fixture(scope="session")
def openapi() -> OpenAPI:
    return OpenAPI()


# -- servers -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def service() -> Iterator[Service]:
    """The shipped policies served from a thread of this process (cache off: every answer fresh)."""
    with Service(ServerConfig(port=0, cache_entries=0)) as running:
        yield running


@pytest.fixture
def client(service: Service, openapi: OpenAPI) -> Iterator[Client]:
    """A client of the shared server; every answer it received is checked against the document."""
    made = Client(service.port)
    yield made
    for reply in made.replies:
        if reply.method != "HEAD":
            openapi.check(reply)


@pytest.fixture
def client_for(openapi: OpenAPI) -> Iterator[Callable[[int], Client]]:
    """`client_for(port)`: a client of another server; its answers are checked like `client`'s."""
    made: list[Client] = []

    def make(port: int) -> Client:
        made.append(Client(port))
        return made[-1]

    yield make
    for each in made:
        for reply in each.replies:
            if reply.method != "HEAD":
                openapi.check(reply)


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start an in-process server with a custom configuration; stopped after the test."""
    started: list[Service] = []

    def make(**options: Any) -> Service:
        running = Service(ServerConfig(port=0, **options)).start()
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop(grace=5)


@dataclass
class Subprocess:
    process: subprocess.Popen[str]
    port: int
    stderr_path: Path

    @property
    def client(self) -> Client:
        return Client(self.port)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(timeout=30)


def serve_command(*options: str) -> list[str]:
    return [sys.executable, "-m", "engine", "serve", "--port", "0", *options]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Subprocess]]:
    """Start `python -m engine serve --port 0 ...` and wait for its announced port."""
    started: list[Subprocess] = []

    def start(*options: str) -> Subprocess:
        stderr_path = tmp_path / f"serve-{len(started)}.stderr"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        with open(stderr_path, "w", encoding="utf-8") as stderr:
            process = subprocess.Popen(
                serve_command(*options),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=env,
            )
        assert process.stdout is not None
        port = _announced_port(process)
        running = Subprocess(process, port, stderr_path)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
        if running.process.stdout is not None:
            running.process.stdout.close()


def _announced_port(process: subprocess.Popen[str]) -> int:
    found: list[int] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if match:
                found.append(int(match.group(1)))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=90)
    if not found:
        process.kill()
        process.wait(timeout=30)
        raise AssertionError("the server did not announce its port")
    return found[0]


def _wait_until(
    condition: Callable[[], bool], timeout: float = 30.0, interval: float = 0.1
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@pytest.fixture(scope="session")
def wait_until() -> Callable[..., bool]:
    """`wait_until(condition, timeout=30)`: poll until it holds or the time is up (bounded)."""
    return _wait_until


@pytest.fixture(scope="session")
def alice() -> dict[str, Any]:
    account: dict[str, Any] = json.loads(ALICE.read_text(encoding="utf-8"))
    return account
