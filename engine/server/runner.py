"""Running the service: one process, or a supervisor with pre-forked worker processes.

Evaluation is CPU-bound pure Python, so threads within one process share one core (the GIL).
With ``--workers N`` the supervisor loads the policies, binds the socket, then forks N workers
that inherit both and accept connections from the one listening socket; the kernel hands each
connection to whichever worker accepts first.  The supervisor restarts a worker that dies,
forwards SIGHUP (reload) to every worker, and on SIGTERM or SIGINT stops them, each finishing
its in-flight requests first.

Reload: SIGHUP, or `POST /v1/reload`.  The worker that answers the endpoint reloads at once and
reports the outcome; when it succeeded and there are other workers, it signals the supervisor,
which reloads its own copy (used by workers it starts later) and sends SIGHUP to every worker.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from engine.errors import PolicyError
from engine.server.app import Application
from engine.server.config import ServerConfig
from engine.server.decisions import DecisionLog
from engine.server.http import Server, listening_socket
from engine.server.policies import PolicySet, PolicyStore, load_policy_set

log = logging.getLogger("liqpolicy.server")

RESTART_DELAY = 1.0  # seconds before restarting a worker that died


def initial_policies(config: ServerConfig) -> PolicySet:
    """Load the policies to serve; raise PolicyError (every diagnostic) when any is invalid."""
    loaded, diagnostics = load_policy_set(config.policies_dir)
    if loaded is None:
        raise PolicyError(diagnostics=diagnostics)
    return loaded


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in str(host) else str(host)
    return f"http://{shown}:{port}"


class Service:
    """One server in this process: policies, application and HTTP server on a bound socket.

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
    ) -> None:
        self.config = config
        loaded = policies if policies is not None else initial_policies(config)
        self.store = PolicyStore(loaded, config.policies_dir)
        self.decision_log = DecisionLog(config.decision_log) if config.decision_log else None
        self.app = Application(
            config, self.store, decision_log=self.decision_log, on_reload=on_reload
        )
        self.socket = sock if sock is not None else listening_socket(config.host, config.port)
        self.httpd = Server(self.socket, self.app, config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    @property
    def url(self) -> str:
        return url_of(self.socket)

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> Service:
        """Serve in a daemon thread; returns at once."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="liqpolicy-serve", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight requests finish (up to `grace` seconds), close."""
        self.httpd.shutdown()
        if not self.httpd.wait_idle(self.config.shutdown_grace if grace is None else grace):
            log.warning("stopping with requests still in flight")
        self.httpd.server_close()
        if self.decision_log is not None:
            self.decision_log.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _install_worker_signals(service: Service) -> None:
    """SIGHUP reloads, SIGTERM/SIGINT stop gracefully: both off the main thread's loop."""

    def reload(signum: int, frame: FrameType | None) -> None:
        threading.Thread(
            target=service.app.reload_from_signal, name="liqpolicy-reload", daemon=True
        ).start()

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=service.httpd.shutdown, name="liqpolicy-stop", daemon=True).start()

    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, reload)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _run_service(service: Service) -> int:
    _install_worker_signals(service)
    service.serve_forever()
    if not service.httpd.wait_idle(service.config.shutdown_grace):
        log.warning("stopping with requests still in flight")
    service.httpd.server_close()
    if service.decision_log is not None:
        service.decision_log.close()
    return 0


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
            f"listening on {url_of(sock)} ({len(policies)} policies from {policies.source}, "
            f"{workers} worker{'s' if workers != 1 else ''}, pid {os.getpid()})"
        )
    if workers == 1:
        return _run_service(Service(config, policies=policies, sock=sock))
    return _Supervisor(config, policies, sock, workers).run()


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
