"""Generated files read back as exactly the data they were written from, byte-stable."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.policy.yaml_reader import read_yaml
from engine.sweep.yaml_text import dump_yaml

numbers = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=-(10**20), max_value=10**20, places=12
)
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


@given(st.dictionaries(texts, values, min_size=1, max_size=5))
def test_any_data_round_trips_through_the_yaml_reader(data):
    text = dump_yaml(data, "a header\non two lines")
    assert read_yaml(text, "<generated>").data == data
    assert dump_yaml(data, "a header\non two lines") == text


def test_numbers_keep_their_decimal_text_and_strings_that_look_like_others_are_quoted():
    data = {
        "rate": Decimal("0.0050"),
        "big": Decimal("1E+3"),
        "word": "yes",
        "null": "null",
        "number": "12",
        "id": "binance-usdm-sweep-001",
        "expr": "margin_ratio >= 100%",
    }
    text = dump_yaml(data)
    assert text == (
        "rate: 0.0050\n"
        "big: 1E+3\n"
        'word: "yes"\n'
        '"null": "null"\n'
        'number: "12"\n'
        "id: binance-usdm-sweep-001\n"
        'expr: "margin_ratio >= 100%"\n'
    )
    assert read_yaml(text, "<t>").data == data


def test_multi_line_expressions_are_literal_blocks_so_errors_point_into_them():
    data = {"definitions": {"x": {"expr": "if a\nthen 1\nelse 2\n"}}, "rows": [{"a": "b\nc"}]}
    text = dump_yaml(data)
    assert "    expr: |\n      if a\n      then 1\n      else 2\n" in text
    assert "  - a: |-\n      b\n      c\n" in text
    assert read_yaml(text, "<t>").data == data
