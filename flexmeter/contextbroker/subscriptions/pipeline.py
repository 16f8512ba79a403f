"""A minimal keep-alive HTTP/1.1 client for notifications to plain ``http://`` receivers, able to pipeline.

One subscription's notifications must arrive in order, so they cannot be spread over parallel
connections: a subscription gets at most one notification per round trip. Pipelining (RFC 9112
§9.3.2) keeps the order
and overlaps round trips: :meth:`PipelinedConnection.exchange` writes several requests on one
connection, then reads the responses in order. It is on by default (``FLEXMETER_NOTIFY_PIPELINE``, up
to 32 requests in flight, see :class:`senders.HttpSender`): against a keep-alive receiver it roughly
doubles one subscription's rate and halves the notifier's CPU per notification (measured against
waitress and against an asyncio receiver). An earlier measurement found it 30 % slower against
waitress: waitress closed the connection after each 204, so every pipeline broke after its first
response and the rest were resent one by one (see :mod:`flexmeter.keepalive`).
If a connection breaks, the requests without a response are sent again one by one on a
fresh connection (at-least-once, as a retry after a lost response would be).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

MAX_HEADER_BYTES = 64 * 1024
NO_PIPELINE_BACKOFF = 60.0  # seconds
_NO_BODY_STATUSES = frozenset({204, 304})


class ProtocolError(Exception):
    """The receiver's answer is not HTTP/1.x as expected."""


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes | None

    def encode(self, host_header: str) -> bytes:
        body = self.body or b""
        return _head(self.method, self.target, host_header, tuple(self.headers.items())) \
            + str(len(body)).encode() + b"\r\n\r\n" + body


_HEAD_CACHE: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], bytes] = {}
_HEAD_CACHE_MAX = 512


def _head(method: str, target: str, host_header: str, headers: tuple[tuple[str, str], ...]) -> bytes:
    """The request line and headers up to ``Content-Length: `` (its value and the body follow).

    Cached: the notifications of one update share their headers (same correlator), so building the
    head once per update instead of once per notification saves most of the encoding work.
    """
    key = (method, target, host_header, headers)
    head = _HEAD_CACHE.get(key)
    if head is None:
        lines = [f"{method} {_clean(target).replace(' ', '%20')} HTTP/1.1", f"Host: {host_header}"]
        for name, value in headers:
            if name.lower() not in ("host", "content-length", "connection", "transfer-encoding"):
                lines.append(f"{_clean(name).replace(':', '')}: {_clean(value)}")
        head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("utf-8")
        if len(_HEAD_CACHE) >= _HEAD_CACHE_MAX:
            _HEAD_CACHE.clear()
        _HEAD_CACHE[key] = head
    return head


def _clean(text: str) -> str:
    """No CR/LF from a template may split a header or the request line (header injection)."""
    return text.replace("\r", " ").replace("\n", " ")


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("connection closed by the receiver")
        self.buf += chunk

    def line(self) -> bytes:
        while True:
            index = self.buf.find(b"\r\n")
            if index >= 0:
                out = bytes(self.buf[:index])
                del self.buf[:index + 2]
                return out
            if len(self.buf) > MAX_HEADER_BYTES:
                raise ProtocolError("header line too long")
            self._fill()

    def exactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            self._fill()
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out

    def until_close(self) -> None:
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        self.buf.clear()


def _read_response(reader: _Reader, method: str) -> tuple[int, bool]:
    """(status, keep_alive) of the next response; its body is read and discarded."""
    while True:
        status_line = reader.line().decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {status_line[:80]!r}")
        version, status = parts[0], int(parts[1])
        headers: dict[str, str] = {}
        size = 0
        while True:
            line = reader.line()
            if not line:
                break
            size += len(line)
            if size > MAX_HEADER_BYTES:
                raise ProtocolError("response headers too large")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            continue  # interim response (100 Continue): the final one follows
        break
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    if method == "HEAD" or status in _NO_BODY_STATUSES:
        return status, keep_alive
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = reader.line().split(b";", 1)[0].strip()
            chunk = int(size_line, 16)
            if chunk == 0:
                while reader.line():  # trailers
                    pass
                break
            reader.exactly(chunk + 2)
        return status, keep_alive
    if "content-length" in headers:
        reader.exactly(int(headers["content-length"]))
        return status, keep_alive
    reader.until_close()
    return status, False


class PipelinedConnection:
    """One keep-alive connection to ``host:port``; :meth:`exchange` pipelines a list of requests."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.host_header = host if port == 80 else f"{host}:{port}"
        self._sock: socket.socket | None = None
        self._reader: _Reader | None = None
        self._no_pipeline_until = 0.0  # a receiver that broke a pipeline gets one request at a time

    def _connect(self) -> _Reader:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._reader = _Reader(sock)
        return self._reader

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._reader = None

    def exchange(self, requests: list[Request]) -> list[int | BaseException]:
        """Each request's status code, or the exception that left it without one; in order."""
        results: list[int | BaseException] = []
        pending = list(requests)
        pipelined = time.monotonic() >= self._no_pipeline_until
        retried = False
        while pending:
            reused = self._reader is not None
            batch = pending if pipelined else pending[:1]
            try:
                reader = self._reader or self._connect()
                assert self._sock is not None
                self._sock.sendall(b"".join(r.encode(self.host_header) for r in batch))
            except OSError as exc:
                self.close()
                if reused and not retried:
                    retried = True  # a stale keep-alive connection: once more on a fresh one
                    continue
                results.extend([exc] * len(pending))
                return results
            answered = 0
            try:
                for request in batch:
                    status, keep_alive = _read_response(reader, request.method)
                    results.append(status)
                    answered += 1
                    if not keep_alive:
                        self.close()
                        break
            except TimeoutError as exc:
                self.close()
                # the receiver may still process what it got: no resend, report the timeout
                results.extend([exc] * (len(pending) - answered))
                return results
            except (OSError, ProtocolError, ValueError) as exc:
                self.close()
                if answered == 0 and (not reused or retried):
                    results.append(exc)
                    answered = 1  # this one failed on a fresh connection: give up on it only
                retried = retried or answered == 0
            pending = pending[answered:]
            if pending and 0 < answered < len(batch):
                # (none answered: a stale keep-alive connection, pipelined again on a fresh one)
                # the receiver broke the pipeline (closes after each response, say): one request at a
                # time, for this exchange and for a while, so its requests are not sent twice each time
                pipelined = False
                self._no_pipeline_until = time.monotonic() + NO_PIPELINE_BACKOFF
        return results
