"""The topology read from the broker: what the topology subscription alone cannot tell the service.

The broker notifies *changes*: entities provisioned before the service's subscriptions existed are never
notified (``flexmeter provision apply`` creates subscriptions last, and Orion sends no initial
notification). Without their ``refSubstation`` / ``refDevice`` relationships there is no energy balance
and no outage area. So the first time a tenant scope shows up, and again when a reading refers to an
entity the service has not seen (throttled), the service reads the scope's Device, Building, Substation
and Feeder entities from the broker (``GET /v2/entities``, the attributes of
``orion_config/subscriptions/service-topology.json``) and ingests them as if they had been notified.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flexmeter.ngsi import FiwareHeaders, NgsiClient
from flexmeter.ngsi.errors import NgsiClientError
from flexmeter.provisioning.subscriptions import orion_config_dir
from flexmeter.service.readings import TOPOLOGY_TYPES
from flexmeter.service.store import split_tenant

log = logging.getLogger(__name__)



def topology_attrs() -> str:
    """The attributes the topology subscription notifies (one list: orion_config's), for ``attrs=``."""
    path = orion_config_dir() / "subscriptions" / "service-topology.json"
    return ",".join(json.loads(path.read_text(encoding="utf-8"))["notification"]["attrs"])


class TopologySync:
    """Tenant scopes whose topology should be (re)read from the broker, and the reading itself."""

    def __init__(self, ngsi_url: str | None, token: str | None = None, min_interval_s: float = 10.0) -> None:
        self.client = NgsiClient(ngsi_url, timeout=15) if ngsi_url else None
        self.attrs = topology_attrs() if ngsi_url else ""
        self.token = token
        self.min_interval_s = min_interval_s
        self._wanted: set[str] = set()
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def want(self, tk: str) -> None:
        """Ask for a sync of ``tk`` (no-op without a broker, or when it was synced moments ago)."""
        if self.client is None:
            return
        with self._lock:
            if time.monotonic() - self._last.get(tk, -1e9) >= self.min_interval_s:
                self._wanted.add(tk)

    def wanted(self) -> bool:
        return bool(self._wanted)

    def run(self, ingest: Callable[[str, list[dict[str, Any]]], object]) -> int:
        """Read the wanted scopes' topology and hand it to ``ingest(tk, entities)``; returns the number of
        entities read. A broker that does not answer is logged and tried again on the next request."""
        if self.client is None:
            return 0
        with self._lock:
            wanted, self._wanted = sorted(self._wanted), set()
            for tk in wanted:
                self._last[tk] = time.monotonic()
        read = 0
        for tk in wanted:
            service, scope = split_tenant(tk)
            headers = FiwareHeaders(service or None, "/#" if scope == "/" else f"{scope}/#", self.token)
            try:
                entities = list(self.client.iter_entities(headers=headers, type=",".join(TOPOLOGY_TYPES),
                                                          attrs=self.attrs))
            except NgsiClientError as exc:
                log.warning("cannot read the topology of %s from the broker: %s", tk, exc)
                continue
            if entities:
                ingest(tk, entities)
            read += len(entities)
        return read

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
