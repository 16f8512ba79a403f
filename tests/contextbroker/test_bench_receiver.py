"""The benchmark's receiver process: keep-alive, pipelined notifications counted, control routes.

Both servers (asyncio and waitress with the 204 keep-alive fix) must keep one connection for a
pipelined run, or the benchmark would measure reconnections instead of the broker.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from flexmeter.contextbroker.subscriptions.pipeline import PipelinedConnection, Request


@pytest.fixture(params=["asyncio", "waitress"])
def receiver_port(request: pytest.FixtureRequest) -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-m", "flexmeter.contextbroker.bench_receiver", request.param],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        match = re.search(r"ready on http://[\d.]+:(\d+)", proc.stdout.readline())
        assert match, "no ready line"
        yield int(match.group(1))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _notification(i: int, ts: float) -> Request:
    body = json.dumps({"subscriptionId": "s", "data": [{"id": f"E{i}", "type": "T", "ts": ts},
                                                         {"id": f"F{i}", "type": "T"}]}).encode()
    return Request("POST", "/notify", {"Content-Type": "application/json"}, body)


def test_pipelined_notifications_on_one_connection(receiver_port: int) -> None:
    conn = PipelinedConnection("127.0.0.1", receiver_port, 5.0)
    try:
        assert conn.exchange([Request("POST", "/_latency/start", {}, None)]) == [200]
        assert conn.exchange([_notification(i, 1.0) for i in range(40)]) == [204] * 40
        sock = conn._sock
        assert conn.exchange([_notification(i, 1.0) for i in range(10)]) == [204] * 10
        assert conn._sock is sock and sock is not None  # the same connection throughout
    finally:
        conn.close()
    stats = requests.get(f"http://127.0.0.1:{receiver_port}/_stats", timeout=5).json()
    assert stats == {"notifications": 50, "entities": 100}
    latencies = requests.post(f"http://127.0.0.1:{receiver_port}/_latency/take", timeout=5).json()
    assert len(latencies) == 50 and all(v > 0 for v in latencies)
