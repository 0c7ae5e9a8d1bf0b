"""`liqpolicy validate PATH...`: check policy files and report every problem at once."""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import dataclass
from pathlib import Path

from engine.cli.command import Command, Exit, UsageError, add_format_option
from engine.cli.output import Output, count_diagnostics, plural
from engine.policy.load import check_policy, resolve_policy_path
from engine.policy.model import Policy
from engine.source import Diagnostic, sort_diagnostics

POLICY_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class FileReport:
    """The outcome of checking one file: the policy when valid, and every diagnostic."""

    path: str
    policy: Policy | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def valid(self) -> bool:
        return self.policy is not None

    def as_dict(self) -> dict[str, object]:
        policy = self.policy
        return {
            "path": self.path,
            "valid": self.valid,
            "policy_id": policy.id if policy else None,
            "digest": policy.digest if policy else None,
            "diagnostics": [d.as_dict() for d in self.diagnostics],
        }


def _shown(path: Path) -> str:
    """A shipped policy's path relative to the working directory when it lies below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def expand_paths(references: list[str]) -> list[str]:
    """Files as given, every *.yaml/*.yml directly inside a directory, shipped ids resolved.

    Order is kept (a directory's files sorted by name) and repeats are dropped.
    """
    paths: list[str] = []
    for reference in references:
        path = Path(reference)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in POLICY_SUFFIXES and p.is_file())
            if not found:
                raise UsageError(f"no policy files (*.yaml) in directory '{reference}'")
            paths.extend(str(p) for p in found)
            continue
        resolved = resolve_policy_path(reference)
        paths.append(reference if resolved == path else _shown(resolved))
    unique: dict[Path, str] = {}
    for shown in paths:
        unique.setdefault(Path(shown).resolve(), shown)
    return list(unique.values())


def check_file(path: str) -> FileReport:
    policy, diagnostics = check_policy(path)
    return FileReport(path, policy, tuple(sort_diagnostics(diagnostics)))


def _ok_line(report: FileReport) -> str:
    policy = report.policy
    assert policy is not None
    count = plural(len(policy.definitions), "definition")
    return f"ok: {report.path} ({policy.id}, {count}, digest {policy.digest})"


def _summary(reports: list[FileReport]) -> str:
    """'checked 3 files: 2 valid, 1 invalid (2 errors, 1 warning)'; zero counts left out."""
    invalid = sum(1 for r in reports if not r.valid)
    text = f"checked {plural(len(reports), 'file')}: {len(reports) - invalid} valid"
    if invalid:
        text += f", {invalid} invalid"
    every = [d for r in reports for d in r.diagnostics]
    return text + (f" ({count_diagnostics(every)})" if every else "")


def run(args: argparse.Namespace, output: Output) -> int:
    reports = [check_file(path) for path in expand_paths(args.paths)]
    valid = all(report.valid for report in reports)
    if args.format == "json":
        output.json({"files": [r.as_dict() for r in reports], "valid": valid})
    else:
        for report in reports:
            output.diagnostics(report.diagnostics)
            if report.valid:
                output.line(_ok_line(report))
            else:
                output.line(f"invalid: {report.path} ({count_diagnostics(report.diagnostics)})")
        output.line(_summary(reports))
    return Exit.OK if valid else Exit.INVALID_INPUT


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a policy file, a directory (every *.yaml and *.yml directly inside it), "
        "or the id of a shipped policy",
    )
    add_format_option(parser)


COMMAND = Command(
    name="validate",
    summary="check policy files: YAML, schema, expressions, tables, extends",
    description=textwrap.dedent("""\
        Check policy files and report every problem at once, sorted by position.

        Each problem is printed on stderr as `path:line:col: error[CODE]: message`, with the
        source line, a caret under the culprit and often a hint; warnings (W0xx) are shown
        but do not make a file invalid.  Stdout gets one `ok:` or `invalid:` line per file
        and a summary.  With --format json, stdout gets one JSON document instead:
        {"files": [{"path", "valid", "policy_id", "digest", "diagnostics"}], "valid"}.
        Error codes are listed in docs/errors.md."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy validate policies/",
        "liqpolicy validate my-exchange.yaml other.yaml --format json",
    ),
)
