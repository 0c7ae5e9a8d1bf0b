"""The `liqpolicy` program: the command registry, the parser, and error handling around a run.

`main(argv)` parses and calls `run(args, stdout=..., stderr=...)`; tests call either.  User
mistakes (every :class:`~engine.errors.EngineError`, unreadable paths, bad options) are rendered
and exit 2; anything else is a bug: exit 3 with a one-line message, the traceback only with
`--debug`.  A mistyped command, option or choice is reported against the usage of the command
it was given to, with the closest names as a hint.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from engine._version import __version__
from engine.cli import (
    book,
    compare,
    diff,
    evaluate,
    expr,
    liq_price,
    log,
    new,
    schema,
    serve,
    simulate,
    sweep,
    test_cmd,
    tiers,
    validate,
)
from engine.cli.command import EXIT_CODES_HELP, Command, Exit, UsageError
from engine.cli.output import Output
from engine.cli.terminal import COLOR_CHOICES, ColorChoice, painter, terminal_width, wants_colour
from engine.dsl.check import did_you_mean
from engine.errors import DiagnosticError, EngineError, EvaluationError, PolicyError
from engine.source import Diagnostic

# The registry: adding a command is writing engine/cli/<name>.py with a COMMAND and listing it
# here.  `liqpolicy --help` shows them in this order.
COMMANDS: tuple[Command, ...] = (
    validate.COMMAND,
    new.COMMAND,
    test_cmd.COMMAND,
    evaluate.COMMAND,
    liq_price.COMMAND,
    book.COMMAND,
    simulate.COMMAND,
    compare.COMMAND,
    sweep.COMMAND,
    diff.COMMAND,
    expr.COMMAND,
    schema.COMMAND,
    tiers.COMMAND,
    serve.COMMAND,
    log.COMMAND,
)

PROG = "liqpolicy"
DESCRIPTION = """\
Compare how crypto exchanges liquidate leveraged positions: exchange rulebooks as
validated YAML policies with a checked expression language, run by one exact-decimal engine."""
MORE_HELP = "Run `liqpolicy COMMAND --help` for a command's options and examples."


_INVALID_CHOICE = re.compile(r"invalid choice: '?(?P<value>.*?)'? \(choose from (?P<choices>.*)\)$")
_UNRECOGNIZED = "unrecognized arguments: "


def _color_in(argv: Sequence[str]) -> ColorChoice:
    """The `--color` given on the command line (read before parsing, for usage errors)."""
    choice = "auto"
    for index, arg in enumerate(argv):
        if arg.startswith("--color="):
            choice = arg.partition("=")[2]
        elif arg == "--color" and index + 1 < len(argv):
            choice = argv[index + 1]
    return next((c for c in COLOR_CHOICES if c == choice), "auto")


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors suggest the closest command, option or choice."""

    color: ColorChoice = "auto"
    subcommands: tuple[str, dict[str, Parser]] | None = None  # (dest, parser by name)

    def add_subparsers(self, **kwargs: Any) -> Any:
        """argparse's, remembering where the chosen subcommand's parser is found."""
        action = super().add_subparsers(**kwargs)
        self.subcommands = (kwargs["dest"], action.choices)
        return action

    def all_parsers(self) -> list[Parser]:
        """This parser and every subcommand's, depth first."""
        found: list[Parser] = [self]
        for sub in (self.subcommands or ("", {}))[1].values():
            found += sub.all_parsers()
        return found

    def chosen(self, args: argparse.Namespace) -> Parser:
        """The parser of the innermost subcommand `args` chose (`liqpolicy book check`)."""
        if self.subcommands is None:
            return self
        dest, parsers = self.subcommands
        sub = parsers.get(getattr(args, dest, None) or "")
        return self if sub is None else sub.chosen(args)

    def option_names(self) -> list[str]:
        # argparse keeps its options in a private table; there is no public listing.
        return [name for name in self._option_string_actions if name.startswith("--")]

    def suggestion(self, message: str) -> str | None:
        """'did you mean ...?' for an invalid choice or an unrecognized option, if one is close."""
        found = _INVALID_CHOICE.search(message)
        if found:
            choices = [c.strip(" '\"") for c in found["choices"].split(",")]
            return did_you_mean(found["value"], choices)
        if message.startswith(_UNRECOGNIZED):
            found_hints = []
            for word in message.removeprefix(_UNRECOGNIZED).split():
                name = word.partition("=")[0]
                hint = did_you_mean(name, self.option_names()) if name.startswith("-") else None
                if hint:
                    found_hints.append((name, hint))
            if len(found_hints) == 1:
                return found_hints[0][1]
            return "; ".join(f"{name}: {hint}" for name, hint in found_hints) or None
        return None

    def error(self, message: str) -> NoReturn:
        paint = painter(sys.stderr, wants_colour(sys.stderr, self.color))
        self.print_usage(sys.stderr)
        text = f"{self.prog}: {paint('error:', 'error')} {message}\n"
        hint = self.suggestion(message)
        if hint:
            text += f"{paint('hint:', 'note')} {hint}\n"
        self.exit(Exit.INVALID_INPUT, text)


def _wide_formatter(prog: str) -> argparse.HelpFormatter:
    """Room for the longest command name next to its summary."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30, width=100)


COLOR_HELP = (
    "colour on a terminal: auto (default: only when the stream is a terminal and NO_COLOR is "
    "not set), always, or never"
)


def build_parser() -> Parser:
    """The full parser: global options and one subparser per registered command."""
    parser = Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=f"{MORE_HELP}\n\n{EXIT_CODES_HELP}",
        formatter_class=_wide_formatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an internal error"
    )
    parser.add_argument("--color", choices=COLOR_CHOICES, default="auto", help=COLOR_HELP)
    # `--debug` and `--color` are accepted after the command too; SUPPRESS keeps the subparser
    # from resetting a value given before it.
    common = Parser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an internal error",
    )
    common.add_argument(
        "--color", choices=COLOR_CHOICES, default=argparse.SUPPRESS, help=COLOR_HELP
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command_name")
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name,
            help=command.summary,
            description=command.description,
            epilog=command.epilog(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )
        command.configure(sub)
        sub.set_defaults(command=command)
    return parser


def run(args: argparse.Namespace, *, stdout: TextIO, stderr: TextIO) -> int:
    """Run the command chosen in `args`, writing only to the given streams; return the exit code."""
    command: Command = args.command
    choice: ColorChoice = getattr(args, "color", "auto")
    colour_errors = wants_colour(stderr, choice)
    output = Output(
        stdout,
        stderr,
        prog=f"{PROG} {command.name}",
        paint=painter(stdout, wants_colour(stdout, choice)),
        paint_errors=painter(stderr, colour_errors),
        width=terminal_width(stdout),
        colour_errors=colour_errors,
    )
    debug = bool(getattr(args, "debug", False))
    as_json = getattr(args, "format", None) == "json"

    def failed(kind: str, code: str, message: str, diagnostics: Sequence[Diagnostic] = ()) -> int:
        exit_code = Exit.INTERNAL_ERROR if kind == "internal" else Exit.INVALID_INPUT
        if as_json:
            output.error_document(
                exit_code=exit_code, kind=kind, code=code, message=message, diagnostics=diagnostics
            )
        return exit_code

    try:
        return int(command.run(args, output))
    except UsageError as error:
        output.error(error.message, error.hint)
        return failed("usage", "usage", error.message)
    except DiagnosticError as error:
        output.diagnostics(error.diagnostics)
        errors = [d for d in error.diagnostics if d.severity == "error"] or list(error.diagnostics)
        first = errors[0] if errors else None
        kind = "invalid-policy" if isinstance(error, PolicyError) else "invalid-input"
        summary = first.message if first is not None else "invalid input"
        if len(errors) > 1:
            summary += f" (and {len(errors) - 1} more)"
        return failed(kind, first.code if first else "E100", summary, error.diagnostics)
    except EvaluationError as error:
        diagnostic = error.diagnostic()
        output.diagnostics([diagnostic])
        return failed("evaluation-failed", error.code, diagnostic.message, [diagnostic])
    except EngineError as error:  # pragma: no cover - every EngineError subclass is handled above
        output.error(str(error))
        return failed("invalid-input", "E100", str(error))
    except BrokenPipeError:
        raise  # the reader went away (`| head`); main() handles it
    except OSError as error:
        where = f"'{error.filename}': " if error.filename else ""
        message = f"cannot read {where}{error.strerror or error}"
        output.error(message)
        diagnostic = Diagnostic("E001", message, path=str(error.filename or "<input>"))
        return failed("unreadable", "E001", message, [diagnostic])
    except KeyboardInterrupt:
        output.message(f"{PROG}: interrupted")
        return 130
    except Exception as error:  # an InternalError, or any other bug
        if debug:
            traceback.print_exception(error, file=stderr)
        detail = f"{type(error).__name__}: {error}".rstrip(": ")
        hint = "please report it" + ("" if debug else "; rerun with --debug for the traceback")
        output.message(f"{PROG}: internal error (a bug in liqpolicy, {hint}): {detail}")
        return failed("internal", "internal", f"internal error (a bug in liqpolicy): {detail}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `liqpolicy` console script and of `python -m engine`."""
    parser = build_parser()
    arguments = sys.argv[1:] if argv is None else list(argv)
    color = _color_in(arguments)
    for each in parser.all_parsers():
        each.color = color
    try:
        # Known arguments first, so that a stray option is reported against the usage of the
        # command it was given to (argparse would blame the top-level usage).
        args, extras = parser.parse_known_args(arguments)
        if extras:
            parser.chosen(args).error(_UNRECOGNIZED + " ".join(extras))
    except SystemExit as exit_:  # argparse: --help/--version (0) or a usage error (2)
        code = exit_.code
        return code if isinstance(code, int) else Exit.INVALID_INPUT
    if getattr(args, "command", None) is None:
        parser.print_help(sys.stderr)
        return Exit.INVALID_INPUT
    try:
        return run(args, stdout=sys.stdout, stderr=sys.stderr)
    except BrokenPipeError:
        # Python's recipe: point stdout at devnull so the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # what shells report for a process ended by SIGPIPE (128 + 13)
