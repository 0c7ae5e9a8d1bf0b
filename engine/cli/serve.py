"""`liqpolicy serve`: answer evaluate, liquidation-price and compare requests over HTTP."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import textwrap
from pathlib import Path
from typing import TextIO

from engine.audit import FSYNC_POLICIES
from engine.cli.command import Command, Exit, UsageError
from engine.cli.output import Output
from engine.server.config import (
    DEFAULT_CACHE_ENTRIES,
    DEFAULT_HOST,
    DEFAULT_MAX_BODY,
    DEFAULT_PORT,
    ServerConfig,
)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be at least 1")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' must not be negative")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"'{text}' must be between 1 and 3600 seconds")
    return value


def _port(text: str) -> int:
    value = _non_negative(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number (0-65535)")
    return value


def _log_to(stream: TextIO) -> tuple[logging.Logger, logging.Handler, bool]:
    """Send the server's log lines to `stream` (stderr) for this run."""
    logger = logging.getLogger("liqpolicy.server")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logging.Formatter("%(asctime)s liqpolicy[%(process)d] %(levelname)s %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    propagate, logger.propagate = logger.propagate, False
    return logger, handler, propagate


SERVER_MODULES = ("uvicorn", "httptools", "starlette", "prometheus_client")


def _missing_server_modules() -> list[str]:
    return [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]


def run(args: argparse.Namespace, output: Output) -> int:
    missing = _missing_server_modules()
    if missing:
        raise UsageError(
            "liqpolicy serve needs the server extra, which is not installed "
            f"(missing: {', '.join(missing)})",
            "pip install 'liqpolicy[server]'",
        )
    from engine.server.runner import serve  # noqa: PLC0415  # only this command needs it

    if args.policies is not None and not Path(args.policies).is_dir():
        raise UsageError(f"--policies: '{args.policies}' is not a directory")
    if args.workers > 1 and not hasattr(os, "fork"):
        raise UsageError("--workers above 1 needs os.fork, which this platform lacks")
    if (args.ssl_certfile is None) != (args.ssl_keyfile is None):
        raise UsageError("--ssl-certfile and --ssl-keyfile go together")
    for option, value in (
        ("--ssl-certfile", args.ssl_certfile),
        ("--ssl-keyfile", args.ssl_keyfile),
    ):
        if value is not None and not Path(value).is_file():
            raise UsageError(f"{option}: '{value}' is not a file")
    if args.decision_log_required and args.decision_log is None:
        raise UsageError("--decision-log-required needs --decision-log FILE")
    config = ServerConfig(
        host=args.host,
        port=args.port,
        policies_dir=Path(args.policies) if args.policies is not None else None,
        max_body=args.max_body,
        decision_log=Path(args.decision_log) if args.decision_log is not None else None,
        decision_log_fsync=args.decision_log_fsync,
        decision_log_required=args.decision_log_required,
        workers=args.workers,
        cache_entries=args.cache,
        timeout=args.timeout,
        ssl_certfile=Path(args.ssl_certfile) if args.ssl_certfile else None,
        ssl_keyfile=Path(args.ssl_keyfile) if args.ssl_keyfile else None,
        cors_origins=tuple(args.cors_origin or ()),
    )
    if config.decision_log is not None:
        try:
            config.decision_log.open("a", encoding="utf-8").close()
        except OSError as error:
            raise UsageError(
                f"--decision-log: cannot write '{config.decision_log}': {error.strerror or error}"
            ) from None
    logger, handler, propagate = _log_to(output.stderr)
    try:
        code = serve(config, announce=lambda text: output.line(f"liqpolicy serve: {text}"))
    except OSError as error:
        if error.filename:
            raise
        raise UsageError(
            f"cannot listen on {args.host}:{args.port}: {error.strerror or error}"
        ) from None
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    return Exit.OK if code == 0 else Exit.INTERNAL_ERROR


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0 exposes it)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free port, announced on stdout)",
    )
    parser.add_argument(
        "--policies",
        metavar="DIR",
        help="serve every *.yaml policy in DIR (default: the shipped policies)",
    )
    parser.add_argument(
        "--max-body",
        type=_positive,
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help=f"largest request body accepted (default {DEFAULT_MAX_BODY}, 1 MiB)",
    )
    parser.add_argument(
        "--decision-log",
        metavar="FILE",
        help="append one JSON line per decision (id, time, policy and digest, "
        "input, result) to FILE; off by default",
    )
    parser.add_argument(
        "--decision-log-fsync",
        choices=FSYNC_POLICIES,
        default="interval",
        help="when decision-log entries reach the disk: always (before each answer), "
        "interval (at most 1 s later; the default), never (when the OS decides)",
    )
    parser.add_argument(
        "--decision-log-required",
        action="store_true",
        help="answer 503 instead of a decision that could not be written to the decision log",
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="worker processes sharing the port (default 1; evaluation is "
        "CPU-bound, so use about one per core)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="a request must arrive whole (head and body) within SECONDS of its first byte, "
        "and an idle connection is closed after as long (default 30)",
    )
    parser.add_argument(
        "--ssl-certfile", metavar="FILE", help="serve HTTPS with this certificate (PEM)"
    )
    parser.add_argument("--ssl-keyfile", metavar="FILE", help="the certificate's private key (PEM)")
    parser.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="allow browser pages from ORIGIN (e.g. https://dash.example.com; * for any) "
        "to call the API; repeat for several; off by default",
    )
    parser.add_argument(
        "--cache",
        type=_non_negative,
        default=DEFAULT_CACHE_ENTRIES,
        metavar="N",
        help=f"remember the last N answers per worker (default {DEFAULT_CACHE_ENTRIES}; "
        "0 turns the cache off)",
    )


COMMAND = Command(
    name="serve",
    summary="serve policies over HTTP: evaluate, liquidation-price, compare (JSON)",
    description=textwrap.dedent("""\
        Serve the policies over HTTP for other programs: evaluate accounts, quote liquidation
        prices, compare policies.  Answers are the documents `liqpolicy evaluate --format json`
        and `liqpolicy liq-price --format json` print; errors are RFC 9457 problem details with
        the same diagnostics.  The API is described by schemas/openapi.json (served at
        /openapi.json) and docs/server.md.

        Policies load at start; an invalid one stops the start with its diagnostics (exit 2).
        SIGHUP or `POST /v1/reload` (from loopback only) loads them again; a reload with any
        invalid policy keeps serving the previous set and reports why.  SIGTERM or Ctrl-C
        stops the server after the requests in progress are answered."""),
    configure=configure,
    run=run,
    examples=(
        "liqpolicy serve",
        "liqpolicy serve --port 9000 --policies my-policies/ --workers 2",
        "liqpolicy serve --decision-log decisions.jsonl --decision-log-required",
        "liqpolicy serve --host 0.0.0.0 --ssl-certfile cert.pem --ssl-keyfile key.pem",
        "liqpolicy log verify decisions.jsonl",
        "curl -s localhost:8080/v1/policies",
        "curl -s -H 'Content-Type: application/json' -d @account.json "
        "localhost:8080/v1/policies/my-venue/evaluate",
    ),
)
