"""Registrations (``/v2/registrations``) and forwarding to context providers, as Orion does it.

A registration says that a provider owns some attributes of some entities. Updates of those attributes
are forwarded to ``<provider url>/op/update`` and queries to ``<provider url>/op/query`` (NGSI-v2
forwarding, Orion's non-legacy mode): this is how IoT Agents receive commands.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from flask import Blueprint, Response, request

from flexmeter.contextbroker.errors import (
    DESC_REGISTRATION_NOT_FOUND,
    BadRequest,
    NotFound,
)
from flexmeter.contextbroker.http import empty_response, json_response, options, pagination, read_object
from flexmeter.contextbroker.model import StoredAttr
from flexmeter.contextbroker.store import Store
from flexmeter.contextbroker.tenancy import (
    path_matches,
    service_from_headers,
    service_path_for_update,
    service_paths_for_query,
)
from flexmeter.contextbroker.timeutil import iso_from_posix, posix_from_iso
from flexmeter.contextbroker.validation import check_identifier
from flexmeter.metrics import Registry

log = logging.getLogger(__name__)

FORWARDING_MODES = ("all", "query", "update", "none")


def new_id() -> str:
    """24 hex characters, as Orion's (MongoDB ObjectId) ids."""
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"


def parse_registration(body: dict[str, Any], reg_id: str, service_path: str) -> dict[str, Any]:
    """Validate a registration body and return the stored document (Orion's rendering plus servicePath)."""
    allowed = {"description", "dataProvided", "provider", "expires", "status"}
    for key in body:
        if key not in allowed:
            raise BadRequest(f"unrecognized field in registration: /{key}/")
    data = body.get("dataProvided")
    if not isinstance(data, dict):
        raise BadRequest("dataProvided field missing" if data is None else "dataProvided must be an object")
    entities = data.get("entities")
    if not isinstance(entities, list) or not entities:
        raise BadRequest("dataProvided.entities must be a non-empty array")
    for ent in entities:
        if not isinstance(ent, dict) or ("id" not in ent and "idPattern" not in ent):
            raise BadRequest("entity id or idPattern missing in dataProvided.entities")
        if "id" in ent:
            check_identifier(ent["id"], "entity id")
        if "idPattern" in ent:
            _compile(ent["idPattern"], "Invalid regex for entity idPattern")
        if "type" in ent:
            check_identifier(ent["type"], "entity type")
        if "typePattern" in ent:
            raise BadRequest("typePattern is not supported in registrations")
    attrs = data.get("attrs", [])
    if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
        raise BadRequest("dataProvided.attrs must be an array of strings")
    for attr in attrs:
        check_identifier(attr, "attribute name")
    provider = body.get("provider")
    if not isinstance(provider, dict) or not isinstance(provider.get("http"), dict) \
            or not isinstance(provider["http"].get("url"), str):
        raise BadRequest("provider.http.url missing")
    url = provider["http"]["url"]
    if not url.startswith(("http://", "https://")):
        raise BadRequest("Invalid URL")
    mode = provider.get("supportedForwardingMode", "all")
    if mode not in FORWARDING_MODES:
        raise BadRequest("Invalid supportedForwardingMode: must be all, query, update or none")
    doc: dict[str, Any] = {"id": reg_id}
    if "description" in body:
        if not isinstance(body["description"], str):
            raise BadRequest("description must be a string")
        doc["description"] = body["description"]
    doc["dataProvided"] = {"entities": entities, "attrs": attrs}
    doc["provider"] = {"http": {"url": url}, "supportedForwardingMode": mode,
                       "legacyForwarding": bool(provider.get("legacyForwarding", False))}
    if "expires" in body:
        try:
            doc["expires"] = iso_from_posix(posix_from_iso(str(body["expires"])))
        except ValueError:
            raise BadRequest("expires has an invalid format") from None
    status = body.get("status", "active")
    if status not in ("active", "inactive"):
        raise BadRequest("status is not valid: it has to be either active or inactive")
    doc["status"] = status
    doc["servicePath"] = service_path
    return doc


_regex_cache: dict[str, re.Pattern[str]] = {}


def _compile(pattern: Any, error: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise BadRequest(error)
    compiled = _regex_cache.get(pattern)
    if compiled is None:
        try:
            compiled = re.compile(pattern)
        except re.error:
            raise BadRequest(error) from None
        if len(_regex_cache) < 10_000:
            _regex_cache[pattern] = compiled
    return compiled


def public_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "servicePath"}


def _entity_matches(reg: dict[str, Any], entity_id: str, entity_type: str | None) -> bool:
    for ent in reg["dataProvided"]["entities"]:
        if "type" in ent and entity_type is not None and ent["type"] != entity_type:
            continue
        if "id" in ent:
            if ent["id"] == entity_id:
                return True
        elif _compile(ent["idPattern"], "Invalid regex").search(entity_id):
            return True
    return False


def _active(reg: dict[str, Any], now: float) -> bool:
    if reg.get("status", "active") != "active":
        return False
    expires = reg.get("expires")
    return not (expires and posix_from_iso(expires) <= now)


@dataclass
class ProviderMatch:
    url: str
    attrs: list[str] = field(default_factory=list)
    all_attrs: bool = False


def providers_for(regs: dict[str, dict[str, Any]], entity_id: str, entity_type: str | None,
                  attr_names: list[str] | None, purpose: str,
                  service_paths: list[str] | None = None) -> dict[str, ProviderMatch]:
    """Providers owning attributes of an entity, for ``purpose`` "update" or "query".

    ``attr_names`` None means "every attribute" (a query without ``attrs``); ``service_paths`` (None: any)
    restricts to registrations made in those scopes.
    """
    if not regs:
        return {}
    now = time.time()
    out: dict[str, ProviderMatch] = {}
    for reg in regs.values():
        mode = reg["provider"].get("supportedForwardingMode", "all")
        if mode not in ("all", purpose) or not _active(reg, now):
            continue
        if service_paths is not None and not path_matches(reg.get("servicePath", "/"), service_paths):
            continue
        if not _entity_matches(reg, entity_id, entity_type):
            continue
        url = reg["provider"]["http"]["url"].rstrip("/")
        match = out.setdefault(url, ProviderMatch(url))
        provided = reg["dataProvided"]["attrs"]
        if not provided:
            match.all_attrs = True
            if attr_names:
                match.attrs.extend(a for a in attr_names if a not in match.attrs)
        elif attr_names is None:
            match.attrs.extend(a for a in provided if a not in match.attrs)
        else:
            match.attrs.extend(a for a in attr_names if a in provided and a not in match.attrs)
    return {url: m for url, m in out.items() if m.attrs or (m.all_attrs and attr_names is None)}


class Forwarder:
    """Sends forwarded updates and queries to providers (one requests.Session, short timeouts)."""

    def __init__(self, metrics: Registry, timeout: float = 10.0) -> None:
        self._local = threading.local()
        self.timeout = timeout
        self.sent = metrics.counter("flexmeter_broker_forwarded_total",
                                    "Requests forwarded to context providers, by kind and outcome.")

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    @staticmethod
    def _headers(service: str, service_path: str | None, correlator: str) -> dict[str, str]:
        # Connection: close, as forwarding is rare and providers (IoT Agents) restart: no stale sockets.
        headers = {"Content-Type": "application/json", "Fiware-Correlator": correlator, "Connection": "close"}
        if service:
            headers["Fiware-Service"] = service
        if service_path:
            headers["Fiware-ServicePath"] = service_path
        return headers

    def update(self, url: str, entity_id: str, entity_type: str, attrs: dict[str, StoredAttr], *,
               service: str, service_path: str | None, correlator: str) -> bool:
        entity: dict[str, Any] = {"id": entity_id, "type": entity_type}
        for name, attr in attrs.items():
            entity[name] = {"type": attr["type"], "value": attr["value"], "metadata": attr["metadata"]}
        payload = {"actionType": "update", "entities": [entity]}
        try:
            response = self._session().post(f"{url}/op/update", json=payload, timeout=self.timeout,
                                            headers=self._headers(service, service_path, correlator))
        except requests.RequestException as exc:
            log.warning("forwarding update to %s failed: %s", url, exc)
            self.sent.inc(kind="update", outcome="error")
            return False
        ok = 200 <= response.status_code < 300
        self.sent.inc(kind="update", outcome="ok" if ok else "rejected")
        if not ok:
            log.warning("provider %s answered %s to a forwarded update", url, response.status_code)
        return ok

    def query(self, url: str, entity_id: str, entity_type: str | None, attrs: list[str], *,
              service: str, service_path: str | None, correlator: str) -> dict[str, Any] | None:
        """The provider's entity (normalized), or None when it fails or has nothing."""
        ent: dict[str, Any] = {"id": entity_id}
        if entity_type:
            ent["type"] = entity_type
        payload: dict[str, Any] = {"entities": [ent]}
        if attrs:
            payload["attrs"] = attrs
        try:
            response = self._session().post(f"{url}/op/query", json=payload, timeout=self.timeout,
                                            headers=self._headers(service, service_path, correlator))
            ok = response.status_code == 200
            data = response.json() if ok else None
        except (requests.RequestException, ValueError) as exc:
            log.warning("forwarding query to %s failed: %s", url, exc)
            self.sent.inc(kind="query", outcome="error")
            return None
        self.sent.inc(kind="query", outcome="ok" if ok else "rejected")
        if isinstance(data, list):
            for item in data:
                if isinstance(item, dict) and item.get("id") == entity_id:
                    return item
        return None


def blueprint(store: Store) -> Blueprint:
    bp = Blueprint("registrations", __name__)

    @bp.post("/v2/registrations")
    def create_registration() -> Response:
        service = service_from_headers(request.headers)
        service_path = service_path_for_update(request.headers)
        body = read_object()
        reg_id = new_id()
        doc = parse_registration(body, reg_id, service_path)
        tenant = store.tenant(service)
        with tenant.write() as txn:
            txn.put_registration(reg_id, doc)
        return empty_response(201, {"Location": f"/v2/registrations/{reg_id}"})

    @bp.get("/v2/registrations")
    def list_registrations() -> Response:
        service = service_from_headers(request.headers)
        limit, offset = pagination()
        opts = options()
        paths = service_paths_for_query(request.headers)
        tenant = store.existing_tenant(service)
        regs = [r for r in tenant.registrations.values() if path_matches(r.get("servicePath", "/"), paths)] \
            if tenant else []
        page = [public_view(r) for r in regs[offset:offset + limit]]
        headers = {"Fiware-Total-Count": str(len(regs))} if "count" in opts else None
        return json_response(page, 200, headers)

    def _find(reg_id: str) -> tuple[Any, dict[str, Any]]:
        service = service_from_headers(request.headers)
        tenant = store.existing_tenant(service)
        reg = tenant.registrations.get(reg_id) if tenant else None
        if tenant is None or reg is None:
            raise NotFound(DESC_REGISTRATION_NOT_FOUND)
        return tenant, reg

    @bp.get("/v2/registrations/<reg_id>")
    def get_registration(reg_id: str) -> Response:
        _, reg = _find(reg_id)
        return json_response(public_view(reg))

    @bp.delete("/v2/registrations/<reg_id>")
    def delete_registration(reg_id: str) -> Response:
        tenant, _ = _find(reg_id)
        with tenant.write() as txn:
            txn.put_registration(reg_id, None)
        return empty_response(204)

    @bp.patch("/v2/registrations/<reg_id>")
    def patch_registration(reg_id: str) -> Response:
        tenant, reg = _find(reg_id)
        body = read_object()
        merged = {k: v for k, v in reg.items() if k not in ("id", "servicePath")}
        merged.update(body)
        doc = parse_registration(merged, reg_id, reg["servicePath"])
        with tenant.write() as txn:
            txn.put_registration(reg_id, doc)
        return empty_response(204)

    return bp
