"""`liqpolicy schema [policy|account|ccxt-account|include|sweep]`: print a JSON Schema, write them
all to a directory for editors (`--write DIR`), or print the policy reference as Markdown."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from engine.cli.command import Command, Exit, UsageError
from engine.cli.output import Output
from engine.policy.includes import INCLUDABLE_KEYS
from engine.policy.packaged import load_schema, schema_text

SCHEMAS = ("policy", "account", "ccxt-account", "include", "sweep")


def include_schema_text() -> str:
    """The schema of a file a policy includes: the policy schema's sections it may hold."""
    policy = load_schema("policy.schema.json")
    schema = {
        "$schema": policy["$schema"],
        "$id": policy["$id"].replace("policy.schema.json", "include.schema.json"),
        "title": "liqpolicy included data file",
        "description": "A file a policy lists in `include`: only "
        + ", ".join(f"`{k}`" for k in INCLUDABLE_KEYS)
        + ", as in a policy (typically written by `liqpolicy tiers import`).",
        "type": "object",
        "additionalProperties": False,
        "properties": {k: policy["properties"][k] for k in INCLUDABLE_KEYS},
        "$defs": policy["$defs"],
    }
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _text(name: str) -> str:
    return include_schema_text() if name == "include" else schema_text(f"{name}.schema.json")


def run(args: argparse.Namespace, output: Output) -> int:
    if args.write is not None:
        if args.markdown:
            raise UsageError("--write and --markdown do not go together")
        directory = Path(args.write)
        directory.mkdir(parents=True, exist_ok=True)
        for name in SCHEMAS:
            target = directory / f"{name}.schema.json"
            target.write_text(_text(name), encoding="utf-8")
            output.line(f"wrote {target}")
        output.message(
            f"point editors at them with a first line `# yaml-language-server: $schema="
            f"{directory / 'policy.schema.json'}` (a path relative to the policy file), or map"
            " them in your editor's yaml.schemas setting; see docs/authoring.md"
        )
        return Exit.OK
    if args.markdown:
        if args.schema != "policy":
            raise UsageError("--markdown is only available for the policy schema")
        from engine.policy.reference_doc import (  # noqa: PLC0415  # only this option needs it
            render_policy_reference,
        )

        output.text(render_policy_reference())
    else:
        output.text(_text(args.schema))
    return Exit.OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "schema",
        nargs="?",
        choices=SCHEMAS,
        default="policy",
        help="which schema: policy files (default), account files, accounts in ccxt's shapes,"
        " files a policy includes, or sweep grids",
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the policy file reference (docs/policy-reference.md) instead",
    )
    parser.add_argument(
        "--write",
        metavar="DIR",
        help="write every schema to DIR (self-contained files for editors and other tools)",
    )


COMMAND = Command(
    name="schema",
    summary="print the JSON Schemas (or --write them to a directory for editors)",
    description=textwrap.dedent("""\
        Print the JSON Schema (Draft 2020-12) that policy, account, ccxt-account or included
        files are validated against, for editors and other tools, or write all of them to a
        directory with --write DIR.  Each file is self-contained (references stay inside it),
        so it works outside the checkout.  Shipped policies point at the policy schema with a
        `# yaml-language-server: $schema=...` modeline, so editors complete and check keys
        as you type.  Dates are `format: date` (YYYY-MM-DD), checked by liqpolicy and by any
        validator that checks formats.  With --markdown, print the policy file reference
        generated from the schema instead."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy schema --write schemas/",
        "liqpolicy schema > policy.schema.json",
        "liqpolicy schema ccxt-account",
        "liqpolicy schema --markdown > docs/policy-reference.md",
    ),
)
