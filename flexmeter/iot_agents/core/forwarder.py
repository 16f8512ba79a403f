"""Drains the outbox into the broker with ``/v2/op/update`` (append), in order, with retries and back-off.

One thread, oldest rows first, so a retry never lets a newer value overtake an older one. A batch is
bounded by entity count and bytes, and lingers a few tens of milliseconds to coalesce when traffic is light.
A connection failure or 5xx/429 keeps the rows and backs off exponentially (capped); a 4xx is bisected down
to the single entity the broker rejects, which goes to the dead letters with the broker's reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from itertools import groupby

from flexmeter.iot_agents.core.metrics import AgentMetrics
from flexmeter.iot_agents.core.outbox import Outbox, OutboxRow
from flexmeter.ngsi import FiwareHeaders, NgsiClient
from flexmeter.ngsi.errors import NgsiConnectionError, NgsiResponseError

log = logging.getLogger(__name__)


class _Retry(Exception):
    """The broker is unreachable or overloaded: keep the rows, back off."""


class Forwarder:
    def __init__(self, outbox: Outbox, ngsi_url: str, metrics: AgentMetrics, *, max_entities: int = 1000,
                 max_bytes: int = 900_000, linger: float = 0.02, min_backoff: float = 0.1,
                 max_backoff: float = 5.0, token: str | None = None,
                 on_forwarded: Callable[[list[OutboxRow]], None] | None = None) -> None:
        self.outbox = outbox
        self.client = NgsiClient(ngsi_url, timeout=30)
        self.metrics = metrics
        self.max_entities = max_entities
        self.max_bytes = max_bytes
        self.linger = linger
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.token = token
        self.on_forwarded = on_forwarded
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, name="iota-forwarder", daemon=True)
        self.backoff = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=15)
        self.client.close()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.5)
            self._wake.clear()
            try:
                self.drain()
            except Exception:
                log.exception("forwarder error")
                self._sleep(1.0)

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def drain(self) -> None:
        """Send until the outbox is empty, or back off on failure (and return to wait)."""
        first = True
        while not self._stop.is_set():
            rows = self.outbox.peek(self.max_entities)
            if not rows:
                return
            if first and len(rows) < self.max_entities and self.linger > 0:
                oldest = rows[0].received
                wait = self.linger - (time.time() - oldest)
                if wait > 0:
                    self._sleep(wait)
                    rows = self.outbox.peek(self.max_entities)
            first = False
            try:
                self._send_rows(rows)
            except _Retry as exc:
                self.backoff = min(self.max_backoff, max(self.min_backoff, self.backoff * 2))
                self.outbox.bump_attempts([r.id for r in rows])
                self.metrics.retried.inc(len(rows), family=rows[0].family)
                log.warning("broker unavailable (%s); %d updates kept, retrying in %.1f s", exc, len(rows),
                            self.backoff)
                self._sleep(self.backoff)
                return
            self.backoff = 0.0

    def _send_rows(self, rows: list[OutboxRow]) -> None:
        chunk: list[OutboxRow] = []
        size = 0
        for row in rows:
            if chunk and (size + len(row.entity) > self.max_bytes):
                self._send_tenants(chunk)
                chunk, size = [], 0
            chunk.append(row)
            size += len(row.entity) + 1
        if chunk:
            self._send_tenants(chunk)

    def _send_tenants(self, rows: list[OutboxRow]) -> None:
        # Keep order within a tenant; group consecutive rows of the same tenant into one request.
        for (service, path), group in groupby(rows, key=lambda r: (r.service, r.service_path)):
            self._send(service, path, list(group))

    def _send(self, service: str, path: str, rows: list[OutboxRow]) -> None:
        body = '{"actionType":"append","entities":[' + ",".join(r.entity for r in rows) + "]}"
        headers = FiwareHeaders(service or None, path or None, self.token)
        try:
            self.client.request("POST", "/v2/op/update", data=body.encode(), headers=headers,
                                extra_headers={"Content-Type": "application/json"})
        except NgsiConnectionError as exc:
            raise _Retry(str(exc)) from exc
        except NgsiResponseError as exc:
            if exc.status >= 500 or exc.status in (408, 429):
                raise _Retry(f"{exc.status} {exc.error}") from exc
            if len(rows) == 1:
                reason = f"broker rejected the update: {exc.status} {exc.error}: {exc.description}".strip()
                log.warning("dead letter (forward): %s", reason)
                self.outbox.to_dead_letter(rows[0], f"NGSI_{exc.status}", reason)
                self.metrics.dead_lettered.inc(family=rows[0].family)
                return
            half = len(rows) // 2
            self._send(service, path, rows[:half])
            self._send(service, path, rows[half:])
            return
        self.outbox.delete([r.id for r in rows])
        now = time.time()
        self.metrics.delivered([now - r.received for r in rows])
        for family, fam_rows in groupby(rows, key=lambda r: r.family):
            self.metrics.forwarded.inc(len(list(fam_rows)), family=family)
        if self.on_forwarded is not None:
            self.on_forwarded(rows)
