"""Value paths and the generated `extends` child: what a sweep override touches, and only that."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.policy.inherit import merge
from engine.policy.yaml_reader import read_yaml
from engine.sweep.paths import (
    DELETE,
    PathSyntaxError,
    creatable,
    matches,
    parse_path,
    pointer_text,
    rewrite,
)
from engine.sweep.yaml_text import dump_yaml

DATA: dict[str, Any] = {
    "markets": {
        "BTCUSDT": {"tiers": "btc", "parameters": {"fee": Decimal("0.003")}},
        "ETHUSDT": {"tiers": "eth", "parameters": {"fee": Decimal("0.005")}},
    },
    "tables": {
        "btc": {
            "source": "doc",
            "rows": [
                {"tier": Decimal(1), "rate": Decimal("0.004")},
                {"tier": Decimal(2), "rate": Decimal("0.005")},
            ],
        },
        "eth": {"rows": [{"tier": Decimal(1), "rate": Decimal("0.01")}]},
    },
    "waterfall": {"order": ["insurance_fund", "adl", "write_off"]},
}


def test_parse_keys_indices_wildcards_and_quoted_keys():
    path = parse_path('tables.*.rows[*].rate."odd.key"[2]')
    assert [(s.key, s.wildcard, s.in_list) for s in path.segments] == [
        ("tables", False, False),
        ("*", True, False),
        ("rows", False, False),
        ("*", True, True),
        ("rate", False, False),
        ("odd.key", False, False),
        (2, False, True),
    ]
    assert path.has_wildcard


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the path is empty"),
        ("a.", "the path ends with a dot"),
        ("a..b", "a key is missing before the dot at character 3"),
        (".a", "a key is missing before the dot at character 1"),
        ("a[x]", "unexpected '[' at character 2"),
        ("a*", "a dot is missing before character 2"),
        ("a.[1]", "a key is missing before '[' at character 3"),
    ],
)
def test_bad_paths_say_where(text: str, message: str):
    with pytest.raises(PathSyntaxError) as raised:
        parse_path(text)
    assert str(raised.value) == message


def test_wildcards_match_every_existing_value_in_document_order():
    found = matches(DATA, parse_path("tables.*.rows[*].rate"))
    assert found == [
        ("tables", "btc", "rows", 0, "rate"),
        ("tables", "btc", "rows", 1, "rate"),
        ("tables", "eth", "rows", 0, "rate"),
    ]
    assert [pointer_text(p) for p in found][1] == "tables.btc.rows[1].rate"
    assert matches(DATA, parse_path("tables.*.rows[5].rate")) == []
    assert matches(DATA, parse_path("markets.*.parameters.nope")) == []


def test_a_missing_key_can_be_created_only_without_wildcards():
    assert creatable(DATA, parse_path("markets.BTCUSDT.parameters.new")) == (
        "markets",
        "BTCUSDT",
        "parameters",
        "new",
    )
    assert creatable(DATA, parse_path("markets.*.parameters.new")) is None
    assert creatable(DATA, parse_path("waterfall.order[7]")) is None  # no list item to create


def test_a_change_to_a_mapping_key_carries_only_that_key():
    pointer = ("markets", "BTCUSDT", "parameters", "fee")
    child = rewrite(DATA, {pointer: Decimal("0.004")})
    assert child == {"markets": {"BTCUSDT": {"parameters": {"fee": Decimal("0.004")}}}}


def test_a_change_inside_a_list_carries_the_whole_list_changed():
    """`extends` replaces lists whole, so the child must hold every row, one of them changed."""
    child = rewrite(DATA, {("tables", "btc", "rows", 1, "rate"): Decimal("0.006")})
    assert child == {
        "tables": {
            "btc": {
                "rows": [
                    {"tier": Decimal(1), "rate": Decimal("0.004")},
                    {"tier": Decimal(2), "rate": Decimal("0.006")},
                ]
            }
        }
    }


def test_deleting_a_key_is_a_null_in_the_child_and_a_pop_inside_a_list():
    child = rewrite(
        DATA,
        {("tables", "btc", "source"): DELETE, ("tables", "eth", "rows", 0, "tier"): DELETE},
    )
    assert child["tables"]["btc"] == {"source": None}
    assert child["tables"]["eth"]["rows"] == [{"rate": Decimal("0.01")}]


def _apply(data: Any, changes: dict[tuple[Any, ...], Any]) -> Any:
    result = copy.deepcopy(data)
    for pointer, value in changes.items():
        node = result
        for part in pointer[:-1]:
            node = node[part]
        if value is DELETE:
            node.pop(pointer[-1])
        else:
            node[pointer[-1]] = value
    return result


LEAVES = matches(DATA, parse_path("markets.*.parameters.fee")) + matches(
    DATA, parse_path("tables.*.rows[*].*")
)


@given(
    st.dictionaries(
        st.sampled_from(LEAVES),
        st.one_of(
            st.decimals(allow_nan=False, allow_infinity=False, places=4),
            st.just(DELETE),
        ),
        max_size=5,
    )
)
def test_the_parent_merged_with_the_generated_child_is_the_changed_data(changes):
    """What `extends` makes of the child is exactly the data with the changes applied, and the
    child survives being written as YAML and read back."""
    child = rewrite(DATA, changes)
    expected = _apply(DATA, changes)
    assert merge(DATA, child) == expected
    text = dump_yaml(child) if child else "{}\n"
    assert merge(DATA, read_yaml(text, "<child>").data or {}) == expected
