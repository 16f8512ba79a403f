"""The agent's counters, per device family, for ``GET /metrics`` (DESIGN.md §5: nothing lost silently)."""

from __future__ import annotations

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
        self.outbox_depth: Metric = r.gauge("iota_outbox_depth", "Entity updates waiting in the outbox.")
        self.dead_letters: Metric = r.gauge("iota_dead_letters", "Entries in the dead-letter store.")

    def render(self) -> str:
        return self.registry.render()
