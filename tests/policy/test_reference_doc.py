"""docs/policy-reference.md is generated from the policy schema and kept in sync by this test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from engine.policy.packaged import load_schema
from engine.policy.reference_doc import INTRO, render_policy_reference

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "policy-reference.md"
REGENERATE = "liqpolicy schema --markdown > docs/policy-reference.md"


def undocumented(schema: Any, where: str = "#") -> list[str]:
    """Pointers of properties (and $defs entries) without a description, at any depth."""
    missing: list[str] = []
    if isinstance(schema, dict):
        for name, prop in schema.get("properties", {}).items():
            if not (isinstance(prop, dict) and prop.get("description")):
                missing.append(f"{where}/properties/{name}")
        for name, entry in schema.get("$defs", {}).items():
            if not (isinstance(entry, dict) and entry.get("description")):
                missing.append(f"{where}/$defs/{name}")
        for key, value in schema.items():
            missing += undocumented(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            missing += undocumented(item, f"{where}/{index}")
    return missing


def test_reference_doc_committed_file_matches_generated_text():
    generated = render_policy_reference()
    committed = REFERENCE.read_text(encoding="utf-8") if REFERENCE.is_file() else ""
    message = "docs/policy-reference.md is out of date with schemas/policy.schema.json"
    assert committed == generated, f"{message}; run `{REGENERATE}`"


def test_reference_doc_render_twice_is_identical():
    assert render_policy_reference() == render_policy_reference()


def test_reference_doc_starts_with_title_and_generated_notice():
    lines = render_policy_reference().splitlines()
    assert lines[0] == "# Policy file reference"
    assert INTRO in lines
    assert INTRO == (
        "Generated from schemas/policy.schema.json by `liqpolicy schema --markdown`;"
        " do not edit by hand."
    )


def test_reference_doc_every_top_level_key_and_def_has_a_section():
    schema = load_schema("policy.schema.json")
    text = render_policy_reference()
    for name in [*schema["properties"], *schema["$defs"]]:
        assert f"### `{name}`\n" in text, name


def test_reference_doc_every_property_description_appears():
    text = " ".join(render_policy_reference().split())
    schema = load_schema("policy.schema.json")

    def descriptions(node: Any) -> list[str]:
        found = []
        if isinstance(node, dict):
            if isinstance(node.get("description"), str):
                found.append(node["description"])
            for value in node.values():
                found += descriptions(value)
        elif isinstance(node, list):
            for item in node:
                found += descriptions(item)
        return found

    for description in descriptions(schema):
        assert " ".join(description.split()) in text, description


def test_reference_doc_every_link_points_at_a_heading():
    text = render_policy_reference()
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        assert slug not in anchors, f"two headings share the anchor #{slug}"
        anchors.add(slug)
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links
    assert sorted(set(links) - anchors) == []


def test_reference_doc_shows_refs_enums_patterns_and_alternatives():
    text = render_policy_reference()
    assert "| `kind` | one of `interval`, `exact` | yes |" in text
    assert "| `step` | [decimal](#decimal) | yes |" in text
    assert "string matching `^[a-z_][a-z0-9_]*$`" in text
    assert "mapping from [identifier](#identifier) to [definition](#definition)" in text
    definition = text.split("### `definition`", 1)[1].split("\n### ", 1)[0]
    assert "- [expression](#expression)\n- a mapping with these keys:" in definition
    assert "| `expr` | [expression](#expression) | yes |" in definition
    assert "#### `example.expect`" in text


def test_reference_doc_escapes_pipes_in_table_cells():
    schema = {
        "title": "t",
        "description": "d",
        "type": "object",
        "properties": {"a": {"description": "x | y", "type": "string", "pattern": "^(a|b)$"}},
    }
    text = render_policy_reference(schema)
    assert "| [`a`](#a) | string matching `^(a\\|b)$` | no | x \\| y |" in text


def test_reference_doc_unknown_ref_is_rejected():
    schema = {"properties": {"a": {"description": "x", "$ref": "#/$defs/nope"}}, "$defs": {}}
    with pytest.raises(ValueError, match="nope"):
        render_policy_reference(schema)


@pytest.mark.parametrize("name", ["policy.schema.json", "account.schema.json"])
def test_schema_every_property_has_a_description(name):
    assert undocumented(load_schema(name)) == []


def test_undocumented_finds_a_nested_property_without_description():
    schema = {"$defs": {"a": {"description": "ok", "properties": {"b": {"type": "string"}}}}}
    assert undocumented(schema) == ["#/$defs/a/properties/b"]
