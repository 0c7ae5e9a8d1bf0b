"""Policies as the JSON documents of `GET /v1/policies` and `GET /v1/policies/{id}`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.numbers import format_decimal
from engine.policy.model import Policy


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
