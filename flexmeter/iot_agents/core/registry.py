"""Service groups and devices in SQLite, with per-device secrets kept in a separate file.

The north API writes here; the ingest pipeline reads through an in-memory cache that every write clears.
Secrets (wM-Bus AES keys, DLMS GUEK/GAK, passwords) arrive as ``internal_attributes`` at provisioning, are
moved to the secrets store, and are never returned by :meth:`Registry.get_device` nor logged.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flexmeter.iot_agents.core.errors import (
    DeviceGroupNotFound,
    DeviceNotFound,
    DuplicateDeviceId,
    DuplicateGroup,
    WrongSyntax,
)

Json = dict[str, Any]

SECRET_NAME = re.compile(r"(^|[_\-.])(key|keys|guek|gak|gbek|akey|secret|password|passwd|token|pin)$", re.I)

GROUP_LIST_FIELDS = ("attributes", "lazy", "commands", "static_attributes")


def _connect(path: Path | str) -> sqlite3.Connection:
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def split_secrets(internal: Any) -> tuple[Any, dict[str, str]]:
    """``internal_attributes`` without its secrets, and the secrets (name -> value).

    Accepted shapes: a list of ``{"name", "value"[, "secret": true]}`` entries, or a dict whose keys are
    names (a nested ``"secrets"`` dict holds secrets whatever their names).
    """
    secrets: dict[str, str] = {}
    if isinstance(internal, list):
        kept: list[Any] = []
        for entry in internal:
            if isinstance(entry, dict) and "name" in entry and "value" in entry and (
                    entry.get("secret") is True or is_secret_name(str(entry["name"]))):
                secrets[str(entry["name"])] = str(entry["value"])
            else:
                kept.append(entry)
        return kept, secrets
    if isinstance(internal, dict):
        kept_dict: Json = {}
        for name, value in internal.items():
            if name == "secrets" and isinstance(value, dict):
                secrets.update({str(k): str(v) for k, v in value.items()})
            elif is_secret_name(str(name)) and isinstance(value, str | int):
                secrets[str(name)] = str(value)
            else:
                kept_dict[name] = value
        return kept_dict, secrets
    return internal, secrets


def internal_config(internal: Any) -> Json:
    """``internal_attributes`` as a dict (list entries ``{"name", "value"}`` become keys)."""
    if isinstance(internal, dict):
        return dict(internal)
    config: Json = {}
    if isinstance(internal, list):
        for entry in internal:
            if isinstance(entry, dict) and "name" in entry:
                config[str(entry["name"])] = entry.get("value")
            elif isinstance(entry, dict):
                config.update(entry)
    return config


def _check_attr_list(body: Json, field: str) -> None:
    value = body.get(field)
    if value is None:
        return
    if not isinstance(value, list):
        raise WrongSyntax(f"{field} must be an array")
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise WrongSyntax(f"every entry of {field} needs a name: {json.dumps(item)[:200]}")
        if item["name"] in ("id", "type"):
            raise WrongSyntax(f"{field}: {item['name']!r} is not a valid attribute name")


class Registry:
    """Thread-safe (one connection per file behind a lock; reads go through a cache)."""

    def __init__(self, path: Path | str, secrets_path: Path | str | None = None) -> None:
        self._db = _connect(path)
        if secrets_path is None:
            secrets_path = ":memory:" if str(path) == ":memory:" else Path(path).with_name("secrets.db")
        self._secrets_db = _connect(secrets_path)
        if str(secrets_path) != ":memory:":
            Path(secrets_path).chmod(0o600)
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, ...], Any] = {}
        self.version = 0
        """Bumped by every committed write: what callers key their own caches of registry answers on."""
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS groups (
                service TEXT NOT NULL, subservice TEXT NOT NULL, resource TEXT NOT NULL, apikey TEXT NOT NULL,
                body TEXT NOT NULL, PRIMARY KEY (resource, apikey));
            CREATE INDEX IF NOT EXISTS groups_tenant ON groups (service, subservice);
            CREATE TABLE IF NOT EXISTS devices (
                service TEXT NOT NULL, subservice TEXT NOT NULL, device_id TEXT NOT NULL,
                apikey TEXT, body TEXT NOT NULL, seq INTEGER, PRIMARY KEY (service, subservice, device_id));
            CREATE INDEX IF NOT EXISTS devices_id ON devices (device_id, apikey);
            """
        )
        self._secrets_db.execute(
            "CREATE TABLE IF NOT EXISTS secrets (service TEXT NOT NULL, subservice TEXT NOT NULL, "
            "device_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, "
            "PRIMARY KEY (service, subservice, device_id, name))"
        )
        # decoders look keys up by meter id alone, for every frame
        self._secrets_db.execute("CREATE INDEX IF NOT EXISTS secrets_device ON secrets (device_id)")

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._secrets_db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._cache.clear()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self.version += 1

    # -- groups ----------------------------------------------------------------------------------------
    def create_groups(self, service: str, subservice: str, groups: list[Json]) -> None:
        for group in groups:
            if not isinstance(group, dict):
                raise WrongSyntax("every service group must be an object")
            if not isinstance(group.get("apikey"), str):
                raise WrongSyntax("apikey is mandatory in a service group")
            for field in GROUP_LIST_FIELDS:
                _check_attr_list(group, field)
        with self._write() as db:
            for group in groups:
                body = dict(group)
                body.setdefault("resource", "")
                if "type" in body and "entity_type" not in body:
                    body["entity_type"] = body.pop("type")
                body["service"], body["subservice"] = service, subservice
                try:
                    db.execute("INSERT INTO groups VALUES (?, ?, ?, ?, ?)",
                               (service, subservice, body["resource"], body["apikey"], json.dumps(body)))
                except sqlite3.IntegrityError:
                    raise DuplicateGroup(body["resource"], body["apikey"]) from None

    def list_groups(self, service: str, subservice: str, limit: int | None = None, offset: int = 0) -> list[Json]:
        with self._lock:
            if subservice == "/*":
                rows = self._db.execute("SELECT body FROM groups WHERE service = ? ORDER BY rowid LIMIT ? OFFSET ?",
                                        (service, -1 if limit is None else limit, offset)).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT body FROM groups WHERE service = ? AND subservice = ? ORDER BY rowid LIMIT ? OFFSET ?",
                    (service, subservice, -1 if limit is None else limit, offset)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def update_group(self, service: str, subservice: str, resource: str, apikey: str, patch: Json) -> None:
        for field in GROUP_LIST_FIELDS:
            _check_attr_list(patch, field)
        with self._write() as db:
            row = db.execute("SELECT body FROM groups WHERE service = ? AND subservice = ? AND resource = ? "
                             "AND apikey = ?", (service, subservice, resource, apikey)).fetchone()
            if row is None:
                raise DeviceGroupNotFound({"service": service, "subservice": subservice, "resource": resource,
                                           "apikey": apikey})
            body = json.loads(row[0])
            patch = {k: v for k, v in patch.items() if k not in ("service", "subservice")}
            if "type" in patch and "entity_type" not in patch:
                patch["entity_type"] = patch.pop("type")
            body.update(patch)
            try:
                db.execute("UPDATE groups SET body = ?, resource = ?, apikey = ? WHERE service = ? AND "
                           "subservice = ? AND resource = ? AND apikey = ?",
                           (json.dumps(body), body.get("resource", resource), body.get("apikey", apikey),
                            service, subservice, resource, apikey))
            except sqlite3.IntegrityError:
                raise DuplicateGroup(body.get("resource", resource), body.get("apikey", apikey)) from None

    def delete_group(self, service: str, subservice: str, resource: str, apikey: str) -> None:
        with self._write() as db:
            cursor = db.execute("DELETE FROM groups WHERE service = ? AND subservice = ? AND resource = ? AND "
                                "apikey = ?", (service, subservice, resource, apikey))
            if cursor.rowcount == 0:
                raise DeviceGroupNotFound({"service": service, "subservice": subservice, "resource": resource,
                                           "apikey": apikey})

    def group_by_apikey(self, apikey: str, resource: str | None = None) -> Json | None:
        """The group of an apikey (preferring ``resource`` when several groups share the apikey)."""
        key = ("group", apikey, resource or "")
        with self._lock:
            if key in self._cache:
                cached: Json | None = self._cache[key]
                return cached
            rows = self._db.execute("SELECT resource, body FROM groups WHERE apikey = ? ORDER BY rowid",
                                    (apikey,)).fetchall()
            found = None
            for res, body in rows:
                if resource is None or res == resource:
                    found = json.loads(body)
                    break
            if found is None and rows:
                found = json.loads(rows[0][1])
            self._cache[key] = found
            return found

    def group_for_device(self, service: str, subservice: str, device: Json) -> Json | None:
        """The group a provisioned device belongs to: by its apikey, else by entity type, else the tenant's."""
        key = ("groups", service, subservice)
        with self._lock:  # one hold (reentrant): a write between the read and the store must not be cached over
            groups: list[Json] | None = self._cache.get(key)
            if groups is None:  # parsed once per registry write: a tenant's groups carry whole mapping tables
                groups = self._cache[key] = self.list_groups(service, subservice)
        apikey = device.get("apikey")
        for group in groups:
            if apikey and group.get("apikey") == apikey:
                return group
        if apikey:
            return None
        for group in groups:
            if device.get("entity_type") and group.get("entity_type") == device.get("entity_type"):
                return group
        return groups[0] if len(groups) == 1 else None

    # -- devices ---------------------------------------------------------------------------------------
    def create_devices(self, service: str, subservice: str, devices: list[Json]) -> list[Json]:
        prepared: list[tuple[Json, dict[str, str]]] = []
        for device in devices:
            if not isinstance(device, dict) or not isinstance(device.get("device_id"), str) or not device["device_id"]:
                raise WrongSyntax("device_id is mandatory and must be a string")
            for field in GROUP_LIST_FIELDS:
                _check_attr_list(device, field)
            body = dict(device)
            body["service"], body["service_path"] = service, subservice
            internal, secrets = split_secrets(body.get("internal_attributes"))
            if "internal_attributes" in body:
                body["internal_attributes"] = internal
            group = self.group_for_device(service, subservice, body)
            if group is not None:
                body.setdefault("apikey", group.get("apikey"))
                if not body.get("entity_type") and group.get("entity_type"):
                    body["entity_type"] = group["entity_type"]
            if body.get("entity_type") and not body.get("entity_name"):
                body["entity_name"] = f"{body['entity_type']}:{body['device_id']}"
            prepared.append((body, secrets))
        with self._write() as db:
            for body, _secrets in prepared:
                try:
                    db.execute("INSERT INTO devices (service, subservice, device_id, apikey, body) VALUES "
                               "(?, ?, ?, ?, ?)", (service, subservice, body["device_id"], body.get("apikey"),
                                                   json.dumps(body)))
                except sqlite3.IntegrityError:
                    raise DuplicateDeviceId(body["device_id"]) from None
            self._store_secrets(service, subservice, prepared)
        return [body for body, _ in prepared]

    def _store_secrets(self, service: str, subservice: str, prepared: list[tuple[Json, dict[str, str]]]) -> None:
        with self._secrets_db:
            for body, secrets in prepared:
                for name, value in secrets.items():
                    self._secrets_db.execute("INSERT OR REPLACE INTO secrets VALUES (?, ?, ?, ?, ?)",
                                             (service, subservice, body["device_id"], name, value))

    def get_device(self, service: str, subservice: str, device_id: str) -> Json:
        device = self.find_device(service, subservice, device_id)
        if device is None:
            raise DeviceNotFound(device_id)
        return device

    def find_device(self, service: str, subservice: str, device_id: str) -> Json | None:
        key = ("device", service, subservice, device_id)
        with self._lock:
            if key in self._cache:
                cached: Json | None = self._cache[key]
                return cached
            row = self._db.execute("SELECT body FROM devices WHERE service = ? AND subservice = ? AND "
                                   "device_id = ?", (service, subservice, device_id)).fetchone()
            found = json.loads(row[0]) if row else None
            self._cache[key] = found
            return found

    def find_device_by_apikey(self, device_id: str, apikey: str) -> Json | None:
        key = ("device-key", device_id, apikey)
        with self._lock:
            if key in self._cache:
                cached: Json | None = self._cache[key]
                return cached
            row = self._db.execute("SELECT body FROM devices WHERE device_id = ? AND apikey = ?",
                                   (device_id, apikey)).fetchone()
            found = json.loads(row[0]) if row else None
            self._cache[key] = found
            return found

    def list_devices(self, service: str, subservice: str, limit: int = 20,
                     offset: int = 0) -> tuple[int, list[Json]]:
        with self._lock:
            if subservice == "/*":
                where, args = "service = ?", [service]
            else:
                where, args = "service = ? AND subservice = ?", [service, subservice]
            count = self._db.execute(f"SELECT COUNT(*) FROM devices WHERE {where}", args).fetchone()[0]
            rows = self._db.execute(f"SELECT body FROM devices WHERE {where} ORDER BY rowid LIMIT ? OFFSET ?",
                                    [*args, limit, offset]).fetchall()
        return int(count), [json.loads(r[0]) for r in rows]

    def update_device(self, service: str, subservice: str, device_id: str, patch: Json) -> Json:
        for field in GROUP_LIST_FIELDS:
            _check_attr_list(patch, field)
        internal, secrets = split_secrets(patch.get("internal_attributes"))
        with self._write() as db:
            row = db.execute("SELECT body FROM devices WHERE service = ? AND subservice = ? AND device_id = ?",
                             (service, subservice, device_id)).fetchone()
            if row is None:
                raise DeviceNotFound(device_id)
            body = json.loads(row[0])
            for key, value in patch.items():
                if key in ("device_id", "service", "service_path"):
                    continue
                body[key] = internal if key == "internal_attributes" else value
            db.execute("UPDATE devices SET body = ?, apikey = ? WHERE service = ? AND subservice = ? AND "
                       "device_id = ?", (json.dumps(body), body.get("apikey"), service, subservice, device_id))
            self._store_secrets(service, subservice, [(body, secrets)])
        return dict(body)

    def delete_device(self, service: str, subservice: str, device_id: str) -> Json:
        with self._write() as db:
            row = db.execute("SELECT body FROM devices WHERE service = ? AND subservice = ? AND device_id = ?",
                             (service, subservice, device_id)).fetchone()
            if row is None:
                raise DeviceNotFound(device_id)
            db.execute("DELETE FROM devices WHERE service = ? AND subservice = ? AND device_id = ?",
                       (service, subservice, device_id))
        with self._lock, self._secrets_db:
            self._secrets_db.execute("DELETE FROM secrets WHERE service = ? AND subservice = ? AND device_id = ?",
                                     (service, subservice, device_id))
            self._cache.clear()
        body: Json = json.loads(row[0])
        return body

    def secrets(self, service: str, subservice: str, device_id: str) -> dict[str, str]:
        """A device's secrets: for decoders that decrypt (never put these in logs or API answers)."""
        with self._lock:
            rows = self._secrets_db.execute("SELECT name, value FROM secrets WHERE service = ? AND "
                                            "subservice = ? AND device_id = ?",
                                            (service, subservice, device_id)).fetchall()
        return {name: value for name, value in rows}

    def secrets_by_device_id(self, device_id: str) -> dict[str, str]:
        """Secrets of the device(s) with this id whatever the tenant (decoders find meters by their id)."""
        key = ("secrets", device_id)
        with self._lock:
            if key in self._cache:
                cached: dict[str, str] = self._cache[key]
                return dict(cached)
            rows = self._secrets_db.execute("SELECT name, value FROM secrets WHERE device_id = ?",
                                            (device_id,)).fetchall()
            found = {name: value for name, value in rows}
            self._cache[key] = found
        return dict(found)

    def all_devices(self) -> list[Json]:
        """Every device, parsed once per registry write (shared dicts: read them, do not change them)."""
        with self._lock:
            cached: list[Json] | None = self._cache.get(("all-devices",))
            if cached is None:
                rows = self._db.execute("SELECT body FROM devices ORDER BY rowid").fetchall()
                cached = self._cache[("all-devices",)] = [json.loads(r[0]) for r in rows]
        return list(cached)
