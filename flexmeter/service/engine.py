"""The service's core, without HTTP: ingest notifications, compute in the background, write results."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flexmeter.metrics import Registry
from flexmeter.service.config import ServiceConfig
from flexmeter.service.ingest import Ingestor
from flexmeter.service.jobs import Jobs
from flexmeter.service.readings import notification_entities
from flexmeter.service.store import Store, tenant_key
from flexmeter.service.topology_sync import TopologySync
from flexmeter.service.writer import ResultWriter

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, config: ServiceConfig, metrics: Registry | None = None) -> None:
        self.config = config
        self.metrics = metrics or Registry()
        self.store = Store(config.data_dir / "service.db")
        self.ingestor = Ingestor(self.store, config)
        self.jobs = Jobs(self.store, config)
        self.writer = ResultWriter(self.store, config.ngsi_url, self.metrics, batch=config.write_batch,
                                   token=config.token)
        self.topology_sync = TopologySync(config.ngsi_url, config.token)
        self._scopes: set[str] = set()
        self.notifications = self.metrics.counter("flexmeter_service_notifications_total", "Notifications received")
        self.entities = self.metrics.counter("flexmeter_service_entities_total",
                                             "Notified entities by outcome (new, duplicate, topology)")
        self.rejected = self.metrics.counter("flexmeter_service_rejected_total", "Notifications rejected, by reason")
        self.computed = self.metrics.counter("flexmeter_service_periods_computed_total", "Dirty periods settled")
        pending = self.metrics.gauge("flexmeter_service_pending_periods", "Periods waiting to be computed")
        outbox = self.metrics.gauge("flexmeter_service_outbox", "Result entities waiting to be written")
        self.metrics.on_collect(lambda: pending.set(self.jobs.pending()))
        self.metrics.on_collect(lambda: outbox.set(self.writer.pending()))
        self._compute_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="service-compute", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> Engine:
        self._thread.start()
        self.writer.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.writer.stop()
        self.topology_sync.close()
        self.store.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=self.config.compute_interval_s)
            self._wake.clear()
            try:
                if self.compute_once():
                    self.writer.wake()
            except Exception:
                log.exception("computation pass failed")
                time.sleep(1.0)

    # -- work -----------------------------------------------------------------------------------------------
    def notify(self, service: str, service_path: str, body: Any) -> dict[str, int]:
        """One NGSI-v2 notification (normalized): store its readings; computing happens in the background."""
        entities = notification_entities(body)
        path = service_path if service_path and "," not in service_path else None
        tk = tenant_key(service, service_path)
        stats = self.ingestor.ingest(tk, entities, path)
        if tk not in self._scopes or self.ingestor.unknown_refs:
            self._scopes.add(tk)  # a new scope, or a reading naming an unknown Device: read the topology
            self.ingestor.unknown_refs = False
            self.topology_sync.want(tk)
        self.notifications.inc()
        self.entities.inc(stats["new"], outcome="new")
        self.entities.inc(stats["duplicates"], outcome="duplicate")
        self.entities.inc(stats["topology"], outcome="topology")
        self.entities.inc(stats["rejected"], outcome="rejected")
        return stats

    def compute_once(self) -> int:
        with self._compute_lock:
            if self.topology_sync.wanted():  # before computing: balances and outage areas need the topology
                self.topology_sync.run(lambda tk, entities: self.ingestor.ingest(tk, entities))
            settled = self.jobs.run_pass()
        self.computed.inc(settled)
        return settled

    def settle(self, max_passes: int = 20) -> None:
        """Compute until nothing more settles (REST reads call this so they see every stored reading)."""
        for _ in range(max_passes):
            if not self.compute_once():
                break
        self.writer.wake()
