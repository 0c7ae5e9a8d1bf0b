"""YAML → schema → model → checked and compiled policy, collecting every problem on the way.

The passes run in order and each reports all it finds; a later pass only runs on what the earlier
ones could build, so one mistake is reported once.  Tables are built by
:mod:`engine.policy.tables` and definitions typed by :mod:`engine.policy.definitions`.
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
from engine.dsl.types import BOOL, NUMBER, TableType, Type
from engine.errors import ExpressionError, PolicyError
from engine.numbers import parse_decimal
from engine.policy.definitions import check_definitions
from engine.policy.inherit import LayeredSpans, LoadedLayers, layers_from_texts, read_layers
from engine.policy.model import AccountField, Definition, Example, Market, Policy, Source
from engine.policy.packaged import policies_dir
from engine.policy.procedure import (
    DEFAULT_BANKRUPTCY,
    REQUIRED_DEFINITIONS,
    RESIDUAL,
    build_procedure,
    build_waterfall,
    expression_locations,
    key_of,
)
from engine.policy.schema import schema_diagnostics
from engine.policy.tables import build_table
from engine.policy.vocabulary import (
    ACCOUNT_FIELDS,
    POSITION_FIELDS,
    RESERVED_NAMES,
    build_roots,
)
from engine.policy.yaml_reader import Pointer
from engine.source import Diagnostic, Span

POLICY_SUFFIXES = (".yaml", ".yml")


def resolve_policy_path(reference: str | Path) -> Path:
    """A path as given, or the shipped policy with that id."""
    path = Path(reference)
    if path.is_file() or path.suffix in (".yaml", ".yml") or "/" in str(reference):
        return path
    shipped = policies_dir() / f"{reference}.yaml"
    return shipped if shipped.is_file() else path


def default_settlement_currency(kind: str, instrument: str) -> str:
    """The quote of `BASE/QUOTE` for a linear contract, its base for an inverse one.

    A ccxt-style settle suffix (`BTC/USD:BTC`) wins; a name without `/` is its own currency.
    """
    name, _, settle = instrument.partition(":")
    if settle:
        return settle
    base, slash, quote = name.partition("/")
    if not slash:
        return name
    return base if kind == "inverse" else quote


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
        self.data = layers.data
        self.spans: LayeredSpans = layers.spans
        self.layers = layers
        self.path = path
        self.diagnostics: list[Diagnostic] = []
        self.resolved: set[int] = set()
        self.parsed: dict[str, ast.Expr] = {}

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint))

    def warn(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint, severity="warning"))

    def at(self, pointer: Pointer, key: bool = False) -> Span:
        return self.spans.locate(pointer, key)

    # -- sources -----------------------------------------------------------------------------
    def sources(self) -> tuple[Source, ...]:
        result: list[Source] = []
        seen: set[str] = set()
        for index, item in enumerate(self.data.get("sources", [])):
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
        if source is not None and source not in ids:
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

    # -- markets -----------------------------------------------------------------------------
    def markets(
        self, tables: Mapping[str, Table], source_ids: set[str]
    ) -> tuple[dict[str, Market], TableType | None, dict[str, Type]]:
        markets: dict[str, Market] = {}
        tier_type: TableType | None = None
        tier_owner = ""
        parameter_names: set[str] | None = None
        for symbol, spec in self.data.get("markets", {}).items():
            pointer: Pointer = ("markets", symbol)
            self.citation(pointer, spec, f"market '{symbol}'", source_ids, "W003")
            tiers: Table | None = None
            if "tiers" in spec:
                tiers = tables.get(spec["tiers"])
                if tiers is None:
                    if spec["tiers"] not in self.data.get("tables", {}):
                        self.error(
                            "E405",
                            f"unknown table '{spec['tiers']}'",
                            self.at((*pointer, "tiers")),
                            did_you_mean(spec["tiers"], self.data.get("tables", {})),
                        )
                elif tier_type is None:
                    tier_type, tier_owner = tiers.type, symbol
                elif (tiers.type.keys, dict(tiers.type.row.fields)) != (
                    tier_type.keys,
                    dict(tier_type.row.fields),
                ):
                    self.error(
                        "E406",
                        f"the tier table of '{symbol}' differs in keys or columns from the one of '{tier_owner}'",
                        self.at((*pointer, "tiers")),
                        "`market.tiers` must look the same in every market",
                    )
            parameters = {k: parse_decimal(str(v)) for k, v in spec.get("parameters", {}).items()}
            if parameter_names is None:
                parameter_names = set(parameters)
            elif set(parameters) != parameter_names:
                differ = sorted(set(parameters) ^ parameter_names)
                self.error(
                    "E406",
                    f"market '{symbol}' parameters differ from the other markets' ({', '.join(differ)})",
                    self.at((*pointer, "parameters"), True),
                    "every market declares the same parameter names",
                )
            record: dict[str, Any] = {
                "symbol": symbol,
                "kind": spec["kind"],
                "contract_size": parse_decimal(str(spec["contract_size"])),
                "tick_size": parse_decimal(str(spec["tick_size"])),
                **parameters,
            }
            if tiers is not None:
                record["tiers"] = tiers
            markets[symbol] = Market(
                symbol,
                spec["kind"],
                record["contract_size"],
                record["tick_size"],
                tiers,
                MappingProxyType(parameters),
                MappingProxyType(record),
                spec.get("instrument", symbol),
                parse_decimal(str(spec["quantity_step"])) if "quantity_step" in spec else None,
                spec.get("settlement_currency")
                or default_settlement_currency(spec["kind"], spec.get("instrument", symbol)),
            )
        generic = None
        if tier_type is not None:
            generic = TableType("tiers", tier_type.keys, tier_type.row)
        return markets, generic, dict.fromkeys(parameter_names or set(), NUMBER)

    # -- expressions -------------------------------------------------------------------------
    def parse(self, pointer: Pointer, text: str) -> ast.Expr | None:
        source, locate, fallback = self.spans.expression_origin(pointer)
        try:
            return parse_expression(text, source=source, locate=locate, fallback=fallback)
        except ExpressionError as error:
            self.diagnostics.extend(error.diagnostics)
            return None

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
        checked = check_definitions(parsed, raw, roots, self.spans.locate)
        self.diagnostics.extend(checked.diagnostics)
        self.resolved |= checked.attributes
        return checked.definitions, checked.scope

    def slot_expressions(self, scope: Scope) -> dict[str, tuple[ast.Expr, Type]]:
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
            if not checked.diagnostics:
                result[key_of(pointer)] = (expr, checked.type)
                if key_of(pointer) in ("liquidation.trigger", "liquidation.bankruptcy"):
                    result[key_of(pointer) + RESIDUAL] = (self.residual(expr, scope), NUMBER)
        waterfall = self.data.get("waterfall", {})
        order = waterfall.get("order", [])
        if order and order[-1] not in ("debt", "write_off"):
            self.error(
                "E414",
                "the waterfall must end with `debt` or `write_off`",
                self.at(("waterfall", "order")),
                "someone has to take what is left",
            )
        if "adl" in order and "adl" not in waterfall:
            self.error(
                "E415",
                "the waterfall uses `adl` but declares no `adl.ranking`",
                self.at(("waterfall", "order")),
            )
        if "adl" in order and "clawback" in order:
            self.error(
                "E416",
                "a waterfall uses either `adl` or `clawback`, not both",
                self.at(("waterfall", "order")),
            )
        for index, charge in enumerate(self.data.get("charges", [])):
            if charge.get("at") == "interval" and "every_seconds" not in charge:
                self.error(
                    "E417",
                    f"charge '{charge['name']}' runs at an interval but has no `every_seconds`",
                    self.at(("charges", index)),
                )
        if liquidation.get("steps"):
            for name in REQUIRED_DEFINITIONS:
                if name not in scope.definitions:
                    self.error(
                        "E412",
                        f"a policy with liquidation steps needs the definition '{name}'",
                        self.at(("liquidation", "steps"), True),
                        "the engine reads it for results and statements; see docs/mechanics.md",
                    )
            for index, step in enumerate(liquidation["steps"]):
                if step["kind"] == "reduce" and "quantity" not in step:
                    self.error(
                        "E413",
                        f"step '{step['name']}' reduces but has no `quantity`",
                        self.at(("liquidation", "steps", index)),
                    )
                if step["kind"] != "reduce" and "limit_price" in step:
                    self.error(
                        "E418",
                        f"step '{step['name']}' is a `{step['kind']}` step but has a `limit_price`",
                        self.at(("liquidation", "steps", index, "limit_price"), True),
                        "only `reduce` steps place an immediate-or-cancel order with a limit; "
                        "remove the limit or make the step `kind: reduce`",
                    )
        return result

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
        for index, item in enumerate(self.data.get("examples", [])):
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
                if isinstance(symbol, str) and symbol not in markets:
                    self.error(
                        "E410",
                        f"unknown symbol '{symbol}'",
                        self.at((*pointer, "account", "positions", p_index, "symbol")),
                        did_you_mean(symbol, markets) or "symbols are the keys of `markets`",
                    )
            symbol = item.get("symbol")
            if symbol is not None and symbol not in markets:
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
            if "trigger" in item["expect"] and not isinstance(
                self.data.get("liquidation", {}).get("trigger"), str
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
        self.diagnostics.extend(schema_diagnostics(self.data, "policy.schema.json", self.at))
        if any(d.severity == "error" for d in self.diagnostics):
            return None
        sources = self.sources()
        source_ids = {s.id for s in sources if s.id}
        tables: dict[str, Table] = {}
        for name, spec in self.data.get("tables", {}).items():
            self.citation(("tables", name), spec, f"table '{name}'", source_ids, "W001")
            table, problems = build_table(name, spec, self.spans.locate)
            self.diagnostics.extend(problems)
            if table is not None:
                tables[name] = table
        markets, tier_type, parameters = self.markets(tables, source_ids)
        account_fields = self.account_fields(source_ids)
        roots = build_roots(
            tier_table=tier_type,
            market_parameters=parameters,
            tables={name: table.type for name, table in tables.items()},
            account_fields={name: f.description for name, f in account_fields.items()},
        )
        definitions, scope = self.definitions(roots, source_ids)
        expressions = self.slot_expressions(scope)
        examples = self.examples(markets, scope.definitions, source_ids)
        if any(d.severity == "error" for d in self.diagnostics):
            return None
        program = compile_program(
            {name: (d.expr, d.type) for name, d in definitions.items()},
            expressions,
            frozenset(self.resolved),
            filename=f"<policy {self.path}>",
            statics={"tables": MappingProxyType(dict(tables))},
        )
        data = self.data
        return Policy(
            id=data["id"],
            title=data["title"],
            path=str(self.path),
            digest=digest_of(data),
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
