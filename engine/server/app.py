"""The service itself, independent of the HTTP plumbing: routes, handlers and their errors.

:class:`Application.handle` takes a :class:`Request` (method, path, query, headers, a function
that reads the body within the size limit) and returns a :class:`Response`; it never raises.
Every refusal is a :class:`~engine.server.problems.Problem`; an unexpected exception is logged
with its traceback and answered with a 500 problem that does not contain it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import import_module
from pathlib import Path
from time import perf_counter
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, unquote

from engine._version import __version__
from engine.dsl.check import did_you_mean
from engine.errors import EngineError, EvaluationError, PolicyError
from engine.json_exact import DuplicateKeyError, NonNumberError, loads_exact
from engine.mechanics.accounts import parse_account
from engine.mechanics.evaluate import evaluate_account
from engine.mechanics.quote import quote_prices
from engine.numbers import NumberSyntaxError, format_decimal, parse_decimal
from engine.policy.model import Policy
from engine.policy.yaml_reader import SourceMap, read_yaml, span_locator
from engine.server.config import ServerConfig
from engine.server.decisions import DecisionCache, DecisionLog, utc_now, utc_text
from engine.server.openapi import body_diagnostics, openapi_bytes, schema_bytes
from engine.server.policies import PolicySet, PolicyStore
from engine.server.problems import PROBLEM_MEDIA_TYPE, ConnectionLost, Problem
from engine.source import Diagnostic, SourceFile, Span

log = logging.getLogger("liqpolicy.server")

JSON_MEDIA_TYPE = "application/json"
BODY_PATH = "<request>"  # the `path` of diagnostics about a request body
COMPARE_WAIT = 30.0  # seconds a comparison waits for its turn before a 503


@dataclass(slots=True)
class Request:
    method: str
    path: str  # percent-encoded, without the query
    query: str
    headers: Any  # anything with .get(name) -> str | None, case-insensitive
    client_host: str
    read_body: Callable[[], bytes]  # the body, within the size limit (raises Problem otherwise)


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = JSON_MEDIA_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False


# -- JSON -----------------------------------------------------------------------------------------


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def dumps(data: object) -> bytes:
    """Compact JSON, UTF-8; decimals as exact strings (the engine's documented form)."""
    return _ENCODER.encode(data).encode()


def _body_span(text: str, line: int, column: int) -> Span:
    return Span(SourceFile(BODY_PATH, text), line, column, line, column + 1)


def _relocated(
    text: str, compute: Callable[[SourceMap | None], list[Diagnostic]]
) -> list[Diagnostic]:
    """Diagnostics located in the request body, like the CLI locates them in a file.

    Only on the error path: the body is read again with the engine's YAML reader (JSON is
    YAML), whose source map gives each value's line and column; when that fails for any reason
    the diagnostics stay unlocated (path `<request>`, no line).
    """
    try:
        document = read_yaml(text, BODY_PATH)
    except Exception:  # locating is a courtesy; never fail the answer over it
        return compute(None)
    located = compute(document.spans)
    return located or compute(None)


def _summary_message(diagnostics: tuple[Diagnostic, ...] | list[Diagnostic], fallback: str) -> str:
    errors = [d for d in diagnostics if d.severity == "error"] or list(diagnostics)
    if not errors:
        return fallback
    message = errors[0].message
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return message


def _invalid(
    diagnostics: list[Diagnostic] | tuple[Diagnostic, ...], title: str = "Invalid input"
) -> Problem:
    return Problem(422, _summary_message(diagnostics, title), title=title, diagnostics=diagnostics)


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


def _flag(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in ("", "1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    return None


# -- policies as JSON ------------------------------------------------------------------------------


def policy_summary(policy: Policy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "title": policy.title,
        "digest": policy.digest,
        "path": policy.path,
        "source_count": len(policy.sources),
    }


def _cell(value: object) -> object:
    if isinstance(value, Decimal):
        return format_decimal(value)
    return value


def policy_detail(policy: Policy, loaded_at: str) -> dict[str, Any]:
    markets = []
    for market in policy.markets.values():
        tiers = None
        if market.tiers is not None:
            tiers = {
                "table": market.tiers.name,
                "rows": [{k: _cell(v) for k, v in row.items()} for row in market.tiers.rows],
            }
        markets.append(
            {
                "symbol": market.symbol,
                "kind": market.kind,
                "contract_size": format_decimal(market.contract_size),
                "tick_size": format_decimal(market.tick_size),
                "parameters": {k: format_decimal(v) for k, v in market.parameters.items()},
                "tiers": tiers,
            }
        )
    return {
        **policy_summary(policy),
        "description": policy.description,
        "extends": policy.extends,
        "chain": list(policy.chain),
        "loaded_at": loaded_at,
        "sources": [
            {
                "id": s.id,
                "url": s.url,
                "title": s.title,
                "retrieved": str(s.retrieved),
                "note": s.note,
            }
            for s in policy.sources
        ],
        "markets": markets,
        "definitions": [
            {"name": d.name, "type": str(d.type), "unit": d.unit, "description": d.description}
            for d in policy.definitions.values()
        ],
        "warnings": [d.as_dict() for d in policy.warnings],
    }


# -- decisions -------------------------------------------------------------------------------------


def new_decision_id() -> str:
    """A random version-4 UUID from `random`, which makes no system call (`uuid.uuid4` reads
    the OS's randomness, and under load its system call hands the GIL to another thread).
    Unique, not secret: each forked worker's generator is reseeded by `random` itself."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


@dataclass(slots=True)
class _Decision:
    """What the decision log records about one decision request, filled in by its handler."""

    endpoint: str
    id: str = field(default_factory=new_decision_id)
    time: float = field(default_factory=time.time)  # formatted only for the decision log
    started: float = field(default_factory=perf_counter)
    policy_id: str | None = None
    policy_digest: str | None = None
    input_text: str | None = None
    input_json: bool = False  # input_text is valid JSON (spliced as is into the log line)
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def use(self, policy: Policy) -> None:
        self.policy_id, self.policy_digest = policy.id, policy.digest


Handler = Callable[..., Response]


@dataclass(frozen=True, slots=True)
class _Route:
    pattern: re.Pattern[str]
    methods: Mapping[str, str]  # HTTP method -> Application method name
    query: frozenset[str] = frozenset()  # allowed query parameters
    decision: str | None = None  # the endpoint's name in the decision log


def _route(
    template: str,
    methods: Mapping[str, str],
    *,
    query: frozenset[str] = frozenset(),
    decision: str | None = None,
) -> _Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return _Route(re.compile(f"^{regex}$"), methods, query, decision)


ROUTES: tuple[_Route, ...] = (
    _route("/healthz", {"GET": "health"}),
    _route("/openapi.json", {"GET": "openapi"}),
    _route("/account.schema.json", {"GET": "account_schema"}),
    _route("/book.schema.json", {"GET": "book_schema"}),
    _route("/v1/policies", {"GET": "list_policies"}),
    _route("/v1/policies/{policy_id}", {"GET": "get_policy"}),
    _route(
        "/v1/policies/{policy_id}/evaluate",
        {"POST": "evaluate"},
        query=frozenset({"trace"}),
        decision="evaluate",
    ),
    _route(
        "/v1/policies/{policy_id}/liquidation-price",
        {"POST": "liquidation_price"},
        decision="liquidation-price",
    ),
    _route("/v1/compare", {"POST": "compare"}, decision="compare"),
    _route("/v1/reload", {"POST": "reload"}),
)


def _allowed(route: _Route) -> list[str]:
    methods = list(route.methods)
    if "GET" in methods:
        methods.append("HEAD")
    return methods


# -- the application -------------------------------------------------------------------------------


class Application:
    """Routes requests to handlers over the current policy set of a :class:`PolicyStore`."""

    def __init__(
        self,
        config: ServerConfig,
        store: PolicyStore,
        *,
        decision_log: DecisionLog | None = None,
        on_reload: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.decision_log = decision_log
        self.cache = DecisionCache(config.cache_entries)
        self.on_reload = on_reload  # told after a successful reload (workers: the supervisor)
        self.started = utc_now()
        self._comparisons = threading.Semaphore(1)

    # -- dispatch ---------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        decision: _Decision | None = None
        try:
            route, params = self._match(request)
            if route.decision is not None:
                decision = _Decision(route.decision)
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
            log.exception("internal error answering %s %s", request.method, request.path)
            response = self.problem_response(
                Problem(
                    500,
                    "the server failed to answer this request; the error is logged",
                    title="Internal error",
                ),
                request.path,
            )
        if decision is not None:
            self._log_decision(decision, response)
        return response

    def _match(self, request: Request) -> tuple[_Route, dict[str, Any]]:
        for route in ROUTES:
            found = route.pattern.match(request.path)
            if found is None:
                continue
            method = (
                "GET" if request.method == "HEAD" and "GET" in route.methods else request.method
            )
            if method not in route.methods:
                allowed = _allowed(route)
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

    def _check_query(self, request: Request, route: _Route) -> None:
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
            raise _invalid(diagnostics, "Invalid query")

    def problem_response(self, problem: Problem, instance: str) -> Response:
        headers = list(problem.headers.items())
        return Response(
            problem.status,
            dumps(problem.document(instance)),
            PROBLEM_MEDIA_TYPE,
            headers,
            close=problem.close,
        )

    def _log_decision(self, decision: _Decision, response: Response) -> None:
        response.headers.append(("Liqpolicy-Decision-Id", decision.id))
        if decision.policy_digest is not None:
            response.headers.append(("Liqpolicy-Policy-Digest", decision.policy_digest))
        if self.decision_log is None:
            return
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
                result_json=response.body.decode("utf-8") if ok else None,
                error=error,
                cached=decision.cached,
                extra=decision.extra or None,
            )
        except OSError:
            log.exception("cannot write the decision log %s", self.decision_log.path)

    # -- request bodies ---------------------------------------------------------------------------
    def _json_body(self, request: Request, decision: _Decision | None = None) -> tuple[Any, str]:
        text = self._body_text(request, decision)
        return self._parse_json(text, decision), text

    def _body_text(self, request: Request, decision: _Decision | None = None) -> str:
        """The body as text, after the media type and size checks (415, 413, 400 not UTF-8)."""
        content_type = request.headers.get("Content-Type")
        if content_type is None:
            raise Problem(
                415,
                "send the body as JSON with Content-Type: application/json",
                headers={"Accept-Post": JSON_MEDIA_TYPE},
            )
        media, _, parameters = content_type.partition(";")
        media = media.strip().lower()
        if media != JSON_MEDIA_TYPE and not (
            media.startswith("application/") and media.endswith("+json")
        ):
            raise Problem(
                415,
                f"unsupported media type '{media}'; send application/json",
                headers={"Accept-Post": JSON_MEDIA_TYPE},
            )
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
                "utf-8",
                "utf8",
            ):
                raise Problem(415, f"unsupported charset '{value.strip()}'; JSON is UTF-8")
        raw = request.read_body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            if decision is not None:
                decision.input_text = raw.decode("utf-8", errors="replace")
            prefix = raw[: error.start].decode("utf-8", errors="replace")
            source = SourceFile(BODY_PATH, raw.decode("utf-8", errors="replace"))
            line, column = source.position(len(prefix))
            diagnostic = Diagnostic(
                "E001",
                f"request body is not valid UTF-8 (byte 0x{raw[error.start]:02x})",
                Span(source, line, column, line, column + 1),
                path=BODY_PATH,
            )
            raise Problem(
                400, diagnostic.message, title="Malformed JSON", diagnostics=[diagnostic]
            ) from None
        if decision is not None:
            decision.input_text = text
        return text

    def _parse_json(self, text: str, decision: _Decision | None = None) -> Any:
        """Parse exactly: numbers as Decimal (within the engine's limits), strict JSON."""
        if not text.strip():
            raise Problem(
                400,
                "the request body is empty; send a JSON object",
                title="Malformed JSON",
                diagnostics=[Diagnostic("E010", "empty request body", path=BODY_PATH)],
            )
        try:
            data = loads_exact(text)
        except json.JSONDecodeError as error:
            diagnostic = Diagnostic(
                "E010",
                f"malformed JSON: {error.msg}",
                _body_span(text, error.lineno, error.colno),
                path=BODY_PATH,
            )
            raise Problem(
                400, diagnostic.message, title="Malformed JSON", diagnostics=[diagnostic]
            ) from None
        except NonNumberError as error:
            diagnostic = Diagnostic(
                "E010",
                f"malformed JSON: {error.name} is not a JSON number",
                path=BODY_PATH,
                hint="JSON has no NaN or Infinity",
            )
            raise Problem(
                400, diagnostic.message, title="Malformed JSON", diagnostics=[diagnostic]
            ) from None
        except DuplicateKeyError:
            diagnostics = self._yaml_problems(text) or [
                Diagnostic("E011", "the same key appears twice in one object", path=BODY_PATH)
            ]
            raise Problem(
                400,
                _summary_message(diagnostics, "duplicate key"),
                title="Malformed JSON",
                diagnostics=diagnostics,
            ) from None
        except NumberSyntaxError as error:
            diagnostic = Diagnostic(
                "E015",
                f"a number is malformed or out of range: {error}",
                path=BODY_PATH,
                hint="write an ordinary decimal such as 0.004 or 50000",
            )
            raise _invalid([diagnostic]) from None
        except RecursionError:
            diagnostic = Diagnostic("E014", "the JSON nests too deeply", path=BODY_PATH)
            raise Problem(
                400, diagnostic.message, title="Malformed JSON", diagnostics=[diagnostic]
            ) from None
        if decision is not None:
            decision.input_json = True
        return data

    @staticmethod
    def _yaml_problems(text: str) -> list[Diagnostic]:
        try:
            read_yaml(text, BODY_PATH)
        except PolicyError as error:
            return list(error.diagnostics)
        except Exception:  # locating is a courtesy
            return []
        return []

    def _policy(
        self, policies: PolicySet, policy_id: str, decision: _Decision | None = None
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

    def _cached(self, key: tuple[object, ...], decision: _Decision) -> Response | None:
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

    def evaluate(self, request: Request, policy_id: str, decision: _Decision) -> Response:
        trace = False
        if request.query:
            values = parse_qs(request.query, keep_blank_values=True).get("trace", [])
            for value in values:
                flag = _flag(value)
                if flag is None:
                    raise _invalid(
                        [
                            Diagnostic(
                                "E104",
                                f"'{value}' is not allowed for trace; use true or false",
                                path="<query>",
                            )
                        ],
                        "Invalid query",
                    )
                trace = flag
        policy = self._policy(self.store.current, policy_id, decision)
        text = self._body_text(request, decision)
        key = ("evaluate", policy.digest, trace, text)
        cached = self._cached(key, decision)  # the same text always parses to the same account
        if cached is not None:
            decision.input_json = True
            return cached
        data = self._parse_json(text, decision)
        try:
            account = parse_account(data, policy, path=BODY_PATH)
            result = evaluate_account(policy, account, trace=trace)
        except PolicyError as error:  # InputError is not one; PolicyError cannot happen here
            raise _invalid(error.diagnostics) from None
        except EngineError as error:
            raise self._engine_problem(
                error, text, lambda spans: self._account_diagnostics(data, policy, spans)
            ) from None
        except NumberSyntaxError as error:
            raise _invalid(
                [
                    Diagnostic(
                        "E015", f"a number is malformed or out of range: {error}", path=BODY_PATH
                    )
                ]
            ) from None
        body = dumps(result.as_dict())
        self.cache.put(key, body)
        return Response(200, body)

    @staticmethod
    def _account_diagnostics(
        data: Any, policy: Policy, spans: SourceMap | None
    ) -> list[Diagnostic]:
        try:
            parse_account(data, policy, spans=spans, path=BODY_PATH)
        except EngineError as error:
            return list(getattr(error, "diagnostics", ()))
        except Exception:  # locating is a courtesy
            return []
        return []

    def _engine_problem(
        self, error: EngineError, text: str, locate: Callable[[SourceMap | None], list[Diagnostic]]
    ) -> Problem:
        if isinstance(error, EvaluationError):
            diagnostic = error.diagnostic()
            return Problem(
                422,
                str(error),
                title="Evaluation failed",
                kind="evaluation-failed",
                diagnostics=[diagnostic],
            )
        diagnostics = list(getattr(error, "diagnostics", ()))
        if diagnostics and all(d.span is None for d in diagnostics):
            located = _relocated(text, locate)
            if located and len(located) == len(diagnostics):
                diagnostics = located
        return _invalid(diagnostics or [Diagnostic("E100", str(error), path=BODY_PATH)])

    def liquidation_price(self, request: Request, policy_id: str, decision: _Decision) -> Response:
        policy = self._policy(self.store.current, policy_id, decision)
        text = self._body_text(request, decision)
        key = ("liquidation-price", policy.digest, text)
        cached = self._cached(key, decision)
        if cached is not None:
            decision.input_json = True
            return cached
        data = self._parse_json(text, decision)
        if isinstance(data, dict):
            given = [name for name in ("leverage", "margin") if name in data]
            if len(given) != 1:
                message = (
                    "give a leverage or a margin"
                    if not given
                    else "give either a leverage or a margin, not both"
                )
                raise _invalid(
                    [
                        Diagnostic(
                            "E606",
                            message,
                            path=BODY_PATH,
                            hint="the margin is notional at entry / leverage",
                        )
                    ]
                )

        def schema(spans: SourceMap | None) -> list[Diagnostic]:
            locate = span_locator(spans)
            return body_diagnostics("LiquidationPriceRequest", data, locate=locate, path=BODY_PATH)

        diagnostics = schema(None)
        if diagnostics:
            raise _invalid(_relocated(text, schema) or diagnostics)
        symbol = data["symbol"]
        if symbol not in policy.markets:
            hint = did_you_mean(symbol, list(policy.markets)) or "policy markets: " + ", ".join(
                policy.markets
            )
            raise _invalid(
                [
                    Diagnostic(
                        "E602", f"unknown symbol '{symbol}' in symbol", path=BODY_PATH, hint=hint
                    )
                ]
            )

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
            raise self._engine_problem(error, text, lambda spans: []) from None
        except NumberSyntaxError as error:
            raise _invalid(
                [
                    Diagnostic(
                        "E015", f"a number is malformed or out of range: {error}", path=BODY_PATH
                    )
                ]
            ) from None
        body = dumps({"policy": policy.id, **quote.as_dict()})
        self.cache.put(key, body)
        return Response(200, body)

    def compare(self, request: Request, decision: _Decision) -> Response:
        data, text = self._json_body(request, decision)
        limit = self.config.max_compare_accounts
        if (
            isinstance(data, dict)
            and isinstance(data.get("accounts"), list)
            and len(data["accounts"]) > limit
        ):
            raise Problem(
                413,
                f"the book has {len(data['accounts'])} accounts; at most {limit} are "
                "compared per request",
                title="Book too large",
                kind="book-too-large",
                extra={"limit": limit},
            )

        def schema(spans: SourceMap | None) -> list[Diagnostic]:
            return body_diagnostics(
                "CompareRequest", data, locate=span_locator(spans), path=BODY_PATH
            )

        diagnostics = schema(None)
        if diagnostics:
            raise _invalid(_relocated(text, schema) or diagnostics)
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
            raise _invalid(
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
            raise self._engine_problem(error, text, lambda spans: []) from None
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
        if not outcome.ok:
            log.warning(
                "reload failed, still serving the policies loaded at %s: %s",
                current.loaded_at,
                _summary_message(outcome.diagnostics, "invalid policies"),
            )
            raise Problem(
                422,
                "reload failed: "
                + _summary_message(outcome.diagnostics, "invalid policies")
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


@dataclass(frozen=True, slots=True)
class ComparisonBackend:
    """The comparison engine, reached through the two calls the endpoint needs."""

    compare: Callable[..., Any]  # compare(policies, book, scenario, *, limit) -> Comparison
    read_book: Callable[..., Any]  # read_book(text, path) -> Book
    load_scenario: Callable[[str], Any]  # load_scenario(id) -> Scenario
    scenario_paths: Callable[[], list[Any]]  # the shipped scenario files

    def scenario_ids(self) -> list[str]:
        return [Path(p).stem for p in self.scenario_paths()]

    def run(self, policies: list[Policy], book_text: str, scenario_id: str, limit: int) -> Any:
        book = self.read_book(book_text, BODY_PATH)
        scenario = self.load_scenario(scenario_id)
        return self.compare(policies, book, scenario, limit=limit).as_dict()


COMPARE_MODULES = ("engine.compare", "engine.simulation.compare")


def comparison_backend() -> ComparisonBackend | None:
    """The comparison engine when this build has one (`engine.compare`, or where it landed,
    `engine.simulation.compare`); None otherwise, and the endpoint answers 501."""
    for name in COMPARE_MODULES:
        try:
            module: ModuleType = import_module(name)
            from engine.simulation.book import read_book  # noqa: PLC0415  # optional engine part
            from engine.simulation.scenario import (  # noqa: PLC0415
                load_scenario,
                shipped_scenario_paths,
            )
        except ImportError:
            continue
        function = getattr(module, "compare", None)
        if callable(function):
            return ComparisonBackend(function, read_book, load_scenario, shipped_scenario_paths)
    return None
