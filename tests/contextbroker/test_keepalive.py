"""A 204 keeps the client's HTTP/1.1 connection open (Orion does; waitress alone closes it).

Raw sockets, so that no client library hides a reconnection: every request of a test goes over one
TCP connection, and the connection must still be usable after each 204.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

from tests.contextbroker.conftest import Ngsi


def _exchange(sock: socket.socket, reader: socket.SocketIO, request: bytes) -> tuple[int, dict[str, str]]:
    sock.sendall(request)
    status_line = reader.readline().decode("latin-1")
    headers: dict[str, str] = {}
    while True:
        line = reader.readline().decode("latin-1").strip()
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    if length:
        reader.read(length)
    return int(status_line.split()[1]), headers


def _request(ngsi: Ngsi, method: str, path: str, body: object, connection: str | None = None) -> bytes:
    data = json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {urlsplit(ngsi.base).netloc}",
             f"Fiware-Service: {ngsi.service}", "Content-Type: application/json", f"Content-Length: {len(data)}"]
    if connection:
        lines.append(f"Connection: {connection}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def test_connection_stays_open_after_204(ngsi: Ngsi) -> None:
    parts = urlsplit(ngsi.base)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10) as sock:
        reader = sock.makefile("rb")
        status, _ = _exchange(sock, reader, _request(ngsi, "POST", "/v2/entities",
                                                     {"id": "K1", "type": "T", "p": {"type": "Number", "value": 0}}))
        assert status == 201
        for value in range(1, 4):
            status, headers = _exchange(sock, reader, _request(ngsi, "PATCH", "/v2/entities/K1/attrs",
                                                               {"p": {"type": "Number", "value": value}}))
            assert status == 204
            assert headers.get("connection", "").lower() != "close"
            assert "content-length" not in headers or headers["content-length"] == "0"
        status, headers = _exchange(sock, reader, _request(ngsi, "POST", "/v2/op/update", {
            "actionType": "update", "entities": [{"id": "K1", "type": "T", "p": {"type": "Number", "value": 9}}]}))
        assert status == 204 and headers.get("connection", "").lower() != "close"
        status, headers = _exchange(sock, reader, _request(ngsi, "PATCH", "/v2/entities/K1/attrs",
                                                           {"p": {"type": "Number", "value": 10}}, "close"))
        assert status == 204 and headers.get("connection", "").lower() == "close"
    assert ngsi.request("GET", "/v2/entities/K1/attrs/p/value").json() == 10
