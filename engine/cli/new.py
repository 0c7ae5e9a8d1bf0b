"""`liqpolicy new NAME --like POLICY`: scaffold a policy to fill in from the venue's rules."""

from __future__ import annotations

import argparse
import os
import re
import textwrap
from pathlib import Path

from engine.cli.command import Command, Exit, UsageError
from engine.cli.output import Output, count_diagnostics
from engine.policy.load import check_policy, load_policy
from engine.policy.packaged import schemas_dir
from engine.policy.scaffold import scaffold
from engine.source import sort_diagnostics

POLICY_ID = re.compile(r"[a-z0-9][a-z0-9-]*")


def run(args: argparse.Namespace, output: Output) -> int:
    if not POLICY_ID.fullmatch(args.name):
        raise UsageError(
            f"'{args.name}' is not a policy id",
            "ids are lowercase letters, digits and dashes, e.g. my-venue-usdt-swap",
        )
    target = Path(args.output) if args.output else Path(f"{args.name}.yaml")
    if target.exists() and not args.force:
        raise UsageError(f"'{target}' exists", "choose another --output, or --force to replace it")
    like = load_policy(args.like)
    schema = args.schema or os.path.relpath(
        schemas_dir() / "policy.schema.json", target.resolve().parent
    )
    command = f"liqpolicy new {args.name} --like {args.like}"
    target.write_text(scaffold(args.name, like, schema, command=command), encoding="utf-8")
    policy, diagnostics = check_policy(target)
    found = sort_diagnostics(diagnostics)
    output.diagnostics(found)
    state = "loads" if policy is not None else "does not load yet"
    counted = f" ({count_diagnostics(found)})" if found else ""
    output.line(f"wrote {target}: shaped like {like.id}, {state}{counted}")
    output.line(
        f"next: replace each TODO, then `liqpolicy validate {target}` and `liqpolicy test {target}`"
    )
    return Exit.OK if policy is not None else Exit.INVALID_INPUT


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the new policy's id (and file name)")
    parser.add_argument(
        "--like",
        required=True,
        metavar="POLICY",
        help="the policy to take the shape from: a file, or the id of a shipped policy"
        " (`liqpolicy validate --help` lists where they are)",
    )
    parser.add_argument("--output", "-o", metavar="PATH", help="where to write (default NAME.yaml)")
    parser.add_argument(
        "--schema",
        metavar="PATH",
        help="schema path for the editor modeline (default: the installed policy schema; see"
        " `liqpolicy schema --write DIR`)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing file")


COMMAND = Command(
    name="new",
    summary="scaffold a new policy shaped like an existing one, to fill in",
    description=textwrap.dedent("""\
        Write NAME.yaml: a policy with the rules of POLICY (definitions, liquidation,
        waterfall, charges), so it loads and runs at once, and everything that must become
        the new venue's own marked TODO: one source to fill in, every rule that cited
        POLICY's sources marked as an assumption copied from it, one market and its tier
        table to replace, and one example waiting for the venue's published numbers.  The
        first line points editors at the policy schema (yaml-language-server).  The file is
        checked after writing; the walk-through is in docs/authoring.md."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy new my-venue-swap --like SHIPPED_ID",
        "liqpolicy new my-venue-swap --like other-venue.yaml -o policies/my-venue-swap.yaml",
    ),
)
