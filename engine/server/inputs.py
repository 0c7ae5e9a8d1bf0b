"""What the decision endpoints check in their input before the engine sees it.

The checks the OpenAPI schema cannot express (one of leverage or margin, a symbol of the policy,
the size of a book) come with the CLI's diagnostic codes; schema failures are located in the body.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from engine.dsl.check import did_you_mean
from engine.policy.model import Policy
from engine.policy.yaml_reader import SourceMap, span_locator
from engine.server.bodies import BODY_PATH, relocated
from engine.server.openapi import body_diagnostics
from engine.server.problems import Problem, invalid
from engine.source import Diagnostic


def _flag(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in ("", "1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    return None


def trace_option(query: str) -> bool:
    """`?trace=` of an evaluation (the last one given wins); a value not a flag is a 422."""
    trace = False
    if query:
        values = parse_qs(query, keep_blank_values=True).get("trace", [])
        for value in values:
            flag = _flag(value)
            if flag is None:
                raise invalid(
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
    return trace


def check_quote_request(data: Any, text: str, policy: Policy) -> None:
    """A liquidation-price request: one of leverage or margin, the schema, a policy symbol."""
    if isinstance(data, dict):
        given = [name for name in ("leverage", "margin") if name in data]
        if len(given) != 1:
            message = (
                "give a leverage or a margin"
                if not given
                else "give either a leverage or a margin, not both"
            )
            raise invalid(
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
        raise invalid(relocated(text, schema) or diagnostics)
    symbol = data["symbol"]
    if symbol not in policy.markets:
        hint = did_you_mean(symbol, list(policy.markets)) or "policy markets: " + ", ".join(
            policy.markets
        )
        raise invalid(
            [Diagnostic("E602", f"unknown symbol '{symbol}' in symbol", path=BODY_PATH, hint=hint)]
        )


def check_compare_request(data: Any, text: str, limit: int) -> None:
    """A compare request: at most `limit` accounts (a 413), then the schema."""
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
        return body_diagnostics("CompareRequest", data, locate=span_locator(spans), path=BODY_PATH)

    diagnostics = schema(None)
    if diagnostics:
        raise invalid(relocated(text, schema) or diagnostics)
