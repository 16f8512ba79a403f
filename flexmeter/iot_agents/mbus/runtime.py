"""Lending a running agent to families with background work (the M-Bus silence watchdog, duplicate metrics).

The core's seam (core/family.py) has no lifecycle yet; this module is the proposed one, kept here until the
core adopts it: after ``Agent.start()``, every family with a ``start(context)`` method gets an
:class:`AgentContext` (the agent's metrics registry, a way to submit messages through the pipeline, the
provisioned devices with their groups), and ``stop()`` before ``Agent.stop()``.
``python -m flexmeter.iot_agents.mbus.runtime`` runs an agent that way (the same options as
``flexmeter agent`` for what the tests need).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from flexmeter.iot_agents.core.agent import Agent, AgentConfig
from flexmeter.iot_agents.core.family import Family, Message
from flexmeter.iot_agents.core.outbox import NewDeadLetter
from flexmeter.iot_agents.core.pipeline import Inbound
from flexmeter.metrics import Registry as MetricsRegistry

Json = dict[str, Any]
log = logging.getLogger(__name__)


class AgentContext:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    @property
    def metrics(self) -> MetricsRegistry:
        return self.agent.metrics.registry

    def submit(self, family: Family, message: Message) -> None:
        """Into the pipeline at once (a ``done`` callback: not via the raw inbox, whose replay looks the route
        up among the family's transport routes, which a family-internal message is not on)."""
        self.agent.pipeline.submit(Inbound(family, message, done=lambda outcome: None))

    def dead_letter(self, family: str, error: str, reason: str, raw: bytes, context: Json) -> None:
        self.agent.outbox.put([], [NewDeadLetter(family, error, reason, raw, context)])
        self.agent.metrics.dead_lettered.inc(family=family)
        log.warning("dead letter (%s, %s): %s", family, error, reason)

    def devices(self) -> list[tuple[Json, Json | None]]:
        registry = self.agent.registry
        out: list[tuple[Json, Json | None]] = []
        for device in registry.all_devices():
            group = registry.group_for_device(str(device.get("service", "")), str(device.get("service_path", "/")),
                                              device)
            out.append((device, group))
        return out


def start_families(agent: Agent) -> list[Family]:
    started: list[Family] = []
    for family in agent.families:
        start = getattr(family, "start", None)
        if callable(start):
            start(AgentContext(agent))
            started.append(family)
    return started


def stop_families(families: list[Family]) -> None:
    for family in families:
        stop = getattr(family, "stop", None)
        if callable(stop):
            stop()


def main(argv: list[str] | None = None) -> None:
    from flexmeter.serving import serve

    parser = argparse.ArgumentParser(prog="python -m flexmeter.iot_agents.mbus.runtime")
    parser.add_argument("families", nargs="*", default=["mbus"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--north-port", type=int, default=4041)
    parser.add_argument("--south-port", type=int, default=7896)
    parser.add_argument("--ngsi-url", required=True)
    parser.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.setswitchinterval(0.0005)
    config = AgentConfig(families=args.families, ngsi_url=args.ngsi_url, data_dir=args.data_dir, host=args.host,
                         north_port=args.north_port, south_port=args.south_port,
                         mqtt_url=None if args.mqtt_url.lower() == "none" else args.mqtt_url)
    agent = Agent(config)
    agent.start()
    started = start_families(agent)
    serve(agent.north_app(), config.host, config.north_port, threads=8,
          on_stop=[lambda: stop_families(started), agent.stop])


if __name__ == "__main__":
    main()
