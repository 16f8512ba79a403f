"""Fixtures for the subscription tests: a real HTTP receiver that records every notification."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, Response, request

from flexmeter.serving import BackgroundServer


@dataclass
class Received:
    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records requests to any path; ``/status/<code>`` answers that code, ``/sleep/<s>`` waits first."""

    def __init__(self) -> None:
        self.items: list[Received] = []
        self._cond = threading.Condition()
        app = Flask("receiver")

        @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        def _any(path: str) -> Response:
            item = Received(request.method, "/" + path, dict(request.args), dict(request.headers),
                            request.get_data(), time.time())
            status = 200
            parts = path.split("/")
            if len(parts) >= 2 and parts[0] == "status":
                status = int(parts[1])
            if len(parts) >= 2 and parts[0] == "sleep":
                time.sleep(float(parts[1]))
            with self._cond:
                self.items.append(item)
                self._cond.notify_all()
            return Response("", status=status)

        self.server = BackgroundServer(app)
        self.url = self.server.url

    def at(self, path: str) -> list[Received]:
        with self._cond:
            return [i for i in self.items if i.path == path]

    def wait(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [i for i in self.items if i.path == path]
                if len(got) >= count:
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} notifications on {path}, got {len(got)}")
                self._cond.wait(remaining)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    recv = Receiver()
    recv.server.start()
    try:
        yield recv
    finally:
        recv.server.stop()
