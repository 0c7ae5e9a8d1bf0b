"""A cell's inputs: parameter values applied to a policy (as an `extends` child) or a scenario.

Policy overrides become a generated child policy: real YAML that `extends` the base policy and
holds only what changes (:func:`~engine.sweep.paths.rewrite` says how lists are handled), so the
cell runs an ordinary policy with its own digest that `liqpolicy simulate` loads on its own.
Scenario parameters become a generated scenario file: transforms first (crash depth, duration,
book depth), then path overrides, written out in full (scenarios have no `extends`).
"""

from __future__ import annotations

import copy
import decimal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.dsl.check import did_you_mean
from engine.numbers import DECIMAL_CONTEXT, format_decimal, quantize_to_step
from engine.policy.yaml_reader import Pointer
from engine.simulation.scenario import parse_time
from engine.source import Diagnostic, Span
from engine.sweep.grid import Parameter, Value
from engine.sweep.paths import DELETE, ValuePath, creatable, get, matches, pointer_text, rewrite
from engine.sweep.yaml_text import dump_yaml

Applied = Sequence[tuple[Parameter, Value]]


class OverrideError(Exception):
    """A parameter cannot be applied to one policy or scenario; the cell reports `diagnostic`."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


@dataclass(frozen=True, slots=True)
class Change:
    """What one parameter did, in words for titles and descriptions."""

    parameter: str
    text: str


def describe(changes: Sequence[Change]) -> str:
    return "; ".join(change.text for change in changes)


def _number(value: Any) -> bool:
    return isinstance(value, Decimal) and not isinstance(value, bool)


def _scaled(value: Decimal, factor: Decimal) -> Decimal:
    """The exact product, without trailing zeros (`0.005 * 1.2` is written `0.006`)."""
    with decimal.localcontext(DECIMAL_CONTEXT):
        return Decimal(format_decimal(value * factor))


def apply_path(
    data: Any, parameter: Parameter, value: Value, path: ValuePath, span: Span, what: str
) -> tuple[dict[Pointer, Any], Change]:
    """The changes one `set` or `scale` makes to `data` (which is updated in place)."""
    path_text = path.text
    found = matches(data, path)
    if not found and parameter.operation == "set":
        created = creatable(data, path)
        found = [created] if created is not None else []
    if not found:
        raise OverrideError(
            Diagnostic(
                "E807",
                f"parameter '{parameter.name}': the path '{path_text}' matches nothing in {what}",
                span,
                _near_miss(data, path),
            )
        )
    changes: dict[Pointer, Any] = {}
    for pointer in found:
        if parameter.operation == "scale":
            old = get(data, pointer)
            if not _number(old):
                raise OverrideError(
                    Diagnostic(
                        "E808",
                        f"parameter '{parameter.name}' scales {pointer_text(pointer)} in {what}, "
                        "which is not a number",
                        span,
                        "scale numbers only; use `operation: set` for other values",
                    )
                )
            new: Any = _scaled(old, value.value)
        else:
            new = DELETE if value.value is None else copy.deepcopy(value.value)
        _put(data, pointer, new)
        changes[pointer] = new
    verb = f"x{value.label}" if parameter.operation == "scale" else f"= {value.label}"
    return changes, Change(parameter.name, f"{path_text} {verb}")


def _near_miss(data: Any, path: ValuePath) -> str:
    """A hint from the longest prefix of `path` that exists: the keys found there."""
    for length in range(len(path.segments) - 1, -1, -1):
        found = matches(data, ValuePath(path.text, path.segments[:length]))
        keys = sorted(
            {
                str(k)
                for p in found
                for k in (get(data, p) or {})
                if isinstance(get(data, p), Mapping)
            }
        )
        if found:
            wanted = path.segments[length]
            where = pointer_text(found[0]) or "the top level"
            if keys and not wanted.in_list:
                close = did_you_mean(str(wanted.key), keys)
                return close or f"{where} has: {', '.join(keys)}"
            return f"{where} holds no {wanted.text()}"
    return "check the keys against the file (wildcards match existing values only)"


def _put(data: Any, pointer: Pointer, value: Any) -> None:
    node = data
    for part in pointer[:-1]:
        if isinstance(node, dict) and part not in node:
            node[part] = {}
        node = node[part]
    if value is DELETE:
        node.pop(pointer[-1], None)
    else:
        node[pointer[-1]] = value


# -- policies ----------------------------------------------------------------------------------
def policy_child(
    parent: Mapping[str, Any],
    applied: Sequence[tuple[Parameter, Value, tuple[ValuePath, Span]]],
    *,
    child_id: str,
    extends: str | None,
    parent_name: str,
    origin: str,
) -> str:
    """The child policy's YAML text; `applied` holds each parameter, value and its path here.

    With `extends` None the child is written whole (the parent's merged data, included tables
    joined, with the changes): a parent outside the output folder may not be extended (E431),
    and a whole policy loads on its own wherever it is copied.
    """
    working = copy.deepcopy(dict(parent))
    changes: dict[Pointer, Any] = {}
    said: list[Change] = []
    for parameter, value, (path, span) in applied:
        found, change = apply_path(working, parameter, value, path, span, f"policy {parent_name}")
        changes.update(found)
        said.append(change)
    title = parent.get("title", parent_name)
    data: dict[str, Any] = {
        "id": child_id,
        "title": f"{title} (what-if: {describe(said)})",
        **({} if extends is None else {"extends": extends}),
        "description": (
            f"Generated by liqpolicy sweep from {origin}: {parent_name} with {describe(said)}. "
            "A what-if, not an exchange's published rules: the overridden values are the "
            "sweep's, everything else is "
            + ("inherited." if extends is not None else f"{parent_name}'s, copied.")
        ),
    }
    if extends is None:
        whole = {k: v for k, v in working.items() if k not in ("id", "title", "description")}
        whole.pop("extends", None)
        whole.pop("include", None)  # the included tables are joined into `tables`
        data.update(whole)
    else:
        data.update(rewrite(parent, changes))
    header = f"Generated by `liqpolicy sweep` from {origin}; loads on its own like any policy."
    return dump_yaml(data, header)


# -- scenarios ---------------------------------------------------------------------------------
def scenario_variant(
    base: Mapping[str, Any],
    applied: Applied,
    *,
    variant_id: str,
    origin: str,
) -> str:
    """The scenario's YAML text with every transform, then every path override, applied."""
    data = copy.deepcopy(dict(base))
    said: list[Change] = []
    for parameter, value in applied:
        if parameter.transform is not None:
            said.append(_transform(data, parameter, value))
    for parameter, value in applied:
        if parameter.scenario_path is not None:
            _, change = apply_path(
                data,
                parameter,
                value,
                parameter.scenario_path,
                parameter.span,
                f"scenario {base['id']}",
            )
            said.append(change)
    data["id"] = variant_id
    data["title"] = f"{base['title']} (what-if: {describe(said)})"
    data["description"] = (
        f"{base['description']}\n\nGenerated by liqpolicy sweep from {origin}: {describe(said)}."
    )
    header = f"Generated by `liqpolicy sweep` from {origin}; a scenario like any other."
    return dump_yaml(data, header)


def _transform(data: dict[str, Any], parameter: Parameter, value: Value) -> Change:
    factor: Decimal = value.value
    instruments: dict[str, Any] = data["instruments"]
    if parameter.transform == "crash_depth":
        for spec in instruments.values():
            frames = spec["keyframes"]
            start: Decimal = frames[0]["mark"]
            for frame in frames:
                move = _scaled(frame["mark"] - start, factor)
                mark = quantize_to_step(start + move, spec["price_step"], "half_even")
                frame["mark"] = Decimal(format_decimal(mark))
        return Change(parameter.name, f"crash depth x{value.label}")
    if parameter.transform == "duration":
        step = int(data["step_seconds"])
        for spec in instruments.values():
            for event in (*spec["keyframes"], *spec.get("funding", [])):
                event["time"] = _stretched(parse_time(event["time"]), factor, step)
        if data.get("settlement_seconds") is not None:
            data["settlement_seconds"] = _stretched(int(data["settlement_seconds"]), factor, step)
        return Change(parameter.name, f"duration x{value.label}")
    scaled = [spec for spec in instruments.values() if "average_book_depth" in spec]
    if not scaled:
        raise OverrideError(
            Diagnostic(
                "E809",
                f"parameter '{parameter.name}' scales the book depth of scenario {data['id']}, "
                "which has no `average_book_depth`",
                parameter.span,
            )
        )
    for spec in scaled:
        spec["average_book_depth"] = _scaled(spec["average_book_depth"], factor)
    return Change(parameter.name, f"book depth x{value.label}")


def _stretched(seconds: int, factor: Decimal, step: int) -> int:
    """`seconds` * `factor`, rounded half-even to the scenario's clock."""
    with decimal.localcontext(DECIMAL_CONTEXT):
        stretched = quantize_to_step(Decimal(seconds) * factor, Decimal(step), "half_even")
    return int(stretched)
