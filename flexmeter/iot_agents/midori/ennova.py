"""The ENNOVA hub route: the hub's JSON batches, ``POST /iot/ennova?k=<apikey>`` on the agents' south port.

A batch names the hub and carries, per device, a list of samples (the Midori sample format); every sample
is an ACMeasurement reading with its own time. The answer (200 once the batch is in the outbox, or the
FIWARE error) is the hub's acknowledgement: it resends a batch that got none. A bad device entry of a batch
with good ones is dead-lettered alone (a ``Rejected`` item); a batch with no good entry is refused whole.
HTTPS is a TLS terminator's job in front of the south port (docs/ennova.md). Schema: docs/ennova.schema.json.
"""

from __future__ import annotations

import json
from typing import Any

from flexmeter.iot_agents.core.errors import DecodeError
from flexmeter.iot_agents.core.family import Decoded, Family, Message, Route, decode_each
from flexmeter.iot_agents.midori.family import parse_object
from flexmeter.iot_agents.midori.samples import AC_TABLE, device_name, sample_reading

Json = dict[str, Any]
MODEL = "ENNOVA"
MAX_SAMPLES = 100_000


def decode_batch(document: Json) -> list[Decoded]:
    device_name(document.get("hub"), "hub")
    devices = document.get("devices")
    if not isinstance(devices, list) or not devices:
        raise DecodeError("devices must be a non-empty array")
    if sum(len(d["samples"]) for d in devices if isinstance(d, dict) and isinstance(d.get("samples"), list)) \
            > MAX_SAMPLES:
        raise DecodeError(f"a batch carries at most {MAX_SAMPLES} samples")
    # a hub batches many devices: a bad device entry is dead-lettered alone, the others go on
    return decode_each(devices, _device_readings, lambda _i, device: json.dumps(device, default=str),
                       label="device")


def _device_readings(i: int, device: Any) -> list[Decoded]:
    where = f"devices[{i}]"
    if not isinstance(device, dict):
        raise DecodeError(f"{where} is not an object")
    device_id = device_name(device.get("id"), f"{where}.id")
    samples = device.get("samples")
    if not isinstance(samples, list) or not samples:
        raise DecodeError(f"{where}.samples must be a non-empty array")
    return [sample_reading(device_id, s, f"{where}.samples[{j}]", model=MODEL) for j, s in enumerate(samples)]


class EnnovaFamily(Family):
    name = "ennova"
    protocol = "ennova"
    default_entity_type = "ACMeasurement"
    routes = (Route("http", "/iot/ennova", "measure", {"k": "apikey"}),)

    def decode(self, message: Message) -> list[Decoded]:
        return decode_batch(parse_object(message, "the ENNOVA batch"))

    def default_attributes(self, model: str | None) -> list[Json]:
        return AC_TABLE
