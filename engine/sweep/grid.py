"""Grid files: what a sweep runs, read and checked like every other input.

A grid (``schemas/sweep.schema.json``, docs/sweeps.md) lists policies, scenarios and books and
the parameters to sweep; every combination is one cell.  Problems are reported all at once,
located in the grid file, as a :class:`~engine.errors.PolicyError`; problems that only show when
a cell's inputs are built (a path that matches nothing in one policy) belong to that cell.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from engine.dsl.check import did_you_mean
from engine.errors import PolicyError
from engine.policy.packaged import policies_dir, shipped_policy_paths
from engine.policy.schema import schema_diagnostics
from engine.policy.yaml_reader import Pointer, YamlDocument, read_yaml_file
from engine.simulation.book import CSV_SUFFIXES, JSONL_SUFFIXES, books_dir
from engine.simulation.scenario import scenarios_dir, shipped_scenario_paths
from engine.source import Diagnostic, Span
from engine.sweep.figures import IDENTITY_COLUMNS, SUMMARY_FIGURES
from engine.sweep.paths import PathSyntaxError, ValuePath, parse_path

Kind = Literal["policy", "scenario", "book"]
Target = Literal["policy", "scenario", "transform"]
Operation = Literal["set", "scale"]
TransformName = Literal["crash_depth", "duration", "book_depth"]

TARGETS: tuple[Target, ...] = ("policy", "scenario", "transform")
ALL_POLICIES = ""  # key of a policy path that applies to every policy
PATH_SUFFIXES = (".yaml", ".yml", *JSONL_SUFFIXES, *CSV_SUFFIXES)
_LOOKUP: dict[Kind, tuple[tuple[str, ...], Callable[[], Path]]] = {
    "policy": ((".yaml",), policies_dir),
    "scenario": ((".yaml",), scenarios_dir),
    "book": ((*JSONL_SUFFIXES, *CSV_SUFFIXES), books_dir),
}


@dataclass(frozen=True, slots=True)
class Input:
    """A policy, scenario or book of the grid: as written, where it resolved, where it is named."""

    kind: Kind
    reference: str
    path: Path
    span: Span


@dataclass(frozen=True, slots=True)
class Value:
    """One value of a parameter, with the label rows and charts show for it."""

    value: Any
    label: str
    span: Span


@dataclass(frozen=True, slots=True)
class Parameter:
    """One axis of the grid."""

    name: str
    description: str | None
    target: Target
    operation: Operation
    values: tuple[Value, ...]
    span: Span  # the `scenario` or `transform` entry: where a cell's error points
    paths: Mapping[str, tuple[ValuePath, Span]]  # policy target: by policy, or ALL_POLICIES
    scenario_path: ValuePath | None = None
    transform: TransformName | None = None

    @property
    def numeric(self) -> bool:
        """Every value is a number: the parameter can be a chart's continuous axis."""
        return all(
            isinstance(v.value, Decimal) and not isinstance(v.value, bool) for v in self.values
        )

    def path_for(self, policy: Input, policy_id: str | None) -> tuple[ValuePath, Span] | None:
        """The path this parameter overrides in `policy` (given by reference or id), located."""
        for key in (ALL_POLICIES, policy.reference, policy_id):
            if key is not None and key in self.paths:
                return self.paths[key]
        return None

    @property
    def label(self) -> str:
        return self.description or self.name


@dataclass(frozen=True, slots=True)
class Chart:
    figure: str
    x: str
    y: str | None
    span: Span  # the figure's name, for a warning when no row has it


@dataclass(frozen=True, slots=True)
class Grid:
    """A checked grid file; :meth:`combinations` enumerates its cells' parameter values."""

    path: Path
    title: str
    description: str | None
    policies: tuple[Input, ...]
    scenarios: tuple[Input, ...]
    books: tuple[Input, ...]
    parameters: tuple[Parameter, ...]
    charts: tuple[Chart, ...]

    def combinations(self) -> list[tuple[int, ...]]:
        """Every combination of value indices, the last parameter varying fastest."""
        return list(itertools.product(*(range(len(p.values)) for p in self.parameters)))

    @property
    def size(self) -> int:
        count = len(self.policies) * len(self.scenarios) * len(self.books)
        for parameter in self.parameters:
            count *= len(parameter.values)
        return count


def value_label(value: Any) -> str:
    """The text a value is shown by: numbers and strings as written, the rest as compact JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | str):
        return str(value)
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


class _Loader:
    def __init__(self, document: YamlDocument, path: Path) -> None:
        self.document = document
        self.path = path
        self.data: dict[str, Any] = document.data  # type: ignore[assignment]  # schema-checked
        self.diagnostics: list[Diagnostic] = []

    def at(self, pointer: Pointer, key: bool = False) -> Span:
        spans = self.document.spans
        if key:
            span = spans.key_span(pointer)
            if span is not None:
                return span
        return spans.value_span(pointer) or spans.nearest_span(pointer)

    def error(self, code: str, message: str, pointer: Pointer, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.at(pointer), hint))

    # -- inputs ------------------------------------------------------------------------------
    def resolve(self, kind: Kind, reference: str) -> Path | None:
        """A path relative to the grid file, else a sibling file or a shipped one by id."""
        base = self.path.parent
        if "/" in reference or reference.endswith(PATH_SUFFIXES):
            candidate = Path(os.path.normpath(base / reference))
            return candidate if candidate.is_file() else None
        suffixes, shipped = _LOOKUP[kind]
        for folder in (base, shipped()):
            for suffix in suffixes:
                candidate = folder / f"{reference}{suffix}"
                if candidate.is_file():
                    return candidate
        return None

    def inputs(self, kind: Kind, key: str) -> tuple[Input, ...]:
        found: list[Input] = []
        seen: dict[str, int] = {}
        for index, reference in enumerate(self.data[key]):
            pointer: Pointer = (key, index)
            if reference in seen:
                self.error(
                    "E802",
                    f"{kind} '{reference}' is listed twice",
                    pointer,
                    f"first at {key}[{seen[reference]}]",
                )
                continue
            seen[reference] = index
            path = self.resolve(kind, reference)
            if path is None:
                self.error(
                    "E800",
                    f"no such {kind} file or shipped {kind} '{reference}'",
                    pointer,
                    did_you_mean(reference, _shipped(kind))
                    or f"give a shipped id or a path relative to the grid file ({self.path.parent})",
                )
                continue
            found.append(Input(kind, reference, path, self.at(pointer)))
        return tuple(found)

    # -- parameters --------------------------------------------------------------------------
    def parameters(self, policies: Sequence[Input]) -> tuple[Parameter, ...]:
        found: list[Parameter] = []
        names: dict[str, int] = {}
        for index, spec in enumerate(self.data.get("parameters", [])):
            parameter = self.parameter(index, spec, policies, names)
            if parameter is not None:
                found.append(parameter)
        return tuple(found)

    def parameter(
        self,
        index: int,
        spec: Mapping[str, Any],
        policies: Sequence[Input],
        names: dict[str, int],
    ) -> Parameter | None:
        base: Pointer = ("parameters", index)
        ok = True
        name = spec["name"]
        if name in names:
            self.error("E802", f"parameter '{name}' is named twice", (*base, "name"))
            ok = False
        elif name in IDENTITY_COLUMNS or name in SUMMARY_FIGURES:
            self.error(
                "E802",
                f"parameter name '{name}' is a column of the results already",
                (*base, "name"),
                "pick another name, e.g. " + f"'{name}_value'",
            )
            ok = False
        names.setdefault(name, index)
        targets = [t for t in TARGETS if t in spec]
        if len(targets) != 1:
            self.error(
                "E801",
                f"parameter '{name}' must give exactly one of `policy`, `scenario` or "
                f"`transform` ({'it gives ' + ', '.join(targets) if targets else 'it gives none'})",
                base,
            )
            return None
        target = targets[0]
        operation: Operation = spec.get("operation", "scale" if target == "transform" else "set")
        if target == "transform" and spec.get("operation") == "set":
            self.error(
                "E804", "a transform always scales; remove `operation: set`", (*base, "operation")
            )
            ok = False
        values = self.values(base, spec, operation)
        ok = ok and values is not None
        paths: dict[str, tuple[ValuePath, Span]] = {}
        scenario_path: ValuePath | None = None
        if target == "policy":
            raw = spec["policy"]
            entries = raw.items() if isinstance(raw, Mapping) else [(ALL_POLICIES, raw)]
            known = {p.reference for p in policies} | {
                i for i in (_policy_id(p) for p in policies) if i
            }
            for key, text in entries:
                pointer: Pointer = (*base, "policy", key) if key else (*base, "policy")
                if key and key not in known:
                    self.diagnostics.append(
                        Diagnostic(
                            "E805",
                            f"'{key}' is not a policy of this grid",
                            self.at(pointer, key=True),
                            did_you_mean(key, known) or "use a policy's id or its reference",
                        )
                    )
                    ok = False
                parsed = self.path_of(pointer, text)
                if parsed is None:
                    ok = False
                else:
                    paths[key] = (parsed, self.at(pointer))
            if isinstance(raw, Mapping):
                for policy in policies:
                    if policy.reference not in raw and _policy_id(policy) not in raw:
                        self.error(
                            "E805",
                            f"parameter '{name}' gives no path for policy '{policy.reference}'",
                            (*base, "policy"),
                            "give every policy of the grid its path (rulebooks name things "
                            "differently), or sweep that policy in another grid",
                        )
                        ok = False
        elif target == "scenario":
            scenario_path = self.path_of((*base, "scenario"), spec["scenario"])
            ok = ok and scenario_path is not None
        if not ok or values is None:
            return None
        return Parameter(
            name=name,
            description=spec.get("description"),
            target=target,
            operation=operation,
            values=values,
            span=self.at((*base, target)),
            paths=paths,
            scenario_path=scenario_path,
            transform=spec.get("transform"),
        )

    def path_of(self, pointer: Pointer, text: str) -> ValuePath | None:
        try:
            path = parse_path(text)
        except PathSyntaxError as error:
            self.error(
                "E803",
                f"the path '{text}' does not parse: {error}",
                pointer,
                "keys joined by dots, `[2]` for a list item, `*` or `[*]` for every one",
            )
            return None
        if path.segments[0].key in ("extends", "id") and not path.segments[0].wildcard:
            self.error(
                "E803",
                f"the path '{text}' overrides `{path.segments[0].key}`, which the sweep writes itself",
                pointer,
            )
            return None
        return path

    def values(
        self, base: Pointer, spec: Mapping[str, Any], operation: Operation
    ) -> tuple[Value, ...] | None:
        raw: list[Any] = spec["values"]
        labels: list[str] | None = spec.get("labels")
        ok = True
        if labels is not None and len(labels) != len(raw):
            self.error(
                "E804",
                f"{len(labels)} labels for {len(raw)} values",
                (*base, "labels"),
                "give one label per value",
            )
            ok = False
        found: list[Value] = []
        shown: dict[str, int] = {}
        for index, value in enumerate(raw):
            pointer: Pointer = (*base, "values", index)
            if operation == "scale" and not (
                isinstance(value, Decimal) and not isinstance(value, bool) and value > 0
            ):
                self.error(
                    "E804",
                    f"a scale factor must be a number above zero, found {value_label(value)}",
                    pointer,
                )
                ok = False
                continue
            label = labels[index] if labels is not None and index < len(labels) else None
            text = label or value_label(value)
            if text in shown:
                self.error(
                    "E804",
                    f"value '{text}' is listed twice",
                    pointer,
                    f"first at values[{shown[text]}]; each value is one column of cells",
                )
                ok = False
            shown.setdefault(text, index)
            found.append(Value(value, text, self.at(pointer)))
        return tuple(found) if ok else None

    # -- report ------------------------------------------------------------------------------
    def charts(self) -> tuple[Chart, ...]:
        names = [spec["name"] for spec in self.data.get("parameters", [])]
        found: list[Chart] = []
        for index, spec in enumerate(self.data.get("report", {}).get("charts", [])):
            base: Pointer = ("report", "charts", index)
            ok = True
            for axis in ("x", "y"):
                name = spec.get(axis)
                if name is not None and name not in names:
                    self.error(
                        "E806",
                        f"chart {axis} axis '{name}' is not a parameter of this grid",
                        (*base, axis),
                        did_you_mean(name, names)
                        or ("parameters: " + ", ".join(names) if names else "the grid has none"),
                    )
                    ok = False
            if spec.get("y") is not None and spec.get("y") == spec["x"]:
                self.error("E806", "a heatmap needs two different parameters", (*base, "y"))
                ok = False
            if ok:
                found.append(
                    Chart(spec["figure"], spec["x"], spec.get("y"), self.at((*base, "figure")))
                )
        return tuple(found)

    def build(self) -> Grid | None:
        policies = self.inputs("policy", "policies")
        scenarios = self.inputs("scenario", "scenarios")
        books = self.inputs("book", "books")
        parameters = self.parameters(policies)
        charts = self.charts()
        if self.diagnostics:
            return None
        return Grid(
            path=self.path,
            title=self.data["title"],
            description=self.data.get("description"),
            policies=policies,
            scenarios=scenarios,
            books=books,
            parameters=parameters,
            charts=charts or default_charts(parameters, self.at(())),
        )


def default_charts(parameters: Sequence[Parameter], span: Span) -> tuple[Chart, ...]:
    """The bad debt against each parameter, and over the first two as a heatmap."""
    charts = [Chart("bad_debt", p.name, None, span) for p in parameters]
    if len(parameters) >= 2:
        charts.append(Chart("bad_debt", parameters[0].name, parameters[1].name, span))
    return tuple(charts)


def _policy_id(policy: Input) -> str | None:
    """The `id` of a policy file, read cheaply (no checks): grids may name policies by id."""
    try:
        document = read_yaml_file(policy.path)
    except PolicyError:
        return None
    data = document.data
    found = data.get("id") if isinstance(data, Mapping) else None
    return found if isinstance(found, str) else None


def _shipped(kind: Kind) -> list[str]:
    if kind == "policy":
        return [p.stem for p in shipped_policy_paths()]
    if kind == "scenario":
        return [p.stem for p in shipped_scenario_paths()]
    return sorted({p.stem for p in books_dir().glob("*") if p.is_file()})


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid file; raise PolicyError listing every problem, located."""
    grid_path = Path(path)
    document = read_yaml_file(grid_path)
    loader = _Loader(document, grid_path)
    diagnostics = schema_diagnostics(document.data, "sweep.schema.json", loader.at)
    if diagnostics:
        raise PolicyError(diagnostics=diagnostics)
    grid = loader.build()
    if grid is None:
        raise PolicyError(diagnostics=loader.diagnostics)
    return grid
