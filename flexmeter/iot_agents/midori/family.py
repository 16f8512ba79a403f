"""The Midori family (`flexmeter agent midori`): NIALM sensors' 1 Hz JSON from the Midori AMQP queue.

The agent consumes the durable queue ``FLEXMETER_MIDORI_QUEUE`` (default ``midori``) on ``--amqp-url``
and acknowledges a message only once its readings are in the outbox, so a RabbitMQ or agent restart loses
nothing (unacknowledged deliveries come back). Each sample becomes an ACMeasurement reading with its own
time. The apikey (service group) is the message's ``apikey``, else the routing key's
(``midori.<apikey>.<sensor>``), else ``FLEXMETER_MIDORI_APIKEY`` (default ``midori``). See docs/midori.md.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from flexmeter.config import get_settings
from flexmeter.iot_agents.core.errors import DecodeError
from flexmeter.iot_agents.core.family import Decoded, Family, Message, Route, decode_each
from flexmeter.iot_agents.midori.samples import AC_TABLE, device_name, sample_reading

Json = dict[str, Any]
MODEL = "MIDORI"


def parse_object(message: Message, what: str) -> Json:
    try:
        document = json.loads(message.text(), parse_float=_float)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(document, dict):
        raise DecodeError(f"{what} is a JSON {type(document).__name__}, not an object")
    return document


def _float(text: str) -> float:
    """A JSON number as the float whose shortest repr is the same decimal (refusing more digits)."""
    value = float(text)
    if Decimal(repr(value)) != Decimal(text):
        raise DecodeError(f"number {text} has more significant digits than a JSON double keeps")
    return value


def decode_midori(document: Json, apikey: str | None) -> list[Decoded]:
    sensor = device_name(document.get("sensor"), "sensor")
    key = document.get("apikey")
    if key is not None and (not isinstance(key, str) or not key):
        raise DecodeError("apikey must be a non-empty string")
    apikey = key or apikey
    samples = document.get("samples")
    if samples is None:
        sample = {k: v for k, v in document.items() if k not in ("sensor", "apikey", "seq")}
        return [sample_reading(sensor, sample, "sample", apikey=apikey, model=MODEL)]
    if not isinstance(samples, list) or not samples:
        raise DecodeError("samples must be a non-empty array of sample objects")
    # a bad sample of a 1 Hz batch is dead-lettered alone (a Rejected item), the others go on
    return decode_each(samples, lambda i, s: [sample_reading(sensor, s, f"samples[{i}]", apikey=apikey, model=MODEL)],
                       lambda _i, s: json.dumps(s, default=str), label="sample")


class MidoriFamily(Family):
    name = "midori"
    protocol = "midori"
    default_entity_type = "ACMeasurement"

    def __init__(self) -> None:
        settings = get_settings()
        self.queue = settings.midori_queue
        self.default_apikey = settings.midori_apikey
        self.routes = (Route("amqp", "midori/{apikey}/{sensor}", queue=self.queue),)

    def decode(self, message: Message) -> list[Decoded]:
        document = parse_object(message, "the Midori message")
        return decode_midori(document, message.apikey or self.default_apikey)

    def default_attributes(self, model: str | None) -> list[Json]:
        return AC_TABLE
