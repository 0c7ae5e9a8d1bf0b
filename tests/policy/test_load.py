"""Loading a policy file: schema, tables, markets, definitions, examples, sources, hostile input.

Every test writes its policy into `tmp_path` and loads it through the public entry points
(`load_policy`, `check_policy`), so diagnostics are checked where the author would see them.
"""

from __future__ import annotations

import textwrap
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.dsl import frame
from engine.errors import PolicyError
from engine.policy.load import check_policy, load_policy
from engine.policy.model import Policy
from engine.source import Diagnostic

MARKET = "BTCUSDT: {kind: linear, contract_size: 1, tick_size: 0.1, assumption: test numbers}"

MINIMAL = """\
id: minimal
title: Minimal
"""

BRACKETS = """\
id: brackets
title: Brackets
markets:
  BTCUSDT: {kind: linear, contract_size: 1, tick_size: 0.1, tiers: brackets, assumption: test}
tables:
  brackets:
    assumption: test numbers
    keys: [{name: notional, kind: interval}]
    rows:
      - {min_notional: 0, max_notional: 50_000, rate: 0.004, amount: 0}
      - {min_notional: 50_000, max_notional: 600_000, rate: 0.005, amount: 50}
      - {min_notional: 600_000, rate: 0.01, amount: 3_050}
  ladder:
    assumption: test numbers
    keys: [{name: leverage, kind: exact}, {name: net_contracts, kind: interval}]
    rows:
      - {leverage: 10, min_net_contracts: 0, max_net_contracts: 100, factor: 0.1}
      - {leverage: 10, min_net_contracts: 100, factor: 0.2}
      - {leverage: 20, min_net_contracts: 0, max_net_contracts: 50, factor: 0.3}
      - {leverage: 20, min_net_contracts: 50, max_net_contracts: 80, factor: 0.4}
      - {leverage: 20, min_net_contracts: 80, factor: 0.5}
definitions:
  notional: position.size * market.mark_price
  rate: lookup(market.tiers, notional).rate
  bracket_number: lookup(market.tiers, notional).tier
  maintenance_margin: notional * rate - lookup(market.tiers, notional).amount
  factor: lookup(tables.ladder, position.leverage, position.size).factor
  ladder_tier: lookup(tables.ladder, position.leverage, position.size).tier
liquidation:
  trigger: maintenance_margin > account.wallet_balance
"""


# --- helpers ----------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, name: str = "policy.yaml") -> Policy:
    return load_policy(write(tmp_path, text, name))


def errors(tmp_path: Path, text: str, name: str = "policy.yaml") -> list[Diagnostic]:
    """The errors (not warnings) loading raises, in the order PolicyError sorts them."""
    with pytest.raises(PolicyError) as info:
        load(tmp_path, text, name)
    return [d for d in info.value.diagnostics if d.severity == "error"]


def codes(tmp_path: Path, text: str) -> list[str]:
    return [d.code for d in errors(tmp_path, text)]


def where(diagnostic: Diagnostic) -> tuple[int, int]:
    assert diagnostic.span is not None
    return diagnostic.span.line, diagnostic.span.column


def table_policy(rows: list[str], keys: str = "[{name: notional, kind: interval}]") -> str:
    lines = [
        "id: tables",
        "title: Tables",
        "tables:",
        "  t:",
        "    assumption: test numbers",
        f"    keys: {keys}",
        "    rows:",
        *(f"      - {row}" for row in rows),
    ]
    return "\n".join(lines) + "\n"


def with_definitions(*definitions: str, head: str = "") -> str:
    text = f"id: defs\ntitle: Definitions\nmarkets:\n  {MARKET}\n{head}definitions:\n"
    return text + "".join(f"  {line}\n" for line in definitions)


def evaluate(
    policy: Policy, name: str, *, size: Any, leverage: Any = 10, mark_price: Any = 1
) -> Any:
    position = {
        "symbol": "BTCUSDT",
        "side": "long",
        "size": Decimal(size),
        "entry_price": Decimal(1),
        "leverage": Decimal(leverage),
        "margin_mode": "cross",
    }
    account = {"wallet_balance": Decimal(0), "positions": [position]}
    market = {**policy.markets["BTCUSDT"].record, "mark_price": Decimal(mark_price)}
    return policy.definition(name)(frame(position, account, market))


# --- whole policies ---------------------------------------------------------------------------


def test_load_minimal_policy_loads(tmp_path):
    policy = load(tmp_path, MINIMAL)
    assert (policy.id, policy.title) == ("minimal", "Minimal")
    assert dict(policy.definitions) == {}
    assert policy.warnings == ()
    assert policy.digest.startswith("sha256:")


def test_check_policy_valid_policy_returns_policy_and_no_errors(tmp_path):
    policy, diagnostics = check_policy(write(tmp_path, BRACKETS))
    assert policy is not None
    assert [d for d in diagnostics if d.severity == "error"] == []


def test_check_policy_invalid_policy_returns_none_and_diagnostics(tmp_path):
    policy, diagnostics = check_policy(write(tmp_path, "id: x\n"))
    assert policy is None
    assert [d.code for d in diagnostics] == ["E101"]


def test_load_missing_file_reports_e001(tmp_path):
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "absent.yaml")
    assert [d.code for d in info.value.diagnostics] == ["E001"]


def test_load_unknown_top_level_key_reports_e102_with_hint(tmp_path):
    (diagnostic,) = errors(tmp_path, MINIMAL + "definitons: {}\n")
    assert diagnostic.code == "E102"
    assert where(diagnostic) == (3, 1)
    assert diagnostic.hint == "did you mean 'definitions'?"


def test_load_bad_id_reports_e104_at_the_value(tmp_path):
    (diagnostic,) = errors(tmp_path, "id: Not Valid\ntitle: T\n")
    assert diagnostic.code == "E104"
    assert where(diagnostic) == (1, 5)


# --- digest -----------------------------------------------------------------------------------


def test_digest_reformatted_and_commented_policy_same_digest(tmp_path):
    reformatted = """\
    # the same policy, written differently
    title: "Brackets"     # quoted, and before the id
    id: brackets
    markets:
      BTCUSDT:
        tick_size: 0.1
        kind: linear
        contract_size: 1
        tiers: brackets
        assumption: test
    tables:
      ladder:
        assumption: test numbers
        keys:
          - name: leverage
            kind: exact
          - {name: net_contracts, kind: interval}
        rows:
          - {leverage: 10, min_net_contracts: 0, max_net_contracts: 100, factor: 0.1}
          - {leverage: 10, min_net_contracts: 100, factor: 0.2}
          - {leverage: 20, min_net_contracts: 0, max_net_contracts: 50, factor: 0.3}
          - {leverage: 20, min_net_contracts: 50, max_net_contracts: 80, factor: 0.4}
          - {leverage: 20, min_net_contracts: 80, factor: 0.5}
      brackets:
        assumption: test numbers
        keys: [{name: notional, kind: interval}]
        rows:
          - {min_notional: 0, max_notional: 50000, rate: 0.004, amount: 0}
          - min_notional: 50000
            max_notional: 600000
            rate: 0.005
            amount: 50
          - {min_notional: 600_000, rate: 0.01, amount: 3050}
    definitions:
      notional: position.size * market.mark_price
      rate: 'lookup(market.tiers, notional).rate'
      bracket_number: "lookup(market.tiers, notional).tier"
      maintenance_margin: notional * rate - lookup(market.tiers, notional).amount
      factor: lookup(tables.ladder, position.leverage, position.size).factor
      ladder_tier: lookup(tables.ladder, position.leverage, position.size).tier
    liquidation: {trigger: maintenance_margin > account.wallet_balance}
    """
    original = load(tmp_path, BRACKETS, "a.yaml")
    assert load(tmp_path, reformatted, "b.yaml").digest == original.digest


def test_digest_changed_number_changes_digest(tmp_path):
    original = load(tmp_path, BRACKETS, "a.yaml")
    changed = BRACKETS.replace("rate: 0.005", "rate: 0.0051")
    assert load(tmp_path, changed, "b.yaml").digest != original.digest


def test_digest_changed_expression_changes_digest(tmp_path):
    original = load(tmp_path, BRACKETS, "a.yaml")
    changed = BRACKETS.replace("trigger: maintenance_margin >", "trigger: maintenance_margin >=")
    assert load(tmp_path, changed, "b.yaml").digest != original.digest


# --- tables -----------------------------------------------------------------------------------


def test_table_interval_key_boundary_belongs_to_higher_row(tmp_path):
    policy = load(tmp_path, BRACKETS)
    assert evaluate(policy, "rate", size="49999.99") == Decimal("0.004")
    assert evaluate(policy, "rate", size=50_000) == Decimal("0.005")
    assert evaluate(policy, "rate", size=0) == Decimal("0.004")
    assert evaluate(policy, "rate", size=10**9) == Decimal("0.01")  # last row is unbounded


def test_table_interval_key_tier_is_row_number(tmp_path):
    policy = load(tmp_path, BRACKETS)
    tiers = [evaluate(policy, "bracket_number", size=s) for s in (1, 50_000, 600_000, 10**7)]
    assert tiers == [1, 2, 3, 3]


def test_table_lookup_through_definitions_computes_maintenance_margin(tmp_path):
    policy = load(tmp_path, BRACKETS)
    # 100_000 notional, bracket 2: 100_000 * 0.005 - 50
    assert evaluate(policy, "maintenance_margin", size=100_000) == Decimal("450")


def test_table_exact_and_interval_keys_match_within_exact_group(tmp_path):
    policy = load(tmp_path, BRACKETS)
    assert evaluate(policy, "factor", size=99, leverage=10) == Decimal("0.1")
    assert evaluate(policy, "factor", size=100, leverage=10) == Decimal("0.2")
    assert evaluate(policy, "factor", size=99, leverage=20) == Decimal("0.5")
    assert evaluate(policy, "factor", size=50, leverage=20) == Decimal("0.4")


def test_table_exact_key_tier_numbered_per_group(tmp_path):
    policy = load(tmp_path, BRACKETS)
    assert evaluate(policy, "ladder_tier", size=5, leverage=10) == 1
    assert evaluate(policy, "ladder_tier", size=500, leverage=10) == 2
    assert evaluate(policy, "ladder_tier", size=5, leverage=20) == 1
    assert evaluate(policy, "ladder_tier", size=60, leverage=20) == 2
    assert evaluate(policy, "ladder_tier", size=80, leverage=20) == 3


def test_table_rows_keep_exact_decimals(tmp_path):
    table = load(tmp_path, BRACKETS).tables["brackets"]
    assert table.rows[1]["rate"] == Decimal("0.005")
    assert str(table.rows[1]["rate"]) == "0.005"
    assert table.rows[2]["amount"] == Decimal(3050)


def test_table_gap_between_rows_reports_e402(tmp_path):
    text = table_policy(["{min_notional: 0, max_notional: 10, a: 1}", "{min_notional: 20, a: 2}"])
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E402"
    assert where(diagnostic) == (9, 9)
    assert "from 10 to 20" in diagnostic.message


def test_table_overlapping_rows_report_e403(tmp_path):
    text = table_policy(["{min_notional: 0, max_notional: 10, a: 1}", "{min_notional: 5, a: 2}"])
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E403"
    assert "overlap" in diagnostic.message


def test_table_row_after_unbounded_row_reports_e403(tmp_path):
    text = table_policy(["{min_notional: 0, a: 1}", "{min_notional: 5, a: 2}"])
    assert codes(tmp_path, text) == ["E403"]


def test_table_non_increasing_bounds_report_e404(tmp_path):
    text = table_policy(["{min_notional: 10, max_notional: 10, a: 1}", "{min_notional: 10, a: 2}"])
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E404"
    assert where(diagnostic) == (8, 9)


def test_table_missing_key_column_reports_e406_once(tmp_path):
    text = table_policy(["{max_notional: 10, a: 1}", "{min_notional: 10, a: 2}"])
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E406"
    assert "lacks key column 'min_notional'" in diagnostic.message
    assert where(diagnostic) == (8, 9)


def test_table_missing_exact_key_column_reports_e406(tmp_path):
    text = table_policy(
        ["{lev: 1, min_notional: 0, a: 1}", "{min_notional: 0, a: 2}"],
        "[{name: lev, kind: exact}, {name: notional, kind: interval}]",
    )
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E406"
    assert "lacks key column 'lev'" in diagnostic.message


def test_table_inconsistent_columns_report_e406(tmp_path):
    text = table_policy(["{min_notional: 0, max_notional: 10, a: 1}", "{min_notional: 10, b: 2}"])
    found = errors(tmp_path, text)
    assert [d.code for d in found] == ["E406", "E406"]
    assert "lacks column 'a'" in found[0].message
    assert "has column 'b' that row 1 lacks" in found[1].message
    assert where(found[1]) == (9, 28)


def test_table_mixed_column_types_report_e406(tmp_path):
    text = table_policy(["{min_notional: 0, max_notional: 10, a: 1}", "{min_notional: 10, a: x}"])
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E406"
    assert diagnostic.message == (
        "row 2 of table 't': column 'a' holds string 'x' where the other rows hold numbers"
    )
    assert where(diagnostic) == (9, 31)


def test_table_two_interval_keys_report_e406(tmp_path):
    text = table_policy(
        ["{min_notional: 0, min_size: 0, a: 1}"],
        "[{name: notional, kind: interval}, {name: size, kind: interval}]",
    )
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E406"
    assert "2 interval keys" in diagnostic.message


def test_table_interval_key_with_strings_reports_e406(tmp_path):
    text = table_policy(['{min_notional: "low", a: 1}'])
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E406"
    assert "needs numbers" in diagnostic.message


def test_table_tier_column_is_reserved_e406(tmp_path):
    text = table_policy(["{min_notional: 0, tier: 1}"])
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E406"
    assert "'tier' is reserved" in diagnostic.message
    assert where(diagnostic) == (8, 27)


def test_table_exact_keys_only_repeated_keys_report_e403(tmp_path):
    text = table_policy(["{lev: 10, a: 1}", "{lev: 10, a: 2}"], "[{name: lev, kind: exact}]")
    assert codes(tmp_path, text) == ["E403"]


def test_table_every_problem_reported_at_once(tmp_path):
    text = """\
    id: tables
    title: Tables
    tables:
      gap:
        assumption: test
        keys: [{name: x, kind: interval}]
        rows: [{min_x: 0, max_x: 1}, {min_x: 2}]
      overlap:
        assumption: test
        keys: [{name: x, kind: interval}]
        rows: [{min_x: 0, max_x: 2}, {min_x: 1}]
    """
    assert codes(tmp_path, text) == ["E402", "E403"]


# --- markets ----------------------------------------------------------------------------------


def market_line(symbol: str, extra: str) -> str:
    spec = f"kind: linear, contract_size: 1, tick_size: 0.1, assumption: x, {extra}"
    return f"  {symbol}: {{{spec}}}\n"


MARKETS_HEAD = """\
id: markets
title: Markets
tables:
  brackets:
    assumption: test
    keys: [{name: notional, kind: interval}]
    rows: [{min_notional: 0, rate: 0.1}]
  wider:
    assumption: test
    keys: [{name: notional, kind: interval}]
    rows: [{min_notional: 0, rate: 0.1, amount: 0}]
markets:
"""


def test_market_unknown_tier_table_reports_e405_with_hint(tmp_path):
    text = MARKETS_HEAD + market_line("BTCUSDT", "tiers: braket")
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E405"
    assert diagnostic.message == "unknown table 'braket'"
    assert diagnostic.hint == "did you mean 'brackets'?"
    assert where(diagnostic) == (13, 83)


def test_market_tier_tables_of_different_shape_report_e406(tmp_path):
    text = (
        MARKETS_HEAD
        + market_line("BTCUSDT", "tiers: brackets")
        + market_line("ETHUSDT", "tiers: wider")
    )
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E406"
    assert "'ETHUSDT' differs in keys or columns from the one of 'BTCUSDT'" in diagnostic.message
    assert where(diagnostic)[0] == 14


def test_market_tier_tables_of_same_shape_load(tmp_path):
    text = (
        MARKETS_HEAD.replace("rate: 0.1, amount: 0", "rate: 0.2")
        + market_line("BTCUSDT", "tiers: brackets")
        + market_line("ETHUSDT", "tiers: wider")
        + "definitions:\n"
        "  rate: lookup(market.tiers, position.size).rate\n"
    )
    policy = load(tmp_path, text)
    assert policy.markets["ETHUSDT"].tiers is policy.tables["wider"]


def test_market_parameters_differ_report_e406(tmp_path):
    text = (
        MARKETS_HEAD
        + market_line("BTCUSDT", "parameters: {fee: 0.01}")
        + market_line("ETHUSDT", "parameters: {fees: 0.01}")
    )
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E406"
    assert "parameters differ" in diagnostic.message
    assert "(fee, fees)" in diagnostic.message


def test_market_parameter_usable_in_expressions(tmp_path):
    text = with_definitions("fee: position.size * market.mark_price * market.clearance_fee")
    text = text.replace("numbers}", "numbers, parameters: {clearance_fee: 0.005}}")
    policy = load(tmp_path, text)
    assert policy.markets["BTCUSDT"].parameters == {"clearance_fee": Decimal("0.005")}
    assert evaluate(policy, "fee", size=2, mark_price=100) == Decimal("1.000")


def test_market_unknown_parameter_reports_e301_with_hint(tmp_path):
    text = with_definitions("fee: market.clearance_fe")
    text = text.replace("numbers}", "numbers, parameters: {clearance_fee: 0.005}}")
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E301"
    assert diagnostic.hint == "did you mean 'clearance_fee'?"


def test_market_tiers_without_tier_tables_unknown_field_e301(tmp_path):
    (diagnostic,) = errors(tmp_path, with_definitions("rate: lookup(market.tiers, 1).rate"))
    assert diagnostic.code == "E301"
    assert "'tiers'" in diagnostic.message


# --- definitions ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["position", "market", "tables", "if", "where"])
def test_definition_reserved_name_reports_e308(tmp_path, name):
    (diagnostic,) = errors(tmp_path, with_definitions(f'{name}: "1"'))
    assert diagnostic.code == "E308"
    assert f"'{name}' cannot name a definition" in diagnostic.message
    assert where(diagnostic) == (6, 3)


def test_definition_position_field_name_reports_e308(tmp_path):
    (diagnostic,) = errors(tmp_path, with_definitions("size: position.size"))
    assert diagnostic.code == "E308"
    assert "position field" in diagnostic.message


def test_definition_cycle_reports_e304_once_naming_the_cycle(tmp_path):
    found = errors(tmp_path, with_definitions("a: b + 1", "b: a + 1"))
    assert [d.code for d in found] == ["E304"]
    assert found[0].message == "definitions form a cycle: a → b → a"
    assert where(found[0]) == (7, 6)


def test_definition_longer_cycle_names_every_member(tmp_path):
    (diagnostic,) = errors(tmp_path, with_definitions("a: b", "b: c", "c: a", "d: a"))
    assert diagnostic.code == "E304"
    assert diagnostic.message == "definitions form a cycle: a → b → c → a"


def test_definition_self_cycle_reports_e304(tmp_path):
    (diagnostic,) = errors(tmp_path, with_definitions("a: a * 2"))
    assert diagnostic.code == "E304"
    assert diagnostic.message == "definitions form a cycle: a → a"
    assert where(diagnostic) == (6, 6)


def test_definition_cycle_through_position_variable_reports_e304(tmp_path):
    text = with_definitions("total: sum(p.total for p in account.positions)")
    assert codes(tmp_path, text) == ["E304"]


def test_definition_order_in_file_does_not_matter(tmp_path):
    policy = load(tmp_path, with_definitions("b: a * 2", "a: position.size"))
    assert evaluate(policy, "b", size=3) == 6


def test_definition_unknown_name_plain_scalar_located_in_yaml(tmp_path):
    (diagnostic,) = errors(tmp_path, with_definitions("a: position.size + notinal"))
    assert diagnostic.code == "E300"
    assert diagnostic.message == "unknown name 'notinal'"
    assert where(diagnostic) == (6, 22)
    assert diagnostic.span is not None and diagnostic.span.end_column == 29


def test_definition_unknown_name_did_you_mean(tmp_path):
    (diagnostic,) = errors(tmp_path, with_definitions("notional: position.size", "b: notinal"))
    assert diagnostic.hint == "did you mean 'notional'?"


def test_definition_unknown_field_double_quoted_scalar_located_in_yaml(tmp_path):
    (diagnostic,) = errors(tmp_path, with_definitions('a: "position.sise * 2"'))
    assert diagnostic.code == "E301"
    assert where(diagnostic) == (6, 16)
    assert diagnostic.hint == "did you mean 'size' or 'side'?"


def test_definition_unknown_field_single_quoted_scalar_located_in_yaml(tmp_path):
    (diagnostic,) = errors(tmp_path, with_definitions("a: 'position.sise'"))
    assert where(diagnostic) == (6, 16)


def test_definition_unknown_name_literal_block_line_two_located_in_yaml(tmp_path):
    text = with_definitions(
        "a:",
        "  expr: |",
        "    position.size",
        "      + notinal",
        "  assumption: test",
    )
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E300"
    assert where(diagnostic) == (9, 11)


def test_definition_syntax_error_located_in_yaml(tmp_path):
    (diagnostic,) = errors(tmp_path, with_definitions("a: position.size = 2"))
    assert diagnostic.code == "E200"
    assert where(diagnostic) == (6, 20)
    assert diagnostic.hint == "use '==' to compare values"


def test_definition_three_mistakes_three_diagnostics_sorted_by_line(tmp_path):
    text = with_definitions(
        "c: position.sise",
        "a: unknown_thing",
        "b: max(1, ",
    )
    found = errors(tmp_path, text)  # the syntax error is found first, in the parsing pass
    assert [d.code for d in found] == ["E301", "E300", "E200"]
    assert [where(d)[0] for d in found] == [6, 7, 8]


def test_definition_error_not_repeated_in_dependents(tmp_path):
    text = with_definitions("a: position.sise", "b: a * 2", "c: b + a")
    assert codes(tmp_path, text) == ["E301"]


def test_definition_type_error_reports_e303(tmp_path):
    (diagnostic,) = errors(tmp_path, with_definitions("a: position.side + 1"))
    assert diagnostic.code == "E303"


def test_definition_enum_value_typo_reports_e307(tmp_path):
    (diagnostic,) = errors(tmp_path, with_definitions("a: 'position.side == \"lon\"'"))
    assert diagnostic.code == "E307"
    assert diagnostic.hint == 'did you mean "long"?'


def test_trigger_must_be_boolean_e303(tmp_path):
    text = with_definitions("a: position.size") + "liquidation:\n  trigger: a + 1\n"
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E303"
    assert "the liquidation trigger must be boolean" in diagnostic.message
    assert where(diagnostic) == (8, 12)


def test_definition_object_form_keeps_documentation(tmp_path):
    text = with_definitions(
        "a:",
        "  expr: position.size",
        "  description: the size",
        "  unit: contracts",
    )
    definition = load(tmp_path, text).definitions["a"]
    assert (definition.description, definition.unit) == ("the size", "contracts")
    assert where_span(definition.span) == (6, 3)


def where_span(span: Any) -> tuple[int, int]:
    return span.line, span.column


# --- warnings ---------------------------------------------------------------------------------


def test_warning_table_without_citation_w001(tmp_path):
    text = table_policy(["{min_notional: 0, a: 1}"]).replace("    assumption: test numbers\n", "")
    policy = load(tmp_path, text)
    assert [(d.code, d.severity) for d in policy.warnings] == [("W001", "warning")]
    assert where(policy.warnings[0]) == (4, 3)


def test_warning_definition_numbers_without_citation_w002(tmp_path):
    text = with_definitions("a: position.size * 0.004", "b: position.size * 2 - 1")
    policy = load(tmp_path, text)
    assert [d.code for d in policy.warnings] == ["W002", "W002"]
    assert where(policy.warnings[0]) == (6, 3)


def test_warning_definition_with_only_zero_and_one_no_warning(tmp_path):
    policy = load(tmp_path, with_definitions("a: if position.size > 0 then 1 else -1"))
    assert policy.warnings == ()


def test_warning_definition_with_assumption_no_warning(tmp_path):
    text = with_definitions("a:", "  expr: position.size * 0.004", "  assumption: round number")
    assert load(tmp_path, text).warnings == ()


def test_warning_market_without_citation_w003(tmp_path):
    text = with_definitions().replace(", assumption: test numbers}", "}")
    policy = load(tmp_path, text)
    assert [d.code for d in policy.warnings] == ["W003"]


def test_warning_does_not_stop_loading_and_errors_do(tmp_path):
    policy, diagnostics = check_policy(
        write(tmp_path, with_definitions("a: position.size * 3", "b: nope"))
    )
    assert policy is None
    assert sorted(d.code for d in diagnostics) == ["E300", "W002"]


# --- examples ---------------------------------------------------------------------------------


EXAMPLE = """\
id: examples
title: Examples
markets:
  {market}
definitions:
  notional: position.size * market.mark_price
liquidation:
  trigger: notional > account.wallet_balance
examples:
  - name: one
    account:
      wallet_balance: 100
      positions:
        - {{symbol: {symbol}, side: {side}, size: 1, entry_price: 10,
           margin_mode: cross, leverage: 5}}
      market: {{BTCUSDT: {{mark_price: 10}}}}
    expect:
      definitions: {{{expected}: 10}}
      trigger: false
"""


def example(symbol: str = "BTCUSDT", side: str = "long", expected: str = "notional") -> str:
    return EXAMPLE.format(market=MARKET, symbol=symbol, side=side, expected=expected)


def test_example_valid_is_kept_with_its_expectations(tmp_path):
    (kept,) = load(tmp_path, example()).examples
    assert kept.name == "one"
    assert kept.expect == {"definitions": {"notional": Decimal(10)}, "trigger": False}


def test_example_unknown_symbol_reports_e410(tmp_path):
    (diagnostic,) = errors(tmp_path, example(symbol="BTCUSD"))
    assert diagnostic.code == "E410"
    assert diagnostic.hint == "did you mean 'BTCUSDT'?"
    assert where(diagnostic) == (14, 20)


def test_example_unknown_symbol_field_reports_e410(tmp_path):
    text = example().replace("    expect:\n", "    symbol: ETHUSDT\n    expect:\n")
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E410"
    assert where(diagnostic) == (17, 13)


def test_example_unknown_definition_in_expect_reports_e300(tmp_path):
    (diagnostic,) = errors(tmp_path, example(expected="notionl"))
    assert diagnostic.code == "E300"
    assert diagnostic.message == "unknown definition 'notionl'"
    assert diagnostic.hint == "did you mean 'notional'?"
    assert where(diagnostic) == (18, 21)


def test_example_account_schema_error_located_inside_example(tmp_path):
    (diagnostic,) = errors(tmp_path, example(side="lon"))
    assert diagnostic.code == "E104"
    assert where(diagnostic) == (14, 35)
    assert diagnostic.hint == "did you mean 'long'?"


def test_example_account_missing_field_located_at_position(tmp_path):
    (diagnostic,) = errors(tmp_path, example().replace(", leverage: 5", ""))
    assert diagnostic.code == "E101"
    assert "'leverage'" in diagnostic.message
    assert where(diagnostic) == (14, 11)


def test_example_negative_size_says_expected_bound(tmp_path):
    (diagnostic,) = errors(tmp_path, example().replace("size: 1,", "size: -1,"))
    assert diagnostic.code == "E104"
    assert diagnostic.message == "-1 is out of range in positions[0].size; expected at least 0"


def test_example_expects_trigger_without_trigger_reports_e411(tmp_path):
    text = example().replace("liquidation:\n  trigger: notional > account.wallet_balance\n", "")
    assert codes(tmp_path, text) == ["E411"]


# --- sources ----------------------------------------------------------------------------------


SOURCES = """\
id: sources
title: Sources
sources:
  - {id: doc, url: https://example.com/a, title: A, retrieved: 2024-01-01}
  - {id: doc, url: https://example.com/b, title: B, retrieved: 2024-01-02}
  - {url: https://example.com/c, title: C, retrieved: 2024-01-03}
"""


def test_source_duplicate_id_reports_e408(tmp_path):
    (diagnostic,) = errors(tmp_path, SOURCES)
    assert diagnostic.code == "E408"
    assert diagnostic.message == "source id 'doc' is used twice"
    assert where(diagnostic) == (5, 10)


def test_source_unknown_cited_reports_e409_with_hint(tmp_path):
    text = SOURCES.replace(
        "{id: doc, url: https://example.com/b", "{id: other, url: https://example.com/b"
    )
    text += f"markets:\n  {MARKET.replace('assumption: test numbers', 'source: dco')}\n"
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E409"
    assert diagnostic.message == "market 'BTCUSDT' cites unknown source 'dco'"
    assert diagnostic.hint == "did you mean 'doc'?"


def test_source_cited_by_definition_and_table_loads(tmp_path):
    text = SOURCES.replace(
        "{id: doc, url: https://example.com/b", "{id: other, url: https://example.com/b"
    )
    text += f"markets:\n  {MARKET}\n" + (
        "tables:\n  t:\n    source: other\n    keys: [{name: x, kind: interval}]\n"
        "    rows: [{min_x: 0, rate: 0.1}]\n"
        "definitions:\n  a:\n    expr: position.size * 0.5\n    source: doc\n"
    )
    policy = load(tmp_path, text)
    assert [s.id for s in policy.sources] == ["doc", "other", None]
    assert policy.warnings == ()


def test_source_missing_retrieved_date_reports_e101(tmp_path):
    text = "id: s\ntitle: S\nsources:\n  - {url: https://example.com, title: T}\n"
    (diagnostic,) = errors(tmp_path, text)
    assert diagnostic.code == "E101"
    assert "'retrieved'" in diagnostic.message


# --- hostile input ----------------------------------------------------------------------------


def test_hostile_100kb_expression_rejected_quickly_with_e201(tmp_path):
    expression = " + ".join(["position.size"] * 6_500)
    assert len(expression) > 100_000
    started = time.perf_counter()
    found = errors(tmp_path, with_definitions(f"big: {expression}"))
    assert time.perf_counter() - started < 2.0
    assert [d.code for d in found] == ["E201"]
    assert where(found[0]) == (6, 8)


def test_hostile_deep_parentheses_rejected_quickly_with_e202(tmp_path):
    expression = "(" * 2_000 + "1" + ")" * 2_000
    started = time.perf_counter()
    assert codes(tmp_path, with_definitions(f"deep: {expression}")) == ["E202"]
    assert time.perf_counter() - started < 2.0


def test_hostile_alias_bomb_rejected_quickly(tmp_path):
    lines = ["id: bomb", "title: Bomb", "a: &a [" + ",".join(['"lol"'] * 9) + "]"]
    for level in range(1, 10):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    started = time.perf_counter()
    found = errors(tmp_path, "\n".join(lines) + "\n")
    assert time.perf_counter() - started < 2.0
    assert {d.code for d in found} == {"E012"}


def test_hostile_huge_exponent_in_table_rejected(tmp_path):
    text = table_policy(["{min_notional: 0, a: 1e999999999}"])
    started = time.perf_counter()
    (diagnostic,) = errors(tmp_path, text)
    assert time.perf_counter() - started < 2.0
    assert diagnostic.code == "E015"
    assert where(diagnostic) == (8, 30)
