"""`liqpolicy schema [policy|account]`: print a JSON Schema, or the policy reference as Markdown."""

from __future__ import annotations

import argparse
import textwrap

from engine.cli.command import Command, Exit, UsageError
from engine.cli.output import Output
from engine.policy.packaged import schema_text

SCHEMAS = ("policy", "account", "ccxt-account")


def run(args: argparse.Namespace, output: Output) -> int:
    if args.markdown:
        if args.schema != "policy":
            raise UsageError("--markdown is only available for the policy schema")
        from engine.policy.reference_doc import (  # noqa: PLC0415  # only this option needs it
            render_policy_reference,
        )

        output.text(render_policy_reference())
    else:
        output.text(schema_text(f"{args.schema}.schema.json"))
    return Exit.OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "schema",
        nargs="?",
        choices=SCHEMAS,
        default="policy",
        help="which schema: policy files (default) or account files",
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the policy file reference (docs/policy-reference.md) instead",
    )


COMMAND = Command(
    name="schema",
    summary="print the JSON Schema of policy or account files",
    description=textwrap.dedent("""\
        Print the JSON Schema (Draft 2020-12) that policy or account files are validated
        against, for editors and other tools.  Shipped policies point at it with a
        `# yaml-language-server: $schema=...` modeline, so editors complete and check keys
        as you type.  With --markdown, print the policy file reference generated from the
        schema instead."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy schema > policy.schema.json",
        "liqpolicy schema account",
        "liqpolicy schema --markdown > docs/policy-reference.md",
    ),
)
