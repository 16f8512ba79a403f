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

A decoder may return :class:`Rejected` items next to its readings: one bad frame of a multi-frame uplink is
dead-lettered alone (with its own bytes) while the rest goes on. A family with background work (a watchdog,
its own listener) overrides :meth:`Family.start` / :meth:`Family.stop`; the agent calls them with a
:class:`FamilyContext`, the only door from a family into the running agent.
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from flexmeter.iot_agents.core.errors import DecodeError, IotAgentError
from flexmeter.metrics import Metric
from flexmeter.metrics import Registry as MetricsRegistry

if TYPE_CHECKING:
    from flexmeter.iot_agents.core.outbox import OutboxParticipant

Json = dict[str, Any]
Transport = Literal["mqtt", "amqp", "http", "coap", "udp", "internal"]
"""``udp``: a family's own listener (started by its lifecycle; the core has no UDP server); ``internal``: what
a family emits itself (never listened on, so no device can forge it)."""
RouteKind = Literal["measure", "cmdexe"]


@dataclass(frozen=True)
class Reading:
    """One observation of one device: ``values`` maps the device's own keys (object_ids) to values.

    ``observed_at`` is the meter's time: an aware datetime, a naive one (meter-local, the device
    ``timezone`` applies), an ISO 8601 string, epoch seconds, or None (the time of reception).
    ``units`` optionally gives a UN/CEFACT code per object_id (used when the mapping has no unitCode).
    ``model`` selects the family's default mapping table (e.g. ``E350``). ``apikey`` overrides the one of
    the route (gateways carrying several groups). ``raw`` is the reading's own bytes or text, or a callable
    making them (serialized only if needed): when its device is unknown or cannot be mapped, it is what goes to
    the dead letters while the other readings of the message go on.
    """

    device_id: str
    values: Mapping[str, Any]
    observed_at: datetime | str | float | int | None = None
    units: Mapping[str, str] = field(default_factory=dict)
    model: str | None = None
    apikey: str | None = None
    raw: bytes | str | Callable[[], bytes | str] | None = None


def reading_raw(entry: Reading | CommandReply) -> bytes | str | None:
    """The item's own bytes or text for its dead letter (None: the whole message's are kept)."""
    raw = entry.raw if isinstance(entry, Reading) else None
    return raw() if callable(raw) else raw


@dataclass(frozen=True)
class CommandReply:
    """A device's answer to a command: sets ``<command>_status`` (OK/ERROR) and ``<command>_info``."""

    device_id: str
    command: str
    status: Literal["OK", "ERROR"]
    info: Any = None
    apikey: str | None = None


@dataclass(frozen=True)
class Rejected:
    """One bad item (frame, push, sample) of a message whose other items are good.

    The core dead-letters it on its own, with ``reason``, ``error`` (the dead letter's name, e.g.
    ``WRONG_SYNTAX``) and ``raw`` (the item's own bytes or text; default: the whole message's), in the same
    transaction as the message's readings, and counts it in ``iota_dead_lettered_total``. ``context`` is added
    to the dead letter's context (e.g. the frame index). A message whose items are *all* rejected goes to the
    dead letters whole, as if the decoder had raised (HTTP gets the first item's error and ``status``).
    """

    reason: str
    raw: bytes | str | None = None
    error: str = "WRONG_SYNTAX"
    status: int = 400
    context: Mapping[str, Any] = field(default_factory=dict)
    device_id: str | None = None

    @classmethod
    def of(cls, exc: IotAgentError, raw: bytes | str | None = None, **context: Any) -> Rejected:
        """The rejection a decoder's error stands for (its name, status and message)."""
        return cls(exc.message, raw, exc.name, exc.status, context)


Decoded = Reading | CommandReply | Rejected


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


DUPLICATES = "iota_duplicates_dropped_total"
DUPLICATES_HELP = ("Messages dropped as copies of ones already accepted (M-Bus: same meter, access number and "
                   "time; DLMS: a system title's last push delivered again), per family.")


class FamilyCounter:
    """A counter of the agent's ``/metrics`` that always carries the family's ``family`` label."""

    def __init__(self, metric: Metric, family: str) -> None:
        self.metric = metric
        self.family = family

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self.metric.inc(amount, family=self.family, **labels)

    def get(self, **labels: str) -> float:
        return self.metric.get(family=self.family, **labels)


Task = Callable[[], None]


class FamilyContext(ABC):
    """What the running agent lends a family from :meth:`Family.start` until :meth:`Family.stop`.

    Everything goes through the core's own paths: emitted readings are mapped and written to the outbox like
    decoded ones, submitted messages are processed like a transport's, dead letters are counted.
    """

    family: Family
    data_dir: Path | None = None
    """The agent's data directory (``--data-dir``), where a family may keep its own files (e.g. the DLMS
    invocation counters); None when the context has none (state then lives in memory only)."""

    @property
    @abstractmethod
    def metrics(self) -> MetricsRegistry:
        """The agent's metrics registry (``GET /metrics``)."""

    def counter(self, name: str, help_text: str) -> FamilyCounter:
        """A counter of ``/metrics`` labelled with this family (``name{family="mbus"}``)."""
        return FamilyCounter(self.metrics.counter(name, help_text), self.family.name)

    @abstractmethod
    def emit(self, items: Iterable[Decoded], apikey: str | None = None) -> None:
        """Readings (or replies) the family makes itself, e.g. an Anomaly: device lookup, mapping and outbox
        as for decoded ones (``apikey``: the group, unless an item names its own)."""

    @abstractmethod
    def submit(self, message: Message) -> None:
        """A message as if a transport had received it (e.g. a UDP datagram): decoded by the family.
        Durable through the inbox when ``message.route`` is one of the family's ``routes``."""

    @abstractmethod
    def dead_letter(self, error: str, reason: str, raw: bytes | str, context: Mapping[str, Any] | None = None,
                    apikey: str | None = None) -> None:
        """Store one dead letter now (durably), counted for this family. It belongs to the tenant of
        ``apikey`` (else of the context's ``apikey`` or ``params.apikey``, else the family's ``default_apikey``)."""

    @abstractmethod
    def devices(self, protocol: str | None = None) -> list[tuple[Json, Json | None]]:
        """The provisioned devices (all, or those with this ``protocol``) with their service group: copies of
        the registry's, the same ones between calls until the registry changes (read them, do not change them)."""

    @abstractmethod
    def device(self, device_id: str, apikey: str | None = None) -> Json | None:
        """One provisioned device (by its group's apikey when given), a copy, or None."""

    @abstractmethod
    def tenant(self, apikey: str) -> tuple[str, str] | None:
        """(service, subservice) of the service group with this apikey; None when no group has it."""

    @abstractmethod
    def join_outbox(self, participant: OutboxParticipant) -> None:
        """Write ``participant``'s state in the same SQLite transaction as the readings (and dead letters)
        the pipeline commits, in the thread that decoded them: state that must be exactly as durable as the
        readings it guards (the DLMS invocation counters). Call it from ``start``: the pipeline takes its
        first message after every family's ``start``."""

    @abstractmethod
    def every(self, seconds: float, task: Task, name: str | None = None) -> None:
        """Run ``task`` every ``seconds`` on a thread of its own until the family stops (the agent stops it
        before the pipeline); an exception is logged and the next run happens anyway."""

    def now(self) -> float:
        """The agent's clock (epoch seconds)."""
        import time

        return time.time()


class Family:
    """Base class of a protocol family. Subclasses set ``name``/``routes`` and override ``decode``.

    Decoding and mapping are data or pure functions. Background work, if any, lives between :meth:`start`
    and :meth:`stop`, through the :class:`FamilyContext` only.
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
    default_apikey: str | None = None
    """The service group of messages whose route carries no apikey (e.g. one fixed AMQP queue): the tenant
    their dead letters belong to when the message cannot be decoded."""

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

    def start(self, context: FamilyContext) -> None:
        """Called by ``Agent.start()`` once the pipeline runs; start background work here. Default: none."""

    def stop(self) -> None:
        """Called by ``Agent.stop()`` before the pipeline stops (the context's periodic tasks are stopped by
        the agent too); stop taking input here. Default: nothing."""


def decode_each(items: Iterable[Any], decode_one: Callable[[int, Any], Iterable[Decoded]],
                raw: Callable[[int, Any], bytes | str | None] = lambda index, item: None,
                label: str = "item") -> list[Decoded]:
    """Decode the items of a multi-item message one by one: an item raising an :class:`IotAgentError`
    becomes a :class:`Rejected` (with ``raw(index, item)`` and ``{label: index}`` as context) and the others
    go on. When no item is good, the first error is raised (the message is dead-lettered whole)."""
    out: list[Decoded] = []
    errors: list[IotAgentError] = []
    good = 0
    for index, item in enumerate(items):
        try:
            out.extend(decode_one(index, item))
            good += 1
        except IotAgentError as exc:
            errors.append(exc)
            out.append(Rejected.of(exc, raw(index, item), **{label: index}))
    if errors and not good:
        raise all_rejected(errors, label)
    return out


def all_rejected(errors: list[IotAgentError], label: str = "item") -> IotAgentError:
    """The error of a message none of whose items was good: the item's own, or the first one's with
    "(and N more <label>(s) rejected)"; the message is dead-lettered whole with it."""
    if len(errors) == 1:
        return errors[0]
    from flexmeter.iot_agents.core.errors import AllItemsRejected

    return AllItemsRejected(errors[0].name, errors[0].status,
                            f"{errors[0].message} (and {len(errors) - 1} more {label}(s) rejected)")


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
