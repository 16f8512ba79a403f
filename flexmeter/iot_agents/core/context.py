"""The agent's side of the family lifecycle: the :class:`FamilyContext` a running agent lends each family.

Everything a family does in the background goes through the core's own paths (pipeline, outbox, dead
letters, metrics), so "nothing lost silently" holds for it too; periodic tasks run on threads the agent
stops before its pipeline.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flexmeter.iot_agents.core.family import Decoded, Family, FamilyContext, Json, Message, Route, Task
from flexmeter.iot_agents.core.metrics import AgentMetrics
from flexmeter.iot_agents.core.outbox import NewDeadLetter, Outbox, OutboxParticipant
from flexmeter.iot_agents.core.pipeline import Inbound, Pipeline
from flexmeter.iot_agents.core.registry import Registry
from flexmeter.metrics import Registry as MetricsRegistry

log = logging.getLogger(__name__)


class AgentContext(FamilyContext):
    def __init__(self, family: Family, pipeline: Pipeline, registry: Registry, outbox: Outbox,
                 metrics: AgentMetrics, data_dir: Path | None = None) -> None:
        self.family = family
        self.data_dir = data_dir
        self._pipeline = pipeline
        self._registry = registry
        self._outbox = outbox
        self._metrics = metrics
        self._emit_route = Route("internal", f"$internal/{family.name}")
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._devices: dict[str | None, tuple[int, list[tuple[Json, Json | None]]]] = {}

    @property
    def metrics(self) -> MetricsRegistry:
        return self._metrics.registry

    def emit(self, items: Iterable[Decoded], apikey: str | None = None) -> None:
        decoded = list(items)
        if not decoded:
            return
        message = Message(self._emit_route, b"", {"apikey": apikey} if apikey else {})
        self._pipeline.submit(Inbound(self.family, message, done=lambda outcome: None, decoded=decoded))

    def submit(self, message: Message) -> None:
        if message.route in self.family.routes:  # durable via the inbox, as a transport's message
            self._pipeline.submit(Inbound(self.family, message))
        else:  # a route the inbox could not find again after a restart: processed at once
            self._pipeline.submit(Inbound(self.family, message, done=lambda outcome: None))

    def dead_letter(self, error: str, reason: str, raw: bytes | str,
                    context: Mapping[str, Any] | None = None, apikey: str | None = None) -> None:
        data = raw.encode() if isinstance(raw, str) else raw
        details = dict(context or {})
        params = details.get("params")
        key = (apikey or details.get("apikey") or (params.get("apikey") if isinstance(params, Mapping) else None)
               or self.family.default_apikey)
        tenant = self._pipeline.resolver.tenant(str(key)) if key else None
        self._outbox.put([], [NewDeadLetter(self.family.name, error, reason, data, details).for_tenant(tenant)])
        self._metrics.dead_lettered.inc(family=self.family.name)
        log.warning("dead letter (%s, %s): %s", self.family.name, error, reason)

    def devices(self, protocol: str | None = None) -> list[tuple[Json, Json | None]]:
        # a periodic task asks for thousands of devices: copied once per registry version, and a group (with
        # its whole mapping table) once per call, not once per device
        version = self._registry.version
        hit = self._devices.get(protocol)
        if hit is not None and hit[0] == version:
            return list(hit[1])
        out: list[tuple[Json, Json | None]] = []
        memo: dict[int, Any] = {}
        for device in self._registry.all_devices():
            if protocol is not None and str(device.get("protocol") or "") != protocol:
                continue
            group = self._registry.group_for_device(str(device.get("service", "")),
                                                    str(device.get("service_path", "/")), device)
            out.append((copy.deepcopy(device), copy.deepcopy(group, memo)))
        self._devices[protocol] = (version, out)
        return list(out)

    def device(self, device_id: str, apikey: str | None = None) -> Json | None:
        if apikey:
            found = self._registry.find_device_by_apikey(device_id, apikey)
            return copy.deepcopy(found) if found is not None else None
        for device in self._registry.all_devices():
            if str(device.get("device_id")) == device_id:
                return copy.deepcopy(device)
        return None

    def tenant(self, apikey: str) -> tuple[str, str] | None:
        return self._pipeline.resolver.tenant(apikey)

    def join_outbox(self, participant: OutboxParticipant) -> None:
        self._outbox.join(participant)

    def every(self, seconds: float, task: Task, name: str | None = None) -> None:
        label = name or f"{self.family.name}-every-{len(self._threads)}"

        def run() -> None:
            while not self._stop.wait(seconds):
                try:
                    task()
                except Exception:
                    log.exception("periodic task %s failed; it runs again in %s s", label, seconds)

        thread = threading.Thread(target=run, name=label, daemon=True)
        self._threads.append(thread)
        thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the periodic tasks (the agent calls it after the family's ``stop``)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout)
        self._threads.clear()
