"""The workload: Malmö Connode E350 meters behind mesh gateways, publishing JSON over MQTT (QoS 1).

Each reading carries its emission time (epoch ms) as the meter's observation time, so it becomes the
entity's ``TimeInstant`` and the time index of the time series: every hop can say when a reading was
emitted. Readings are spread evenly over the meters (meter ``k mod N`` sends reading ``k``) and paced
at a fixed rate in ticks; the readings due in a tick travel as one gateway document per gateway, as a
Connode gateway batches its mesh (docs/connode.md).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

ENTITY_TYPE = "ACMeasurement"
MODEL = "E350"


@dataclass
class Fleet:
    """The meters and gateways of one run (unique ids so runs never mix on a shared MQTT broker)."""

    devices: int
    per_gateway: int = 100
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def device_id(self, index: int) -> str:
        return f"E350-{self.tag}-{index:06d}"

    def entity_id(self, index: int) -> str:
        return f"{ENTITY_TYPE}:{self.device_id(index)}"

    def gateway(self, index: int) -> int:
        return index // self.per_gateway

    @property
    def gateways(self) -> int:
        return (self.devices + self.per_gateway - 1) // self.per_gateway


@dataclass
class Sent:
    """What was emitted: per reading its emission time (ms), in emission order; per meter its last."""

    times_ms: list[int] = field(default_factory=list)
    per_device: list[int] = field(default_factory=list)
    last_ms: list[int] = field(default_factory=list)
    messages: int = 0
    started: float = 0.0
    ended: float = 0.0

    @property
    def count(self) -> int:
        return len(self.times_ms)


class Publisher:
    """Anything with ``publish_many([(topic, payload)])``, ``wait_acked(n)`` and ``close()``."""

    def publish_many(self, messages: list[tuple[str, bytes]]) -> None:  # pragma: no cover - protocol
        raise NotImplementedError

    def wait_acked(self, count: int, timeout: float = 60.0) -> bool:  # pragma: no cover - protocol
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - protocol
        raise NotImplementedError


def mqtt_publisher(mqtt_url: str) -> Publisher:
    """A raw MQTT 3.1.1 QoS 1 publisher: paho's per-message overhead would measure the load generator."""
    from flexmeter.iot_agents.core.mqtt import host_port
    from flexmeter.iot_agents.core.rawmqtt import RawPublisher

    host, port = host_port(mqtt_url)
    raw: Publisher = RawPublisher(host, port, f"flexmeter-e2e-{uuid.uuid4().hex[:8]}")  # type: ignore[assignment]
    return raw


def gateway_document(gateway: str, seq: int, sent_ms: int, readings: list[tuple[str, int, int]]) -> bytes:
    """One Connode gateway document; ``readings`` are (device id, observation ms, reading number)."""
    messages = []
    for device, observed_ms, number in readings:
        energy = 1000 + number * 0.01
        power = 500 + (number * 37) % 3000
        messages.append({"device": device, "model": MODEL, "time": observed_ms, "type": "reading",
                         "values": {"1.8.0": round(energy, 3), "1.7.0": power,
                                    "32.7.0": 230.0 + (number % 7) / 10}})
    return json.dumps({"gateway": gateway, "seq": seq, "sent": sent_ms, "messages": messages},
                      separators=(",", ":")).encode()


def run_workload(publisher: Publisher, fleet: Fleet, apikey: str, *, rate: float, duration: float,
                 tick: float = 0.05, on_tick: Callable[[Sent], None] | None = None) -> Sent:
    """Publish ``rate`` readings/s for ``duration`` s; returns what was sent once the broker acked it all."""
    sent = Sent(per_device=[0] * fleet.devices, last_ms=[0] * fleet.devices)
    seq = 0
    sent.started = time.time()
    start_mono = time.monotonic()
    total = int(rate * duration)
    while sent.count < total:
        elapsed = time.monotonic() - start_mono
        due = min(total, int((elapsed + tick) * rate))
        now_ms = int(time.time() * 1000)
        by_gateway: dict[int, list[tuple[str, int, int]]] = {}
        while sent.count < due:
            k = sent.count
            device = k % fleet.devices
            number = sent.per_device[device]
            sent.per_device[device] = number + 1
            sent.last_ms[device] = now_ms
            sent.times_ms.append(now_ms)
            by_gateway.setdefault(fleet.gateway(device), []).append((fleet.device_id(device), now_ms, number))
        batch = []
        for gw, readings in by_gateway.items():
            seq += 1
            name = f"GW-{fleet.tag}-{gw:04d}"
            batch.append((f"connode/{apikey}/{name}/up", gateway_document(name, seq, now_ms, readings)))
        if batch:
            publisher.publish_many(batch)
            sent.messages += len(batch)
        if on_tick is not None:
            on_tick(sent)
        next_at = start_mono + (due / rate if rate > 0 else duration)
        time.sleep(max(0.0, min(tick, next_at - time.monotonic())))
    sent.ended = time.time()
    if not publisher.wait_acked(sent.messages, timeout=60):
        raise TimeoutError("the MQTT broker did not acknowledge every message within 60 s")
    return sent
