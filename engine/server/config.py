"""Settings of one `liqpolicy serve` run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.audit import FsyncPolicy

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY = 1024 * 1024  # 1 MiB, like the policy and account file limit
DEFAULT_CACHE_ENTRIES = 1024
MAX_COMPARE_ACCOUNTS = 200


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0: any free port (the bound one is announced)
    policies_dir: Path | None = None  # None: the shipped policies
    max_body: int = DEFAULT_MAX_BODY  # bytes of a request body
    decision_log: Path | None = None  # None: no decision log
    decision_log_fsync: FsyncPolicy = "interval"
    decision_log_required: bool = False  # a decision that cannot be logged is answered 503
    workers: int = 1  # processes sharing the listening socket
    cache_entries: int = DEFAULT_CACHE_ENTRIES  # decision cache per worker; 0 disables it
    # Seconds a request may take to arrive whole (head and body, from its first byte or, on a
    # new connection, from the connection), and a connection may idle between requests.
    timeout: float = 30.0
    max_connections: int = 1024  # open connections per worker; more get 503 at once
    max_compare_accounts: int = MAX_COMPARE_ACCOUNTS
    shutdown_grace: float = 10.0  # seconds in-flight requests get to finish on SIGTERM
    ssl_certfile: Path | None = None  # both set: HTTPS
    ssl_keyfile: Path | None = None
    cors_origins: tuple[str, ...] = field(default=())  # browser origins allowed; () = no CORS
