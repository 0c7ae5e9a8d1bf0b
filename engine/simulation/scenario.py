"""Scenario files: a few keyframes per instrument, interpolated onto the simulation's clock.

A scenario (``schemas/scenario.schema.json``, documented in docs/scenarios.md) gives each
instrument's path as keyframes: time, mark price, optional last and index offsets from the mark in
basis points, and an optional book-depth ratio.  The loader interpolates linearly to every
``step_seconds`` and rounds each price to the instrument's ``price_step`` (half-even), so a
1,440-step path is a few lines of YAML and every point is an exact decimal.  Each interpolated
value is computed as one quotient of exact products, so a value that lies exactly halfway between
two grid prices is recognised as such and rounded half-even, never nudged by an earlier rounding.

Problems are reported all at once, located in the file, as a :class:`~engine.errors.PolicyError`.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

from engine.dsl.check import did_you_mean
from engine.errors import PolicyError
from engine.numbers import DECIMAL_CONTEXT, ONE, ZERO, format_decimal, quantize_to_step
from engine.policy.schema import schema_diagnostics
from engine.policy.yaml_reader import Pointer, YamlDocument, read_yaml, read_yaml_file
from engine.simulation.model import FundingEvent, InstrumentPath, PricePoint, Scenario
from engine.source import Diagnostic, Span

_PACKAGE = Path(__file__).resolve().parent.parent

SCENARIO_SUFFIXES = (".yaml", ".yml")
MAX_POINTS = 2_000_000  # over all instruments: a typo such as `3000d` at 1-s steps stops here
BPS = Decimal(10_000)

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_INSTRUMENT = re.compile(r"[A-Za-z0-9._-]+/[A-Za-z0-9._-]+")
_SHARED_IN = re.compile(r"shared:[A-Za-z0-9]+")  # a shared pool counted in that currency
_UNIT_SECONDS = (86_400, 3_600, 60, 1)


def scenarios_dir() -> Path:
    """Shipped scenarios: `engine/scenarios` in a wheel, else the top-level `scenarios/`."""
    inside = _PACKAGE / "scenarios"
    if inside.is_dir():
        return inside
    return _PACKAGE.parent / "scenarios"


def shipped_scenario_paths() -> list[Path]:
    """Every shipped scenario file, sorted by name."""
    return sorted(scenarios_dir().glob("*.yaml"))


def resolve_scenario_path(reference: str | Path) -> Path:
    """A path as given, or the shipped scenario with that id."""
    path = Path(reference)
    if path.is_file() or path.suffix in SCENARIO_SUFFIXES or "/" in str(reference):
        return path
    shipped = scenarios_dir() / f"{reference}.yaml"
    return shipped if shipped.is_file() else path


def parse_time(value: Decimal | int | str) -> int:
    """Seconds from a whole number or a duration such as `1h30m` (already schema-checked)."""
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None or not value:
            raise ValueError(f"'{value}' is not a duration")
        parts = zip(match.groups(), _UNIT_SECONDS, strict=True)
        return sum(int(part) * unit for part, unit in parts if part)
    return int(value)


@dataclass(frozen=True, slots=True)
class _Keyframe:
    index: int
    time: int
    mark: Decimal
    last_bps: Decimal
    index_bps: Decimal
    depth: Decimal


class _Loader:
    def __init__(self, document: YamlDocument) -> None:
        self.document = document
        self.data: dict[str, Any] = document.data  # type: ignore[assignment]  # schema-checked
        self.diagnostics: list[Diagnostic] = []
        self.step = 1

    # -- locations ---------------------------------------------------------------------------
    def at(self, pointer: Pointer, key: bool = False) -> Span:
        spans = self.document.spans
        if key:
            span = spans.key_span(pointer)
            if span is not None:
                return span
        return spans.value_span(pointer) or spans.nearest_span(pointer)

    def error(
        self,
        code: str,
        message: str,
        pointer: Pointer,
        hint: str | None = None,
        *,
        key: bool = False,
    ) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.at(pointer, key), hint))

    # -- checks ------------------------------------------------------------------------------
    def check_grid(self, seconds: int, pointer: Pointer, what: str) -> bool:
        step: int = self.step
        if seconds % step:
            self.error(
                "E702",
                f"{what} {seconds} s is not on the {step}-second clock",
                pointer,
                f"use a multiple of step_seconds ({step})",
            )
            return False
        return True

    def keyframes(self, instrument: str, spec: Mapping[str, Any]) -> list[_Keyframe] | None:
        base: Pointer = ("instruments", instrument)
        items: Sequence[Mapping[str, Any]] = spec["keyframes"]
        if len(items) < 2:
            self.error(
                "E706",
                f"the path of {instrument} needs at least 2 keyframes, found {len(items)}",
                (*base, "keyframes"),
                "give the start (time 0) and at least one later keyframe",
                key=True,
            )
            return None
        step_price: Decimal = spec["price_step"]
        has_depth = spec.get("average_book_depth") is not None
        frames: list[_Keyframe] = []
        ok = True
        previous: int | None = None
        for index, item in enumerate(items):
            pointer: Pointer = (*base, "keyframes", index)
            time = parse_time(item["time"])
            if previous is None and time != 0:
                self.error(
                    "E701",
                    f"the first keyframe of {instrument} is at {time} s; paths start at 0",
                    (*pointer, "time"),
                )
                ok = False
            elif previous is not None and time <= previous:
                self.error(
                    "E701",
                    f"keyframe time {time} s of {instrument} is not after the "
                    f"previous keyframe ({previous} s)",
                    (*pointer, "time"),
                    "keyframe times must increase strictly",
                )
                ok = False
            ok = self.check_grid(time, (*pointer, "time"), "keyframe time") and ok
            previous = time if previous is None else max(previous, time)
            mark: Decimal = item["mark"]
            if not _on_grid(mark, step_price):
                self.error(
                    "E709",
                    f"mark {format_decimal(mark)} is not a multiple of price_step "
                    f"{format_decimal(step_price)}",
                    (*pointer, "mark"),
                    "keyframe marks lie on the price grid; interpolated prices are rounded to it",
                )
                ok = False
            if "depth" in item and not has_depth:
                self.error(
                    "E705",
                    f"keyframe gives a depth ratio but {instrument} has no average_book_depth",
                    (*pointer, "depth"),
                    key=True,
                    hint="add `average_book_depth` to the instrument, or remove `depth`",
                )
                ok = False
            frames.append(
                _Keyframe(
                    index,
                    time,
                    mark,
                    item.get("last_bps", ZERO),
                    item.get("index_bps", ZERO),
                    item.get("depth", ONE),
                )
            )
        return frames if ok else None

    def funding(
        self, instrument: str, spec: Mapping[str, Any], end: int | None
    ) -> tuple[FundingEvent, ...]:
        events: list[FundingEvent] = []
        previous: int | None = None
        for index, item in enumerate(spec.get("funding", [])):
            pointer: Pointer = ("instruments", instrument, "funding", index, "time")
            time = parse_time(item["time"])
            if end is not None and time > end:
                self.error(
                    "E704", f"funding at {time} s is after the end of the path ({end} s)", pointer
                )
            elif previous is not None and time <= previous:
                self.error(
                    "E704",
                    f"funding at {time} s is not after the previous funding event ({previous} s)",
                    pointer,
                    "list funding events in time order",
                )
            else:
                self.check_grid(time, pointer, "funding time")
            previous = time if previous is None else max(previous, time)
            events.append(FundingEvent(time, item["rate"]))
        return tuple(events)

    # -- interpolation -----------------------------------------------------------------------
    def points(
        self, instrument: str, spec: Mapping[str, Any], frames: list[_Keyframe]
    ) -> tuple[PricePoint, ...] | None:
        price_step: Decimal = spec["price_step"]
        average: Decimal | None = spec.get("average_book_depth")
        depth_step: Decimal = spec.get("depth_step", ONE)
        ctx = DECIMAL_CONTEXT
        points: list[PricePoint] = []
        for first, second in pairwise(frames):
            span = second.time - first.time
            span_d = Decimal(span)
            last_step = second is frames[-1]
            stop = second.time + (self.step if last_step else 0)
            problem: str | None = None
            for time in range(first.time, stop, self.step):
                k = Decimal(time - first.time)
                mark = quantize_to_step(
                    ctx.divide(_numerator(first.mark, second.mark, k, span_d, ctx), span_d),
                    price_step,
                    "half_even",
                )
                last = _offset(mark, (first.last_bps, second.last_bps), k, span_d, price_step)
                index = _offset(mark, (first.index_bps, second.index_bps), k, span_d, price_step)
                depth: Decimal | None = None
                if average is not None:
                    ratio = _numerator(first.depth, second.depth, k, span_d, ctx)
                    depth = quantize_to_step(
                        ctx.divide(ctx.multiply(average, ratio), span_d), depth_step, "half_even"
                    )
                    if depth <= 0:
                        problem = f"book depth rounds to 0 at {time} s"
                if last <= 0 or index <= 0:
                    problem = f"a last or index price rounds to 0 at {time} s"
                if problem is not None:
                    self.error(
                        "E708",
                        f"{instrument}: {problem}",
                        ("instruments", instrument, "keyframes", first.index),
                        "prices and depth must stay above zero; use a finer price_step "
                        "or depth_step, or a smaller offset",
                    )
                    return None
                points.append(PricePoint(time, mark, last, index, depth, average))
        return tuple(points)

    # -- everything --------------------------------------------------------------------------
    def build(self) -> Scenario | None:
        data = self.data
        self.step = int(data["step_seconds"])
        instruments: Mapping[str, Mapping[str, Any]] = data["instruments"]
        for name in instruments:
            if not _INSTRUMENT.fullmatch(name):
                self.error(
                    "E712",
                    f"instrument name '{name}' is not BASE/QUOTE",
                    ("instruments", name),
                    "write the instrument like `BTC/USDT`",
                    key=True,
                )
        for pool in data["insurance_fund"]:
            if pool != "shared" and pool not in instruments and not _SHARED_IN.fullmatch(pool):
                hint = did_you_mean(pool, ["shared", *instruments]) or (
                    "pools are `shared`, `shared:<CURRENCY>` or one of the scenario's "
                    "instruments: " + ", ".join(instruments)
                )
                self.error(
                    "E707",
                    f"insurance fund pool '{pool}' is neither `shared` nor an "
                    "instrument of the scenario",
                    ("insurance_fund", pool),
                    hint,
                    key=True,
                )
        frames = {name: self.keyframes(name, spec) for name, spec in instruments.items()}
        ends = {name: f[-1].time for name, f in frames.items() if f is not None}
        first_name = next(iter(ends), None)
        end: int | None = None
        if first_name is not None:
            end = first_end = ends[first_name]
            for name, other in ends.items():
                if other != first_end:
                    last = len(instruments[name]["keyframes"]) - 1
                    self.error(
                        "E703",
                        f"the path of {name} ends at {other} s but the path of "
                        f"{first_name} ends at {first_end} s",
                        ("instruments", name, "keyframes", last, "time"),
                        "every instrument's last keyframe has the same time",
                    )
            total = (first_end // self.step + 1) * len(instruments)
            if total > MAX_POINTS:
                last = len(instruments[first_name]["keyframes"]) - 1
                per_path = first_end // self.step + 1
                self.error(
                    "E710",
                    f"the scenario would have {total:,} points "
                    f"({len(instruments)} instrument(s) x {per_path:,}), the limit is "
                    f"{MAX_POINTS:,}",
                    ("instruments", first_name, "keyframes", last, "time"),
                    "use a longer step_seconds or a shorter path",
                )
                end = None  # no further checks against an absurd end
        settlement = data.get("settlement_seconds")
        if settlement is not None:
            settlement = int(settlement)
            on_grid = self.check_grid(settlement, ("settlement_seconds",), "settlement period")
            if on_grid and end is not None and settlement > end:
                self.error(
                    "E711",
                    f"settlement period {settlement} s is longer than the path ({end} s)",
                    ("settlement_seconds",),
                    "leave it out to settle once at the end of the path",
                )
        funding = {name: self.funding(name, spec, end) for name, spec in instruments.items()}
        if self.diagnostics:
            return None
        paths: dict[str, InstrumentPath] = {}
        for name, spec in instruments.items():
            keyframes = frames[name]
            assert keyframes is not None
            try:
                points = self.points(name, spec, keyframes)
            except (decimal.InvalidOperation, decimal.Overflow):  # e.g. 1e90 on a 1e-20 grid
                self.error(
                    "E708",
                    f"{name}: prices or depths too large for their grid "
                    "(more than 50 significant digits)",
                    ("instruments", name),
                    "use a coarser price_step or depth_step",
                    key=True,
                )
                points = None
            if points is not None:
                paths[name] = InstrumentPath(name, points, funding[name])
        if self.diagnostics:
            return None
        sources = tuple(dict(item) for item in data["sources"])
        return Scenario(
            id=data["id"],
            title=data["title"],
            description=data["description"],
            step_seconds=self.step,
            paths=paths,
            insurance_fund=dict(data["insurance_fund"]),
            settlement_seconds=settlement,
            sources=sources,
            path=str(self.document.source.path),
        )


def _on_grid(value: Decimal, step: Decimal) -> bool:
    try:
        return DECIMAL_CONTEXT.remainder(value, step) == 0
    except decimal.InvalidOperation:  # the quotient has more digits than the context holds
        return False


def start_prices(scenario: Scenario) -> dict[str, Decimal]:
    """Each instrument's mark price at time 0, e.g. to generate a book that fits the scenario."""
    return {name: path.points[0].mark_price for name, path in scenario.paths.items()}


def _numerator(a: Decimal, b: Decimal, k: Decimal, span: Decimal, ctx: decimal.Context) -> Decimal:
    """a*span + (b - a)*k: the value k/span of the way from a to b, times span (exact)."""
    return ctx.add(ctx.multiply(a, span), ctx.multiply(ctx.subtract(b, a), k))


def _offset(
    mark: Decimal, bps: tuple[Decimal, Decimal], k: Decimal, span: Decimal, step: Decimal
) -> Decimal:
    """mark * (1 + interpolated bps / 10,000), rounded to the price grid."""
    bps_a, bps_b = bps
    ctx = DECIMAL_CONTEXT
    if bps_a == 0 and bps_b == 0:
        return mark
    scaled = ctx.multiply(BPS, span)
    factor = ctx.add(scaled, _numerator(bps_a, bps_b, k, span, ctx))
    return quantize_to_step(ctx.divide(ctx.multiply(mark, factor), scaled), step, "half_even")


def _missing(reference: str | Path) -> Diagnostic | None:
    """A clearer message than 'cannot read file' for a misspelt shipped scenario id."""
    text = str(reference)
    path = Path(reference)
    if path.exists() or path.suffix in SCENARIO_SUFFIXES or "/" in text:
        return None
    ids = [p.stem for p in shipped_scenario_paths()]
    hint = did_you_mean(text, ids) or ("shipped scenarios: " + ", ".join(ids) if ids else None)
    return Diagnostic("E001", f"no such file or shipped scenario '{text}'", path=text, hint=hint)


def load_scenario(reference: str | Path) -> Scenario:
    """Load a scenario file, or a shipped scenario by id; raise PolicyError with every problem."""
    path = resolve_scenario_path(reference)
    if not path.is_file():
        missing = _missing(reference)
        if missing is not None:
            raise PolicyError(diagnostics=[missing])
    return _build(read_yaml_file(path))


def read_scenario(text: str, path: str = "<scenario>") -> Scenario:
    """A scenario from its YAML text (`path` names it in diagnostics), checked like a file."""
    return _build(read_yaml(text, path))


def _build(document: YamlDocument) -> Scenario:
    loader = _Loader(document)
    diagnostics = schema_diagnostics(document.data, "scenario.schema.json", loader.at)
    if diagnostics:
        raise PolicyError(diagnostics=diagnostics)
    scenario = loader.build()
    if scenario is None:
        raise PolicyError(diagnostics=loader.diagnostics)
    return scenario
