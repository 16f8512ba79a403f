"""Commands in notification mode, as iotagent-node-lib does them.

For every device with ``commands``, the agent keeps a broker subscription on those attributes that notifies
its own north ``/notify``. A notified non-empty command value is encoded by the device's family, published
(MQTT ``/<apikey>/<device_id>/cmd`` by default) and recorded as pending; ``<cmd>_status`` becomes
``PENDING``. The device's ``/cmdexe`` reply sets ``OK``/``ERROR`` and ``<cmd>_info``; no reply within the
timeout sets ``ERROR``. Pending commands live in SQLite, so a restart does not forget a timeout. Status
updates go through the outbox like readings.

Polling (iotagent-json's HTTP devices): a device (or its group) with ``transport: HTTP`` and no ``endpoint``
is not sent anything; its commands are queued (``PENDING``) until it asks with ``GET /iot/json?k=&i=&getCmd=1``
(or a measure ``POST`` with ``getCmd=1``), which answers ``{"<cmd>": value, ...}`` and sets ``DELIVERED``;
its result on ``POST /iot/json/commands?k=&i=`` sets ``OK``. Not fetched, or not answered, within the
timeout: ``ERROR``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flexmeter.iot_agents.core.errors import DeviceGroupNotFound, DeviceNotFound
from flexmeter.iot_agents.core.family import CommandReply, Family
from flexmeter.iot_agents.core.mapping import DeviceView, EntityUpdate
from flexmeter.iot_agents.core.metrics import AgentMetrics
from flexmeter.iot_agents.core.outbox import NewRow, Outbox
from flexmeter.iot_agents.core.registry import Registry
from flexmeter.iot_agents.core.timeutil import iso
from flexmeter.ngsi import FiwareHeaders, NgsiClient
from flexmeter.ngsi.errors import NgsiClientError, NgsiResponseError

log = logging.getLogger(__name__)

Json = dict[str, Any]


def is_polling(view: DeviceView) -> bool:
    """iotagent-json's rule: an HTTP device without an ``endpoint`` fetches its commands (polling)."""
    return str(view.get("transport") or "").upper() == "HTTP" and not view.get("endpoint")


def _subscribed(commands: list[str]) -> Json:
    """What a subscription row records; a row of an earlier form (a bare list, subscriptions without
    ``onlyChangedAttrs``) differs, so the subscription is made again."""
    return {"commands": commands, "onlyChangedAttrs": True}


FORBIDDEN = str.maketrans({c: " " for c in "<>\"'=;()"})


def _stamp(value: Any, when: datetime) -> Json:
    if isinstance(value, str):
        value = value.translate(FORBIDDEN)  # Orion rejects these characters in values
    return {"value": value, "metadata": {"TimeInstant": {"type": "DateTime", "value": iso(when)}}}


class CommandFlow:
    def __init__(self, registry: Registry, outbox: Outbox, metrics: AgentMetrics, db_path: Path | str, *,
                 ngsi_url: str, north_url: str, families: dict[str, Family], default_family: Family,
                 publish: Callable[[str, bytes], None], wake: Callable[[], None], timeout: float = 30.0,
                 token: str | None = None) -> None:
        self.registry = registry
        self.outbox = outbox
        self.metrics = metrics
        self.client = NgsiClient(ngsi_url, timeout=10)
        self.north_url = north_url.rstrip("/")
        self.families = families
        self.default_family = default_family
        self.publish = publish
        self.wake = wake
        self.timeout = timeout
        self.token = token
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS pending (service TEXT, service_path TEXT, device_id TEXT, command TEXT,
                value TEXT, entity_id TEXT, entity_type TEXT, expires REAL,
                PRIMARY KEY (service, service_path, device_id, command));
            CREATE TABLE IF NOT EXISTS subscriptions (service TEXT, service_path TEXT, device_id TEXT,
                subscription_id TEXT, commands TEXT, PRIMARY KEY (service, service_path, device_id));
            """
        )
        if "state" not in {row[1] for row in self._db.execute("PRAGMA table_info(pending)")}:
            # 'sent' (published, waiting for the reply), 'queued' (polling: waiting for the device to fetch
            # it), 'delivered' (polling: fetched, waiting for the reply)
            self._db.execute("ALTER TABLE pending ADD COLUMN state TEXT NOT NULL DEFAULT 'sent'")
        self._lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._todo: set[tuple[str, str, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="iota-commands", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        for device in self.registry.all_devices():
            self.device_changed(device["service"], device["service_path"], device["device_id"])
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.client.close()

    def _run(self) -> None:
        last_subscribe = 0.0
        while not self._stop.wait(0.2):
            try:
                self.expire()
                if time.time() - last_subscribe > 1.0 or len(self._todo) > 0:
                    last_subscribe = time.time()
                    self._sync_subscriptions()
            except Exception:
                log.exception("command flow error")

    # -- subscriptions -------------------------------------------------------------------------------------
    def device_changed(self, service: str, service_path: str, device_id: str) -> None:
        """Called after a device is created, updated or deleted through the north API."""
        with self._lock:
            self._todo.add((service, service_path, device_id))

    def _view(self, service: str, service_path: str, device_id: str) -> DeviceView | None:
        device = self.registry.find_device(service, service_path, device_id)
        if device is None:
            return None
        return DeviceView(device, self.registry.group_for_device(service, service_path, device))

    def _family(self, view: DeviceView) -> Family:
        protocol = str(view.device.get("protocol") or "")
        return self.families.get(protocol, self.default_family)

    def _sync_subscriptions(self) -> None:
        with self._lock:
            todo, self._todo = self._todo, set()
        for key in todo:
            try:
                self._sync_one(*key)
            except NgsiClientError as exc:
                log.warning("cannot sync the command subscription of %s: %s; will retry", key[2], exc)
                with self._lock:
                    self._todo.add(key)

    def _sync_one(self, service: str, service_path: str, device_id: str) -> None:
        headers = FiwareHeaders(service or None, service_path or None, self.token)
        row = self._db.execute("SELECT subscription_id, commands FROM subscriptions WHERE service = ? AND "
                               "service_path = ? AND device_id = ?", (service, service_path, device_id)).fetchone()
        view = self._view(service, service_path, device_id)
        commands = sorted(c["name"] for c in view.commands()) if view else []
        if row and (not commands or json.loads(row[1]) != _subscribed(commands)):
            try:
                self.client.delete_subscription(row[0], headers=headers)
            except NgsiResponseError as exc:
                if exc.status != 404:
                    raise
            self._db.execute("DELETE FROM subscriptions WHERE service = ? AND service_path = ? AND device_id = ?",
                             (service, service_path, device_id))
            row = None
        if view is None or not commands or row is not None:
            return
        family = self._family(view)
        entity_id, entity_type = view.entity_id(family, None), view.entity_type(family, None)
        now = datetime.now(UTC)
        init: Json = {}
        for name in commands:
            init[name] = {"type": "command", "value": ""}
            init[f"{name}_status"] = {"type": "commandStatus", **_stamp("UNKNOWN", now)}
            init[f"{name}_info"] = {"type": "commandResult", **_stamp(" ", now)}
        self._persist([EntityUpdate(service, service_path, entity_id, entity_type, init)], family.name)
        subscription = {
            "description": f"flexmeter IoT Agent commands of {device_id}",
            "subject": {"entities": [{"id": entity_id, "type": entity_type}], "condition": {"attrs": commands}},
            "notification": {"http": {"url": f"{self.north_url}/notify"}, "attrs": commands,
                             "attrsFormat": "normalized", "onlyChangedAttrs": True},
        }
        subscription_id = self.client.create_subscription(subscription, headers=headers)
        self._db.execute("INSERT OR REPLACE INTO subscriptions VALUES (?, ?, ?, ?, ?)",
                         (service, service_path, device_id, subscription_id, json.dumps(_subscribed(commands))))
        log.info("subscribed to the commands %s of %s (%s)", commands, device_id, subscription_id)

    # -- execution -----------------------------------------------------------------------------------------
    def handle_notification(self, service: str, service_path: str, body: Json) -> int:
        """A broker notification: send each non-empty command value to its device. Returns how many."""
        sent = 0
        subscription_id = body.get("subscriptionId")
        by_sub = None
        if subscription_id:
            by_sub = self._db.execute("SELECT service, service_path, device_id FROM subscriptions WHERE "
                                      "subscription_id = ?", (subscription_id,)).fetchone()
        for entity in body.get("data") or []:
            view = self._find_view(service, service_path, entity, by_sub)
            if view is None:
                log.warning("notification for unknown entity %s", entity.get("id"))
                continue
            for command in view.commands():
                attr = entity.get(command["name"])
                value = attr.get("value") if isinstance(attr, dict) else None
                if value in (None, ""):
                    continue
                self.execute(view, command["name"], value)
                sent += 1
        return sent

    def _find_view(self, service: str, service_path: str, entity: Json,
                   by_sub: tuple[str, str, str] | None) -> DeviceView | None:
        if by_sub is not None:
            view = self._view(*by_sub)
            if view is not None:
                return view
        for device in self.registry.all_devices():
            if device.get("service") != service:
                continue
            view = DeviceView(device, self.registry.group_for_device(device["service"], device["service_path"],
                                                                      device))
            family = self._family(view)
            if view.entity_id(family, None) == entity.get("id"):
                return view
        return None

    def execute(self, view: DeviceView, command: str, value: Any) -> None:
        family = self._family(view)
        apikey = str(view.device.get("apikey") or (view.group or {}).get("apikey") or "")
        entity_id, entity_type = view.entity_id(family, None), view.entity_type(family, None)
        try:
            outgoing = family.encode_command(apikey, view.device_id, command, value)
        except (ValueError, TypeError) as exc:
            stamp = datetime.now(UTC)
            self._persist([EntityUpdate(view.service, view.service_path, entity_id, entity_type, {
                f"{command}_status": {"type": "commandStatus", **_stamp("ERROR", stamp)},
                f"{command}_info": {"type": "commandResult", **_stamp(str(exc), stamp)}})], family.name)
            self.metrics.commands.inc(status="ERROR", family=family.name)
            return
        polling = is_polling(view)
        with self._pending_lock:
            self._db.execute("INSERT OR REPLACE INTO pending (service, service_path, device_id, command, value, "
                             "entity_id, entity_type, expires, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (view.service, view.service_path, view.device_id, command, json.dumps(value),
                              entity_id, entity_type, time.time() + self.timeout, "queued" if polling else "sent"))
        self._persist([EntityUpdate(view.service, view.service_path, entity_id, entity_type,
                                    {f"{command}_status": {"type": "commandStatus",
                                                           **_stamp("PENDING", datetime.now(UTC))}})],
                      family.name)
        self.metrics.commands.inc(status="PENDING", family=family.name)
        if polling:
            log.info("command %s queued for %s (polling)", command, view.device_id)
            return
        self.publish(outgoing.topic, outgoing.payload)
        log.info("command %s sent to %s on %s", command, view.device_id, outgoing.topic)

    def poll(self, apikey: str, device_id: str) -> Json:
        """The commands queued for a polling device, ``{"<cmd>": value}`` (one value per command, the last),
        now ``DELIVERED``; ``{}`` when there are none. Unknown apikey or device: the FIWARE errors."""
        device = self.registry.find_device_by_apikey(device_id, apikey)
        group = self.registry.group_by_apikey(apikey)
        if device is None and group is not None:
            device = self.registry.find_device(group["service"], group["subservice"], device_id)
        if device is None:
            if group is None:
                raise DeviceGroupNotFound({"apikey": apikey, "resource": ""})
            if group.get("autoprovision", True) is False:
                raise DeviceNotFound(device_id)
            return {}  # not provisioned yet: nothing can be queued for it
        service, path = str(device["service"]), str(device["service_path"])
        with self._pending_lock:
            rows = self._db.execute("SELECT command, value, entity_id, entity_type FROM pending WHERE service = ? "
                                    "AND service_path = ? AND device_id = ? AND state = 'queued' ORDER BY rowid",
                                    (service, path, device_id)).fetchall()
            if not rows:
                return {}
            self._db.execute("UPDATE pending SET state = 'delivered', expires = ? WHERE service = ? AND "
                             "service_path = ? AND device_id = ? AND state = 'queued'",
                             (time.time() + self.timeout, service, path, device_id))
        stamp = datetime.now(UTC)
        commands: Json = {}
        attrs: Json = {}
        for command, value, _, _ in rows:
            decoded = json.loads(value)
            if not (isinstance(decoded, str) and not decoded.strip()):  # iotagent-json skips blank values
                commands[command] = decoded
            attrs[f"{command}_status"] = {"type": "commandStatus", **_stamp("DELIVERED", stamp)}
            attrs[f"{command}_info"] = {"type": "commandResult", **_stamp(" ", stamp)}
        view = DeviceView(device, self.registry.group_for_device(service, path, device))
        family = self._family(view)
        self._persist([EntityUpdate(service, path, rows[0][2], rows[0][3], attrs)], family.name)
        self.metrics.commands.inc(len(rows), status="DELIVERED", family=family.name)
        log.info("commands %s delivered to %s (polling)", sorted(commands), device_id)
        return commands

    def on_reply(self, view: DeviceView, reply: CommandReply, received_at: datetime) -> list[EntityUpdate]:
        """Pipeline hook for a device's ``/cmdexe``: the status/info updates (persisted by the pipeline)."""
        family = self._family(view)
        with self._pending_lock:
            self._db.execute("DELETE FROM pending WHERE service = ? AND service_path = ? AND device_id = ? AND "
                             "command = ?", (view.service, view.service_path, view.device_id, reply.command))
        self.metrics.commands.inc(status=reply.status, family=family.name)
        info = reply.info if reply.info is not None else ""
        return [EntityUpdate(view.service, view.service_path, view.entity_id(family, None),
                             view.entity_type(family, None),
                             {f"{reply.command}_status": {"type": "commandStatus", **_stamp(reply.status, received_at)},
                              f"{reply.command}_info": {"type": "commandResult", **_stamp(info, received_at)}})]

    def expire(self) -> None:
        now = time.time()
        with self._pending_lock:
            rows = self._db.execute("SELECT service, service_path, device_id, command, entity_id, entity_type, state "
                                    "FROM pending WHERE expires <= ?", (now,)).fetchall()
            for service, path, device_id, command, *_ in rows:
                self._db.execute("DELETE FROM pending WHERE service = ? AND service_path = ? AND device_id = ? AND "
                                 "command = ?", (service, path, device_id, command))
        if not rows:
            return
        stamp = datetime.now(UTC)
        updates = []
        for service, path, _device_id, command, entity_id, entity_type, state in rows:
            why = (f"not fetched by the device within {self.timeout:g} s" if state == "queued"
                   else f"no reply from the device within {self.timeout:g} s")
            updates.append(EntityUpdate(service, path, entity_id, entity_type, {
                f"{command}_status": {"type": "commandStatus", **_stamp("ERROR", stamp)},
                f"{command}_info": {"type": "commandResult", **_stamp(why, stamp)}}))
            self.metrics.commands.inc(status="TIMEOUT", family="")
        self._persist(updates, "commands")

    def _persist(self, updates: list[EntityUpdate], family: str) -> None:
        now = time.time()
        self.outbox.put([NewRow(u.service, u.service_path, json.dumps(u.entity(), separators=(",", ":")), family,
                                now) for u in updates])
        self.wake()
