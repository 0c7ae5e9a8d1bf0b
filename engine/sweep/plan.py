"""From a grid to its cells: generated inputs, one task per cell, and each row's identity.

Cells are numbered in a fixed order (policies, then scenarios, then books, then each
parameter's values, the last parameter varying fastest), generated files are named by that
order, and nothing depends on time or on the machine: the same grid plans the same cells, tasks
and files every time, which is what makes the outputs byte-identical and resumable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import DiagnosticError
from engine.policy.inherit import included_table_spec, read_layers
from engine.policy.packaged import policies_dir
from engine.policy.schema import schema_diagnostics
from engine.policy.yaml_reader import YamlDocument, read_yaml_file, span_locator
from engine.source import Diagnostic, Span
from engine.sweep.cells import CellOutcome, CellTask, Chain, error_dicts, text_digest
from engine.sweep.grid import Grid, Input, Parameter, Value
from engine.sweep.overrides import OverrideError, policy_child, scenario_variant
from engine.sweep.paths import ValuePath

POLICY_FOLDER = "policies"
SCENARIO_FOLDER = "scenarios"


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell: its identity columns and parameter values, and its task or why it has none."""

    index: int
    identity: dict[str, Any]  # policy, policy_id, policy_file, scenario, scenario_id, ...
    parameters: dict[str, str]  # name -> value label
    task: CellTask | None
    failure: CellOutcome | None  # the inputs could not be built: the row's errors


@dataclass(frozen=True, slots=True)
class Plan:
    grid: Grid
    cells: tuple[Cell, ...]
    files: Mapping[str, str]  # generated files: path relative to the output directory -> text
    books: Mapping[str, str]  # book digest -> text


@dataclass(frozen=True, slots=True)
class _Base:
    """A base policy or scenario as read once: its data, or why it cannot be used."""

    data: Mapping[str, Any] | None
    chain: Chain
    problems: tuple[Diagnostic, ...]


def _read_policy(policy: Input) -> _Base:
    try:
        layers = read_layers(policy.path)
    except DiagnosticError as error:
        return _Base(None, (), error.diagnostics)
    # Only the policy files travel with a task: included data files are read by the worker
    # (shipped ones come with the package).  Their tables join the data so a parameter can
    # name them (`tables.btcusdt_brackets.rows[*]...`); a child then carries what it changes.
    chain = tuple(
        (d.source.path, d.source.text) for d in layers.spans.layers if isinstance(d, YamlDocument)
    )
    data = dict(layers.data)
    if layers.included_tables:
        data["tables"] = {
            **{name: included_table_spec(t) for name, t in layers.included_tables.items()},
            **dict(data.get("tables") or {}),
        }
    return _Base(data, chain, ())


def _read_scenario(scenario: Input) -> _Base:
    try:
        document = read_yaml_file(scenario.path)
    except DiagnosticError as error:
        return _Base(None, (), error.diagnostics)
    problems = schema_diagnostics(
        document.data,
        "scenario.schema.json",
        span_locator(document.spans),  # type: ignore[arg-type]  # always a span: the document has a source map
    )
    data = document.data if isinstance(document.data, Mapping) else None
    chain = ((document.source.path, document.source.text),)
    return _Base(None if problems else data, chain, tuple(problems))


def _extends(policy: Input, child_folder: Path) -> str | None:
    """How a generated child names its parent: the shipped id, a path below the child's folder,
    or None when the parent lies elsewhere (a policy may not extend it, E431: the child is
    written whole)."""
    shipped = policies_dir().resolve()
    if policy.path.resolve().parent == shipped and "/" not in policy.reference:
        return policy.path.stem
    relative = os.path.relpath(policy.path.resolve(), child_folder.resolve())
    if relative.startswith(os.pardir) or os.path.isabs(relative):
        return None
    return relative.replace(os.sep, "/")


class _Planner:
    def __init__(self, grid: Grid, output_dir: Path) -> None:
        self.grid = grid
        self.output_dir = output_dir
        self.origin = grid.path.name  # not the whole path: generated files (and digests) stay put
        self.files: dict[str, str] = {}
        self.policies = {p.reference: _read_policy(p) for p in grid.policies}
        self.scenarios = {s.reference: _read_scenario(s) for s in grid.scenarios}
        self.children: dict[
            tuple[str, tuple[int, ...]], tuple[str, Chain, str] | OverrideError
        ] = {}
        self.variants: dict[tuple[str, tuple[int, ...]], tuple[str, str, str] | OverrideError] = {}

    # -- generated inputs --------------------------------------------------------------------
    def child(
        self,
        policy: Input,
        applied: Sequence[tuple[Parameter, Value, tuple[ValuePath, Span]]],
        combo: tuple[int, ...],
    ) -> tuple[str, Chain, str] | OverrideError:
        """(child id, chain, file relative to the output directory) of a policy's variant."""
        key = (policy.reference, combo)
        if key not in self.children:
            base = self.policies[policy.reference]
            assert base.data is not None
            number = sum(1 for k in self.children if k[0] == policy.reference) + 1
            parent_id = str(base.data.get("id", policy.path.stem))
            child_id = f"{parent_id}-sweep-{number:03d}"
            relative = f"{POLICY_FOLDER}/{child_id}.yaml"
            folder = self.output_dir / POLICY_FOLDER
            extends = _extends(policy, folder)
            try:
                text = policy_child(
                    base.data,
                    applied,
                    child_id=child_id,
                    extends=extends,
                    parent_name=parent_id,
                    origin=self.origin,
                )
            except OverrideError as error:
                self.children[key] = error
            else:
                self.files[relative] = text
                chain = ((str(self.output_dir / relative), text), *base.chain)
                if extends is None:
                    chain = chain[:1]
                self.children[key] = (child_id, chain, relative)
        return self.children[key]

    def variant(
        self, scenario: Input, applied: Sequence[tuple[Parameter, Value]], combo: tuple[int, ...]
    ) -> tuple[str, str, str] | OverrideError:
        """(variant id, text, file relative to the output directory) of a scenario's variant."""
        key = (scenario.reference, combo)
        if key not in self.variants:
            base = self.scenarios[scenario.reference]
            assert base.data is not None
            number = sum(1 for k in self.variants if k[0] == scenario.reference) + 1
            variant_id = f"{base.data['id']}-sweep-{number:03d}"
            relative = f"{SCENARIO_FOLDER}/{variant_id}.yaml"
            try:
                text = scenario_variant(
                    base.data, applied, variant_id=variant_id, origin=self.origin
                )
            except OverrideError as error:
                self.variants[key] = error
            else:
                self.files[relative] = text
                self.variants[key] = (variant_id, text, relative)
        return self.variants[key]

    # -- cells -------------------------------------------------------------------------------
    def cell(
        self,
        index: int,
        policy: Input,
        scenario: Input,
        book: Input,
        combo: tuple[int, ...],
        books: Mapping[str, tuple[str, str] | Diagnostic],
    ) -> Cell:
        grid = self.grid
        values = [(p, p.values[i]) for p, i in zip(grid.parameters, combo, strict=True)]
        parameters = {p.name: v.label for p, v in values}
        identity: dict[str, Any] = {
            "policy": policy.reference,
            "policy_id": None,
            "policy_file": None,
            "scenario": scenario.reference,
            "scenario_id": None,
            "scenario_file": None,
            "book": book.reference,
        }
        problems: list[Diagnostic] = []
        chain: Chain = ()
        base_policy = self.policies[policy.reference]
        if base_policy.data is None:
            problems += base_policy.problems
        else:
            identity["policy_id"] = base_policy.data.get("id")
            chain = base_policy.chain
            policy_id = identity["policy_id"]
            applied = []
            policy_combo: list[int] = []
            for (parameter, value), i in zip(values, combo, strict=True):
                if parameter.target == "policy":
                    path = parameter.path_for(
                        policy, policy_id if isinstance(policy_id, str) else None
                    )
                    assert path is not None  # the grid checked every policy has a path
                    applied.append((parameter, value, path))
                    policy_combo.append(i)
            if applied:
                made = self.child(policy, applied, tuple(policy_combo))
                if isinstance(made, OverrideError):
                    problems.append(made.diagnostic)
                else:
                    identity["policy_id"], chain, identity["policy_file"] = made
        scenario_text: tuple[str, str] = ("", "")
        base_scenario = self.scenarios[scenario.reference]
        if base_scenario.data is None:
            problems += base_scenario.problems
        else:
            identity["scenario_id"] = base_scenario.data.get("id")
            scenario_text = base_scenario.chain[0]
            varied = [(p, v) for p, v in values if p.target in ("scenario", "transform")]
            scenario_combo = tuple(
                i for (p, _), i in zip(values, combo, strict=True) if p.target != "policy"
            )
            if varied:
                made_variant = self.variant(scenario, varied, scenario_combo)
                if isinstance(made_variant, OverrideError):
                    problems.append(made_variant.diagnostic)
                else:
                    variant_id, text, relative = made_variant
                    identity["scenario_id"], identity["scenario_file"] = variant_id, relative
                    scenario_text = (str(self.output_dir / relative), text)
        book_entry = books.get(book.reference)
        if isinstance(book_entry, Diagnostic):
            problems.append(book_entry)
        if problems:
            failure = CellOutcome(
                index=index,
                status="error",
                policy_id=identity["policy_id"],
                scenario_id=identity["scenario_id"],
                errors=error_dicts(problems),
            )
            return Cell(index, identity, parameters, None, failure)
        assert isinstance(book_entry, tuple)
        digest, _ = book_entry
        # the content, not where it lies: a moved output directory still resumes
        key = text_digest(
            json.dumps([index, identity, parameters], sort_keys=True),
            *(text for _, text in chain),
            scenario_text[1],
            digest,
        )
        task = CellTask(index, key, chain, scenario_text, digest, str(book.path))
        return Cell(index, identity, parameters, task, None)


def read_books(grid: Grid) -> tuple[dict[str, tuple[str, str] | Diagnostic], dict[str, str]]:
    """Each book's (digest, text) by reference, or why it cannot be read; texts by digest."""
    by_reference: dict[str, tuple[str, str] | Diagnostic] = {}
    texts: dict[str, str] = {}
    for book in grid.books:
        try:
            data = book.path.read_bytes()
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            message = f"cannot read the book: {error}"
            by_reference[book.reference] = Diagnostic("E001", message, path=str(book.path))
            continue
        digest = text_digest(text)
        by_reference[book.reference] = (digest, text)
        texts[digest] = text
    return by_reference, texts


def plan_sweep(grid: Grid, output_dir: Path) -> Plan:
    """Every cell of `grid`, with the files to generate under `output_dir`."""
    planner = _Planner(grid, Path(os.path.normpath(output_dir)))
    books, texts = read_books(grid)
    cells: list[Cell] = []
    combos = grid.combinations()
    for policy in grid.policies:
        for scenario in grid.scenarios:
            for book in grid.books:
                for combo in combos:
                    cells.append(planner.cell(len(cells), policy, scenario, book, combo, books))
    return Plan(grid, tuple(cells), dict(sorted(planner.files.items())), texts)
