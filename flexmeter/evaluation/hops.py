"""Counting readings at every hop: the agent's and the service's /metrics, a local receiver subscribed to
the broker, and the time series' own counts (QuantumLeap's ``aggrMethod=count``)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from flexmeter.serving import BackgroundServer


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` in Prometheus text whose labels include ``labels``."""
    total = 0.0
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        rest = line[len(name):]
        if not (rest.startswith("{") or rest.startswith(" ")):
            continue
        if all(label in rest for label in wanted):
            try:
                total += float(line.rsplit(" ", 1)[1])
            except ValueError:
                continue
    return total


def scrape(url: str, session: requests.Session | None = None) -> str | None:
    """``url``/metrics as text, or None when the component has no such endpoint (a real GE)."""
    try:
        response = (session or requests).get(f"{url}/metrics", timeout=10)
    except requests.RequestException:
        return None
    if response.status_code != 200 or ("# TYPE" not in response.text and "_total" not in response.text):
        return None
    return response.text


def iso_ms(text: str) -> int:
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass
class BrokerReceiver:
    """A local NGSI-v2 subscriber: what the broker holds, reading by reading, and when it got there.

    Subscribed to the workload's entities with ``attrs: [TimeInstant]``; a (entity, TimeInstant) pair is
    one reading in the broker; its arrival time is when the notification reached us (an upper bound of
    the broker's own arrival, including its notification queue).
    """

    host: str = "127.0.0.1"
    seen: dict[tuple[str, int], float] = field(default_factory=dict)
    duplicates: int = 0
    notifications: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: BackgroundServer | None = None

    def _app(self) -> Any:
        from flask import Flask, Response, request

        app = Flask("flexmeter-e2e-receiver")

        @app.post("/notify")
        def notify() -> Response:
            now = time.time()
            body = request.get_json(force=True, silent=True) or {}
            pairs = []
            for entity in body.get("data", []):
                attr = entity.get("TimeInstant")
                value = attr.get("value") if isinstance(attr, dict) else attr
                if isinstance(value, str):
                    try:
                        pairs.append((str(entity.get("id")), iso_ms(value)))
                    except ValueError:
                        continue
            with self._lock:
                self.notifications += 1
                for pair in pairs:
                    if pair in self.seen:
                        self.duplicates += 1
                    else:
                        self.seen[pair] = now
            return Response(status=204)

        return app

    def start(self) -> BrokerReceiver:
        self._server = BackgroundServer(self._app(), host=self.host, threads=4).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"{self._server.url}/notify"

    def count(self) -> int:
        with self._lock:
            return len(self.seen)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


def timeseries_counts(ql_url: str, headers: dict[str, str], entity_type: str, attr: str,
                      session: requests.Session | None = None) -> dict[str, int]:
    """Rows per entity in the time series (QuantumLeap ``aggrMethod=count``: one value per entity)."""
    http = session or requests.Session()
    response = http.get(f"{ql_url}/v2/types/{entity_type}/attrs/{attr}", headers=headers, timeout=120,
                        params={"aggrMethod": "count"})
    if response.status_code == 404:
        return {}
    response.raise_for_status()
    counts: dict[str, int] = {}
    for entity in response.json().get("entities", []):
        values = entity.get("values") or [0]
        counts[str(entity["entityId"])] = int(values[0] or 0)
    return counts
