"""Data is tested like code: every schema is a valid, documented Draft 2020-12 schema, and every
shipped policy loads cleanly and names its schema for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.policy.load import load_policy
from engine.policy.packaged import policies_dir, schemas_dir

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = sorted((ROOT / "schemas").glob("*.schema.json"))
POLICIES = sorted((ROOT / "policies").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema="


def _undocumented(schema: Any, where: str = "#") -> list[str]:
    missing: list[str] = []
    if isinstance(schema, dict):
        for group in ("properties", "$defs"):
            for name, entry in schema.get(group, {}).items():
                if not (isinstance(entry, dict) and entry.get("description")):
                    missing.append(f"{where}/{group}/{name}")
        for key, value in schema.items():
            missing += _undocumented(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            missing += _undocumented(item, f"{where}/{index}")
    return missing


def _ids(paths: list[Path]) -> list[str]:
    return [path.name for path in paths]


def test_schemas_folder_is_not_empty_and_is_the_packaged_one():
    assert {path.name for path in SCHEMAS} >= {"account.schema.json", "policy.schema.json"}
    assert schemas_dir().resolve() == (ROOT / "schemas").resolve()


def test_policies_folder_is_not_empty_and_is_the_packaged_one():
    assert POLICIES
    assert policies_dir().resolve() == (ROOT / "policies").resolve()


@pytest.mark.parametrize("path", SCHEMAS, ids=_ids(SCHEMAS))
def test_schema_file_valid_draft_2020_12(path: Path):
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", SCHEMAS, ids=_ids(SCHEMAS))
def test_schema_file_has_id_ending_in_its_file_name(path: Path):
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(schema.get("$id"), str)
    assert schema["$id"].endswith("/" + path.name)


@pytest.mark.parametrize("path", SCHEMAS, ids=_ids(SCHEMAS))
def test_schema_file_every_property_has_a_description(path: Path):
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema.get("description")
    assert _undocumented(schema) == []


@pytest.mark.parametrize("path", SCHEMAS, ids=_ids(SCHEMAS))
def test_schema_file_every_ref_resolves(path: Path):
    schema = json.loads(path.read_text(encoding="utf-8"))
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    for ref in refs:
        assert ref.startswith("#/$defs/"), ref
        assert ref.removeprefix("#/$defs/") in schema.get("$defs", {}), ref


def test_undocumented_reports_nested_property_without_description():
    nested = {"description": "x", "properties": {"b": {}}}
    schema = {"description": "d", "properties": {"a": nested}}
    assert _undocumented(schema) == ["#/properties/a/properties/b"]


@pytest.mark.parametrize("path", POLICIES, ids=_ids(POLICIES))
def test_shipped_policy_loads_without_errors(path: Path):
    policy = load_policy(path)
    assert policy.id == path.stem, "a shipped policy's id is its file name (`extends: <id>`)"


@pytest.mark.parametrize("path", POLICIES, ids=_ids(POLICIES))
def test_shipped_policy_cites_every_number_without_warnings(path: Path):
    assert [d.code for d in load_policy(path).warnings] == []


@pytest.mark.parametrize("path", POLICIES, ids=_ids(POLICIES))
def test_shipped_policy_loads_by_id(path: Path):
    assert load_policy(path.stem).digest == load_policy(path).digest


@pytest.mark.parametrize("path", POLICIES, ids=_ids(POLICIES))
def test_shipped_policy_modeline_points_at_existing_schema(path: Path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(MODELINE), f"{path.name} must start with '{MODELINE}...'"
    target = (path.parent / first.removeprefix(MODELINE).strip()).resolve()
    assert target.is_file(), f"{path.name}: modeline names a missing file {target}"
    assert target == (ROOT / "schemas" / "policy.schema.json").resolve()
