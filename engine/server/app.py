"""The service itself, independent of the HTTP plumbing: dispatch and the handlers.

:class:`Application.handle` takes a :class:`~engine.server.wire.Request` (method, path, query,
headers, a function that reads the body within the size limit) and returns a
:class:`~engine.server.wire.Response`; it never raises.  Every refusal is a
:class:`~engine.server.problems.Problem`; an unexpected exception is logged with its traceback and
answered with a 500 problem that does not contain it.  The routes are in
:mod:`engine.server.routes`; request bodies are read by :mod:`engine.server.bodies` and checked
by :mod:`engine.server.inputs`.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import threading
from collections.abc import Callable
from decimal import Decimal
from time import perf_counter
from typing import Any
from urllib.parse import parse_qs, unquote

from engine._version import __version__
from engine.dsl.check import did_you_mean
from engine.errors import EngineError, PolicyError
from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import evaluate_account
from engine.mechanics.quote import quote_prices
from engine.numbers import NumberSyntaxError, parse_decimal
from engine.policy.model import Policy
from engine.server.bodies import (
    BODY_PATH,
    account_diagnostics,
    body_text,
    engine_problem,
    json_body,
    parse_json,
)
from engine.server.comparison import comparison_backend
from engine.server.config import ServerConfig
from engine.server.decisions import Decision, DecisionCache, DecisionLog, utc_now, utc_text
from engine.server.inputs import check_compare_request, check_quote_request, trace_option
from engine.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from engine.server.metrics import Metrics
from engine.server.openapi import openapi_bytes, schema_bytes
from engine.server.policies import PolicySet, PolicyStore
from engine.server.policy_json import policy_detail, policy_summary
from engine.server.problems import (
    PROBLEM_MEDIA_TYPE,
    ConnectionLost,
    Problem,
    invalid,
    summary_message,
)
from engine.server.routes import ROUTES, Route
from engine.server.wire import Request, Response, dumps
from engine.source import Diagnostic

log = logging.getLogger("liqpolicy.server")

COMPARE_WAIT = 30.0  # seconds a comparison waits for its turn before a 503


def _as_number(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    return parse_decimal(str(value))


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


Handler = Callable[..., Response]


class Application:
    """Routes requests to handlers over the current policy set of a :class:`PolicyStore`."""

    def __init__(
        self,
        config: ServerConfig,
        store: PolicyStore,
        *,
        decision_log: DecisionLog | None = None,
        on_reload: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.decision_log = decision_log
        self.metrics = metrics if metrics is not None else Metrics.disabled()
        self.cache = DecisionCache(config.cache_entries)
        self.on_reload = on_reload  # told after a successful reload (workers: the supervisor)
        self.started = utc_now()
        self._comparisons = threading.Semaphore(1)

    # -- dispatch ---------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        decision: Decision | None = None
        params: dict[str, Any] = {}
        try:
            route, params = self.match(request)
            if route.decision is not None:
                decision = Decision(route.decision)
                params["decision"] = decision
            self._check_query(request, route)
            method = "GET" if request.method == "HEAD" else request.method
            handler: Handler = getattr(self, route.methods[method])
            response = handler(request, **params)
        except Problem as problem:
            response = self.problem_response(problem, request.path)
        except ConnectionLost:
            raise
        except Exception:
            response = self._internal_error(request, decision, params.get("policy_id"))
        if decision is not None:
            response = self._log_decision(decision, response, request.path)
        return response

    def refuse(self, request: Request, route: Route, problem: Problem) -> Response:
        """The answer to a request refused before its body was read (413, 415, 408): still a
        decision for the log when the route decides."""
        response = self.problem_response(problem, request.path)
        if route.decision is None:
            return response
        decision = Decision(route.decision)
        policy_id = route.pattern.match(request.path)
        if policy_id is not None and "policy_id" in route.pattern.groupindex:
            found = self.store.current.get(unquote(policy_id.group("policy_id")))
            if found is not None:
                decision.use(found)
        return self._log_decision(decision, response, request.path)

    def _internal_error(
        self, request: Request, decision: Decision | None, policy_id: str | None
    ) -> Response:
        """A bug: the traceback goes to the log with the policy's id and digest, the client
        gets a 500 problem without either."""
        digest = decision.policy_digest if decision is not None else None
        if decision is not None and decision.policy_id is not None:
            policy_id = decision.policy_id
        if digest is None and policy_id is not None:
            found = self.store.current.get(policy_id)
            digest = found.digest if found is not None else None
        log.exception(
            "internal error answering %s %s (policy %s, digest %s)",
            request.method,
            request.path,
            policy_id or "-",
            digest or "-",
        )
        return self.problem_response(
            Problem(
                500,
                "the server failed to answer this request; the error is logged",
                title="Internal error",
            ),
            request.path,
        )

    def match(self, request: Request) -> tuple[Route, dict[str, Any]]:
        """The route of a request and its path parameters; a 404 or 405 Problem otherwise."""
        for route in ROUTES:
            found = route.pattern.match(request.path)
            if found is None:
                continue
            method = (
                "GET" if request.method == "HEAD" and "GET" in route.methods else request.method
            )
            if method not in route.methods:
                allowed = route.allowed()
                raise Problem(
                    405,
                    f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}",
                    headers={"Allow": ", ".join(allowed)},
                )
            return route, {k: unquote(v) for k, v in found.groupdict().items()}
        raise Problem(
            404,
            f"no such resource: {request.path}",
            extra={"hint": "see /openapi.json for the routes"},
        )

    def _check_query(self, request: Request, route: Route) -> None:
        if not request.query:
            return
        diagnostics = []
        for name in parse_qs(request.query, keep_blank_values=True):
            if name not in route.query:
                allowed = sorted(route.query)
                hint = did_you_mean(name, allowed) or (
                    "allowed: " + ", ".join(allowed)
                    if allowed
                    else "this route takes no query parameters"
                )
                diagnostics.append(
                    Diagnostic(
                        "E102", f"unknown query parameter '{name}'", hint=hint, path="<query>"
                    )
                )
        if diagnostics:
            raise invalid(diagnostics, "Invalid query")

    def problem_response(self, problem: Problem, instance: str) -> Response:
        headers = list(problem.headers.items())
        return Response(
            problem.status,
            dumps(problem.document(instance)),
            PROBLEM_MEDIA_TYPE,
            headers,
            close=problem.close,
        )

    def _log_decision(self, decision: Decision, response: Response, instance: str) -> Response:
        response.headers.append(("Liqpolicy-Decision-Id", decision.id))
        if decision.policy_digest is not None:
            response.headers.append(("Liqpolicy-Policy-Digest", decision.policy_digest))
        self.metrics.decision(decision.endpoint, response.status, cached=decision.cached)
        if self.decision_log is None:
            return response
        ok = response.status < 400
        error = None if ok else json.loads(response.body)
        try:
            self.decision_log.write(
                decision_id=decision.id,
                time=utc_text(decision.time),
                endpoint=decision.endpoint,
                policy_id=decision.policy_id,
                policy_digest=decision.policy_digest,
                status=response.status,
                duration_ms=(perf_counter() - decision.started) * 1000,
                input_json=decision.input_text if decision.input_json else None,
                input_text=None if decision.input_json else decision.input_text,
                input_digest=decision.input_digest,
                result_json=response.body.decode("utf-8") if ok else None,
                error=error,
                cached=decision.cached,
                extra=decision.extra or None,
            )
        except OSError:
            log.exception(
                "cannot write the decision log %s (decision %s, policy %s, digest %s)",
                self.decision_log.path,
                decision.id,
                decision.policy_id or "-",
                decision.policy_digest or "-",
            )
            self.metrics.decision_log_failure()
            if self.config.decision_log_required:
                refusal = self.problem_response(
                    Problem(
                        503,
                        "the decision could not be recorded in the decision log, so it is not "
                        "given; the error is logged",
                        title="Decision log unavailable",
                        kind="decision-log-unavailable",
                        headers={"Retry-After": "5"},
                    ),
                    instance,
                )
                refusal.headers.append(("Liqpolicy-Decision-Id", decision.id))
                return refusal
        return response

    # -- lookups ----------------------------------------------------------------------------------
    def _policy(
        self, policies: PolicySet, policy_id: str, decision: Decision | None = None
    ) -> Policy:
        policy = policies.get(policy_id)
        if policy is None:
            if decision is not None:
                decision.policy_id = policy_id
            hint = did_you_mean(policy_id, list(policies.policies)) or (
                "policies served: " + ", ".join(policies.policies)
            )
            raise Problem(
                404,
                f"no policy with id '{policy_id}'",
                title="Unknown policy",
                kind="unknown-policy",
                extra={"hint": hint},
            )
        if decision is not None:
            decision.use(policy)
        return policy

    def _cached(self, key: tuple[object, ...], decision: Decision) -> Response | None:
        body = self.cache.get(key)
        if body is None:
            return None
        decision.cached = True
        return Response(200, body)

    # -- handlers ---------------------------------------------------------------------------------
    def health(self, request: Request) -> Response:
        current = self.store.current
        return Response(
            200,
            dumps(
                {
                    "status": "ok",
                    "version": __version__,
                    "pid": os.getpid(),
                    "policies": len(current),
                    "loaded_at": current.loaded_at,
                    "started_at": self.started,
                }
            ),
        )

    def metrics_text(self, request: Request) -> Response:
        if not self.metrics.enabled:
            raise Problem(404, "metrics are off in this server", title="Not found")
        return Response(200, self.metrics.exposition(), METRICS_CONTENT_TYPE)

    def openapi(self, request: Request) -> Response:
        return Response(200, openapi_bytes())

    def account_schema(self, request: Request) -> Response:
        return Response(200, schema_bytes("account.schema.json"), "application/schema+json")

    def book_schema(self, request: Request) -> Response:
        return Response(200, schema_bytes("book.schema.json"), "application/schema+json")

    def list_policies(self, request: Request) -> Response:
        current = self.store.current
        return Response(
            200,
            dumps(
                {
                    "source": current.source,
                    "loaded_at": current.loaded_at,
                    "policies": [policy_summary(p) for p in current],
                }
            ),
        )

    def get_policy(self, request: Request, policy_id: str) -> Response:
        current = self.store.current
        policy = self._policy(current, policy_id)
        return Response(200, dumps(policy_detail(policy, current.loaded_at)))

    def evaluate(self, request: Request, policy_id: str, decision: Decision) -> Response:
        trace = trace_option(request.query)
        policy = self._policy(self.store.current, policy_id, decision)
        text = body_text(request, decision)
        key = ("evaluate", policy.digest, trace, text)
        cached = self._cached(key, decision)  # the same text always parses to the same account
        if cached is not None:
            decision.input_json = True
            return cached
        data = parse_json(text, decision)
        try:
            account = parse_account(data, policy, path=BODY_PATH)
            result = evaluate_account(policy, account, trace=trace)
        except PolicyError as error:  # InputError is not one; PolicyError cannot happen here
            raise invalid(error.diagnostics) from None
        except EngineError as error:
            raise engine_problem(
                error, text, lambda spans: account_diagnostics(data, policy, spans)
            ) from None
        except NumberSyntaxError as error:
            raise invalid(
                [
                    Diagnostic(
                        "E015", f"a number is malformed or out of range: {error}", path=BODY_PATH
                    )
                ]
            ) from None
        body = dumps(result.as_dict())
        self.cache.put(key, body)
        return Response(200, body)

    def liquidation_price(self, request: Request, policy_id: str, decision: Decision) -> Response:
        policy = self._policy(self.store.current, policy_id, decision)
        text = body_text(request, decision)
        key = ("liquidation-price", policy.digest, text)
        cached = self._cached(key, decision)
        if cached is not None:
            decision.input_json = True
            return cached
        data = parse_json(text, decision)
        check_quote_request(data, text, policy)
        symbol = data["symbol"]

        def number(name: str) -> Decimal | None:
            return _as_number(data[name]) if data.get(name) is not None else None

        try:
            quote = quote_prices(
                policy,
                symbol=symbol,
                side=data["side"],
                size=_as_number(data["size"]),
                entry_price=_as_number(data["entry_price"]),
                leverage=number("leverage"),
                margin=number("margin"),
                mode=data.get("mode", "isolated"),
                wallet=number("wallet"),
                mark_price=number("mark_price"),
            )
        except EngineError as error:
            raise engine_problem(error, text, lambda spans: []) from None
        except NumberSyntaxError as error:
            raise invalid(
                [
                    Diagnostic(
                        "E015", f"a number is malformed or out of range: {error}", path=BODY_PATH
                    )
                ]
            ) from None
        body = dumps({"policy": policy.id, **quote.as_dict()})
        self.cache.put(key, body)
        return Response(200, body)

    def compare(self, request: Request, decision: Decision) -> Response:
        data, text = json_body(request, decision)
        check_compare_request(data, text, self.config.max_compare_accounts)
        current = self.store.current
        ids: list[str] = list(data["policies"])
        decision.extra["policies"] = {i: (p.digest if (p := current.get(i)) else None) for i in ids}
        unknown = [i for i in ids if current.get(i) is None]
        if unknown:
            raise Problem(
                404,
                "no policy with id " + ", ".join(f"'{i}'" for i in unknown),
                title="Unknown policy",
                kind="unknown-policy",
                extra={"hint": "policies served: " + ", ".join(current.policies)},
            )
        policies = [current.policies[i] for i in ids]
        backend = comparison_backend()
        if backend is None:
            raise Problem(
                501,
                "comparison not available yet: this build has no comparison engine "
                "(engine.compare)",
                title="Comparison not available yet",
                kind="comparison-unavailable",
            )
        scenario_id: str = data["scenario"]
        scenarios = backend.scenario_ids()
        if scenario_id not in scenarios:
            hint = did_you_mean(scenario_id, scenarios) or "shipped scenarios: " + ", ".join(
                scenarios
            )
            raise invalid(
                [
                    Diagnostic(
                        "E104",
                        f"'{scenario_id}' is not a shipped scenario in scenario",
                        path=BODY_PATH,
                        hint=hint,
                    )
                ]
            )
        # One comparison at a time per worker: each runs a whole simulation per policy.
        if not self._comparisons.acquire(timeout=COMPARE_WAIT):
            raise Problem(
                503,
                "busy with other comparisons; retry shortly",
                title="Busy",
                headers={"Retry-After": "5"},
            )
        try:
            # Each account as one line of a JSON-lines book: the book reader checks it and
            # its diagnostics name line i + 1 for accounts[i].
            lines = [dumps(account).decode("utf-8") for account in data["accounts"]]
            result = backend.run(
                policies, "\n".join(lines), scenario_id, int(data.get("limit", 10))
            )
        except EngineError as error:
            raise engine_problem(error, text, lambda spans: []) from None
        finally:
            self._comparisons.release()
        return Response(200, dumps(result))

    def reload(self, request: Request) -> Response:
        if not _is_loopback(request.client_host):
            raise Problem(403, "reload is only accepted from a loopback address", title="Forbidden")
        request.read_body()  # ignored, but read within the limit so the connection stays usable
        outcome = self.store.reload()
        current = outcome.current
        summary = {
            "source": current.source,
            "loaded_at": current.loaded_at,
            "policies": [policy_summary(p) for p in current],
        }
        self.metrics.reload(ok=outcome.ok)
        if not outcome.ok:
            log.warning(
                "reload failed, still serving the policies loaded at %s: %s",
                current.loaded_at,
                summary_message(outcome.diagnostics, "invalid policies"),
            )
            raise Problem(
                422,
                "reload failed: "
                + summary_message(outcome.diagnostics, "invalid policies")
                + f"; still serving the policies loaded at {current.loaded_at}",
                title="Reload failed",
                kind="reload-failed",
                diagnostics=outcome.diagnostics,
                extra={"reloaded": False, **summary},
            )
        self.cache.clear()
        log.info("reloaded %d policies from %s", len(current), current.source)
        if self.on_reload is not None:
            self.on_reload()
        return Response(
            200,
            dumps(
                {
                    "reloaded": True,
                    **summary,
                    "diagnostics": [d.as_dict() for d in outcome.diagnostics],
                }
            ),
        )

    def reload_from_signal(self) -> None:
        """SIGHUP: reload, and log the outcome (there is nobody to answer)."""
        outcome = self.store.reload()
        self.metrics.reload(ok=outcome.ok)
        if outcome.ok:
            self.cache.clear()
            log.info(
                "SIGHUP: reloaded %d policies from %s", len(outcome.current), outcome.current.source
            )
            return
        log.error(
            "SIGHUP: reload failed, still serving the policies loaded at %s: %s",
            outcome.current.loaded_at,
            "; ".join(
                f"{d.location_path}:{d.span.line if d.span else '-'}: {d.code} {d.message}"
                for d in outcome.diagnostics
                if d.severity == "error"
            ),
        )
