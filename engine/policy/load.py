"""YAML → schema → model → checked and compiled policy, collecting every problem on the way.

The passes run in order and each reports all it finds; a later pass runs on what the earlier
ones could build (the structure pass prunes what the schema rejects, see
:mod:`engine.policy.structure`), so every problem is reported and each mistake once.  Tables are
built by :mod:`engine.policy.tables`, markets by :mod:`engine.policy.markets` and definitions
typed by :mod:`engine.policy.definitions`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.dsl import ast
from engine.dsl.check import Scope, check_expression, did_you_mean
from engine.dsl.compile import compile_program
from engine.dsl.parser import parse_expression
from engine.dsl.residual import residual_of
from engine.dsl.table import Table
from engine.dsl.types import ANY, BOOL, NUMBER, TableType, Type
from engine.errors import ExpressionError, PolicyError
from engine.numbers import parse_decimal
from engine.policy.definitions import check_definitions
from engine.policy.inherit import LayeredSpans, LoadedLayers, layers_from_texts, read_layers
from engine.policy.markets import (
    build_markets,
    default_settlement_currency,
    quantity_step_problems,
)
from engine.policy.model import AccountField, Definition, Example, Market, Policy, Source
from engine.policy.packaged import policies_dir
from engine.policy.procedure import (
    DEFAULT_BANKRUPTCY,
    REQUIRED_DEFINITIONS,
    RESIDUAL,
    build_procedure,
    build_waterfall,
    expression_locations,
    has_order,
    key_of,
)
from engine.policy.procedure_checks import market_reads, procedure_problems
from engine.policy.schema import schema_diagnostics
from engine.policy.structure import (
    Pruned,
    check_structure,
    dropped_names,
    dropped_source_ids,
)
from engine.policy.tables import BuiltTable, build_table
from engine.policy.vocabulary import (
    ACCOUNT_FIELDS,
    POSITION_FIELDS,
    RESERVED_NAMES,
    build_roots,
)
from engine.policy.yaml_reader import Pointer
from engine.source import Diagnostic, Span

__all__ = [
    "check_policy",
    "check_policy_texts",
    "default_settlement_currency",
    "digest_of",
    "load_policy",
    "missing_policy",
    "resolve_policy_path",
]


POLICY_SUFFIXES = (".yaml", ".yml")


def resolve_policy_path(reference: str | Path) -> Path:
    """A path as given, or the shipped policy with that id."""
    path = Path(reference)
    if path.is_file() or path.suffix in (".yaml", ".yml") or "/" in str(reference):
        return path
    shipped = policies_dir() / f"{reference}.yaml"
    return shipped if shipped.is_file() else path


def digest_of(data: Any) -> str:
    """Content digest of the merged policy data: formatting and comments do not change it."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _literal_numbers(expr: ast.Expr) -> bool:
    return any(
        isinstance(node, ast.Const)
        and isinstance(node.value, Decimal)
        and not isinstance(node.value, bool)
        and node.value not in (0, 1)
        for node in ast.walk(expr)
    )


class _Builder:
    def __init__(self, layers: LoadedLayers, path: Path) -> None:
        self.original = layers.data
        self.data: dict[str, Any] = layers.data  # pruned by the structure pass
        self.pruned: Pruned | None = None
        self.spans: LayeredSpans = layers.spans
        self.layers = layers
        self.path = path
        self.diagnostics: list[Diagnostic] = []
        self.resolved: set[int] = set()
        self.parsed: dict[str, ast.Expr] = {}
        self.expressions: list[ast.Expr] = []  # every parsed expression, for whole-policy checks
        self.dropped_sources: set[str] = set()

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint))

    def warn(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint, severity="warning"))

    def at(self, pointer: Pointer, key: bool = False) -> Span:
        return self.spans.locate(pointer, key)

    def dropped(self, *pointer: str | int) -> bool:
        """Whether the structure pass took this part out (its error is already reported)."""
        return self.pruned is not None and self.pruned.was_dropped(*pointer)

    # -- sources -----------------------------------------------------------------------------
    def sources(self) -> tuple[Source, ...]:
        result: list[Source] = []
        seen: set[str] = set()
        for index, item in enumerate(self.data.get("sources", [])):
            if item is None:
                continue  # taken out by the structure pass
            source = Source(
                url=item["url"],
                title=item["title"],
                retrieved=item["retrieved"],
                id=item.get("id"),
                note=item.get("note"),
            )
            if source.id is not None:
                if source.id in seen:
                    self.error(
                        "E408",
                        f"source id '{source.id}' is used twice",
                        self.at(("sources", index, "id")),
                    )
                seen.add(source.id)
            result.append(source)
        return tuple(result)

    def citation(
        self,
        pointer: Pointer,
        item: Mapping[str, Any],
        what: str,
        ids: set[str],
        warning_code: str | None,
    ) -> None:
        source = item.get("source")
        if source is not None and source not in ids and source not in self.dropped_sources:
            self.error(
                "E409",
                f"{what} cites unknown source '{source}'",
                self.at((*pointer, "source")),
                did_you_mean(source, ids) or "add it to `sources` with an `id`",
            )
        if warning_code and source is None and not item.get("assumption"):
            self.warn(
                warning_code,
                f"{what} has neither `source` nor `assumption`",
                self.at(pointer, True),
                "cite where the numbers come from, or say they are an assumption",
            )

    # -- tables and markets ------------------------------------------------------------------
    def tables(self, source_ids: set[str]) -> dict[str, BuiltTable]:
        built: dict[str, BuiltTable] = {}
        for name, included in self.layers.included_tables.items():
            self.citation(("tables", name), included.head, f"table '{name}'", source_ids, "W001")
            self.diagnostics.extend(included.built.diagnostics)  # checked with its file
            built[name] = included.built
        for name, spec in self.data.get("tables", {}).items():
            self.citation(("tables", name), spec, f"table '{name}'", source_ids, "W001")
            table = build_table(name, spec, self.spans.locate)
            self.diagnostics.extend(table.diagnostics)
            built[name] = table
        return built

    def markets(
        self, tables: Mapping[str, BuiltTable], source_ids: set[str]
    ) -> tuple[dict[str, Market], Type | None, dict[str, Type]]:
        def cite(pointer: Pointer, spec: Mapping[str, Any], what: str) -> None:
            self.citation(pointer, spec, what, source_ids, "W003")

        broken = dropped_names(self.pruned, "tables") if self.pruned else set()
        reported = {
            str(p[1])
            for p in (self.pruned.reported if self.pruned else ())
            if p[:1] == ("markets",)
        }
        result = build_markets(self.data, tables, broken, self.spans.locate, cite, reported)
        self.diagnostics.extend(result.diagnostics)
        tier_type, parameters = result.tier_type, result.parameters
        dropped = dropped_names(self.pruned, "markets") if self.pruned else set()
        originals = self.original.get("markets") or {}
        for symbol in dropped:  # its error is reported: what it declared is not unknown
            spec = originals.get(symbol) if isinstance(originals, Mapping) else None
            if isinstance(spec, Mapping):
                if "tiers" in spec and tier_type is None:
                    known = tables.get(spec["tiers"])
                    tier_type = (
                        TableType("tiers", known.type.keys, known.type.row)
                        if known is not None and known.type is not None
                        else ANY
                    )
                if isinstance(spec.get("parameters"), Mapping):
                    parameters = {**dict.fromkeys(spec["parameters"], NUMBER), **parameters}
        return result.markets, tier_type, parameters

    # -- expressions -------------------------------------------------------------------------
    def parse(self, pointer: Pointer, text: str) -> ast.Expr | None:
        source, locate, fallback = self.spans.expression_origin(pointer)
        try:
            expr = parse_expression(text, source=source, locate=locate, fallback=fallback)
        except ExpressionError as error:
            self.diagnostics.extend(error.diagnostics)
            return None
        self.expressions.append(expr)
        return expr

    def definitions(
        self, roots: Mapping[str, Type], source_ids: set[str]
    ) -> tuple[Mapping[str, Definition], Scope]:
        raw = self.data.get("definitions", {})
        parsed: dict[str, tuple[ast.Expr, Mapping[str, Any]]] = {}
        for name, spec in raw.items():
            item = spec if isinstance(spec, Mapping) else {"expr": spec}
            pointer: Pointer = (
                ("definitions", name, "expr")
                if isinstance(spec, Mapping)
                else ("definitions", name)
            )
            if name in RESERVED_NAMES or name in POSITION_FIELDS:
                what = "a position field" if name in POSITION_FIELDS else "reserved"
                self.error(
                    "E308",
                    f"'{name}' cannot name a definition: it is {what}",
                    self.at(("definitions", name), True),
                )
                continue
            self.citation(("definitions", name), item, f"definition '{name}'", source_ids, None)
            expr = self.parse(pointer, item["expr"])
            if expr is not None:
                parsed[name] = (expr, item)
                self.parsed[name] = expr
                if _literal_numbers(expr) and not item.get("source") and not item.get("assumption"):
                    self.warn(
                        "W002",
                        f"definition '{name}' contains numbers but neither `source` nor `assumption`",
                        self.at(("definitions", name), True),
                        "cite where the numbers come from, or say they are an assumption",
                    )
        # every name, pruned ones included: a reference to a broken definition is not unknown
        names = (
            list(self.original.get("definitions") or {})
            if isinstance(self.original.get("definitions"), Mapping)
            else list(raw)
        )
        checked = check_definitions(parsed, names, roots, self.spans.locate)
        self.diagnostics.extend(checked.diagnostics)
        self.resolved |= checked.attributes
        return checked.definitions, checked.scope

    def order_outside_an_order(
        self, pointer: Pointer, expr: ast.Expr, what: str, definitions: Mapping[str, Definition]
    ) -> None:
        """E310 when an expression evaluated without a liquidation order reads `order`."""
        for node in ast.walk(expr):
            if isinstance(node, ast.Name) and node.name == "order":
                reason = ""
            elif isinstance(node, ast.Name) or (
                isinstance(node, ast.Attribute) and id(node) in self.resolved
            ):
                found = definitions.get(node.name)
                if found is None or "order" not in found.inputs:
                    continue
                reason = f" through definition '{node.name}'"
            else:
                continue
            self.error(
                "E310",
                f"{what} reads `order`{reason}, but no liquidation order exists there",
                self.at(pointer),
                "`order` exists only in the fill and settlement prices, fees, a step's limit "
                "price, the surplus rule and the ADL price",
            )
            return

    def slot_expressions(
        self, scope: Scope, definitions: Mapping[str, Definition]
    ) -> dict[str, tuple[ast.Expr, Type]]:
        result: dict[str, tuple[ast.Expr, Type]] = {}
        locations = expression_locations(self.data)
        liquidation = self.data.get("liquidation", {})
        if "margin_balance" in scope.definitions and not isinstance(
            liquidation.get("bankruptcy"), str
        ):
            locations.append(
                (
                    ("liquidation", "bankruptcy"),
                    DEFAULT_BANKRUPTCY,
                    BOOL,
                    "the bankruptcy condition",
                )
            )
        for pointer, text, expected, what in locations:
            expr = self.parse(pointer, text)
            if expr is None:
                continue
            checked = check_expression(expr, scope, expected=expected, what=what)
            self.diagnostics.extend(checked.diagnostics)
            self.resolved |= checked.definition_attributes
            if not checked.diagnostics and not has_order(pointer):
                self.order_outside_an_order(pointer, expr, what, definitions)
            if not checked.diagnostics:
                result[key_of(pointer)] = (expr, checked.type)
                if key_of(pointer) in ("liquidation.trigger", "liquidation.bankruptcy"):
                    result[key_of(pointer) + RESIDUAL] = (self.residual(expr, scope), NUMBER)
        self.procedure_checks(scope)
        for name in REQUIRED_DEFINITIONS:  # the engine evaluates these without an order
            found = definitions.get(name)
            if found is not None and "order" in found.inputs:
                self.error(
                    "E310",
                    f"definition '{name}' reads `order`, but the engine evaluates it for "
                    "positions, where no liquidation order exists",
                    self.at(("definitions", name), True),
                    "compute it from the position, account and market",
                )
        return result

    def procedure_checks(self, scope: Scope) -> None:
        def parse(pointer: Pointer, text: str) -> ast.Expr | None:
            source, locate, fallback = self.spans.expression_origin(pointer)
            try:
                return parse_expression(text, source=source, locate=locate, fallback=fallback)
            except ExpressionError:
                return None  # reported where the expression itself is checked

        self.diagnostics.extend(procedure_problems(self.data, scope, self.at, self.dropped, parse))

    def residual(self, expr: ast.Expr, scope: Scope) -> ast.Expr:
        """The numeric residual of a condition, for the price solver (see engine/dsl/residual.py)."""
        boolean = frozenset(
            n for n, t in scope.definitions.items() if t == BOOL and n in self.parsed
        )
        return residual_of(expr, self.parsed, boolean)

    # -- account fields ----------------------------------------------------------------------
    def account_fields(self, source_ids: set[str]) -> dict[str, AccountField]:
        """The declared `account_fields`, checked against the standard account fields."""
        fields: dict[str, AccountField] = {}
        for name, spec in self.data.get("account_fields", {}).items():
            pointer: Pointer = ("account_fields", name)
            if name in ACCOUNT_FIELDS or name in RESERVED_NAMES:
                self.error(
                    "E419",
                    f"account field '{name}' is already a standard account field or a keyword",
                    self.at(pointer, True),
                    "standard fields: " + ", ".join(sorted(ACCOUNT_FIELDS)),
                )
                continue
            self.citation(pointer, spec, f"account field '{name}'", source_ids, None)
            default = spec.get("default", 0)
            fields[name] = AccountField(
                name=name,
                default=parse_decimal(str(default)),
                description=spec["description"],
                unit=spec.get("unit"),
            )
        for index, charge in enumerate(self.data.get("charges", [])):
            target = charge.get("accrue_to")
            if target is not None and target != "debt" and target not in fields:
                self.error(
                    "E420",
                    f"charge '{charge['name']}' accrues to '{target}', which is neither `debt` "
                    "nor a declared account field",
                    self.at(("charges", index, "accrue_to")),
                    did_you_mean(target, [*fields, "debt"]) or "declare it in `account_fields`",
                )
        return fields

    # -- examples ----------------------------------------------------------------------------
    def examples(
        self, markets: Mapping[str, Market], definitions: Mapping[str, Type], source_ids: set[str]
    ) -> tuple[Example, ...]:
        examples: list[Example] = []
        broken_markets = dropped_names(self.pruned, "markets") if self.pruned else set()
        trigger_dropped = self.dropped("liquidation", "trigger")
        for index, item in enumerate(self.data.get("examples", [])):
            if item is None:
                continue
            pointer: Pointer = ("examples", index)
            before = len(self.diagnostics)
            account = item["account"]

            def locate(inner: Pointer, key: bool, base: Pointer = (*pointer, "account")) -> Span:
                return self.at((*base, *inner), key)

            self.diagnostics.extend(schema_diagnostics(account, "account.schema.json", locate))
            for p_index, position in enumerate(
                account.get("positions", []) if isinstance(account.get("positions"), list) else []
            ):
                symbol = position.get("symbol") if isinstance(position, Mapping) else None
                if (
                    isinstance(symbol, str)
                    and symbol not in markets
                    and symbol not in broken_markets
                ):
                    self.error(
                        "E410",
                        f"unknown symbol '{symbol}'",
                        self.at((*pointer, "account", "positions", p_index, "symbol")),
                        did_you_mean(symbol, markets) or "symbols are the keys of `markets`",
                    )
            symbol = item.get("symbol")
            if symbol is not None and symbol not in markets and symbol not in broken_markets:
                self.error(
                    "E410",
                    f"unknown symbol '{symbol}'",
                    self.at((*pointer, "symbol")),
                    did_you_mean(symbol, markets),
                )
            for name in item["expect"].get("definitions", {}):
                if name not in definitions:
                    self.error(
                        "E300",
                        f"unknown definition '{name}'",
                        self.at((*pointer, "expect", "definitions", name), True),
                        did_you_mean(name, definitions),
                    )
            if (
                "trigger" in item["expect"]
                and not isinstance(self.data.get("liquidation", {}).get("trigger"), str)
                and not trigger_dropped
            ):
                self.error(
                    "E411",
                    "the example expects a trigger but the policy has no `liquidation.trigger`",
                    self.at((*pointer, "expect", "trigger"), True),
                )
            self.citation(pointer, item, f"example '{item['name']}'", source_ids, None)
            if len(self.diagnostics) == before:
                tolerance = item.get("tolerance")
                examples.append(
                    Example(
                        name=item["name"],
                        account=account,
                        expect=item["expect"],
                        span=self.at(pointer),
                        symbol=symbol,
                        tolerance=parse_decimal(str(tolerance)) if tolerance is not None else None,
                        description=item.get("description"),
                        source=item.get("source"),
                        index=index,
                    )
                )
        return tuple(examples)

    # -- everything --------------------------------------------------------------------------
    def build(self) -> Policy | None:
        pruned = check_structure(self.original, self.at)
        self.diagnostics.extend(pruned.diagnostics)
        if not pruned.usable:
            return None
        self.pruned, self.data = pruned, pruned.data
        self.dropped_sources = dropped_source_ids(self.original, pruned)
        sources = self.sources()
        source_ids = {s.id for s in sources if s.id}
        built = self.tables(source_ids)
        markets, tier_type, parameters = self.markets(built, source_ids)
        table_types: dict[str, Type] = {n: t.type for n, t in built.items() if t.type is not None}
        table_types.update(dict.fromkeys(dropped_names(pruned, "tables"), ANY))
        account_fields = self.account_fields(source_ids)
        roots = build_roots(
            tier_table=tier_type,
            market_parameters=parameters,
            tables=table_types,
            account_fields={name: f.description for name, f in account_fields.items()},
        )
        definitions, scope = self.definitions(roots, source_ids)
        expressions = self.slot_expressions(scope, definitions)
        reads = [span for expr in self.expressions for span in market_reads(expr, "quantity_step")]
        self.diagnostics.extend(quantity_step_problems(markets, reads, self.at))
        examples = self.examples(markets, scope.definitions, source_ids)
        if any(d.severity == "error" for d in self.diagnostics):
            return None
        tables: dict[str, Table] = {n: t.table for n, t in built.items() if t.table is not None}
        program = compile_program(
            {name: (d.expr, d.type) for name, d in definitions.items()},
            expressions,
            frozenset(self.resolved),
            filename=f"<policy {self.path}>",
            statics={"tables": MappingProxyType(dict(tables))},
        )
        data = self.original
        digests = self.layers.included_digests
        return Policy(
            id=data["id"],
            title=data["title"],
            path=str(self.path),
            digest=digest_of({"policy": data, "included": list(digests)} if digests else data),
            description=data.get("description"),
            extends=data.get("extends"),
            chain=self.layers.chain,
            sources=sources,
            markets=MappingProxyType(markets),
            tables=MappingProxyType(tables),
            definitions=MappingProxyType(definitions),
            expressions=MappingProxyType(dict(program.expressions)),
            program=program,
            scope=scope,
            examples=examples,
            procedure=build_procedure(data),
            waterfall=build_waterfall(data),
            data=MappingProxyType(data),
            warnings=tuple(d for d in self.diagnostics if d.severity == "warning"),
            account_fields=MappingProxyType(account_fields),
            valid_from=data.get("valid_from"),
            valid_until=data.get("valid_until"),
        )


def missing_policy(reference: str | Path) -> Diagnostic | None:
    """'no such file or shipped policy' with the closest shipped ids, for a reference that is
    neither a file nor a shipped policy's id (None when it may be a file to read)."""
    text = str(reference)
    path = Path(reference)
    if path.exists() or path.suffix in POLICY_SUFFIXES or "/" in text:
        return None
    if (policies_dir() / f"{text}.yaml").is_file():
        return None
    ids = sorted(p.stem for p in policies_dir().glob("*.yaml"))
    hint = did_you_mean(text, ids) or ("shipped policies: " + ", ".join(ids) if ids else None)
    return Diagnostic("E001", f"no such file or shipped policy '{text}'", path=text, hint=hint)


def check_policy(reference: str | Path) -> tuple[Policy | None, list[Diagnostic]]:
    """Load a policy and return it (None when invalid) with every diagnostic, warnings included."""
    missing = missing_policy(reference)
    if missing is not None:
        return None, [missing]
    path = resolve_policy_path(reference)
    try:
        layers = read_layers(path)
    except PolicyError as error:
        return None, list(error.diagnostics)
    builder = _Builder(layers, path)
    policy = builder.build()
    return policy, builder.diagnostics


def check_policy_texts(
    chain: Sequence[tuple[str, str]],
) -> tuple[Policy | None, list[Diagnostic]]:
    """Like :func:`check_policy` for a policy handed over as (path, text) pairs, child first.

    The parents are taken as given (see :func:`~engine.policy.inherit.layers_from_texts`), so
    a process without the files, such as a sweep's worker, loads the very policy its caller read.
    """
    try:
        layers = layers_from_texts(chain)
    except PolicyError as error:
        return None, list(error.diagnostics)
    builder = _Builder(layers, Path(chain[0][0]))
    policy = builder.build()
    return policy, builder.diagnostics


def load_policy(reference: str | Path) -> Policy:
    """Load, check and compile a policy file (or shipped policy id); raise PolicyError if invalid."""
    policy, diagnostics = check_policy(reference)
    if policy is None:
        raise PolicyError(diagnostics=diagnostics)
    return policy
