"""Settings of one `liqpolicy serve` run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    workers: int = 1  # processes sharing the listening socket
    cache_entries: int = DEFAULT_CACHE_ENTRIES  # decision cache per worker; 0 disables it
    timeout: float = 30.0  # seconds a connection may idle or a body may take to arrive
    max_connections: int = 1024  # open connections per worker; more get 503 at once
    max_compare_accounts: int = MAX_COMPARE_ACCOUNTS
    shutdown_grace: float = 10.0  # seconds in-flight requests get to finish on SIGTERM
