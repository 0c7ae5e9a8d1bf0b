"""`liqpolicy test [POLICY...]`: run the worked examples kept in policy files."""

from __future__ import annotations

import argparse
import textwrap

from engine.cli.command import Command, Exit, add_format_option
from engine.cli.output import Output
from engine.mechanics.examples import ExampleResult, run_examples
from engine.policy.load import load_policy
from engine.policy.packaged import shipped_policy_paths


def run(args: argparse.Namespace, output: Output) -> int:
    references = args.policies or [str(p) for p in shipped_policy_paths()]
    results: list[ExampleResult] = []
    for reference in references:
        policy = load_policy(reference)
        results += run_examples(policy)
    failed = [r for r in results if not r.passed]
    if args.format == "json":
        output.json({"passed": not failed, "examples": [r.as_dict() for r in results]})
        return Exit.CHECK_FAILED if failed else Exit.OK
    for result in results:
        where = f"{result.span.path}:{result.span.line}"
        if result.passed:
            output.line(f"ok    {result.policy_id}: {result.name}")
            continue
        output.line(f"FAIL  {result.policy_id}: {result.name}  ({where})")
        if result.error:
            output.line(f"      error: {result.error}")
        for mismatch in result.mismatches:
            output.line(
                f"      {mismatch.what}: expected {mismatch.expected}, found {mismatch.actual}"
            )
    output.line(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return Exit.CHECK_FAILED if failed else Exit.OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "policies",
        metavar="POLICY",
        nargs="*",
        help="policy files or shipped ids (default: every shipped policy)",
    )
    add_format_option(parser)


COMMAND = Command(
    name="test",
    summary="run the worked examples kept in policy files",
    description=textwrap.dedent("""\
        Run every example of the given policies (all shipped policies by default): evaluate
        the example's account and compare each expected value (definitions, trigger,
        liquidation and bankruptcy prices, liquidation outcome).  A closed-form price formula
        declared in the policy is checked against the solver as well.  Each failure shows the
        expected and actual values and the example's line.  Exit 1 when any example fails."""),
    configure=configure,
    run=run,
    examples=("liqpolicy test", "liqpolicy test policies/my-venue.yaml --format json"),
)
