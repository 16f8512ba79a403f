"""Drains the outbox into the broker with ``/v2/op/update`` (append), in order, with retries and back-off.

Oldest rows first, so a retry never lets a newer value overtake an older one. A batch is bounded by entity
count and bytes, and lingers a few tens of milliseconds to coalesce when traffic is light. Up to
``max_in_flight`` batches are in the broker at once (the next one is built while the broker applies the
previous), and a batch is cut before the first row of an entity that an in-flight batch still carries, so
each entity's updates reach the broker in order. A connection failure or 5xx/429 keeps the rows, lets the
in-flight batches finish and backs off exponentially (capped), then resumes from the oldest row; a 4xx is
bisected down to the single entity the broker rejects, which goes to the dead letters with the broker's reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby

import orjson

from flexmeter.iot_agents.core.metrics import AgentMetrics
from flexmeter.iot_agents.core.outbox import Outbox, OutboxRow
from flexmeter.ngsi import FiwareHeaders, NgsiClient
from flexmeter.ngsi.errors import NgsiConnectionError, NgsiResponseError

log = logging.getLogger(__name__)


class _Retry(Exception):
    """The broker is unreachable or overloaded: keep the rows, back off."""


EntityKey = tuple[str, str, str]


def entity_key(row: OutboxRow) -> EntityKey:
    """(tenant, service path, entity id) of a row; the id is sliced from the JSON text the pipeline wrote."""
    text = row.entity
    if text.startswith('{"id":"'):
        end = text.find('"', 7)
        if end > 0 and text[end - 1] != "\\":
            return row.service, row.service_path, text[7:end]
    return row.service, row.service_path, str(orjson.loads(text).get("id"))


@dataclass
class _Flight:
    future: Future[None]
    rows: list[OutboxRow]
    keys: set[EntityKey]


class Forwarder:
    def __init__(self, outbox: Outbox, ngsi_url: str, metrics: AgentMetrics, *, max_entities: int = 1000,
                 max_bytes: int = 900_000, linger: float = 0.02, min_backoff: float = 0.1,
                 max_backoff: float = 5.0, token: str | None = None, max_in_flight: int = 1,
                 on_forwarded: Callable[[list[OutboxRow]], None] | None = None) -> None:
        self.outbox = outbox
        self.ngsi_url = ngsi_url
        self._clients = threading.local()
        self._all_clients: list[NgsiClient] = []
        self._clients_lock = threading.Lock()
        self.max_in_flight = max(1, max_in_flight)
        self._senders = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="iota-forwarder-send")
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
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=15)
        self._senders.shutdown(wait=True)
        with self._clients_lock:
            for client in self._all_clients:
                client.close()

    @property
    def client(self) -> NgsiClient:
        """This thread's NGSI client (batches in flight at once each use their own connection)."""
        client: NgsiClient | None = getattr(self._clients, "client", None)
        if client is None:
            client = self._clients.client = NgsiClient(self.ngsi_url, timeout=30)
            with self._clients_lock:
                self._all_clients.append(client)
        return client

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
        flights: list[_Flight] = []
        after = 0  # the newest row id handed to a sender
        try:
            while not self._stop.is_set():
                if self._land(flights, block=len(flights) >= self.max_in_flight):
                    return
                rows = self.outbox.peek(self.max_entities, after=after)
                if not rows:
                    if not flights:
                        return
                    if self._land(flights, block=True):
                        return
                    continue
                if first and not flights and len(rows) < self.max_entities and self.linger > 0:
                    wait = self.linger - (time.time() - rows[0].received)
                    if wait > 0:
                        self._sleep(wait)
                        rows = self.outbox.peek(self.max_entities)
                first = False
                # with one batch in flight nothing can overtake: the entity keys are not needed
                keys = [entity_key(r) for r in rows] if self.max_in_flight > 1 else []
                busy = set().union(*(f.keys for f in flights))
                if busy:
                    cut = next((i for i, key in enumerate(keys) if key in busy), len(rows))
                    rows, keys = rows[:cut], keys[:cut]
                    if not rows:  # the oldest row waits for its entity's batch in flight
                        if self._land(flights, block=True):
                            return
                        continue
                after = rows[-1].id
                flights.append(_Flight(self._senders.submit(self._send_rows, rows), rows, set(keys)))
        finally:
            self._land(flights, block=True, until_empty=True)

    def _land(self, flights: list[_Flight], *, block: bool, until_empty: bool = False) -> bool:
        """Collect finished batches (waiting for the oldest when ``block``); True after a retryable failure,
        once every batch in flight has finished and the back-off has been slept."""
        failed: list[tuple[list[OutboxRow], _Retry]] = []
        landed = 0
        while flights:
            oldest = flights[0]
            if not (block or until_empty or failed) and not oldest.future.done():
                break
            flights.pop(0)
            try:
                oldest.future.result()
                landed += 1
            except _Retry as exc:
                failed.append((oldest.rows, exc))
            block = False
        if not failed:
            if landed:
                self.backoff = 0.0
            return False
        while flights:  # let the others finish before backing off: order is resumed from the oldest row
            flight = flights.pop(0)
            try:
                flight.future.result()
            except _Retry as exc:
                failed.append((flight.rows, exc))
        self.backoff = min(self.max_backoff, max(self.min_backoff, self.backoff * 2))
        kept = [r for rows, _ in failed for r in rows]
        self.outbox.bump_attempts([r.id for r in kept])
        self.metrics.retried.inc(len(kept), family=kept[0].family)
        log.warning("broker unavailable (%s); %d updates kept, retrying in %.1f s", failed[0][1], len(kept),
                    self.backoff)
        self._sleep(self.backoff)
        return True

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
