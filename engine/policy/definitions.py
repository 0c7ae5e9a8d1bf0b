"""The definitions pass: definitions typed in dependency order, each cycle reported once.

Definitions may refer to each other in any order in the file, so their types are learnt in two
passes: the first resolves names only (every definition typed `unknown`) to find which uses
which; the second checks each after the ones it uses, with their real types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.dsl import ast
from engine.dsl.check import Scope, check_expression
from engine.dsl.types import ANY, Type
from engine.policy.model import Definition
from engine.policy.yaml_reader import Pointer
from engine.source import Diagnostic, Span


@dataclass(frozen=True, slots=True)
class CheckedDefinitions:
    """The definitions that check, the scope the policy's expressions are checked in, and why
    the others do not."""

    definitions: Mapping[str, Definition]
    scope: Scope
    diagnostics: tuple[Diagnostic, ...]
    attributes: frozenset[int]  # see Checked.definition_attributes; the compiler needs them


def check_definitions(
    parsed: Mapping[str, tuple[ast.Expr, Mapping[str, Any]]],
    names: Iterable[str],
    roots: Mapping[str, Type],
    locate: Callable[[Pointer, bool], Span],
) -> CheckedDefinitions:
    """Type the `parsed` definitions (expression and YAML item by name); `names` are all the
    policy's definition names, parsed or not, so a reference to a broken one is not unknown."""
    diagnostics: list[Diagnostic] = []
    attributes: set[int] = set()
    names = list(names)
    # Pass 1: resolve names with every definition typed `unknown`, to learn the references.
    loose = Scope(roots, dict.fromkeys(names, ANY))
    graph: dict[str, list[tuple[str, Span]]] = {}
    for name, (expr, _) in parsed.items():
        graph[name] = [ref for ref in check_expression(expr, loose).references if ref[0] in parsed]
    order, cyclic = _dependency_order(graph, diagnostics)
    _check_depth(order, parsed, graph, locate, diagnostics)
    # Pass 2: check in dependency order with real types.
    types: dict[str, Type] = dict.fromkeys(names, ANY)
    definitions: dict[str, Definition] = {}
    inputs: dict[str, frozenset[str]] = {}
    for name in order:
        used = {n.name for n in ast.walk(parsed[name][0]) if isinstance(n, ast.Name)}
        inputs[name] = frozenset(used & roots.keys()).union(
            *(inputs.get(target, frozenset()) for target, _ in graph[name])
        )
        expr, item = parsed[name]
        checked = check_expression(expr, Scope(roots, types), what=f"definition '{name}'")
        diagnostics.extend(checked.diagnostics)
        attributes |= checked.definition_attributes
        types[name] = checked.type if name not in cyclic else ANY
        if not checked.diagnostics and name not in cyclic:
            definitions[name] = Definition(
                name,
                expr,
                checked.type,
                locate(("definitions", name), True),
                item.get("description"),
                item.get("unit"),
                item.get("source"),
                item.get("assumption"),
                inputs[name],
            )
    return CheckedDefinitions(
        definitions, Scope(roots, types), tuple(diagnostics), frozenset(attributes)
    )


# How deep evaluation may nest, in expression levels summed along the deepest chain of
# definitions reading definitions.  The reference evaluator (which locates run-time errors and
# traces) recurses through definitions, about three Python frames per level: 200 levels stay well
# inside Python's default limit of 1,000 frames, whoever calls (a thread, a test runner).  Real
# policies nest a few dozen levels.
MAX_EVALUATION_DEPTH = 200


def _expression_depth(expr: ast.Expr) -> int:
    deepest = 0
    stack = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.children(node))
    return deepest


def _check_depth(
    order: list[str],
    parsed: Mapping[str, tuple[ast.Expr, Mapping[str, Any]]],
    graph: Mapping[str, list[tuple[str, Span]]],
    locate: Callable[[Pointer, bool], Span],
    diagnostics: list[Diagnostic],
) -> None:
    """Report the definitions where evaluation would first nest deeper than the limit (E430).

    A definition's depth is its expression's plus the deepest of the definitions it reads (an
    upper bound: as if every reference sat at the bottom of the tree).  Only the definition
    that crosses the limit is reported, not every one built on it.
    """
    depths: dict[str, int] = {}
    for name in order:
        below = [depths[target] for target, _ in graph[name] if target in depths]
        depth = _expression_depth(parsed[name][0]) + max(below, default=0)
        depths[name] = depth
        if depth > MAX_EVALUATION_DEPTH and all(d <= MAX_EVALUATION_DEPTH for d in below):
            reads = max(graph[name], key=lambda edge: depths.get(edge[0], 0))[0] if below else None
            diagnostics.append(
                Diagnostic(
                    "E430",
                    f"definition '{name}' nests {depth} levels deep"
                    + (f" through '{reads}'" if reads else "")
                    + f"; the limit is {MAX_EVALUATION_DEPTH}",
                    locate(("definitions", name), True),
                    "shorten the chain of definitions that read each other",
                )
            )


def _dependency_order(
    graph: Mapping[str, list[tuple[str, Span]]], diagnostics: list[Diagnostic]
) -> tuple[list[str], set[str]]:
    """Order definitions so each comes after what it uses; report each cycle once."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cyclic: set[str] = set()
    for root in graph:
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        state[root] = 1
        while stack:
            name, index = stack[-1]
            edges = graph.get(name, [])
            if index < len(edges):
                stack[-1] = (name, index + 1)
                target, span = edges[index]
                if state.get(target) == 1:
                    cycle = [*path[path.index(target) :], target]
                    cyclic.update(cycle)
                    diagnostics.append(
                        Diagnostic(
                            "E304",
                            "definitions form a cycle: " + " → ".join(cycle),
                            span,
                            "a definition cannot depend on itself, directly or through others",
                        )
                    )
                elif not state.get(target):
                    state[target] = 1
                    stack.append((target, 0))
                    path.append(target)
            else:
                stack.pop()
                path.pop()
                state[name] = 2
                order.append(name)
    return order, cyclic
