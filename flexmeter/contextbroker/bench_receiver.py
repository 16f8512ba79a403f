"""The notification receiver of ``flexmeter bench broker``, run as its own process.

Why its own process: in the benchmark's process it shared one GIL with the client threads, so the
receiver's speed (and with it "notifications delivered/s") depended on how busy the client was.
Why asyncio and not waitress by default: a subscription's notifications go over one connection one
after the other (Orion's order), so the receiver's time per request caps the rate; a real receiver
meant for notification rates (Orion's own accumulator, a Go or Node service) answers in tens of
microseconds, waitress takes 0.3-1 ms. ``--server waitress`` serves the same counting app on waitress
for comparison. Both understand HTTP/1.1 keep-alive and pipelining.

Control routes (any other request counts as a notification): ``GET /_stats`` → ``{"notifications",
"entities"}``; ``POST /_latency/start`` starts recording update→notification latencies (from each
notified entity's ``ts`` attribute, keyValues); ``POST /_latency/take`` returns and stops them.
Prints ``ready on http://HOST:PORT``; ends on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from flexmeter.serving import announce_ready

_NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
_MAX_HEAD = 64 * 1024


class Counter:
    """What the receiver saw: notifications, entities, and (while recording) latencies in seconds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.notifications = 0
        self.entities = 0
        self.latencies: list[float] | None = None

    def notification(self, body: bytes) -> None:
        now = time.time()
        try:
            data = orjson.loads(body).get("data", []) if body else []
        except (orjson.JSONDecodeError, AttributeError):
            data = []
        with self.lock:
            self.notifications += 1
            self.entities += len(data)
            if self.latencies is not None:
                self.latencies.extend(now - e["ts"] for e in data if isinstance(e, dict)
                                      and isinstance(e.get("ts"), (int, float)))

    def control(self, method: str, path: str) -> bytes | None:
        """The JSON answer of a control route, None if ``path`` is not one."""
        with self.lock:
            if path == "/_stats":
                return orjson.dumps({"notifications": self.notifications, "entities": self.entities})
            if path == "/_latency/start" and method == "POST":
                self.latencies = []
                return b"{}"
            if path == "/_latency/take" and method == "POST":
                taken, self.latencies = self.latencies or [], None
                return orjson.dumps(taken)
        return None


def _json_response(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


class _Protocol(asyncio.Protocol):
    """HTTP/1.1 requests with Content-Length (what the broker sends), pipelined or not."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        out: list[bytes] = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_HEAD and self.transport is not None:
                    self.transport.close()
                break
            head = bytes(self.buf[:end]).decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            if len(self.buf) < end + 4 + length:
                break
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            method, _, rest = head.partition(" ")
            path = rest.split(" ", 1)[0]
            answer = self.counter.control(method, path) if path.startswith("/_") else None
            if answer is None:
                self.counter.notification(body)
                out.append(_NO_CONTENT)
            else:
                out.append(_json_response(answer))
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


def _wsgi(counter: Counter) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        path = environ.get("PATH_INFO", "")
        answer = counter.control(environ.get("REQUEST_METHOD", "GET"), path) if path.startswith("/_") else None
        if answer is None:
            counter.notification(body)
            start_response("204 No Content", [("Content-Length", "0")])
            return [b""]
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
        return [answer]
    return app


def _serve_asyncio(host: str, port: int, counter: Counter) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Protocol(counter), host, port)
        stopped = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
        announce_ready(f"http://{host}:{server.sockets[0].getsockname()[1]}")
        await stopped.wait()
        server.close()

    asyncio.run(main())


def main(argv: list[str]) -> None:
    server = argv[0] if argv else "asyncio"
    counter = Counter()
    if server == "waitress":
        from flexmeter import keepalive
        from flexmeter.serving import serve

        keepalive.install()
        serve(_wsgi(counter), "127.0.0.1", 0, threads=4)
    else:
        _serve_asyncio("127.0.0.1", 0, counter)


if __name__ == "__main__":
    main(sys.argv[1:])
