"""The `liqpolicy` command line: argparse subcommands, one module each.

`main(argv)` is the console-script entry point; it parses and hands over to `run(args, stdout=,
stderr=)`, which tests call with their own streams.  The command registry is
:data:`engine.cli.app.COMMANDS`.  Library code never prints; only this package does.
"""

from engine.cli.app import COMMANDS, build_parser, main, run

__all__ = ["COMMANDS", "build_parser", "main", "run"]
