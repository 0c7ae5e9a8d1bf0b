#!/usr/bin/env python
"""How many evaluate requests per second does `liqpolicy serve` answer?  Run by hand, never a test.

    python benchmarks/serve.py [--workers 2] [--clients 32] [--duration 10] [--scenario both]
                               [--client-processes 1] [--markdown] [--url URL]

Starts `liqpolicy serve` on a free loopback port (or uses `--url`, a server already running on
a loopback address), then drives `POST /v1/policies/binance-usdm/evaluate` from N concurrent
keep-alive connections for a fixed time, and prints requests per second and latency
percentiles.  Scenarios:

  distinct   every request a different account (sizes, prices, sides, margin modes vary), with
             the server's decision cache off: what the engine costs per decision
  repeated   the same account again and again, with the decision cache on (its default): what
             the HTTP layer costs when the answer is known (a dashboard polling accounts)

The load generator is asyncio on raw sockets in `--client-processes` processes; on a small
machine it competes with the server for the same cores, which the table's CPU column shows.
Everything is bounded: the duration is capped at 300 s, only loopback addresses are used, and
the server started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import json
import multiprocessing
import os
import platform
import random
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
POLICY = "binance-usdm"
PATH = f"/v1/policies/{POLICY}/evaluate"
MAX_DURATION = 300.0


def distinct_accounts(count: int, seed: int = 7) -> list[bytes]:
    """`count` different, valid accounts for binance-usdm (no two bodies alike)."""
    rng = random.Random(seed)
    bodies = []
    for index in range(count):
        symbol, price = rng.choice([("BTCUSDT", 60000), ("ETHUSDT", 3000)])
        entry = price * rng.uniform(0.8, 1.2)
        mark = entry * rng.uniform(0.85, 1.15)
        side = rng.choice(["long", "short"])
        mode = rng.choice(["isolated", "cross"])
        leverage = rng.choice([2, 3, 5, 10, 20, 25, 50])
        size = round(rng.uniform(0.01, 5.0) * (60000 / price), 3)
        position = {
            "symbol": symbol,
            "side": side,
            "size": f"{size:.3f}",
            "entry_price": f"{entry:.1f}",
            "margin_mode": mode,
            "leverage": str(leverage),
        }
        notional = size * entry
        wallet = notional / leverage * rng.uniform(1.0, 3.0)
        account = {
            "id": f"bench-{index}",
            "wallet_balance": f"{wallet:.2f}",
            "positions": [position],
            "market": {
                symbol: {
                    "mark_price": f"{mark:.1f}",
                    "last_price": f"{mark:.1f}",
                    "index_price": f"{mark:.1f}",
                    "previous_mark_price": f"{mark:.1f}",
                    "book_depth": "2500000",
                    "average_book_depth": "5000000",
                }
            },
        }
        bodies.append(json.dumps(account, separators=(",", ":")).encode())
    return bodies


def alice() -> bytes:
    return (ROOT / "examples" / "alice.json").read_bytes()


# -- the load generator ------------------------------------------------------------------------


@dataclass
class ClientResult:
    latencies: list[float] = field(default_factory=list)  # seconds, one per answered request
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # connections that failed (refused, reset, malformed answer)
    answered: int = 0  # every answer, warm-up included (for CPU per request)
    cpu: float = 0.0  # CPU seconds this client process used


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


async def _connection(
    *,
    host: str,
    port: int,
    bodies: list[bytes],
    offset: int,
    step: int,
    warm_until: float,
    until: float,
    result: ClientResult,
) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        result.errors += 1
        return
    heads: dict[int, bytes] = {}
    index = offset
    try:
        while True:
            now = time.perf_counter()
            if now >= until:
                break
            body = bodies[index % len(bodies)]
            index += step
            head = heads.get(len(body))
            if head is None:
                head = (
                    f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                heads[len(body)] = head
            writer.write(head + body)
            response_head = await reader.readuntil(b"\r\n\r\n")
            found = _CONTENT_LENGTH.search(response_head)
            if found is None:
                result.errors += 1
                break
            await reader.readexactly(int(found.group(1)))
            done = time.perf_counter()
            result.answered += 1
            if now >= warm_until:
                status = int(response_head[9:12])
                result.statuses[status] = result.statuses.get(status, 0) + 1
                result.latencies.append(done - now)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        result.errors += 1
    finally:
        writer.close()


async def _drive(
    *,
    host: str,
    port: int,
    bodies: list[bytes],
    connections: int,
    first: int,
    total: int,
    warm_until: float,
    until: float,
) -> ClientResult:
    result = ClientResult()
    await asyncio.gather(
        *(
            _connection(
                host=host,
                port=port,
                bodies=bodies,
                offset=first + i,
                step=total,
                warm_until=warm_until,
                until=until,
                result=result,
            )
            for i in range(connections)
        )
    )
    return result


def _client_process(
    args: tuple[str, int, list[bytes], int, int, int, float, float],
) -> ClientResult:
    host, port, bodies, connections, first, total, warm_until, until = args
    start = time.process_time()
    result = asyncio.run(
        _drive(
            host=host,
            port=port,
            bodies=bodies,
            connections=connections,
            first=first,
            total=total,
            warm_until=warm_until,
            until=until,
        )
    )
    result.cpu = time.process_time() - start
    return result


def drive(
    url: str,
    bodies: list[bytes],
    *,
    clients: int,
    processes: int,
    warmup: float,
    duration: float,
) -> tuple[ClientResult, float]:
    """Run the load; return the merged result and the measured wall time."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    processes = max(1, min(processes, clients))
    begin = time.perf_counter() + 0.5  # let every process start before the clock runs
    warm_until = begin + warmup
    until = warm_until + duration
    shares = [
        clients // processes + (1 if i < clients % processes else 0) for i in range(processes)
    ]
    jobs, first = [], 0
    for share in shares:
        jobs.append((host, port, bodies, share, first, clients, warm_until, until))
        first += share
    if processes == 1:
        results = [_client_process(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = pool.map(_client_process, jobs)
    merged = ClientResult()
    for part in results:
        merged.latencies.extend(part.latencies)
        merged.errors += part.errors
        merged.answered += part.answered
        merged.cpu += part.cpu
        for status, count in part.statuses.items():
            merged.statuses[status] = merged.statuses.get(status, 0) + count
    return merged, duration


# -- the server --------------------------------------------------------------------------------


def start_server(workers: int, cache: int) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "engine",
        "serve",
        "--port",
        "0",
        "--workers",
        str(workers),
        "--cache",
        str(cache),
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        found = re.search(r"http://[^\s]+", line)
        if found:
            return process, found.group(0)
    process.kill()
    raise SystemExit("benchmarks/serve.py: the server did not start")


def stop_server(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its children (Linux /proc), 0 when unknown."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        return 0.0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


# -- reporting ---------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    workers: int
    clients: int
    requests: int
    rate: float
    p50: float
    p90: float
    p99: float
    worst: float
    non_2xx: int
    errors: int
    server_cpu: float  # cores busy in the server, on average
    client_cpu: float  # cores busy in the load generator
    cpu_ms: float  # server CPU milliseconds per answered request


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def run_scenario(name: str, args: argparse.Namespace) -> Row:
    cache = 0 if name == "distinct" else args.cache
    bodies = distinct_accounts(args.accounts) if name == "distinct" else [alice()]
    process = None
    url = args.url
    if url is None:
        process, url = start_server(args.workers, cache)
    try:
        before = server_cpu(process.pid) if process else 0.0
        result, seconds = drive(
            url,
            bodies,
            clients=args.clients,
            processes=args.client_processes,
            warmup=args.warmup,
            duration=args.duration,
        )
        used = (server_cpu(process.pid) - before) if process else 0.0
    finally:
        if process is not None:
            stop_server(process)
    latencies = sorted(result.latencies)
    ms = 1000.0
    return Row(
        name,
        args.workers,
        args.clients,
        len(latencies),
        len(latencies) / seconds,
        percentile(latencies, 0.50) * ms,
        percentile(latencies, 0.90) * ms,
        percentile(latencies, 0.99) * ms,
        (latencies[-1] if latencies else float("nan")) * ms,
        sum(n for s, n in result.statuses.items() if not 200 <= s < 300),
        result.errors,
        used / (seconds + args.warmup + 0.5),
        result.cpu / (seconds + args.warmup + 0.5),
        used / result.answered * 1000 if result.answered and used else float("nan"),
    )


HEADERS = (
    "scenario",
    "workers",
    "clients",
    "requests",
    "req/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "non-2xx",
    "errors",
    "server CPU",
    "CPU ms/req",
    "client CPU",
)


def cells(row: Row) -> list[str]:
    return [
        row.scenario,
        str(row.workers),
        str(row.clients),
        str(row.requests),
        f"{row.rate:,.0f}",
        f"{row.p50:.1f}",
        f"{row.p90:.1f}",
        f"{row.p99:.1f}",
        f"{row.worst:.1f}",
        str(row.non_2xx),
        str(row.errors),
        f"{row.server_cpu:.2f}",
        f"{row.cpu_ms:.3f}",
        f"{row.client_cpu:.2f}",
    ]


def table(rows: list[Row], markdown: bool) -> str:
    data = [list(HEADERS)] + [cells(r) for r in rows]
    widths = [max(len(r[i]) for r in data) for i in range(len(HEADERS))]
    if markdown:
        lines = [
            "| " + " | ".join(c.ljust(w) for c, w in zip(data[0], widths, strict=True)) + " |",
            "| " + " | ".join("-" * w for w in widths) + " |",
        ]
        lines += [
            "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in data[1:]
        ]
        return "\n".join(lines)
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in data]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        one, five, fifteen = os.getloadavg()
        load = f", load average {one:.1f} {five:.1f} {fifteen:.1f} (other work on the machine)"
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.release()}, "
        f"{datetime.date.today().isoformat()}{load}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="server worker processes (default: the number of CPUs)",
    )
    parser.add_argument("--clients", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=1,
        help="processes the connections are spread over (default 1)",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds measured per scenario"
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of load before measuring"
    )
    parser.add_argument("--scenario", choices=("distinct", "repeated", "both"), default="both")
    parser.add_argument("--accounts", type=int, default=5000, help="distinct accounts generated")
    parser.add_argument("--cache", type=int, default=1024, help="server decision cache (repeated)")
    parser.add_argument("--url", help="benchmark a server already running at this loopback URL")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = parser.parse_args(argv)
    args.duration = min(max(args.duration, 1.0), MAX_DURATION)
    args.warmup = min(max(args.warmup, 0.0), 60.0)
    args.clients = max(1, min(args.clients, 1000))
    if args.url is not None:
        host = urlsplit(args.url).hostname or ""
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            parser.error("--url must be a loopback address (127.0.0.0/8, ::1 or localhost)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * args.clients + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * args.clients + 64), hard))
    scenarios = ["distinct", "repeated"] if args.scenario == "both" else [args.scenario]
    rows = []
    for name in scenarios:
        print(
            f"running {name}: {args.clients} clients, {args.workers} worker(s), "
            f"{args.warmup:g} s warm-up + {args.duration:g} s ...",
            file=sys.stderr,
            flush=True,
        )
        rows.append(run_scenario(name, args))
    print(machine())
    print(table(rows, args.markdown))
    for row in rows:
        if row.non_2xx or row.errors:
            print(
                f"warning: {row.scenario}: {row.non_2xx} non-2xx answers, "
                f"{row.errors} connection errors"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
