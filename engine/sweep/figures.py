"""The one place where a simulation's summary becomes a sweep row's figures and columns.

Figures are read through :meth:`~engine.simulation.results.SimulationResult.summary` and
flattened generically (nested keys joined by dots: `insurance_fund.min`,
`where_the_money_went.adl`, `insurance_funds.BTCUSDT.end`), so a figure the summary gains shows
up in the rows without a change here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# What identifies a row rather than measures it; the summary's identity keys are left out of the
# figures (the row carries them under these names).
IDENTITY_COLUMNS = (
    "cell",
    "status",
    "policy",
    "policy_id",
    "policy_digest",
    "policy_file",
    "scenario",
    "scenario_id",
    "scenario_file",
    "book",
    "error",
)
SUMMARY_IDENTITY = ("policy", "title", "digest", "scenario")

# The summary's top-level figure names today, reserved so that no parameter takes one of them as
# its column name (tests/sweep checks this list against a real summary).
SUMMARY_FIGURES = (
    "currency",
    "notional_currency",
    "accounts",
    "steps",
    "accounts_liquidated",
    "liquidated_notional",
    "fees_total",
    "fees",
    "margin_returned",
    "insurance_fund",
    "adl_count",
    "adl_volume",
    "adl_haircut",
    "adl_contracts",
    "adl_residual",
    "adl_exhausted",
    "clawback_rate",
    "bad_debt",
    "write_offs",
    "debt_outstanding",
    "fee_revenue",
    "charges",
    "where_the_money_went",
    "liquidated_margin",
    "losses_past_bankruptcy",
    "insurance_fund_takeover_result",
    "insurance_funds",
    "conservation_error",
)


def figures_of(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary's figures as flat columns, in the summary's order (exact strings and ints)."""
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        if key not in SUMMARY_IDENTITY:
            _flatten(flat, key, value)
    return flat


def _flatten(flat: dict[str, Any], name: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(flat, f"{name}.{key}", inner)
    elif isinstance(value, list | tuple):
        flat[name] = ",".join(str(item) for item in value)
    else:
        flat[name] = value
