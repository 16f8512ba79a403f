"""Commands in notification mode, as iotagent-node-lib does them.

For every device with ``commands``, the agent keeps a broker subscription on those attributes that notifies
its own north ``/notify``. A notified non-empty command value is encoded by the device's family, published
(MQTT ``/<apikey>/<device_id>/cmd`` by default) and recorded as pending; ``<cmd>_status`` becomes
``PENDING``. The device's ``/cmdexe`` reply sets ``OK``/``ERROR`` and ``<cmd>_info``; no reply within the
timeout sets ``ERROR``. Pending commands live in SQLite, so a restart does not forget a timeout. Status
updates go through the outbox like readings.

HTTP push (iotagent-json's HTTP devices with an ``endpoint``, the device's or its group's): the command is
POSTed to the endpoint (``{"<cmd>": value}``, ``fiware-service``/``fiware-servicepath`` headers) by a small
pool of worker threads; the device's synchronous answer sets ``OK`` and ``<cmd>_info`` (an object's member
named after a command, else the body itself), a failed request or a non-2xx answer sets ``ERROR`` with why.

Polling (iotagent-json's HTTP devices): a device (or its group) with ``transport: HTTP`` and no ``endpoint``
is not sent anything; its commands are queued (``PENDING``) until it asks with ``GET /iot/json?k=&i=&getCmd=1``
(or a measure ``POST`` with ``getCmd=1``), which answers ``{"<cmd>": value, ...}`` and sets ``DELIVERED``;
its result on ``POST /iot/json/commands?k=&i=`` sets ``OK``. Not fetched, or not answered, within the
timeout: ``ERROR``.

With a north token (``--token``), the subscriptions are ``httpCustom`` ones sending it (``X-Auth-Token``), as
``/notify`` then requires it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from flexmeter.iot_agents.core.errors import DeviceGroupNotFound, DeviceNotFound
from flexmeter.iot_agents.core.family import CommandReply, Family
from flexmeter.iot_agents.core.mapping import DeviceView, EntityUpdate
from flexmeter.iot_agents.core.metrics import AgentMetrics
from flexmeter.iot_agents.core.outbox import NewRow, Outbox
from flexmeter.iot_agents.core.pipeline import entity_json
from flexmeter.iot_agents.core.registry import Registry
from flexmeter.iot_agents.core.timeutil import iso
from flexmeter.ngsi import FiwareHeaders, NgsiClient
from flexmeter.ngsi.errors import NgsiClientError, NgsiResponseError

log = logging.getLogger(__name__)

Json = dict[str, Any]


def is_polling(view: DeviceView) -> bool:
    """iotagent-json's rule: an HTTP device without an ``endpoint`` fetches its commands (polling)."""
    return str(view.get("transport") or "").upper() == "HTTP" and not view.get("endpoint")


def push_endpoint(view: DeviceView) -> str | None:
    """iotagent-json's rule: an HTTP device with an ``endpoint`` (its own or its group's) gets its commands
    POSTed there (push); None for every other device."""
    endpoint = view.get("endpoint")
    if str(view.get("transport") or "").upper() == "HTTP" and endpoint:
        return str(endpoint).strip()
    return None


def _subscribed(commands: list[str], notify_token: str | None = None) -> Json:
    """What a subscription row records; a row of an earlier form (a bare list, subscriptions without
    ``onlyChangedAttrs``, another north token) differs, so the subscription is made again. The token
    itself is not stored, only a short digest telling that it changed."""
    row: Json = {"commands": commands, "onlyChangedAttrs": True}
    if notify_token:
        row["auth"] = hashlib.sha256(notify_token.encode()).hexdigest()[:8]
    return row


def _shown(url: str) -> str:
    """An endpoint as ``<cmd>_info`` and logs may show it: without user and password."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _why_unreachable(exc: BaseException) -> str:
    """The innermost OS reason of a failed connection (``connection refused``), else "": requests wraps it
    in urllib3's errors (arguments, ``reason``, ``__cause__``)."""
    todo: list[object] = [exc]
    seen: set[int] = set()
    while todo and len(seen) < 50:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, OSError) and item.strerror:
            return item.strerror.lower()
        todo.extend([*item.args, getattr(item, "reason", None), item.__cause__, item.__context__])
    return ""


@dataclass(frozen=True)
class _Push:
    """One command on its way to a device's HTTP endpoint."""

    service: str
    service_path: str
    device_id: str
    command: str
    entity_id: str
    entity_type: str
    family: str
    endpoint: str
    payload: bytes
    expires: float
    """The pending row's: tells this push's row from a newer one of the same command."""
    commands: list[str]
    """The device's command names: an answer's members that name one of them set its status."""


FORBIDDEN = str.maketrans({c: " " for c in "<>\"'=;()"})


def _status(command: str, status: str, info: Any, when: datetime) -> Json:
    """The ``<cmd>_status`` and ``<cmd>_info`` attributes of a command at ``when``."""
    return {f"{command}_status": {"type": "commandStatus", **_stamp(status, when)},
            f"{command}_info": {"type": "commandResult", **_stamp(info, when)}}


def _stamp(value: Any, when: datetime) -> Json:
    if isinstance(value, str):
        value = value.translate(FORBIDDEN)  # Orion rejects these characters in values
    return {"value": value, "metadata": {"TimeInstant": {"type": "DateTime", "value": iso(when)}}}


class CommandFlow:
    def __init__(self, registry: Registry, outbox: Outbox, metrics: AgentMetrics, db_path: Path | str, *,
                 ngsi_url: str, north_url: str, families: dict[str, Family], default_family: Family,
                 publish: Callable[[str, bytes], None], wake: Callable[[], None], timeout: float = 30.0,
                 token: str | None = None, notify_token: str | None = None, push_workers: int = 4) -> None:
        """``token``: the broker's (NGSI requests); ``notify_token``: the agent's north token, which the
        command subscriptions send to ``/notify``."""
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
        self.notify_token = notify_token or None
        if self.notify_token and any(c in self.notify_token for c in "<>\"'=;()"):
            log.warning("the north token has characters Orion forbids (<>\"'=;()): Orion will refuse the command "
                        "subscriptions that send it; use a token without them (e.g. hex)")
        self._push_queue: queue.SimpleQueue[_Push | None] = queue.SimpleQueue()
        self._push_workers = max(1, push_workers)
        self._pushers: list[threading.Thread] = []
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
            # it), 'delivered' (polling: fetched, waiting for the reply), 'pushing' (HTTP push in flight)
            self._db.execute("ALTER TABLE pending ADD COLUMN state TEXT NOT NULL DEFAULT 'sent'")
        self._lock = threading.Lock()
        self._entity_index: tuple[int, dict[tuple[str, str], tuple[str, str, str]]] = (-1, {})
        self._pending_lock = threading.Lock()
        self._todo: set[tuple[str, str, str]] = set()
        self._syncing = 0
        self._stop = threading.Event()
        self._closed = threading.Event()
        """Set when :meth:`stop` returns: the outbox may be closed, a late push result is not written."""
        self._thread = threading.Thread(target=self._run, name="iota-commands", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        for device in self.registry.all_devices():
            self.device_changed(device["service"], device["service_path"], device["device_id"])
        self._thread.start()

    def stop(self) -> None:
        """A push still in flight after a short wait is left pending: it expires to ``ERROR`` (after a
        restart too), never to a status the device did not give."""
        self._stop.set()
        for _ in self._pushers:
            self._push_queue.put(None)
        deadline = time.monotonic() + 2.0
        for thread in self._pushers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._thread.join(timeout=5)
        self._closed.set()
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
    def subscriptions_pending(self) -> int:
        """Devices whose command subscription is still to be created, changed or removed in the broker."""
        with self._lock:
            return len(self._todo) + self._syncing

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
            self._syncing = len(todo)  # still pending (for /health and the benches) until synced
        for key in todo:
            try:
                self._sync_one(*key)
            except NgsiClientError as exc:
                log.warning("cannot sync the command subscription of %s: %s; will retry", key[2], exc)
                with self._lock:
                    self._todo.add(key)
            finally:
                with self._lock:
                    self._syncing -= 1

    def _sync_one(self, service: str, service_path: str, device_id: str) -> None:
        headers = FiwareHeaders(service or None, service_path or None, self.token)
        row = self._db.execute("SELECT subscription_id, commands FROM subscriptions WHERE service = ? AND "
                               "service_path = ? AND device_id = ?", (service, service_path, device_id)).fetchone()
        view = self._view(service, service_path, device_id)
        commands = sorted(c["name"] for c in view.commands()) if view else []
        if row and (not commands or json.loads(row[1]) != _subscribed(commands, self.notify_token)):
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
            init.update(_status(name, "UNKNOWN", " ", now))
        self._persist([EntityUpdate(service, service_path, entity_id, entity_type, init)], family.name)
        target: Json = {"url": f"{self.north_url}/notify"}
        if self.notify_token:  # /notify requires the north token: the broker sends it (Orion's httpCustom)
            channel: Json = {"httpCustom": {**target, "headers": {"X-Auth-Token": self.notify_token}}}
        else:
            channel = {"http": target}
        subscription = {
            "description": f"flexmeter IoT Agent commands of {device_id}",
            "subject": {"entities": [{"id": entity_id, "type": entity_type}], "condition": {"attrs": commands}},
            "notification": {**channel, "attrs": commands, "attrsFormat": "normalized", "onlyChangedAttrs": True},
        }
        subscription_id = self.client.create_subscription(subscription, headers=headers)
        self._db.execute("INSERT OR REPLACE INTO subscriptions VALUES (?, ?, ?, ?, ?)",
                         (service, service_path, device_id, subscription_id,
                          json.dumps(_subscribed(commands, self.notify_token))))
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
            if not any(isinstance(attr, dict) and attr.get("value") not in (None, "")
                       for name, attr in entity.items() if name not in ("id", "type")):
                continue  # the agent's own reset of its command attributes: nothing to send
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
        key = self._entity_keys().get((service, str(entity.get("id"))))
        return self._view(*key) if key is not None else None

    def _entity_keys(self) -> dict[tuple[str, str], tuple[str, str, str]]:
        """(service, entity id) -> the device's key, rebuilt only after the registry changed."""
        version, index = self._entity_index
        if version == self.registry.version:
            return index
        version, index = self.registry.version, {}
        for device in self.registry.all_devices():
            view = DeviceView(device, self.registry.group_for_device(device["service"], device["service_path"],
                                                                      device))
            index.setdefault((device["service"], view.entity_id(self._family(view), None)),
                             (device["service"], device["service_path"], device["device_id"]))
        self._entity_index = (version, index)
        return index

    def execute(self, view: DeviceView, command: str, value: Any) -> None:
        family = self._family(view)
        apikey = str(view.device.get("apikey") or (view.group or {}).get("apikey") or "")
        entity_id, entity_type = view.entity_id(family, None), view.entity_type(family, None)
        try:
            outgoing = family.encode_command(apikey, view.device_id, command, value)
        except (ValueError, TypeError) as exc:
            stamp = datetime.now(UTC)
            self._persist([EntityUpdate(view.service, view.service_path, entity_id, entity_type,
                                        _status(command, "ERROR", str(exc), stamp))], family.name)
            self.metrics.commands.inc(status="ERROR", family=family.name)
            return
        polling = is_polling(view)
        endpoint = push_endpoint(view)
        state = "queued" if polling else "pushing" if endpoint else "sent"
        # a push has its own HTTP timeouts (connect, read); the row expires later, in case the agent stops
        # with the request in flight
        expires = time.time() + (2 * self.timeout + 5 if endpoint else self.timeout)
        with self._pending_lock:
            self._db.execute("INSERT OR REPLACE INTO pending (service, service_path, device_id, command, value, "
                             "entity_id, entity_type, expires, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (view.service, view.service_path, view.device_id, command, json.dumps(value),
                              entity_id, entity_type, expires, state))
        self._persist([EntityUpdate(view.service, view.service_path, entity_id, entity_type,
                                    {f"{command}_status": {"type": "commandStatus",
                                                           **_stamp("PENDING", datetime.now(UTC))}})],
                      family.name)
        self.metrics.commands.inc(status="PENDING", family=family.name)
        if polling:
            log.info("command %s queued for %s (polling)", command, view.device_id)
            return
        if endpoint:
            names = sorted(c["name"] for c in view.commands())
            self._push(_Push(view.service, view.service_path, view.device_id, command, entity_id, entity_type,
                             family.name, endpoint, outgoing.payload, expires, names))
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
            attrs.update(_status(command, "DELIVERED", " ", stamp))
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
                             _status(reply.command, reply.status, info, received_at))]

    # -- HTTP push -------------------------------------------------------------------------------------------
    def _push(self, push: _Push) -> None:
        with self._lock:
            if len(self._pushers) < self._push_workers and not self._stop.is_set():
                thread = threading.Thread(target=self._pusher, name=f"iota-push-{len(self._pushers)}", daemon=True)
                self._pushers.append(thread)
                thread.start()
        self._push_queue.put(push)

    def _pusher(self) -> None:
        session = requests.Session()
        try:
            while True:
                push = self._push_queue.get()
                if push is None or self._stop.is_set():  # what is left stays pending and expires to ERROR
                    return
                try:
                    self._send(session, push)
                except Exception:
                    log.exception("HTTP push of %s to %s", push.command, push.device_id)
        finally:
            session.close()

    def _send(self, session: requests.Session, push: _Push) -> None:
        """POST the command; the answer (or why there is none) becomes ``<cmd>_status``/``<cmd>_info``."""
        where = _shown(push.endpoint)
        headers = {"Content-Type": "application/json", "fiware-service": push.service,
                   "fiware-servicepath": push.service_path}
        results: Json = {}
        status = "ERROR"
        try:
            response = session.post(push.endpoint, data=push.payload, headers=headers,
                                    timeout=(self.timeout, self.timeout), allow_redirects=False)
        except requests.Timeout:
            info: Any = f"the device at {where} did not answer within {self.timeout:g} s"
        except requests.ConnectionError as exc:
            info = f"cannot reach the device at {where}: {_why_unreachable(exc) or 'connection failed'}"
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as exc:
            # iotagent-node-lib's endpoint is a URL string (its datamodel marks no expression for it), so
            # a JEXL-looking one is not evaluated: say so, the provisioner most likely expected it to be
            info = (f"the endpoint {where} is not a usable URL (it is used as given, not evaluated as an "
                    f"expression): {exc}")
        except requests.RequestException as exc:
            info = f"the request to the device at {where} failed: {exc}"
        else:
            text = response.text.strip()
            if 200 <= response.status_code < 300:
                status, info = "OK", text
                try:
                    answer = json.loads(text) if text else None
                except ValueError:
                    answer = None
                if isinstance(answer, dict):  # iotagent-json: each member names a command, its value the result
                    results = {name: value for name, value in answer.items() if name in push.commands}
                    info = results.pop(push.command, text)
            else:
                info = f"the device at {where} answered HTTP {response.status_code}" + (f": {text[:200]}"
                                                                                       if text else "")
        if self._closed.is_set():  # the outbox may be closed: the row stays, and expires after a restart
            return
        with self._pending_lock:
            claimed = self._db.execute("DELETE FROM pending WHERE service = ? AND service_path = ? AND device_id = ? "
                                       "AND command = ? AND state = 'pushing' AND expires = ?",
                                       (push.service, push.service_path, push.device_id, push.command,
                                        push.expires)).rowcount
        if not claimed:  # timed out meanwhile, or replaced by a newer command of the same name
            log.info("HTTP push of %s to %s ended after its pending entry was gone: %s", push.command,
                     push.device_id, status)
            return
        stamp = datetime.now(UTC)
        attrs: Json = {}
        for name, value in ((push.command, info), *results.items()):
            name_status = status if name == push.command else "OK"
            attrs.update(_status(name, name_status, value, stamp))
        self._persist([EntityUpdate(push.service, push.service_path, push.entity_id, push.entity_type, attrs)],
                      push.family)
        self.metrics.commands.inc(status=status, family=push.family)
        (log.info if status == "OK" else log.warning)("command %s pushed to %s: %s%s", push.command, push.device_id,
                                                      status, "" if status == "OK" else f" ({info})")

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
                   else "the HTTP push did not end: the agent stopped while sending it" if state == "pushing"
                   else f"no reply from the device within {self.timeout:g} s")
            updates.append(EntityUpdate(service, path, entity_id, entity_type, _status(command, "ERROR", why, stamp)))
            self.metrics.commands.inc(status="TIMEOUT", family="")
        self._persist(updates, "commands")

    def _persist(self, updates: list[EntityUpdate], family: str) -> None:
        now = time.time()
        self.outbox.put([NewRow(u.service, u.service_path, entity_json(u.entity()), family, now) for u in updates])
        self.wake()
