"""Ingest: persist, acknowledge, then decode, find the device, map, and move to the outbox.

Transports only enqueue an :class:`Inbound`; the ingest thread takes whatever has arrived (up to
``max_batch`` messages). MQTT/AMQP messages are written raw to the durable inbox in one transaction and
acknowledged right after it, so the MQTT broker's in-flight window never waits for decoding (a lagging
agent otherwise makes Mosquitto drop QoS 1 messages beyond ``max_queued_messages``). The processor thread
decodes and maps inbox messages and moves them atomically to the outbox (or the dead letters). HTTP
requests, which must answer with the outcome, are decoded and mapped at once and answered after the
commit. Every rejection becomes a dead letter with its reason and raw payload.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

try:  # a C serializer for the hot path; the stdlib when it is not installed
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

from flexmeter.iot_agents.core.errors import (
    AllItemsRejected,
    DeviceGroupNotFound,
    DeviceNotFound,
    DuplicateDeviceId,
    IotAgentError,
)
from flexmeter.iot_agents.core.family import (
    CommandReply,
    Decoded,
    Family,
    Message,
    Reading,
    Rejected,
    Route,
    all_rejected,
    reading_raw,
)
from flexmeter.iot_agents.core.mapping import DeviceView, EntityUpdate, Mapper
from flexmeter.iot_agents.core.metrics import AgentMetrics
from flexmeter.iot_agents.core.outbox import InboxRow, NewDeadLetter, NewRow, Outbox
from flexmeter.iot_agents.core.registry import Registry, internal_config
from flexmeter.iot_agents.core.timeutil import to_utc

log = logging.getLogger(__name__)


def entity_json(entity: dict[str, Any]) -> str:
    """Compact JSON text of an entity (orjson; the stdlib for what orjson refuses, e.g. huge integers)."""
    if orjson is not None:
        try:
            return orjson.dumps(entity).decode()
        except TypeError:
            pass
    return json.dumps(entity, separators=(",", ":"))


@dataclass
class Outcome:
    """What happened to one message: accepted (readings persisted) or the error that rejected it."""

    readings: int = 0
    error: IotAgentError | None = None
    rejected: int = 0
    """Items of the message its decoder rejected (each dead-lettered alone) while the rest was accepted."""


@dataclass
class Inbound:
    family: Family
    message: Message
    ack: Callable[[], None] | None = None
    done: Callable[[Outcome], None] | None = None
    received_at: float = field(default_factory=time.time)
    decoded: list[Decoded] | None = None
    """Items a family emitted itself (``FamilyContext.emit``): not decoded again, not counted as received."""

    @property
    def deferred(self) -> bool:
        """Persisted raw to the inbox and processed later (transport messages nobody waits for)."""
        return self.done is None and self.decoded is None


ReplyHandler = Callable[[DeviceView, CommandReply, datetime], list[EntityUpdate]]


class Resolver:
    """apikey + device id -> the provisioned (or autoprovisioned) device and its group."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.on_autoprovision: Callable[[str, str, str], None] = lambda service, path, device_id: None
        self._views: dict[tuple[str | None, str, str | None], tuple[int, DeviceView]] = {}

    def tenant(self, apikey: str | None) -> tuple[str, str] | None:
        """(service, subservice) of the group with this apikey: the tenant its dead letters belong to."""
        group = self.registry.group_by_apikey(apikey) if apikey else None
        return (str(group["service"]), str(group["subservice"])) if group else None

    def group_config(self, apikey: str | None, resource: str | None = None) -> dict[str, Any]:
        if not apikey:
            return {}
        group = self.registry.group_by_apikey(apikey, resource)
        return internal_config(group.get("internal_attributes")) if group else {}

    def resolve(self, apikey: str | None, device_id: str, family: Family, model: str | None,
                resource: str | None = None) -> DeviceView:
        """Cached per (apikey, device, resource) until the registry's next write (``Registry.version``)."""
        key = (apikey, device_id, resource)
        version = self.registry.version  # read before: a write during the lookup makes this entry stale
        hit = self._views.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        view = self._resolve(apikey, device_id, family, model, resource)
        if len(self._views) >= 100_000:
            self._views.clear()
        self._views[key] = (version, view)
        return view

    def _resolve(self, apikey: str | None, device_id: str, family: Family, model: str | None,
                 resource: str | None) -> DeviceView:
        group = self.registry.group_by_apikey(apikey, resource) if apikey else None
        device = self.registry.find_device_by_apikey(device_id, apikey) if apikey else None
        if device is None and group is not None:
            device = self.registry.find_device(group["service"], group["subservice"], device_id)
        if device is None:
            if group is None:
                raise DeviceGroupNotFound({"apikey": apikey, "resource": resource or ""})
            if group.get("autoprovision", True) is False:
                raise DeviceNotFound(device_id)
            body = {"device_id": device_id, "apikey": apikey, "protocol": family.protocols()[0],
                    "entity_type": group.get("entity_type") or family.entity_type(model)}
            try:
                device = self.registry.create_devices(group["service"], group["subservice"], [body])[0]
                self.on_autoprovision(group["service"], group["subservice"], device_id)
            except DuplicateDeviceId:
                device = self.registry.get_device(group["service"], group["subservice"], device_id)
        elif group is None or (device.get("service"), device.get("service_path")) != (
                group.get("service"), group.get("subservice")):
            group = self.registry.group_for_device(device["service"], device["service_path"], device)
        return DeviceView(device, group)


class Pipeline:
    def __init__(self, registry: Registry, outbox: Outbox, mapper: Mapper, metrics: AgentMetrics, *,
                 on_persisted: Callable[[], None] = lambda: None, max_batch: int = 2000,
                 secrets_lookup: Callable[[str], dict[str, str]] | None = None) -> None:
        self.registry = registry
        self.resolver = Resolver(registry)
        self.outbox = outbox
        self.mapper = mapper
        self.metrics = metrics
        self.on_persisted = on_persisted
        self.max_batch = max_batch
        self.reply_handler: ReplyHandler | None = None
        self.secrets_lookup = secrets_lookup or registry.secrets_by_device_id
        self.families: dict[str, Family] = {}
        self.after_acks: list[Callable[[], None]] = []
        """Called after each batch of acks (transports that send their acks in one write)."""
        self._queue: queue.SimpleQueue[Inbound | None] = queue.SimpleQueue()  # C: put() is ~10x cheaper
        self._routes: dict[tuple[str, str, str], Route] = {}
        """(family, transport, pattern) of an inbox row -> its route."""
        self._thread = threading.Thread(target=self._run, name="iota-ingest", daemon=True)
        self._processor = threading.Thread(target=self._run_inbox, name="iota-processor", daemon=True)
        self._inbox_wake = threading.Event()
        self._stopped = threading.Event()

    def start(self) -> None:
        self._thread.start()
        self._processor.start()
        self._inbox_wake.set()  # whatever a previous run persisted but did not process

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._stopped.set()
        self._inbox_wake.set()
        self._processor.join(timeout=10)

    def submit(self, item: Inbound) -> None:
        self._queue.put(item)

    def pending(self) -> int:
        return self._queue.qsize()

    def idle(self) -> bool:
        return self._queue.empty() and self.outbox.inbox_depth() == 0

    # -- worker --------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._process(batch)
                    return
                batch.append(item)
            self._process(batch)

    def _process(self, batch: list[Inbound]) -> None:
        counts: dict[str, int] = {}
        for item in batch:
            if item.decoded is None:
                counts[item.family.name] = counts.get(item.family.name, 0) + 1
        for name, count in counts.items():
            self.metrics.received.inc(count, family=name)
        deferred = [item for item in batch if item.deferred and item.family.name in self.families]
        if deferred:
            self._persist_raw(deferred)
        if len(deferred) < len(batch):
            self._process_now([item for item in batch if not (item.deferred and item.family.name in self.families)])

    def _persist_raw(self, items: list[Inbound]) -> None:
        raw = [InboxRow(i.family.name, i.message.route.transport, i.message.route.pattern,
                        p if type(p := i.message.params) is dict else dict(p), i.message.payload,
                        i.message.content_type, i.received_at) for i in items]
        while True:
            try:
                self.outbox.put_inbox(raw)
                break
            except Exception:
                log.exception("cannot write the inbox; retrying in 1 s")
                time.sleep(1)
        for item in items:
            if item.ack is not None:
                try:
                    item.ack()
                except Exception:
                    log.exception("ack failed")
        self._flush_acks()
        self._inbox_wake.set()

    def _flush_acks(self) -> None:
        for flush in self.after_acks:
            try:
                flush()
            except Exception:
                log.exception("flushing acks failed")

    def _run_inbox(self) -> None:
        while not self._stopped.is_set():
            self._inbox_wake.wait(timeout=1.0)
            self._inbox_wake.clear()
            try:
                while not self._stopped.is_set() and self._drain_inbox():
                    pass
            except Exception:
                log.exception("inbox processing failed; retrying in 1 s")
                self._stopped.wait(1)

    def _drain_inbox(self, limit: int = 500) -> bool:
        """Process one batch of inbox messages; False when the inbox is empty."""
        taken = self.outbox.take_inbox(limit)
        if not taken:
            return False
        rows: list[NewRow] = []
        dead: list[NewDeadLetter] = []
        dead_families: list[str] = []
        decoded: dict[str, int] = {}
        routes = self._routes
        for _, raw in taken:
            family = self.families.get(raw.family)
            key = (raw.family, raw.transport, raw.pattern)
            route = routes.get(key)
            if route is None and family is not None:
                route = next((r for r in family.routes if r.transport == raw.transport and r.pattern == raw.pattern),
                             None)
                if route is not None:
                    routes[key] = route
            if family is None or route is None:
                dead.append(NewDeadLetter(raw.family, "UNKNOWN_ROUTE", f"no family/route {raw.family} "
                                          f"{raw.transport} {raw.pattern} in this agent", raw.payload,
                                          {"params": raw.params}).for_tenant(
                                              self.resolver.tenant(raw.params.get("apikey"))))
                dead_families.append(raw.family)
                continue
            item = Inbound(family, Message(route, raw.payload, raw.params, raw.content_type),
                           received_at=raw.received)
            try:
                item_rows, item_dead = self.process_one(item, decoded)
                rows.extend(item_rows)
                if item_dead:
                    dead.extend(item_dead)
                    dead_families.extend(family.name for _ in item_dead)
            except IotAgentError as exc:
                dead.append(self._dead(item, exc.name, exc.message))
                dead_families.append(family.name)
            except Exception as exc:
                log.exception("unexpected error processing a %s message", family.name)
                dead.append(self._dead(item, "INTERNAL_ERROR", f"internal error: {type(exc).__name__}: {exc}"))
                dead_families.append(family.name)
        self.outbox.move_processed([i for i, _ in taken], rows, dead)
        for name, count in decoded.items():
            self.metrics.decoded.inc(count, family=name)
        for name in dead_families:
            self.metrics.dead_lettered.inc(family=name)
        if rows:
            self.on_persisted()
        return len(taken) == limit

    def _process_now(self, batch: list[Inbound]) -> None:
        rows: list[NewRow] = []
        dead: list[NewDeadLetter] = []
        outcomes: list[Outcome] = []
        for item in batch:
            outcome = Outcome()
            try:
                item_rows, item_dead = self.process_one(item)
                outcome.readings = len(item_rows)
                outcome.rejected = len(item_dead)
                rows.extend(item_rows)
                dead.extend(item_dead)
            except IotAgentError as exc:
                outcome.error = exc
                dead.append(self._dead(item, exc.name, exc.message))
            except Exception as exc:
                log.exception("unexpected error processing a %s message", item.family.name)
                outcome.error = IotAgentError(f"internal error: {type(exc).__name__}: {exc}")
                dead.append(self._dead(item, "INTERNAL_ERROR", str(outcome.error.message)))
            outcomes.append(outcome)
        while True:
            try:
                self.outbox.put(rows, dead)
                break
            except Exception:
                log.exception("cannot write the outbox; retrying in 1 s")
                time.sleep(1)
        for item, outcome in zip(batch, outcomes, strict=True):
            if outcome.error is not None or outcome.rejected:
                self.metrics.dead_lettered.inc(outcome.rejected or 1, family=item.family.name)
            if item.ack is not None:
                try:
                    item.ack()
                except Exception:
                    log.exception("ack failed")
            if item.done is not None:
                item.done(outcome)
        self._flush_acks()
        if rows:
            self.on_persisted()

    def _dead(self, item: Inbound, error: str, reason: str,
              tenant: tuple[str, str] | None = None) -> NewDeadLetter:
        """A dead letter of the tenant the message is addressed to: ``tenant`` (its readings' devices), else
        the group of its apikey (the route's, or the family's ``default_apikey``); else no tenant's."""
        context = {"route": item.message.route.pattern, "transport": item.message.route.transport,
                   "params": dict(item.message.params)}
        log.warning("dead letter (%s, %s): %s", item.family.name, error, reason)
        if tenant is None:
            try:
                tenant = self.resolver.tenant(item.message.apikey or item.family.default_apikey)
            except Exception:  # a registry failure must not lose the letter: stored unattributed
                log.exception("cannot find the tenant of a dead letter")
        return NewDeadLetter(item.family.name, error, reason, item.message.payload, context).for_tenant(tenant)

    def process_one(self, item: Inbound, decoded_counts: dict[str, int] | None = None,
                    ) -> tuple[list[NewRow], list[NewDeadLetter]]:
        """The outbox rows of one message and the dead letters of the items its decoder rejected.
        Raises the error that rejects the whole message. ``decoded_counts``: readings per family added there
        (the caller counts a whole batch at once) instead of to the metric."""
        message = item.message
        family = item.family
        if item.decoded is not None:
            decoded = list(item.decoded)
        else:
            if family.uses_group_config and not message.config and message.apikey:
                message = Message(message.route, message.payload, message.params, message.content_type,
                                  self.resolver.group_config(message.apikey), self.secrets_lookup)
            elif family.uses_secrets and message.secrets is None:
                message = Message(message.route, message.payload, message.params, message.content_type,
                                  message.config, self.secrets_lookup)
            decoded = family.decode(message)
        rejected = [d for d in decoded if isinstance(d, Rejected)] if len(decoded) > 1 or (
            decoded and isinstance(decoded[0], Rejected)) else []
        if rejected:
            decoded = [d for d in decoded if not isinstance(d, Rejected)]
            if not decoded:  # nothing good in it: the message is dead-lettered whole, with its bytes
                first = rejected[0]
                more = f" (and {len(rejected) - 1} more item(s) rejected)" if len(rejected) > 1 else ""
                raise AllItemsRejected(first.error, first.status, first.reason + more)
        received_at = datetime.fromtimestamp(item.received_at, UTC)
        readings = sum(1 for d in decoded if isinstance(d, Reading)) if len(decoded) > 1 else (
            1 if decoded and isinstance(decoded[0], Reading) else 0)
        if decoded_counts is None:
            self.metrics.decoded.inc(readings, family=family.name)
        else:
            decoded_counts[family.name] = decoded_counts.get(family.name, 0) + readings
        updates: list[EntityUpdate] = []
        first_view: DeviceView | None = None
        resolve, route_apikey = self.resolver.resolve, message.apikey
        unmapped: list[IotAgentError] = []
        for entry in (decoded if len(decoded) < 2 else self._oldest_first(decoded, received_at)):
            assert not isinstance(entry, Rejected)
            try:
                if isinstance(entry, Reading):
                    view = resolve(entry.apikey or route_apikey, entry.device_id, family, entry.model)
                    updates.extend(self.mapper.map(entry, view, family, received_at))
                else:
                    view = resolve(entry.apikey or route_apikey, entry.device_id, family, None)
                    if self.reply_handler is not None:
                        updates.extend(self.reply_handler(view, entry, received_at))
            except IotAgentError as exc:
                if len(decoded) < 2:
                    raise  # a one-item message is rejected whole, with its own error (HTTP status)
                # one unknown or unmappable meter of a gateway's batch: dead-lettered alone, the others go on
                unmapped.append(exc)
                rejected.append(Rejected(exc.message, reading_raw(entry), exc.name, exc.status,
                                         device_id=entry.device_id))
                continue
            if first_view is None:
                first_view = view
        if unmapped and len(unmapped) == len(decoded):
            raise all_rejected(unmapped)
        name, received = family.name, item.received_at
        rows = [NewRow(u.service, u.service_path, entity_json(u.entity()), name, received) for u in updates]
        if not rejected:
            return rows, []
        tenant = (first_view.service, first_view.service_path) if first_view is not None else None
        return rows, [self._rejected(item, r, tenant) for r in rejected]

    def _rejected(self, item: Inbound, rejected: Rejected, tenant: tuple[str, str] | None) -> NewDeadLetter:
        letter = self._dead(item, rejected.error, rejected.reason, tenant)
        if rejected.raw is not None:
            raw = rejected.raw.encode() if isinstance(rejected.raw, str) else rejected.raw
            letter = NewDeadLetter(letter.family, letter.error, letter.reason, raw, letter.context,
                                   letter.service, letter.service_path)
        letter.context.update(rejected.context)
        if rejected.device_id:
            letter.context["device_id"] = rejected.device_id
        return letter

    @staticmethod
    def _oldest_first(decoded: list[Decoded], received_at: datetime) -> list[Decoded]:
        """Readings applied oldest first (stable for equal or unknown times), replies after them."""
        def key(entry: Decoded) -> float:
            if isinstance(entry, Reading):
                try:
                    return to_utc(entry.observed_at, "UTC", entry.device_id, received_at).timestamp()
                except IotAgentError:
                    return received_at.timestamp()
            return float("inf")
        return sorted(decoded, key=key)
