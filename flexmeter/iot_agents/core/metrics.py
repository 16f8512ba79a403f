"""The agent's counters, per device family, for ``GET /metrics`` (DESIGN.md §5: nothing lost silently)."""

from __future__ import annotations

import threading
from collections import deque

from flexmeter.metrics import Metric, Registry


class AgentMetrics:
    """received (messages), decoded (readings), forwarded (entity updates the broker took), retried
    (entity updates sent again after a failure), dead_lettered (messages or updates given up, with reason)."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or Registry()
        r = self.registry
        self.received: Metric = r.counter("iota_received_total", "Messages received from devices, per family.")
        self.decoded: Metric = r.counter("iota_decoded_total", "Readings decoded from those messages, per family.")
        self.forwarded: Metric = r.counter("iota_forwarded_total", "Entity updates accepted by the broker.")
        self.retried: Metric = r.counter("iota_retried_total", "Entity updates sent again after a failure.")
        self.dead_lettered: Metric = r.counter("iota_dead_lettered_total",
                                               "Messages or updates moved to the dead-letter store.")
        self.commands: Metric = r.counter("iota_commands_total", "Commands sent to devices, per status.")
        self.latency: Metric = r.gauge("iota_delivery_latency_seconds",
                                       "Reception -> accepted by the broker, over the last 100k updates.")
        self._delays: deque[float] = deque(maxlen=100_000)
        self._lock = threading.Lock()
        r.on_collect(self._collect_latency)
        self.outbox_depth: Metric = r.gauge("iota_outbox_depth", "Entity updates waiting in the outbox.")
        self.dead_letters: Metric = r.gauge("iota_dead_letters", "Entries in the dead-letter store.")

    def delivered(self, delays: list[float]) -> None:
        with self._lock:
            self._delays.extend(delays)

    def latency_quantiles(self) -> dict[str, float]:
        with self._lock:
            ordered = sorted(self._delays)
        if not ordered:
            return {}
        return {q: ordered[min(len(ordered) - 1, round(float(q) * (len(ordered) - 1)))] for q in ("0.5", "0.99")}

    def _collect_latency(self) -> None:
        for q, value in self.latency_quantiles().items():
            self.latency.set(round(value, 4), quantile=q)

    def render(self) -> str:
        return self.registry.render()
