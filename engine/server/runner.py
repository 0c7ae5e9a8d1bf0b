"""Running the service: one process, or a supervisor with pre-forked worker processes.

Each process serves with uvicorn (:func:`uvicorn_server`) on a socket bound before: HTTP
parsing, keep-alive, idle timeouts, TLS and graceful shutdown are uvicorn's, the request deadline
and head limits are :mod:`engine.server.protocol`'s.

Evaluation is CPU-bound pure Python, so threads within one process share one core (the GIL).
With ``--workers N`` the supervisor loads the policies, binds the socket, then forks N workers
that inherit both and accept connections from the one listening socket; the kernel hands each
connection to whichever worker accepts first.  The supervisor restarts a worker that dies,
forwards SIGHUP (reload) to every worker, and on SIGTERM or SIGINT stops them, each finishing
its in-flight requests first.  (uvicorn's own `--workers` spawns fresh interpreters and reloads
by restarting them, which would lose the last good policy set on a failed reload.)

Reload: SIGHUP, or `POST /v1/reload`.  The worker that answers the endpoint reloads at once and
reports the outcome; when it succeeded and there are other workers, it signals the supervisor,
which reloads its own copy (used by workers it starts later) and sends SIGHUP to every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from engine.errors import PolicyError
from engine.server.app import Application
from engine.server.asgi import asgi_app
from engine.server.config import ServerConfig
from engine.server.decisions import DecisionLog
from engine.server.metrics import MULTIPROCESS_ENV, Metrics
from engine.server.policies import PolicySet, PolicyStore, load_policy_set
from engine.server.protocol import protocol_for

log = logging.getLogger("liqpolicy.server")

RESTART_DELAY = 1.0  # seconds before restarting a worker that died


def initial_policies(config: ServerConfig) -> PolicySet:
    """Load the policies to serve; raise PolicyError (every diagnostic) when any is invalid."""
    loaded, diagnostics = load_policy_set(config.policies_dir)
    if loaded is None:
        raise PolicyError(diagnostics=diagnostics)
    return loaded


def url_of(sock: socket.socket, *, https: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in str(host) else str(host)
    return f"{'https' if https else 'http'}://{shown}:{port}"


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A TCP socket bound to (host, port) and listening; port 0 picks a free port."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def uvicorn_server(app: Application, config: ServerConfig) -> Any:
    """A uvicorn Server for `app` with the service's limits (not started)."""
    import uvicorn  # noqa: PLC0415  # the `server` extra: only serving needs it

    settings = uvicorn.Config(
        asgi_app(app),
        http=protocol_for(config.max_connections, config.timeout),
        loop="auto",  # uvloop when installed
        lifespan="off",
        timeout_keep_alive=max(1, round(config.timeout)),
        timeout_graceful_shutdown=max(1, round(config.shutdown_grace)),
        ssl_certfile=str(config.ssl_certfile) if config.ssl_certfile else None,
        ssl_keyfile=str(config.ssl_keyfile) if config.ssl_keyfile else None,
        server_header=False,  # ours says liqpolicy/<version>
        access_log=False,
        log_config=None,  # our handlers (engine.cli.serve) decide where lines go
        backlog=2048,
    )
    return uvicorn.Server(settings)


class Service:
    """One server in this process: policies, application and uvicorn on a bound socket.

    For tests and programs embedding the service: ``with Service(config) as service:`` serves
    in a background thread at ``service.url`` until the block ends.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        policies: PolicySet | None = None,
        sock: socket.socket | None = None,
        on_reload: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        loaded = policies if policies is not None else initial_policies(config)
        self.store = PolicyStore(loaded, config.policies_dir)
        self.decision_log = (
            DecisionLog(config.decision_log, fsync=config.decision_log_fsync)
            if config.decision_log
            else None
        )
        self.app = Application(
            config,
            self.store,
            decision_log=self.decision_log,
            on_reload=on_reload,
            metrics=metrics if metrics is not None else Metrics.create(),
        )
        self.socket = sock if sock is not None else listening_socket(config.host, config.port)
        self.server = uvicorn_server(self.app, config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    @property
    def url(self) -> str:
        return url_of(self.socket, https=self.config.ssl_certfile is not None)

    def serve_forever(self) -> None:
        """Serve until :meth:`stop` or SIGTERM/SIGINT (in the main thread); then close."""
        try:
            self.server.run(sockets=[self.socket])
        finally:
            if self.decision_log is not None:
                self.decision_log.close()

    def start(self) -> Service:
        """Serve in a daemon thread; returns once the server accepts connections."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="liqpolicy-serve", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within 30 s")
            time.sleep(0.01)
        return self

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight requests finish (up to the grace period), close."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=(self.config.shutdown_grace if grace is None else grace) + 5)
        with contextlib.suppress(OSError):
            self.socket.close()

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _run_service(service: Service) -> int:
    """Serve in this process's main thread: SIGHUP reloads (off the event loop), SIGTERM and
    SIGINT stop gracefully (uvicorn's handlers)."""

    def reload(signum: int, frame: FrameType | None) -> None:
        threading.Thread(
            target=service.app.reload_from_signal, name="liqpolicy-reload", daemon=True
        ).start()

    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, reload)
    # uvicorn raises the stop signal again once it has stopped, to the handler it found:
    # a no-op here, so the process ends with its exit code instead of dying of the signal.
    signal.signal(signal.SIGTERM, _ignore)
    signal.signal(signal.SIGINT, _ignore)
    service.serve_forever()
    return 0


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A signal handled already (see _run_service)."""


def serve(config: ServerConfig, *, announce: Callable[[str], None] | None = None) -> int:
    """Run `liqpolicy serve` until SIGTERM/SIGINT; return the exit code.

    Raises PolicyError when the policies do not load, OSError when the address cannot be bound.
    """
    policies = initial_policies(config)
    # The loaded policies live as long as the process: keep them out of every garbage
    # collection (and, with workers, their pages shared after the fork).
    gc.collect()
    gc.freeze()
    sock = listening_socket(config.host, config.port)
    workers = max(1, config.workers)
    if announce is not None:
        announce(
            f"listening on {url_of(sock, https=config.ssl_certfile is not None)} "
            f"({len(policies)} policies from {policies.source}, "
            f"{workers} worker{'s' if workers != 1 else ''}, pid {os.getpid()})"
        )
    if workers == 1:
        return _run_service(Service(config, policies=policies, sock=sock))
    metrics_dir = tempfile.mkdtemp(prefix="liqpolicy-metrics-")
    os.environ[MULTIPROCESS_ENV] = metrics_dir  # before any worker imports prometheus_client
    try:
        return _Supervisor(config, policies, sock, workers).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


class _Supervisor:
    """Starts and watches the worker processes; forwards reloads; stops them on request."""

    def __init__(
        self, config: ServerConfig, policies: PolicySet, sock: socket.socket, workers: int
    ) -> None:
        self.config = config
        self.store = PolicyStore(policies, config.policies_dir)
        self.sock = sock
        self.workers = workers
        self.children: set[int] = set()
        self.stopping = False
        self.reload_requested = False

    def _spawn(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                code = self._worker()
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        self.children.add(pid)

    def _worker(self) -> int:
        # Until its own handlers are installed, a reload request must not end the worker.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        supervisor = os.getppid()

        def tell_supervisor() -> None:
            os.kill(supervisor, signal.SIGHUP)

        service = Service(
            self.config, policies=self.store.current, sock=self.sock, on_reload=tell_supervisor
        )
        log.info("worker %d serving", os.getpid())
        asyncio.set_event_loop_policy(None)  # a fresh loop in the child, never the parent's
        return _run_service(service)

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.reload_requested = True

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        for _ in range(self.workers):
            self._spawn()
        restart_at: list[float] = []
        while not self.stopping:
            time.sleep(0.1)
            if self.reload_requested:
                self.reload_requested = False
                outcome = self.store.reload()
                if not outcome.ok:
                    log.error("SIGHUP: reload failed in the supervisor; workers report why")
                for pid in list(self.children):
                    _signal(pid, signal.SIGHUP)
            for pid in self._reap():
                _forget_metrics(pid)
                log.error("worker %d exited; starting another in %.0f s", pid, RESTART_DELAY)
                restart_at.append(time.monotonic() + RESTART_DELAY)
            due = [t for t in restart_at if t <= time.monotonic()]
            for t in due:
                restart_at.remove(t)
                self._spawn()
        return self._stop_all()

    def _reap(self) -> list[int]:
        gone = []
        while self.children:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in self.children:
                self.children.discard(pid)
                gone.append(pid)
        return gone

    def _stop_all(self) -> int:
        for pid in list(self.children):
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.shutdown_grace + 5
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        for pid in list(self.children):
            log.warning("worker %d did not stop in time; killing it", pid)
            _signal(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.sock.close()
        return 0


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _forget_metrics(pid: int) -> None:
    """A dead worker's gauges leave the multiprocess metrics (its counters stay counted)."""
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess  # noqa: PLC0415  # only with workers

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # untyped module
