"""`auditor serve`: the scheduler and the HTTP server in one process, and who owns the signals.

The main thread binds the socket (so a port in use is a usage error, exit 2,
before anything starts), starts the scheduler's thread and uvicorn's thread,
and then only waits for a signal. Signal handlers can only live in the main
thread, so they are the service's, not the pipeline's or uvicorn's (both
leave signals alone outside the main thread):

- the first SIGTERM or SIGINT asks the audit under way to stop at its next
  safe point (the run is marked `interrupted`, its reports are written) and
  starts no further audit; the HTTP server keeps answering meanwhile, then
  stops, and the process exits 0;
- a second one ends the process at once (143 or 130), as for `auditor audit`.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn

from auditor.config import Config
from auditor.corpus import iter_corpus_files
from auditor.errors import ConfigError
from auditor.interrupt import EXIT_FOR_SIGNAL
from auditor.serve.app import create_app
from auditor.serve.schedule import Scheduler
from auditor.store import Store

# How long uvicorn gets to finish its open requests once the audit has stopped.
GRACEFUL_SECONDS = 5.0


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one); a ConfigError naming it if that fails."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"--host {host}: cannot listen there: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from exc
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(
    config: Config,
    *,
    every: float,
    host: str,
    port: int,
    quiet: bool = False,
    verbose: bool = False,
    log: Callable[[str], None] | None = None,
) -> int:
    """Run the service until SIGTERM/SIGINT; the exit code (0 after a clean stop)."""
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    quiet_log: Callable[[str], None] = (lambda line: None) if quiet else say
    # Usage errors before anything starts: a missing corpus path, a --db that is not auditor's.
    next(iter_corpus_files(config.paths), None)
    if config.db.exists():
        Store.open_existing(config.db, read_only=True).close()
    sock = bind(host, port)

    scheduler = Scheduler(config, every, log=say, quiet=quiet)
    app = create_app(config.db, scheduler)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="info" if verbose else "warning",
            access_log=verbose,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=int(GRACEFUL_SECONDS),
        )
    )
    http_thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="auditor-http", daemon=True)

    stopping = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if received:
            os.write(2, f"auditor serve: {signal.Signals(signum).name} again: stopped at once\n".encode())
            os._exit(EXIT_FOR_SIGNAL.get(signal.Signals(signum), 130))
        received.append(signum)
        stopping.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in EXIT_FOR_SIGNAL}
    try:
        scheduler.start()
        http_thread.start()
        quiet_log(
            f"auditor serve: listening on {url_of(sock)} "
            f"(an audit every {_every_text(every)}; reports in {config.out}/)"
        )
        while not stopping.wait(0.5):
            if not http_thread.is_alive():
                say("auditor serve: the HTTP server stopped unexpectedly")
                scheduler.stop(signal.SIGTERM)
                scheduler.join()
                return 1
        signum = received[0]
        busy = scheduler.busy
        quiet_log(
            f"auditor serve: {signal.Signals(signum).name}: "
            + ("stopping the audit under way at its next safe point" if busy else "stopping")
        )
        scheduler.stop(signum)
        scheduler.join()
        server.should_exit = True
        http_thread.join(GRACEFUL_SECONDS + 2)
        quiet_log("auditor serve: stopped")
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sock.close()


def _every_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
