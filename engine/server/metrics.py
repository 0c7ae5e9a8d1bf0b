"""Prometheus metrics of the service, served at `GET /metrics` in the text exposition format.

Request counts and latencies by route (the path template, never the raw path: ids would make
series without bound) and status, decisions by endpoint and status (and whether the cache
answered), policy reloads by outcome, decision-log write failures.

With several worker processes each writes its samples to files in a directory shared by all
(prometheus_client's multiprocess mode, set up by the supervisor before it forks), and whichever
worker answers `/metrics` adds up every worker's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: evaluations take about a millisecond, comparisons about a second.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class Metrics:
    """The service's metrics; :meth:`disabled` gives one that records nothing (tests, and
    embedders that do not want prometheus_client)."""

    _requests: Any = None
    _latency: Any = None
    _decisions: Any = None
    _reloads: Any = None
    _log_failures: Any = None
    _render: Callable[[], bytes] | None = None

    @classmethod
    def disabled(cls) -> Metrics:
        return cls()

    @classmethod
    def create(cls) -> Metrics:
        """Metrics in a registry of their own (several servers in one process each count
        their own), or in multiprocess mode when the supervisor set it up."""
        from prometheus_client import (  # noqa: PLC0415  # the `server` extra, only when serving
            CollectorRegistry,
            Counter,
            Histogram,
            generate_latest,
        )

        registry = CollectorRegistry(auto_describe=True)
        multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))

        def render() -> bytes:
            if not multiprocess:
                return bytes(generate_latest(registry))
            from prometheus_client import multiprocess as mp  # noqa: PLC0415

            collected = CollectorRegistry()
            mp.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]  # untyped
            return bytes(generate_latest(collected))

        return cls(
            Counter(
                "liqpolicy_http_requests",
                "HTTP requests answered, by route template, method and status",
                ["route", "method", "status"],
                registry=registry,
            ),
            Histogram(
                "liqpolicy_http_request_duration_seconds",
                "Time from the request's arrival to its answer, by route template and method",
                ["route", "method"],
                buckets=_BUCKETS,
                registry=registry,
            ),
            Counter(
                "liqpolicy_decisions",
                "Decisions (evaluate, liquidation-price, compare) by endpoint, status and "
                "whether the decision cache answered",
                ["endpoint", "status", "cached"],
                registry=registry,
            ),
            Counter(
                "liqpolicy_policy_reloads",
                "Policy reloads by outcome (ok: the new set is served; failed: the last good "
                "set stays)",
                ["outcome"],
                registry=registry,
            ),
            Counter(
                "liqpolicy_decision_log_failures",
                "Decisions that could not be written to the decision log",
                registry=registry,
            ),
            render,
        )

    @property
    def enabled(self) -> bool:
        return self._render is not None

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        if self._requests is None:
            return
        self._requests.labels(route, method, str(status)).inc()
        self._latency.labels(route, method).observe(seconds)

    def decision(self, endpoint: str, status: int, *, cached: bool) -> None:
        if self._decisions is not None:
            self._decisions.labels(endpoint, str(status), "true" if cached else "false").inc()

    def reload(self, *, ok: bool) -> None:
        if self._reloads is not None:
            self._reloads.labels("ok" if ok else "failed").inc()

    def decision_log_failure(self) -> None:
        if self._log_failures is not None:
            self._log_failures.inc()

    def exposition(self) -> bytes:
        return self._render() if self._render is not None else b""
