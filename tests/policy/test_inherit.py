"""`extends`: key-by-key merging of a policy over its parent, and where diagnostics point."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import PolicyError
from engine.policy.inherit import MAX_EXTENDS_DEPTH, merge
from engine.policy.load import load_policy
from engine.policy.model import Policy
from engine.policy.packaged import policies_dir
from engine.source import Diagnostic

PARENT = """\
id: parent
title: Parent
description: The parent policy.
sources:
  - {id: doc, url: https://example.com/doc, title: Doc, retrieved: 2024-01-01}
markets:
  BTCUSDT: {kind: linear, contract_size: 1, tick_size: 0.1, source: doc}
  ETHUSDT: {kind: linear, contract_size: 1, tick_size: 0.01, source: doc}
definitions:
  notional: position.size * market.mark_price
  margin:
    expr: notional / position.leverage
    description: initial margin
    unit: USDT
liquidation:
  trigger: margin > account.wallet_balance
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def child(tmp_path: Path, text: str, parent: str = PARENT) -> Policy:
    write(tmp_path, "parent.yaml", parent)
    return load_policy(write(tmp_path, "child.yaml", "extends: parent.yaml\n" + text))


def child_errors(tmp_path: Path, text: str, parent: str = PARENT) -> tuple[Diagnostic, ...]:
    with pytest.raises(PolicyError) as info:
        child(tmp_path, text, parent)
    return info.value.diagnostics


def where(diagnostic: Diagnostic) -> tuple[str, int, int]:
    assert diagnostic.span is not None
    return Path(diagnostic.span.path).name, diagnostic.span.line, diagnostic.span.column


# --- merging ----------------------------------------------------------------------------------


def test_merge_mappings_merge_recursively():
    merged = merge({"a": {"x": 1, "y": 2}}, {"a": {"y": 3, "z": 4}})
    assert merged == {"a": {"x": 1, "y": 3, "z": 4}}


def test_merge_lists_replaced_whole():
    assert merge({"a": [1, 2, 3]}, {"a": [4]}) == {"a": [4]}


def test_merge_null_removes_key():
    assert merge({"a": 1, "b": {"c": 2, "d": 3}}, {"a": None, "b": {"c": None}}) == {"b": {"d": 3}}


def test_merge_null_for_absent_key_is_ignored():
    assert merge({"a": 1}, {"b": None}) == {"a": 1}


def test_merge_scalar_replaces_mapping_and_back():
    assert merge({"a": {"x": 1}}, {"a": "text"}) == {"a": "text"}
    assert merge({"a": "text"}, {"a": {"x": 1}}) == {"a": {"x": 1}}


def test_merge_inputs_left_unchanged():
    parent, override = {"a": {"x": 1}}, {"a": {"y": 2}}
    merge(parent, override)
    assert parent == {"a": {"x": 1}}
    assert override == {"a": {"y": 2}}


# --- policies ---------------------------------------------------------------------------------


def test_extends_child_inherits_everything_it_does_not_override(tmp_path):
    policy = child(tmp_path, "id: child\ntitle: Child\n")
    assert (policy.id, policy.title) == ("child", "Child")
    assert policy.description == "The parent policy."
    assert set(policy.markets) == {"BTCUSDT", "ETHUSDT"}
    assert set(policy.definitions) == {"notional", "margin"}
    assert policy.extends == "parent.yaml"
    assert [Path(p).name for p in policy.chain] == ["child.yaml", "parent.yaml"]


def test_extends_child_overrides_scalar(tmp_path):
    policy = child(tmp_path, "id: child\ntitle: Child\nmarkets:\n  BTCUSDT: {tick_size: 0.5}\n")
    market = policy.markets["BTCUSDT"]
    assert market.tick_size == Decimal("0.5")
    assert (market.kind, market.contract_size) == ("linear", Decimal(1))  # merged, not replaced


def test_extends_child_overrides_definition_expression_keeps_documentation(tmp_path):
    text = "id: child\ntitle: Child\ndefinitions:\n  margin: {expr: notional / 10}\n"
    policy = child(tmp_path, text.replace("10}", "10, assumption: flat 10x}"))
    margin = policy.definitions["margin"]
    assert margin.description == "initial margin"
    assert margin.assumption == "flat 10x"


def test_extends_child_adds_definition_using_parent_definitions(tmp_path):
    text = "id: child\ntitle: Child\ndefinitions:\n  doubled: {expr: margin * 2, assumption: x}\n"
    policy = child(tmp_path, text)
    assert set(policy.definitions) == {"notional", "margin", "doubled"}
    assert policy.warnings == ()


def test_extends_child_adding_a_source_keeps_the_parents(tmp_path):
    """Issue 11: a child adding one source must not repeat its parent's (sources merge by id)."""
    text = """\
    id: child
    title: Child
    sources:
      - {id: other, url: https://example.com/other, title: Other, retrieved: 2024-02-02}
    markets:
      BTCUSDT: {source: other}
    """
    policy = child(tmp_path, textwrap.dedent(text))
    assert [s.id for s in policy.sources] == ["doc", "other"]
    assert policy.markets["ETHUSDT"].symbol == "ETHUSDT"  # still cites the parent's `doc`


def test_extends_child_source_with_a_parents_id_replaces_it(tmp_path):
    text = """\
    id: child
    title: Child
    sources:
      - {id: doc, url: https://example.com/v2, title: Doc v2, retrieved: 2025-01-01}
    """
    policy = child(tmp_path, textwrap.dedent(text))
    assert [(s.id, s.title) for s in policy.sources] == [("doc", "Doc v2")]


def test_extends_child_replaces_other_lists_whole(tmp_path):
    parent = PARENT + "charges:\n  - {name: a, amount: '1', assumption: x}\n"
    text = "id: child\ntitle: Child\ncharges:\n  - {name: b, amount: '2', assumption: y}\n"
    policy = child(tmp_path, text, parent)
    assert [c["name"] for c in policy.data["charges"]] == ["b"]


def test_extends_null_removes_key(tmp_path):
    text = "id: child\ntitle: Child\ndescription: null\nmarkets:\n  ETHUSDT: null\n"
    policy = child(tmp_path, text)
    assert policy.description is None
    assert set(policy.markets) == {"BTCUSDT"}
    assert "description" not in policy.data


def test_extends_null_removes_definition(tmp_path):
    text = "id: child\ntitle: Child\nliquidation: null\ndefinitions:\n  margin: null\n"
    policy = child(tmp_path, text)
    assert set(policy.definitions) == {"notional"}
    assert "liquidation.trigger" not in policy.expressions


def test_extends_removing_used_definition_reports_e300_in_parent(tmp_path):
    found = child_errors(tmp_path, "id: child\ntitle: Child\ndefinitions:\n  notional: null\n")
    assert [d.code for d in found] == ["E300"]
    assert where(found[0]) == ("parent.yaml", 12, 11)


def test_extends_child_and_parent_digests_differ(tmp_path):
    parent = load_policy(write(tmp_path, "parent.yaml", PARENT))
    assert child(tmp_path, "id: child\ntitle: Child\n").digest != parent.digest


def test_extends_relative_path_in_a_folder_below(tmp_path):
    write(tmp_path / "base", "parent.yaml", PARENT)
    path = write(tmp_path, "child.yaml", "extends: base/parent.yaml\nid: c\ntitle: C\n")
    assert set(load_policy(path).definitions) == {"notional", "margin"}


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        # issue 14, cause 5: any file on the machine was accepted as a parent
        ("../../../../etc/passwd", "is neither a policy id nor a .yaml file"),
        ("../base/parent.yaml", "is outside the folder of the policy being loaded"),
        ("/etc/parent.yaml", "is outside the folder of the policy being loaded"),
        ("PARENT", "is neither a policy id nor a .yaml file"),
    ],
)
def test_extends_refuses_files_outside_the_policy_folder(tmp_path, reference, message):
    write(tmp_path / "base", "parent.yaml", PARENT)
    path = write(tmp_path / "mine", "child.yaml", f"extends: {reference}\nid: c\ntitle: C\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "E431"
    assert message in diagnostic.message
    assert (diagnostic.span.line, diagnostic.span.column) == (1, 10)


def test_extends_refuses_a_link_leaving_the_folder(tmp_path):
    """A symbolic link inside the folder does not make a file outside it a parent."""
    write(tmp_path / "base", "parent.yaml", PARENT)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "parent.yaml").symlink_to(tmp_path / "base" / "parent.yaml")
    path = write(tmp_path / "mine", "child.yaml", "extends: parent.yaml\nid: c\ntitle: C\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert [d.code for d in caught.value.diagnostics] == ["E431"]


@pytest.mark.parametrize("parent", ["- a\n- b\n", "just text\n", "", "# only a comment\n"])
def test_extends_refuses_a_parent_that_is_not_a_mapping(tmp_path, parent):
    """Issue 14, cause 5: such a parent was silently dropped and the child loaded alone."""
    write(tmp_path, "parent.yaml", parent)
    path = write(tmp_path, "child.yaml", "extends: parent.yaml\nid: c\ntitle: C\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "E432"
    assert diagnostic.span is not None and diagnostic.span.path == str(path)


def test_extends_grandparent_chain_merges_in_order(tmp_path):
    write(tmp_path, "parent.yaml", PARENT)
    write(
        tmp_path,
        "middle.yaml",
        "extends: parent.yaml\nid: middle\ntitle: Middle\n"
        "markets:\n  BTCUSDT: {tick_size: 1}\n  ETHUSDT: {tick_size: 2}\n",
    )
    path = write(
        tmp_path,
        "child.yaml",
        "extends: middle.yaml\nid: child\ntitle: Child\nmarkets:\n  BTCUSDT: {tick_size: 3}\n",
    )
    policy = load_policy(path)
    assert policy.markets["BTCUSDT"].tick_size == 3
    assert policy.markets["ETHUSDT"].tick_size == 2
    assert policy.extends == "middle.yaml"
    assert [Path(p).name for p in policy.chain] == ["child.yaml", "middle.yaml", "parent.yaml"]


# --- where diagnostics point ------------------------------------------------------------------


def test_extends_error_in_parent_definition_points_into_parent(tmp_path):
    broken = PARENT.replace("notional / position.leverage", "notional / position.leverag")
    found = child_errors(tmp_path, "id: child\ntitle: Child\n", parent=broken)
    assert [d.code for d in found] == ["E301"]
    assert where(found[0]) == ("parent.yaml", 12, 31)
    assert found[0].span is not None
    assert found[0].span.source.line(12).strip() == "expr: notional / position.leverag"


def test_extends_error_in_parent_schema_points_into_parent(tmp_path):
    broken = PARENT.replace(
        "kind: linear, contract_size: 1, tick_size: 0.01",
        "kind: liner, contract_size: 1, tick_size: 0.01",
    )
    found = child_errors(tmp_path, "id: child\ntitle: Child\n", parent=broken)
    assert [d.code for d in found] == ["E104"]
    assert where(found[0]) == ("parent.yaml", 8, 19)


def test_extends_error_in_child_points_into_child(tmp_path):
    found = child_errors(tmp_path, "id: child\ntitle: Child\ndefinitions:\n  x: notinal\n")
    assert [d.code for d in found] == ["E300"]
    assert where(found[0]) == ("child.yaml", 5, 6)
    assert found[0].hint == "did you mean 'notional'?"


def test_extends_child_fixes_broken_parent_definition(tmp_path):
    broken = PARENT.replace("expr: notional / position.leverage", "expr: notional / position.lev")
    text = "id: child\ntitle: Child\ndefinitions:\n  margin: {expr: notional / position.leverage}\n"
    policy = child(tmp_path, text, parent=broken)
    assert "margin" in policy.definitions


def test_extends_child_override_error_points_into_child(tmp_path):
    text = "id: child\ntitle: Child\ndefinitions:\n  margin: {expr: notional / position.lev}\n"
    found = child_errors(tmp_path, text)
    assert [d.code for d in found] == ["E301"]
    assert where(found[0]) == ("child.yaml", 5, 38)


# --- resolving parents ------------------------------------------------------------------------


def test_extends_shipped_policy_by_id(tmp_path):
    shipped = policies_dir() / "binance-usdm.yaml"
    path = write(
        tmp_path,
        "mine.yaml",
        "extends: binance-usdm\nid: mine\ntitle: Mine\nmarkets:\n  ETHUSDT: null\n",
    )
    policy = load_policy(path)
    assert "BTCUSDT" in policy.markets
    assert "ETHUSDT" not in policy.markets
    assert "maintenance_margin" in policy.definitions
    assert Path(policy.chain[1]).resolve() == shipped.resolve()


def test_extends_missing_parent_reports_e400_at_extends(tmp_path):
    path = write(tmp_path, "child.yaml", "id: child\ntitle: Child\nextends: no-such-policy\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "E400"
    assert diagnostic.message == "cannot find the parent policy 'no-such-policy'"
    assert where(diagnostic) == ("child.yaml", 3, 10)


def test_extends_missing_parent_path_reports_e400(tmp_path):
    path = write(tmp_path, "child.yaml", "extends: ./nothere.yaml\nid: child\ntitle: Child\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert [d.code for d in info.value.diagnostics] == ["E400"]


def test_extends_cycle_between_two_files_reports_e401(tmp_path):
    write(tmp_path, "b.yaml", "extends: a.yaml\nid: b\ntitle: B\n")
    path = write(tmp_path, "a.yaml", "extends: b.yaml\nid: a\ntitle: A\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "E401"
    assert diagnostic.message == "policies extend each other in a cycle: a.yaml → b.yaml → a.yaml"
    assert where(diagnostic) == ("b.yaml", 1, 10)


def test_extends_itself_reports_e401(tmp_path):
    path = write(tmp_path, "a.yaml", "extends: a.yaml\nid: a\ntitle: A\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert [d.code for d in info.value.diagnostics] == ["E401"]


def test_extends_too_deep_chain_reports_e401(tmp_path):
    count = MAX_EXTENDS_DEPTH + 3
    write(tmp_path, "p0.yaml", "id: p0\ntitle: P0\n")
    for index in range(1, count):
        write(tmp_path, f"p{index}.yaml", f"extends: p{index - 1}.yaml\nid: p{index}\ntitle: P\n")
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / f"p{count - 1}.yaml")
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "E401"
    assert f"more than {MAX_EXTENDS_DEPTH} levels" in diagnostic.message


def test_extends_yaml_error_in_parent_reported_in_parent(tmp_path):
    write(tmp_path, "parent.yaml", "id: parent\ntitle: [unclosed\n")
    path = write(tmp_path, "child.yaml", "extends: parent.yaml\nid: c\ntitle: C\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert {Path(d.location_path).name for d in info.value.diagnostics} == {"parent.yaml"}
