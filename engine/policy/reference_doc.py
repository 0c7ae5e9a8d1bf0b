"""Markdown reference of the policy file format, generated from schemas/policy.schema.json alone.

The schema is the single source of truth: every key's description, type, pattern and allowed
values are read from it, so docs/policy-reference.md cannot drift (a test compares the two).
Output is deterministic: sections follow the schema's own key order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from engine.policy.packaged import load_schema

SCHEMA_NAME = "policy.schema.json"
TITLE = "Policy file reference"
INTRO = (
    "Generated from schemas/policy.schema.json by `liqpolicy schema --markdown`;"
    " do not edit by hand."
)

Schema = Mapping[str, Any]

_TYPE_NAMES = {
    "object": "mapping",
    "array": "list",
    "string": "string",
    "number": "number",
    "integer": "whole number",
    "boolean": "boolean",
    "null": "null",
}
_LINK = re.compile(r"\x00([^\x00]*)\x00")


def _slug(heading: str) -> str:
    """GitHub's heading anchor: lowercase, punctuation dropped, spaces become dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.lower())
    return text.replace(" ", "-")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def _value(value: object) -> str:
    return _code(value if isinstance(value, str) else json.dumps(value))


class _Renderer:
    """Renders sections; links are placeholders until every heading (and so anchor) is known."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.lines: list[str] = []
        self.headings: dict[str, str] = {}  # target -> heading text, in document order

    # -- plumbing -------------------------------------------------------------------------------
    def heading(self, level: int, text: str, target: str) -> None:
        self.headings[target] = text
        self.lines += ["#" * level + " " + text, ""]

    def paragraph(self, text: str) -> None:
        if text:
            self.lines += [text, ""]

    def link(self, label: str, target: str) -> str:
        return f"[{label}](\x00{target}\x00)"

    def ref_target(self, ref: str) -> str:
        prefix = "#/$defs/"
        if not ref.startswith(prefix):
            raise ValueError(f"unsupported $ref '{ref}': only '#/$defs/<name>' is documented")
        name = ref.removeprefix(prefix)
        if name not in self.schema.get("$defs", {}):
            raise ValueError(f"$ref '{ref}' names no entry of $defs")
        return f"def:{name}"

    def finish(self) -> str:
        anchors: dict[str, str] = {}
        used: dict[str, int] = {}
        for target, text in self.headings.items():
            slug = _slug(text)
            count = used.get(slug, 0)
            used[slug] = count + 1
            anchors[target] = slug if count == 0 else f"{slug}-{count}"
        text = "\n".join(self.lines).rstrip("\n") + "\n"
        return _LINK.sub(lambda match: "#" + anchors[match.group(1)], text)

    # -- types ----------------------------------------------------------------------------------
    def type_text(self, schema: Schema, inline: tuple[str, str] | None = None) -> str:
        """One line saying what a value must be; `inline` is (title, target) of a nested mapping."""
        if "$ref" in schema:
            target = self.ref_target(schema["$ref"])
            return self.link(target.removeprefix("def:"), target)
        if "enum" in schema:
            return "one of " + ", ".join(_value(v) for v in schema["enum"])
        if "anyOf" in schema:
            return _either([self.type_text(option, inline) for option in schema["anyOf"]])
        kinds = schema.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        if kinds == ["object"]:
            text = self.mapping_text(schema, inline)
        elif kinds == ["array"]:
            text = "list"
            if isinstance(schema.get("items"), Mapping):
                text += " of " + self.type_text(schema["items"], inline)
        else:
            text = _either([_TYPE_NAMES.get(kind, kind) for kind in kinds] or ["any value"])
        return self.constraints(schema, text)

    def mapping_text(self, schema: Schema, inline: tuple[str, str] | None) -> str:
        if "properties" in schema:
            if inline is None:
                return "mapping"
            return f"mapping (see {self.link(_code(inline[0]), inline[1])})"
        values = schema.get("additionalProperties")
        if not isinstance(values, Mapping):
            return "mapping"
        names = schema.get("propertyNames")
        if not isinstance(names, Mapping):
            keys = "names"
        elif "$ref" in names:
            keys = self.type_text(names)
        else:
            keys = self.constraints(names, "names")
        return f"mapping from {keys} to {self.type_text(values, inline)}"

    def constraints(self, schema: Schema, text: str) -> str:
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        if high is not None:
            text += f", {low} items" if low == high else f", {low} to {high} items"
        elif low > 1:
            text += f", at least {low} items"
        if schema.get("uniqueItems"):
            text += ", no repeats"
        nonempty = high is None and low == 1
        if nonempty or schema.get("minLength", 0) >= 1 or schema.get("minProperties", 0) >= 1:
            text = "non-empty " + text
        if "pattern" in schema:
            text += " matching " + _code(schema["pattern"])
        bounds = (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("exclusiveMaximum", "<"),
        )
        for keyword, sign in bounds:
            if keyword in schema:
                text += f", {sign} {schema[keyword]}"
        return text

    # -- sections -------------------------------------------------------------------------------
    def properties_table(
        self, schema: Schema, title: str, target: str, link_names: bool
    ) -> list[str]:
        """The table of an object's properties; returns the nested mappings to document next."""
        required = set(schema.get("required", []))
        nested: list[str] = []
        rows = ["| Key | Type | Required | Description |", "|---|---|---|---|"]
        for name, prop in schema["properties"].items():
            inner = f"{target}.{name}" if target else f"key:{name}"
            label = _code(name)
            if link_names:
                label = self.link(label, inner)
            elif _has_properties(prop):
                nested.append(name)
            see = None if link_names else (f"{title}.{name}", inner)
            kind = self.type_text(prop, see)
            rows.append(
                f"| {label} | {_cell(kind)} | {'yes' if name in required else 'no'} |"
                f" {_cell(prop.get('description', ''))} |"
            )
        self.lines += [*rows, ""]
        return nested

    def object_body(self, schema: Schema, title: str, target: str, level: int) -> None:
        """Body of a mapping: the table of its keys, then a section per nested mapping."""
        nested: list[str] = []
        if "properties" in schema:
            nested = self.properties_table(schema, title, target, link_names=False)
        if schema.get("additionalProperties") is False:
            self.paragraph("No other keys are allowed.")
        for name in nested:
            self.section(
                f"{title}.{name}", schema["properties"][name], level + 1, f"{target}.{name}"
            )

    def section(self, title: str, schema: Schema, level: int, target: str) -> None:
        self.heading(level, _code(title), target)
        self.paragraph(schema.get("description", ""))
        if "anyOf" in schema:
            self.alternatives(title, schema["anyOf"], level, target)
            return
        if _has_properties(schema):
            self.paragraph("**Type:** mapping with these keys:")
            self.object_body(schema, title, target, level)
            return
        self.paragraph("**Type:** " + self.type_text(schema))
        items = schema.get("items")
        if isinstance(items, Mapping) and _has_properties(items):
            self.paragraph("Each item is a mapping with these keys:")
            self.object_body(items, f"{title}[]", f"{target}[]", level)

    def alternatives(self, title: str, options: list[Schema], level: int, target: str) -> None:
        self.paragraph("**Type:** one of these forms:")
        for option in options:
            if _has_properties(option):
                self.lines.append("- a mapping with these keys:")
            else:
                self.lines.append("- " + self.type_text(option))
        self.lines.append("")
        for option in options:
            if _has_properties(option):
                self.object_body(option, title, target, level)

    def document(self) -> str:
        schema = self.schema
        self.heading(1, TITLE, "title")
        self.paragraph(INTRO)
        self.paragraph(f"**{schema.get('title', 'Policy')}.** {schema.get('description', '')}")
        self.paragraph(f"Schema `$id`: {schema.get('$id', '(none)')}")
        self.heading(2, "Top-level keys", "top")
        self.properties_table(schema, "", "", link_names=True)
        if schema.get("additionalProperties") is False:
            self.paragraph("No other keys are allowed.")
        for name, prop in schema["properties"].items():
            self.section(name, prop, 3, f"key:{name}")
        self.heading(2, "Types", "types")
        self.paragraph("Shapes used by the keys above (`$defs` in the schema).")
        for name, definition in schema.get("$defs", {}).items():
            self.section(name, definition, 3, f"def:{name}")
        return self.finish()


def _either(options: list[str]) -> str:
    """'a', 'a or b', 'a, b or c'."""
    if len(options) <= 2:
        return " or ".join(options)
    return ", ".join(options[:-1]) + " or " + options[-1]


def _has_properties(schema: object) -> bool:
    return isinstance(schema, Mapping) and isinstance(schema.get("properties"), Mapping)


def render_policy_reference(schema: Schema | None = None) -> str:
    """Markdown documentation of the policy file format (the packaged schema unless given)."""
    return _Renderer(schema if schema is not None else load_schema(SCHEMA_NAME)).document()
