"""Tests for the safe YAML reader: data, exact decimals, rejected YAML features, limits, spans."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import PolicyError
from engine.policy.yaml_reader import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    Pointer,
    YamlDocument,
    read_yaml,
    read_yaml_file,
)
from engine.source import Diagnostic, Span


def errors_of(text: str) -> tuple[Diagnostic, ...]:
    with pytest.raises(PolicyError) as info:
        read_yaml(text, "p.yaml")
    return info.value.diagnostics


def codes_of(text: str) -> list[str]:
    return [d.code for d in errors_of(text)]


def where(diagnostic: Diagnostic) -> tuple[int, int]:
    assert diagnostic.span is not None
    return diagnostic.span.line, diagnostic.span.column


def data_of(text: str) -> object:
    return read_yaml(text, "p.yaml").data


def assert_fast_error(text: str, code: str) -> None:
    started = time.perf_counter()
    with pytest.raises(PolicyError) as info:
        read_yaml(text, "p.yaml")
    assert time.perf_counter() - started < 1.0
    assert [d.code for d in info.value.diagnostics] == [code]


# --- data and scalar resolution ---------------------------------------------------------------


def test_read_yaml_nested_mapping_builds_plain_data() -> None:
    text = "name: binance\ntiers:\n  - {max: 50000, rate: 0.004}\n  - {max: 250000}\n"
    assert data_of(text) == {
        "name": "binance",
        "tiers": [
            {"max": Decimal("50000"), "rate": Decimal("0.004")},
            {"max": Decimal("250000")},
        ],
    }


def test_read_yaml_decimal_scalar_is_exact_decimal() -> None:
    value = data_of("rate: 0.1\n")
    assert value == {"rate": Decimal("0.1")}
    assert isinstance(value, dict)
    assert str(value["rate"]) == "0.1"
    assert not isinstance(value["rate"], float)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", Decimal(12)),
        ("-0.5", Decimal("-0.5")),
        ("+3", Decimal(3)),
        ("1_000", Decimal(1000)),
        ("1e6", Decimal("1e6")),
        ("2.5E-3", Decimal("0.0025")),
    ],
)
def test_read_yaml_plain_number_becomes_decimal(text: str, expected: Decimal) -> None:
    value = data_of(f"v: {text}\n")
    assert isinstance(value, dict)
    assert isinstance(value["v"], Decimal)
    assert value["v"] == expected


@pytest.mark.parametrize(
    "text", ["yes", "no", "on", "off", ".inf", ".nan", "0x1f", "0o17", ".5", "1.", "2024-10-24",
             "12:30", "1,000", "y", "n"],
)  # fmt: skip
def test_read_yaml_non_core_plain_scalar_stays_string(text: str) -> None:
    assert data_of(f"v: {text}\n") == {"v": text}


@pytest.mark.parametrize("text", ["null", "Null", "NULL", "~", ""])
def test_read_yaml_null_spellings_become_none(text: str) -> None:
    assert data_of(f"v: {text}\n") == {"v": None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False),
     ("FALSE", False)],
)  # fmt: skip
def test_read_yaml_bool_spellings_become_bool(text: str, expected: bool) -> None:
    assert data_of(f"v: {text}\n") == {"v": expected}


def test_read_yaml_quoted_and_block_scalars_stay_strings() -> None:
    text = "a: '12'\nb: \"true\"\nc: 'null'\nd: |\n  0.5\ne: >-\n  yes\n"
    assert data_of(text) == {"a": "12", "b": "true", "c": "null", "d": "0.5\n", "e": "yes"}


def test_read_yaml_number_and_bool_keys_stay_key_text() -> None:
    assert data_of("1: a\ntrue: b\nnull: c\n0.10: d\n") == {
        "1": "a",
        "true": "b",
        "null": "c",
        "0.10": "d",
    }


def test_read_yaml_huge_exponent_reports_e015() -> None:
    (diagnostic,) = errors_of("v: 1e999999999\n")
    assert diagnostic.code == "E015"
    assert "exponent" in diagnostic.message
    assert where(diagnostic) == (1, 4)


def test_read_yaml_too_many_digits_reports_e015() -> None:
    (diagnostic,) = errors_of("v: " + "1" * 61 + "\n")
    assert diagnostic.code == "E015"
    assert "61 digits" in diagnostic.message


def test_read_yaml_empty_text_gives_none() -> None:
    assert data_of("") is None


def test_read_yaml_comment_only_gives_none() -> None:
    assert data_of("# nothing here\n\n") is None


def test_read_yaml_scalar_root_is_allowed() -> None:
    assert data_of("42\n") == Decimal(42)


# --- rejected features ------------------------------------------------------------------------


def test_read_yaml_duplicate_key_reports_second_key_with_first_line() -> None:
    (diagnostic,) = errors_of("a: 1\nb: 2\na: 3\n")
    assert diagnostic.code == "E011"
    assert diagnostic.message == "duplicate key 'a' (first defined at line 1)"
    assert where(diagnostic) == (3, 1)


def test_read_yaml_duplicate_key_quoted_and_plain_are_the_same_key() -> None:
    (diagnostic,) = errors_of("'1': a\n1: b\n")
    assert diagnostic.code == "E011"
    assert where(diagnostic) == (2, 1)


def test_read_yaml_duplicate_keys_in_nested_mappings_all_reported() -> None:
    diagnostics = errors_of("a:\n  x: 1\n  x: 2\nb: [{y: 1, y: 2}]\n")
    assert [(d.code, where(d)) for d in diagnostics] == [("E011", (3, 3)), ("E011", (4, 12))]


def test_read_yaml_anchor_and_alias_report_e012_each() -> None:
    diagnostics = errors_of("a: &x 1\nb: *x\n")
    assert [(d.code, where(d)) for d in diagnostics] == [("E012", (1, 4)), ("E012", (2, 4))]
    assert diagnostics[0].message == "anchors, aliases and merge keys are not allowed"
    assert diagnostics[0].hint == "write the value out in full; use `extends` to reuse a policy"


def test_read_yaml_merge_key_reports_e012() -> None:
    (diagnostic,) = errors_of("a:\n  <<: {b: 1}\n  c: 2\n")
    assert diagnostic.code == "E012"
    assert where(diagnostic) == (2, 3)


def test_read_yaml_quoted_merge_key_is_an_ordinary_key() -> None:
    assert data_of("'<<': 1\n") == {"<<": Decimal(1)}


def test_read_yaml_alias_bomb_rejected_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for index in range(1, 10):
        name, previous = chr(97 + index), chr(96 + index)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    started = time.perf_counter()
    with pytest.raises(PolicyError) as info:
        read_yaml("\n".join(lines) + "\n", "bomb.yaml")
    assert time.perf_counter() - started < 1.0
    assert {d.code for d in info.value.diagnostics} == {"E012"}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("v: !!python/object:os.system x\n", "!!python/object:os.system"),
        ("v: !!str 12\n", "!!str"),
        ("v: !foo [1]\n", "!foo"),
        ("v: !!map {a: 1}\n", "!!map"),
    ],
)
def test_read_yaml_explicit_tag_reports_e013(text: str, shown: str) -> None:
    (diagnostic,) = errors_of(text)
    assert diagnostic.code == "E013"
    assert diagnostic.message == f"tags are not allowed (found '{shown}')"
    assert where(diagnostic) == (1, 4)


def test_read_yaml_non_scalar_key_reports_e016() -> None:
    diagnostics = errors_of("? [a, b]\n: 1\n? {c: 1}\n: 2\nok: 3\n")
    assert [(d.code, where(d)) for d in diagnostics] == [("E016", (1, 3)), ("E016", (3, 3))]


def test_read_yaml_second_document_reports_e017() -> None:
    (diagnostic,) = errors_of("a: 1\n---\nb: 2\n")
    assert diagnostic.code == "E017"
    assert where(diagnostic) == (2, 1)


def test_read_yaml_several_problems_all_reported_in_order() -> None:
    text = "a: !!str x\nb: &y 1\nc: 1\nc: 2\nd: 1e999\n"
    assert codes_of(text) == ["E013", "E012", "E011", "E015"]


# --- syntax errors ----------------------------------------------------------------------------


def test_read_yaml_syntax_error_reports_e010_at_problem_mark() -> None:
    (diagnostic,) = errors_of("a: b: c\n")
    assert diagnostic.code == "E010"
    assert diagnostic.message == "mapping values are not allowed here"
    assert where(diagnostic) == (1, 5)


def test_read_yaml_syntax_error_context_goes_in_hint() -> None:
    (diagnostic,) = errors_of("a:\n  - x\n  y: 1\n")
    assert diagnostic.code == "E010"
    assert where(diagnostic) == (3, 3)
    assert diagnostic.hint is not None
    assert "while parsing a block collection" in diagnostic.hint
    assert "line 2, column 3" in diagnostic.hint


def test_read_yaml_unclosed_flow_sequence_reports_e010() -> None:
    assert codes_of("a: [1, 2\n") == ["E010"]


def test_read_yaml_control_character_reports_e010() -> None:
    (diagnostic,) = errors_of("a: b\x07\n")
    assert diagnostic.code == "E010"
    assert where(diagnostic) == (1, 5)


def test_read_yaml_problems_before_syntax_error_are_kept() -> None:
    assert codes_of("a: &x 1\nb: [\n") == ["E012", "E010"]


# --- depth ------------------------------------------------------------------------------------


def test_read_yaml_flow_nesting_at_limit_is_accepted() -> None:
    value = data_of("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    for _ in range(MAX_DEPTH - 1):
        assert isinstance(value, list)
        value = value[0]
    assert value == []


def test_read_yaml_flow_nesting_over_limit_reports_e014_at_bracket() -> None:
    (diagnostic,) = errors_of("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert diagnostic.code == "E014"
    assert diagnostic.message == "nesting deeper than 64 levels"
    assert where(diagnostic) == (1, MAX_DEPTH + 1)


def test_read_yaml_block_nesting_over_limit_reports_e014() -> None:
    text = "".join(" " * level + "a:\n" for level in range(MAX_DEPTH + 1)) + " " * 65 + "b: 1\n"
    (diagnostic,) = errors_of(text)
    assert diagnostic.code == "E014"
    assert where(diagnostic) == (MAX_DEPTH + 1, MAX_DEPTH + 1)


def test_read_yaml_mixed_block_and_flow_depth_counts_together() -> None:
    text = "a:\n  b: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert codes_of(text) == ["E014"]


def test_read_yaml_ten_thousand_deep_flow_sequence_fails_fast() -> None:
    assert_fast_error("[" * 10_000, "E014")


def test_read_yaml_ten_thousand_deep_flow_mapping_fails_fast() -> None:
    assert_fast_error("{a: " * 10_000, "E014")


def test_read_yaml_ten_thousand_deep_block_sequence_fails_fast() -> None:
    assert_fast_error("- " * 10_000 + "x\n", "E014")


def test_read_yaml_thousand_deep_block_mapping_fails_fast() -> None:
    # ~500 KB: as deep as an indented block mapping gets under the size cap
    assert_fast_error("".join(" " * level + "a:\n" for level in range(1_000)), "E014")


def test_read_yaml_ten_thousand_deep_block_mapping_fails_fast() -> None:
    # 10,000 indented levels need ~50 MB of indentation, so the size cap answers first
    assert_fast_error("".join(" " * level + "a:\n" for level in range(10_000)), "E002")


# --- size and files ---------------------------------------------------------------------------


def test_read_yaml_text_over_size_cap_reports_e002() -> None:
    (diagnostic,) = errors_of("a: " + "x" * MAX_FILE_BYTES + "\n")
    assert diagnostic.code == "E002"
    assert diagnostic.message == f"file is {MAX_FILE_BYTES + 4} bytes, the limit is 1048576"


def test_read_yaml_file_over_size_cap_reports_e002(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: " + b"x" * MAX_FILE_BYTES + b"\n")
    with pytest.raises(PolicyError) as info:
        read_yaml_file(path)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "E002"
    assert diagnostic.message == f"file is {MAX_FILE_BYTES + 4} bytes, the limit is 1048576"
    assert diagnostic.location_path == str(path)


def test_read_yaml_file_oversized_invalid_utf8_reports_size_not_encoding(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"\xff" * (MAX_FILE_BYTES + 1))
    with pytest.raises(PolicyError) as info:
        read_yaml_file(path)
    assert [d.code for d in info.value.diagnostics] == ["E002"]


def test_read_yaml_file_at_size_cap_is_read(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_bytes(b"a: " + b"x" * (MAX_FILE_BYTES - 4) + b"\n")
    document = read_yaml_file(path)
    assert isinstance(document.data, dict)


def test_read_yaml_file_missing_reports_e001(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(PolicyError) as info:
        read_yaml_file(path)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "E001"
    assert diagnostic.location_path == str(path)


def test_read_yaml_file_invalid_utf8_reports_e001_with_location(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"a: 1\nname: caf\xe9\n")
    with pytest.raises(PolicyError) as info:
        read_yaml_file(path)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "E001"
    assert "UTF-8" in diagnostic.message
    assert where(diagnostic) == (2, 10)


def test_read_yaml_file_valid_file_returns_document(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("\ufeffrate: 0.25\nname: café\n", encoding="utf-8")
    document = read_yaml_file(str(path))
    assert document.data == {"rate": Decimal("0.25"), "name": "café"}
    assert document.source.path == str(path)
    assert document.spans.key_span(("rate",)) is not None


def test_read_yaml_path_is_used_in_diagnostics() -> None:
    with pytest.raises(PolicyError) as info:
        read_yaml("a: 1\na: 2\n", "policies/x.yaml")
    assert info.value.diagnostics[0].location_path == "policies/x.yaml"
    assert "policies/x.yaml:2:1" in str(info.value)


# --- spans ------------------------------------------------------------------------------------

SPAN_TEXT = """\
exchange: okx
tiers:
  - max: 50000
    rate: 0.004
  - {max: 250000, rate: 0.005}
expr: |
  max(maintenance,
      notional * rate)
quoted: 'a + b'
dquoted: "c * d"
plain: e - f
folded: >
  g +
  h
multi: one
  two
escaped: "x\\ty"
doubled: 'it''s'
"""


@pytest.fixture
def document() -> YamlDocument:
    return read_yaml(SPAN_TEXT, "spans.yaml")


def span_tuple(span: Span | None) -> tuple[int, int, int, int]:
    assert span is not None
    return span.line, span.column, span.end_line, span.end_column


def test_value_span_scalar_covers_the_value(document: YamlDocument) -> None:
    assert span_tuple(document.spans.value_span(("exchange",))) == (1, 11, 1, 14)


def test_value_span_block_sequence_ends_at_last_child(document: YamlDocument) -> None:
    assert span_tuple(document.spans.value_span(("tiers",))) == (3, 3, 5, 31)


def test_value_span_flow_mapping_covers_braces(document: YamlDocument) -> None:
    assert span_tuple(document.spans.value_span(("tiers", 1))) == (5, 5, 5, 31)


def test_value_span_list_item_scalar(document: YamlDocument) -> None:
    assert span_tuple(document.spans.value_span(("tiers", 0, "rate"))) == (4, 11, 4, 16)


def test_value_span_literal_block_excludes_trailing_newline(document: YamlDocument) -> None:
    assert span_tuple(document.spans.value_span(("expr",))) == (6, 7, 8, 23)


def test_value_span_root_covers_document(document: YamlDocument) -> None:
    span = document.spans.value_span(())
    assert span is not None
    assert (span.line, span.column) == (1, 1)


def test_value_span_missing_pointer_is_none(document: YamlDocument) -> None:
    assert document.spans.value_span(("nope",)) is None
    assert document.spans.value_span(("tiers", 7)) is None


def test_key_span_points_at_key(document: YamlDocument) -> None:
    assert span_tuple(document.spans.key_span(("tiers",))) == (2, 1, 2, 6)
    assert span_tuple(document.spans.key_span(("tiers", 1, "rate"))) == (5, 19, 5, 23)


def test_key_span_list_item_and_root_are_none(document: YamlDocument) -> None:
    assert document.spans.key_span(("tiers", 0)) is None
    assert document.spans.key_span(()) is None


def test_nearest_span_missing_child_uses_closest_ancestor(document: YamlDocument) -> None:
    nearest = document.spans.nearest_span(("tiers", 0, "missing", "deeper"))
    assert nearest == document.spans.value_span(("tiers", 0))


def test_nearest_span_empty_file_is_file_start() -> None:
    document = read_yaml("", "empty.yaml")
    assert span_tuple(document.spans.nearest_span(("a",))) == (1, 1, 1, 1)


def test_scalar_position_plain_scalar_maps_column(document: YamlDocument) -> None:
    # "e - f" starts at line 11 column 8; value column 5 is "f"
    assert document.spans.scalar_position(("plain",), 1, 5) == (11, 12)
    assert SPAN_TEXT.splitlines()[10][11] == "f"


def test_scalar_position_single_quoted_skips_quote(document: YamlDocument) -> None:
    assert document.spans.scalar_position(("quoted",), 1, 5) == (9, 14)
    assert SPAN_TEXT.splitlines()[8][13] == "b"


def test_scalar_position_double_quoted_skips_quote(document: YamlDocument) -> None:
    assert document.spans.scalar_position(("dquoted",), 1, 1) == (10, 11)
    assert SPAN_TEXT.splitlines()[9][10] == "c"


def test_scalar_position_literal_block_second_line_maps_line_and_indent(
    document: YamlDocument,
) -> None:
    assert isinstance(document.data, dict)
    value = document.data["expr"]
    assert value.splitlines()[1][4:12] == "notional"
    assert document.spans.scalar_position(("expr",), 2, 5) == (8, 7)
    assert SPAN_TEXT.splitlines()[7][6:14] == "notional"


def test_scalar_position_literal_block_first_line(document: YamlDocument) -> None:
    assert document.spans.scalar_position(("expr",), 1, 1) == (7, 3)


def test_scalar_position_literal_block_with_leading_blank_line() -> None:
    document = read_yaml("e: |-\n\n    a\n    b + c\n", "p.yaml")
    assert document.data == {"e": "\na\nb + c"}
    assert document.spans.scalar_position(("e",), 3, 5) == (4, 9)


def test_scalar_position_keep_chomping_block_maps_lines() -> None:
    document = read_yaml("e: |+\n  x\n  yz\n\nn: 1\n", "p.yaml")
    assert document.spans.scalar_position(("e",), 2, 2) == (3, 4)


@pytest.mark.parametrize("key", ["folded", "multi", "escaped", "doubled"])
def test_scalar_position_inexact_layouts_return_none(document: YamlDocument, key: str) -> None:
    assert document.spans.scalar_position((key,), 1, 1) is None


def test_scalar_position_out_of_range_returns_none(document: YamlDocument) -> None:
    assert document.spans.scalar_position(("plain",), 2, 1) is None
    assert document.spans.scalar_position(("plain",), 1, 7) is None
    assert document.spans.scalar_position(("expr",), 3, 1) is None
    assert document.spans.scalar_position(("tiers",), 1, 1) is None
    assert document.spans.scalar_position(("nope",), 1, 1) is None


def test_scalar_position_end_of_value_is_allowed(document: YamlDocument) -> None:
    # end-exclusive spans need the column just past the last character
    assert document.spans.scalar_position(("plain",), 1, 6) == (11, 13)


# --- round trip -------------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.text(alphabet="abcxyz +-*", min_size=1, max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet="abcxyz_", min_size=1, max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


def _normalized(value: object) -> object:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, list):
        return [_normalized(item) for item in value]
    if isinstance(value, dict):
        return {key: _normalized(item) for key, item in value.items()}
    return value


def _nodes(value: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[Pointer, object]]:
    found: list[tuple[Pointer, object]] = [(prefix, value)]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _nodes(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _nodes(item, (*prefix, index))
    return found


@settings(max_examples=150, deadline=None)
@given(value=_values, flow=st.booleans())
def test_read_yaml_safe_dump_output_round_trips_with_spans(value: object, flow: bool) -> None:
    text = yaml.safe_dump(value, default_flow_style=flow, width=10_000)
    lines = text.split("\n")
    document = read_yaml(text, "p.yaml")
    assert document.data == _normalized(value)
    for pointer, node in _nodes(value):
        assert document.spans.value_span(pointer) is not None, pointer
        if pointer and isinstance(pointer[-1], str):
            key_span = document.spans.key_span(pointer)
            assert key_span is not None
            key_text = lines[key_span.line - 1][key_span.column - 1 :].lstrip("'\"")
            assert key_text.startswith(pointer[-1])
        if isinstance(node, str):
            position = document.spans.scalar_position(pointer, 1, len(node))
            if position is not None:  # exact positions must land on the same character
                assert lines[position[0] - 1][position[1] - 1] == node[-1]


# -- the JSON fast path gives what the YAML reader gives ----------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**70), max_value=10**70),
    st.decimals(allow_nan=False, allow_infinity=False).map(str).filter(lambda t: "E" not in t),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8),
    st.sampled_from(["a\x85b", "a\u2028b", "\x7f", "tab\there"]),
)
_JSON_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(_JSON_VALUES)
def test_json_documents_read_the_same_both_ways(value):
    """A JSON text, read by the fast path and by the YAML event reader: the same data, or the
    fast path steps aside (decimal strings are written as JSON numbers here)."""
    import json
    import re

    from engine.errors import PolicyError
    from engine.policy.json_fast import as_json
    from engine.policy.yaml_reader import MAX_DEPTH, _read_events
    from engine.source import SourceFile

    text = re.sub(r'"(-?\d+(?:\.\d+)?)"', r"\1", json.dumps({"v": value}, ensure_ascii=False))
    fast = as_json(text, MAX_DEPTH)
    try:
        slow = _read_events(SourceFile("x", text)).data
    except PolicyError:
        assert fast is None or "\\" in text
        return
    if fast is not None:
        assert fast == slow
