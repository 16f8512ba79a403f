"""Results out: the outbox (SQLite) drained to the broker in batched ``/v2/op/update`` (append) requests.

A result is in the outbox in the same transaction that computed it, so a restart or a broker outage loses
nothing; an entity recomputed before it was sent is sent once, in its latest state (the outbox is keyed by
entity id). Failed batches are retried with back-off; a batch the broker refuses as invalid (4xx) is
retried entity by entity so one bad entity cannot block the others (and is then dropped, counted, logged).
"""

from __future__ import annotations

import json
import logging
import threading

from flexmeter.metrics import Registry
from flexmeter.ngsi import FiwareHeaders, NgsiClient
from flexmeter.ngsi.errors import NgsiConnectionError, NgsiResponseError
from flexmeter.service.store import Store, split_tenant

log = logging.getLogger(__name__)


class ResultWriter:
    def __init__(self, store: Store, ngsi_url: str | None, metrics: Registry, *, batch: int = 500,
                 token: str | None = None) -> None:
        self.store = store
        self.client = NgsiClient(ngsi_url, timeout=15) if ngsi_url else None
        self.batch = batch
        self.token = token
        self.written = metrics.counter("flexmeter_service_results_written_total", "Result entities written")
        self.failed = metrics.counter("flexmeter_service_results_failed_total", "Result entities the broker refused")
        self.retries = metrics.counter("flexmeter_service_write_retries_total", "Failed write attempts retried")
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="service-writer", daemon=True)
        self.backoff = 0.5

    def start(self) -> None:
        if self.client is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self.client is not None:
            self.client.close()

    def wake(self) -> None:
        self._wake.set()

    def pending(self) -> int:
        row = self.store.one("SELECT count(*) FROM outbox")
        return int(row[0]) if row else 0

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            self._wake.wait(timeout=max(delay, 0.2))
            self._wake.clear()
            try:
                sent = self.drain_once()
                delay = 0.0 if sent else 0.2
            except NgsiConnectionError as exc:
                self.retries.inc()
                delay = min(max(delay * 2, self.backoff), 10.0)
                log.warning("broker unreachable (%s); retrying in %.1f s", exc, delay)
            except Exception:
                log.exception("result writer error")
                delay = 2.0

    def drain_once(self) -> int:
        """Send one batch per tenant; returns how many entities left the outbox."""
        if self.client is None:
            return 0
        tenants = [r[0] for r in self.store.query("SELECT DISTINCT tk FROM outbox")]
        sent = 0
        for tk in tenants:
            rows = self.store.query("SELECT eid, body FROM outbox WHERE tk=? LIMIT ?", (tk, self.batch))
            if not rows:
                continue
            service, path = split_tenant(tk)
            headers = FiwareHeaders(service or None, path, self.token)
            entities = [json.loads(body) for _, body in rows]
            try:
                self.client.batch_update(entities, "append", headers=headers)
                delivered = rows
            except NgsiResponseError as exc:
                if exc.status >= 500:
                    raise NgsiConnectionError(str(exc)) from exc
                delivered = self._one_by_one(rows, headers)
            with self.store.transaction() as conn:
                # delete only what was sent, unless it was recomputed in the meantime
                conn.executemany("DELETE FROM outbox WHERE tk=? AND eid=? AND body=?",
                                 [(tk, eid, body) for eid, body in delivered])
            self.written.inc(len(delivered))
            sent += len(rows)
        return sent

    def _one_by_one(self, rows: list[tuple[str, str]], headers: FiwareHeaders) -> list[tuple[str, str]]:
        assert self.client is not None
        for eid, body in rows:
            try:
                self.client.batch_update([json.loads(body)], "append", headers=headers)
            except NgsiResponseError as exc:
                if exc.status >= 500:
                    raise NgsiConnectionError(str(exc)) from exc
                self.failed.inc()
                log.error("the broker refused result %s: %s", eid, exc)
        return rows
