"""The service's routes: path templates, their methods, query parameters and log names.

One table, so dispatch, the 405 `Allow` header and the tests that compare the routes with
`schemas/openapi.json` all read the same source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Route:
    pattern: re.Pattern[str]
    methods: Mapping[str, str]  # HTTP method -> Application method name
    query: frozenset[str] = frozenset()  # allowed query parameters
    decision: str | None = None  # the endpoint's name in the decision log
    template: str = ""  # the path as documented, `/v1/policies/{policy_id}` (metrics label)
    blocking: bool = False  # long work (a comparison, a reload): answered off the event loop

    def allowed(self) -> list[str]:
        """The methods to name in a 405's `Allow` header: HEAD wherever GET is."""
        methods = list(self.methods)
        if "GET" in methods:
            methods.append("HEAD")
        return methods


def _route(
    template: str,
    methods: Mapping[str, str],
    *,
    query: frozenset[str] = frozenset(),
    decision: str | None = None,
    blocking: bool = False,
) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return Route(re.compile(f"^{regex}$"), methods, query, decision, template, blocking)


ROUTES: tuple[Route, ...] = (
    _route("/healthz", {"GET": "health"}),
    _route("/metrics", {"GET": "metrics_text"}),
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
    _route("/v1/compare", {"POST": "compare"}, decision="compare", blocking=True),
    _route("/v1/reload", {"POST": "reload"}, blocking=True),
)
