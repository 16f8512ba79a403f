"""The family lifecycle and per-item rejection, on a real in-process Agent (embedded broker, real sockets):
``start(context)`` / ``stop()`` called by ``Agent.start()`` / ``Agent.stop()``, every facility of the
:class:`FamilyContext`, and :class:`Rejected` items dead-lettered alone while the rest of the message goes on."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from flexmeter.iot_agents.core.agent import Agent, AgentConfig
from flexmeter.iot_agents.core.family import (
    Decoded,
    Family,
    FamilyContext,
    FamilyCounter,
    Message,
    Reading,
    Rejected,
    Route,
)
from tests.iot_agents.core.conftest import get_entity, tenant, wait_for
from tests.support.processes import FlexmeterProcess

__all__ = ["tenant"]

ROUTE = Route("http", "/iot/lifecycle", query={"k": "apikey"})


class LifecycleFamily(Family):
    """``device=value`` lines; a line whose value is not a number is a Rejected item."""

    name = "lifecycle"
    protocol = "lifecycle"
    routes = (ROUTE,)

    def __init__(self) -> None:
        self.context: FamilyContext | None = None
        self.counter: FamilyCounter | None = None
        self.ticks = 0
        self.emit_for: str | None = None
        self.stopped = threading.Event()

    def decode(self, message: Message) -> list[Decoded]:
        out: list[Decoded] = []
        for index, line in enumerate(message.text().splitlines()):
            device, _, value = line.partition("=")
            if not value.isdigit():
                out.append(Rejected(f"line {index + 1}: {value!r} is not a number", line, context={"line": index}))
            else:
                out.append(Reading(device, {"v": int(value)}))
        return out

    def start(self, context: FamilyContext) -> None:
        self.context = context
        self.counter = context.counter("iota_lifecycle_ticks_total", "Ticks of the test family.")
        context.every(0.05, self._tick, name="lifecycle-tick")

    def _tick(self) -> None:
        assert self.context is not None and self.counter is not None
        self.ticks += 1
        self.counter.inc()
        if self.emit_for is not None:
            self.context.emit([Reading("ticker", {"v": self.ticks})], apikey=self.emit_for)
            self.emit_for = None

    def stop(self) -> None:
        self.stopped.set()


@pytest.fixture
def running(module_broker: FlexmeterProcess, tmp_path: Path) -> Iterator[tuple[Agent, LifecycleFamily]]:
    family = LifecycleFamily()
    agent = Agent(AgentConfig(families=[], extra_families=[family], ngsi_url=module_broker.url,
                              data_dir=tmp_path / "agent", north_port=0, south_port=0, mqtt_url=None, linger=0.01))
    agent.start()
    try:
        yield agent, family
    finally:
        agent.stop()


def test_lifecycle_context_and_per_item_rejection(running: tuple[Agent, LifecycleFamily],
                                                  module_broker: FlexmeterProcess, tenant: dict[str, str]) -> None:
    agent, family = running
    ngsi = module_broker.url
    north = agent.north_app().test_client()
    key = f"l{uuid.uuid4().hex[:8]}"
    created = north.post("/iot/services", json={"services": [{"apikey": key, "resource": "/iot/lifecycle"}]},
                         headers=tenant)
    assert created.status_code == 201, created.text
    assert family.context is not None and family.ticks >= 0
    assert family.context.data_dir == agent.config.data_dir and family.context.data_dir.is_dir()  # for own files

    # a periodic task of the context, its family counter on /metrics, and a reading it emits
    family.emit_for = key
    ticker = wait_for(lambda: get_entity(ngsi, tenant, "Device:ticker"))
    assert ticker["v"]["value"] >= 1
    assert 'iota_lifecycle_ticks_total{family="lifecycle"}' in north.get("/metrics").text
    assert 'iota_received_total{family="lifecycle"}' not in north.get("/metrics").text  # emitted, not received

    # per-item rejection: the bad line is a dead letter of its own; the good ones land; HTTP says 200
    assert agent.south is not None
    response = requests.post(f"{agent.south.url}/iot/lifecycle", params={"k": key}, data="a=1\nb=x\nc=3", timeout=10)
    assert response.status_code == 200, response.text
    assert wait_for(lambda: get_entity(ngsi, tenant, "Device:a"))["v"]["value"] == 1
    assert wait_for(lambda: get_entity(ngsi, tenant, "Device:c"))["v"]["value"] == 3
    assert get_entity(ngsi, tenant, "Device:b") is None
    (letter,) = agent.outbox.dead_letters()
    assert (letter.family, letter.error, letter.raw) == ("lifecycle", "WRONG_SYNTAX", b"b=x")
    assert letter.reason == "line 2: 'x' is not a number" and letter.context["line"] == 1
    assert letter.context["params"] == {"apikey": key} and letter.context["route"] == "/iot/lifecycle"
    service, path = tenant["Fiware-Service"].lower(), tenant["Fiware-ServicePath"]
    assert (letter.service, letter.service_path) == (service, path)  # the tenant of the group of its apikey

    # every item bad: the message is dead-lettered whole (its own bytes) and HTTP gets the first item's error
    response = requests.post(f"{agent.south.url}/iot/lifecycle", params={"k": key}, data="d=x\ne=y", timeout=10)
    assert response.status_code == 400, response.text
    assert response.json() == {"name": "WRONG_SYNTAX",
                               "message": "line 1: 'x' is not a number (and 1 more item(s) rejected)"}
    whole = agent.outbox.dead_letters()[-1]
    assert whole.raw == b"d=x\ne=y" and (whole.service, whole.service_path) == (service, path)
    assert 'iota_dead_lettered_total{family="lifecycle"} 2' in north.get("/metrics").text

    # submit: a message as if a transport had received it (durable through the inbox: the route is the family's)
    context = family.context
    context.submit(Message(ROUTE, b"f=6", {"apikey": key}))
    assert wait_for(lambda: get_entity(ngsi, tenant, "Device:f"))["v"]["value"] == 6
    # dead_letter: stored now, counted for the family
    context.dead_letter("LIFECYCLE_TEST", "a reason", b"\x00\x01", {"why": "test"})
    last = agent.outbox.dead_letters()[-1]
    assert (last.error, last.reason, last.raw, last.context) == ("LIFECYCLE_TEST", "a reason", b"\x00\x01",
                                                                  {"why": "test"})
    assert last.service is None  # nothing says whose it is: no tenant's
    context.dead_letter("LIFECYCLE_TEST", "another", b"x", {"params": {"apikey": key}})
    assert (agent.outbox.dead_letters()[-1].service, agent.outbox.dead_letters()[-1].service_path) == (service, path)
    listed = north.get("/iot/deadletters", headers=tenant).get_json()
    assert listed["count"] == 3 and [d["reason"] for d in listed["deadLetters"]][-1] == "another"
    assert 'iota_dead_lettered_total{family="lifecycle"} 4' in north.get("/metrics").text
    # read-only lookups: copies of the provisioned (here autoprovisioned) devices with their group
    devices = dict((d["device_id"], g) for d, g in context.devices("lifecycle"))
    assert {"a", "c", "f", "ticker"} <= set(devices) and devices["a"] is not None and devices["a"]["apikey"] == key
    found = context.device("a", key)
    assert found is not None and found["protocol"] == "lifecycle"
    found["protocol"] = "changed"
    assert (context.device("a", key) or {})["protocol"] == "lifecycle"
    assert context.device("nobody") is None and abs(context.now() - time.time()) < 1


def test_stop_stops_the_family_and_its_tasks(module_broker: FlexmeterProcess, tmp_path: Path) -> None:
    family = LifecycleFamily()
    agent = Agent(AgentConfig(families=[], extra_families=[family], ngsi_url=module_broker.url,
                              data_dir=tmp_path / "agent", north_port=0, south_port=0, mqtt_url=None))
    agent.start()
    wait_for(lambda: family.ticks >= 2)
    agent.stop()
    assert family.stopped.is_set() and agent.contexts == []
    ticks = family.ticks
    time.sleep(0.2)
    assert family.ticks == ticks
