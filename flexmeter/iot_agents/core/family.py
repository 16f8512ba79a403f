"""The protocol-family seam: what a meter family gives the core, and the registry that picks families by name.

A family is three things, none of which does I/O:

* a **decoder**: ``decode(message) -> list[Reading | CommandReply]``, a pure function of the message
  (payload bytes, the parameters taken from its topic/route, the group's ``internal_attributes``);
* its **routes**: MQTT topic patterns, HTTP routes on the south port, AMQP bindings/queues, with
  ``{apikey}``/``{device_id}`` placeholders the transports fill in;
* its **default attribute mapping**: data (per device model) telling how ``object_id``s become NGSI
  attributes; provisioning (group/device ``attributes``) overrides it entry by entry.

The core does everything else: device registry lookup, mapping, ``TimeInstant``, batching, the durable
outbox, dead letters, metrics, commands. See docs/iot-agents.md.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from flexmeter.iot_agents.core.errors import DecodeError

Json = dict[str, Any]
Transport = Literal["mqtt", "amqp", "http", "coap"]
RouteKind = Literal["measure", "cmdexe"]


@dataclass(frozen=True)
class Reading:
    """One observation of one device: ``values`` maps the device's own keys (object_ids) to values.

    ``observed_at`` is the meter's time: an aware datetime, a naive one (meter-local, the device
    ``timezone`` applies), an ISO 8601 string, epoch seconds, or None (the time of reception).
    ``units`` optionally gives a UN/CEFACT code per object_id (used when the mapping has no unitCode).
    ``model`` selects the family's default mapping table (e.g. ``E350``). ``apikey`` overrides the one of
    the route (gateways carrying several groups). ``raw`` is kept for the dead-letter store.
    """

    device_id: str
    values: Mapping[str, Any]
    observed_at: datetime | str | float | int | None = None
    units: Mapping[str, str] = field(default_factory=dict)
    model: str | None = None
    apikey: str | None = None
    raw: str | None = None


@dataclass(frozen=True)
class CommandReply:
    """A device's answer to a command: sets ``<command>_status`` (OK/ERROR) and ``<command>_info``."""

    device_id: str
    command: str
    status: Literal["OK", "ERROR"]
    info: Any = None
    apikey: str | None = None


Decoded = Reading | CommandReply


@dataclass(frozen=True)
class Route:
    """Where a family listens.

    ``pattern`` is a topic (MQTT, AMQP routing key with ``/`` as separator, CoAP path) or an HTTP path,
    with ``{name}`` placeholders for whole levels (``/json/{apikey}/{device_id}/attrs``). For HTTP, the
    ``query`` dict maps query parameters to names (``{"k": "apikey", "i": "device_id"}``). ``queue``
    names the AMQP queue to consume (default: the agent's own queue bound with the pattern).
    """

    transport: Transport
    pattern: str
    kind: RouteKind = "measure"
    query: Mapping[str, str] = field(default_factory=dict)
    queue: str | None = None

    def mqtt_filter(self) -> str:
        return re.sub(r"\{[^}/]+\}", "+", self.pattern)

    def amqp_binding(self) -> str:
        return re.sub(r"\{[^}/]+\}", "*", self.pattern).replace("/", ".")

    @cached_property
    def _levels(self) -> list[str]:
        return self.pattern.split("/")

    def match(self, topic: str) -> dict[str, str] | None:
        """The placeholders' values if ``topic`` (``/``-separated) matches, else None."""
        want = self._levels
        have = topic.split("/")
        if len(want) != len(have):
            return None
        params: dict[str, str] = {}
        for w, h in zip(want, have, strict=True):
            if w.startswith("{") and w.endswith("}"):
                if not h:
                    return None
                params[w[1:-1]] = h
            elif w != h:
                return None
        return params


@dataclass(frozen=True)
class Message:
    """What a transport hands to a decoder: the bytes plus everything known about where they came from."""

    route: Route
    payload: bytes
    params: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    """The group's ``internal_attributes`` (dict form), so a payload's shape can be set by provisioning."""
    secrets: Callable[[str], Mapping[str, str]] | None = None
    """Read-only lookup of a device's secrets by device id (AES/DLMS keys), for decoders that decrypt."""

    @property
    def apikey(self) -> str | None:
        return self.params.get("apikey")

    @property
    def device_id(self) -> str | None:
        return self.params.get("device_id")

    def text(self) -> str:
        try:
            return self.payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"payload is not UTF-8 (byte {exc.start})") from exc


@dataclass(frozen=True)
class OutgoingCommand:
    """A command as a family encodes it for its devices (MQTT by default)."""

    topic: str
    payload: bytes


class Family:
    """Base class of a protocol family. Subclasses set ``name``/``routes`` and override ``decode``.

    Everything here is data or pure functions; the core never asks a family to do I/O.
    """

    name: str = ""
    protocol: str = ""
    """The device ``protocol`` value (north API) of devices this family serves; defaults to ``name``."""
    routes: tuple[Route, ...] = ()
    default_entity_type: str = "Device"
    uses_group_config: bool = False
    """True when ``decode`` reads ``message.config`` (the group's internal_attributes)."""
    uses_secrets: bool = False
    """True when ``decode`` needs ``message.secrets`` (a key lookup for decryption)."""

    def decode(self, message: Message) -> list[Decoded]:
        """Bytes in, readings out. Raise :class:`DecodeError` (with the reason) on bad input."""
        raise NotImplementedError

    def default_attributes(self, model: str | None) -> list[Json]:
        """The default mapping table for a device model: iotagent-style attribute dicts
        (``object_id``, ``name``, ``type``, ``metadata``, ``expression``, ``entity_name``, ...)."""
        return []

    def entity_type(self, model: str | None) -> str:
        """The entity type of a device of this model when provisioning sets none."""
        return self.default_entity_type

    def encode_command(self, apikey: str, device_id: str, command: str, value: Any) -> OutgoingCommand:
        """iotagent-json's command: ``{"<command>": value}`` on ``/<apikey>/<device_id>/cmd``."""
        import json

        return OutgoingCommand(f"/{apikey}/{device_id}/cmd", json.dumps({command: value}).encode())

    def protocols(self) -> tuple[str, ...]:
        return (self.protocol or self.name,)


FamilyFactory = Callable[[], Family]

# name -> "module:attribute" of a zero-argument factory. Declarative so that ``flexmeter agent mbus dlms``
# picks families by name and a family that is not installed yet does not break the others.
FAMILIES: dict[str, str] = {
    "json": "flexmeter.iot_agents.core.json_family:JsonFamily",
    "connode": "flexmeter.iot_agents.connode.family:ConnodeFamily",
    "mbus": "flexmeter.iot_agents.mbus.family:MbusFamily",
    "dlms": "flexmeter.iot_agents.dlms.family:DlmsFamily",
    "midori": "flexmeter.iot_agents.midori.family:MidoriFamily",
    "ennova": "flexmeter.iot_agents.midori.ennova:EnnovaFamily",
}


class UnknownFamilyError(LookupError):
    """A family name that is not in :data:`FAMILIES` or whose module is not there yet."""


def load_family(name: str) -> Family:
    target = FAMILIES.get(name)
    if target is None:
        raise UnknownFamilyError(f"unknown family {name!r} (known: {', '.join(sorted(FAMILIES))})")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        factory: FamilyFactory = getattr(module, attr)
        family = factory()
    except Exception as exc:  # a family being written must not break the others
        raise UnknownFamilyError(f"family {name!r} is not available ({target}): {exc}") from exc
    if not family.name:
        raise UnknownFamilyError(f"family factory {target} returned a family without a name")
    return family


def available_families() -> list[str]:
    """The families whose module imports (the default of ``flexmeter agent``)."""
    names = []
    for name in FAMILIES:
        try:
            load_family(name)
        except UnknownFamilyError:
            continue
        names.append(name)
    return names
