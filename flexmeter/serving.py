"""How every HTTP component of flexmeter is served: waitress, one ready line, clean stop on SIGTERM/SIGINT.

One function so that the broker, the time series, the IoT Agent north/south APIs and the service all
behave alike for the processes (and tests) that start them.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from waitress.server import create_server

from flexmeter import keepalive

log = logging.getLogger(__name__)
# "Task queue depth is N" is logged for every request that waits for a free thread: normal under load,
# and enough of it to drown the real messages of a busy component.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)

SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits (CPython's default: 0.005).

Every server here mixes CPU-bound request work (a 1,000-entity batch) with threads that mostly wait on
sockets (notifier, forwarder, MQTT reader). With the default, each of those gets the GIL back only after up
to 5 ms after every socket call, so under load the I/O threads starve: in ``bench e2e`` the broker's
notifications fell ~10 s behind its writes at 4,000 readings/s, and at 0.001 s they keep up (p95 0.24 s)."""


class _Stop(SystemExit):
    """Raised from the signal handler to leave waitress' loop.

    A SystemExit because waitress' event loop re-raises only ExitNow/KeyboardInterrupt/SystemExit and
    swallows anything else raised while it handles a socket event (the server would keep running).
    """


def announce_ready(url: str) -> None:
    """Print ``ready on URL`` in ONE write: ``print`` writes the text and its newline separately, and a log
    line on a merged stderr could land between them and corrupt the URL a supervisor reads."""
    sys.stdout.write(f"ready on {url}\n")
    sys.stdout.flush()


def serve(
    app: Any,
    host: str,
    port: int,
    *,
    threads: int = 8,
    on_stop: Iterable[Callable[[], None]] = (),
    max_request_body_size: int = 1 << 30,
) -> None:
    """Serve a WSGI app until SIGTERM/SIGINT, then run the ``on_stop`` callbacks in order.

    Prints ``ready on http://HOST:PORT`` to stdout (flushed) once the socket listens; ``port=0`` picks a
    free port and the ready line tells which.
    """
    keepalive.install()
    sys.setswitchinterval(SWITCH_INTERVAL)
    server = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="flexmeter",
        max_request_body_size=max_request_body_size,
        channel_timeout=120,
        connection_limit=1000,
        asyncore_use_poll=True,
    )
    effective_port = int(getattr(server, "effective_port", port))

    def _raise_stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop()

    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    announce_ready(f"http://{host}:{effective_port}")
    try:
        server.run()
    except _Stop:
        log.info("stopping %s:%s", host, effective_port)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        try:
            server.close()
        except Exception:  # closing must never hide the stop callbacks
            log.exception("error while closing the server")
        for callback in on_stop:
            try:
                callback()
            except Exception:  # a failing callback must not skip the others
                log.exception("error in stop callback")
        sys.stdout.flush()


class BackgroundServer:
    """A WSGI app served on a thread: for in-process receivers (benchmarks, notification sinks)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, threads: int = 4) -> None:
        keepalive.install()
        self._server = create_server(app, host=host, port=port, threads=threads, asyncore_use_poll=True)
        self.host = host
        self.port = int(getattr(self._server, "effective_port", port))
        self._thread = threading.Thread(target=self._run, name=f"http-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        # closing the socket from another thread ends run() with an exception
        with contextlib.suppress(Exception):
            self._server.run()

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
