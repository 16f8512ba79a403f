"""The pipelining HTTP client against receivers that keep the connection, close it, or are not there."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flexmeter.contextbroker.subscriptions.pipeline import PipelinedConnection, Request
from tests.contextbroker.subscriptions.conftest import Receiver
from tests.support.processes import free_port


class _Http10(BaseHTTPRequestHandler):
    """HTTP/1.0: one request per connection, the body ends when the connection closes."""

    seen: list[bytes] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        _Http10.seen.append(self.rfile.read(length))
        self.send_response(201)
        self.end_headers()
        self.wfile.write(b"created, no length")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http10() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Http10)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _requests(path: str, n: int) -> list[Request]:
    return [Request("POST", path, {"Content-Type": "text/plain"}, str(i).encode()) for i in range(n)]


def test_pipelined_in_order_on_keep_alive(receiver: Receiver) -> None:
    port = int(receiver.url.rsplit(":", 1)[1])
    conn = PipelinedConnection("127.0.0.1", port, 5.0)
    try:
        assert conn.exchange(_requests("/pipe/a", 20)) == [200] * 20
        assert conn.exchange(_requests("/status/503/pipe", 3)) == [503] * 3
    finally:
        conn.close()
    assert [r.body for r in receiver.at("/pipe/a")] == [str(i).encode() for i in range(20)]


def test_receiver_closing_each_connection(http10: int) -> None:
    _Http10.seen.clear()
    conn = PipelinedConnection("127.0.0.1", http10, 5.0)
    try:
        assert conn.exchange(_requests("/x", 4)) == [201] * 4
    finally:
        conn.close()
    assert _Http10.seen == [b"0", b"1", b"2", b"3"]


def test_nobody_listening() -> None:
    conn = PipelinedConnection("127.0.0.1", free_port(), 2.0)
    results = conn.exchange(_requests("/x", 3))
    assert len(results) == 3 and all(isinstance(r, OSError) for r in results)
