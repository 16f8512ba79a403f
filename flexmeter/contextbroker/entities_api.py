"""``/v2/entities`` (and its attribute sub-resources) and ``/v2/types``, following Orion's API manual."""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Blueprint, Response

from flexmeter.contextbroker import operations
from flexmeter.contextbroker.errors import (
    DESC_ALREADY_EXISTS,
    DESC_ATTR_NOT_FOUND,
    DESC_EMPTY_PAYLOAD,
    DESC_ENTITY_NOT_FOUND,
    DESC_TOO_MANY,
    DESC_TYPE_NOT_FOUND,
    BadRequest,
    NotAcceptable,
    NotFound,
    PartialUpdate,
    TooManyResults,
    Unprocessable,
)
from flexmeter.contextbroker.http import (
    csv_param,
    current_request,
    empty_response,
    encode,
    json_response,
    options,
    pagination,
    read_json,
    read_object,
    render_mode,
)
from flexmeter.contextbroker.model import StoredAttr, StoredEntity
from flexmeter.contextbroker.query import Condition, parse_condition, parse_order_by, sort_entities
from flexmeter.contextbroker.registrations import Forwarder, providers_for
from flexmeter.contextbroker.render import render_attr, render_entity
from flexmeter.contextbroker.selection import EntityPattern, compile_pattern, is_live, select
from flexmeter.contextbroker.store import Store, TenantStore, WriteTxn
from flexmeter.contextbroker.tenancy import (
    path_matches,
    service_from_headers,
    service_path_for_update,
    service_paths_for_query,
)
from flexmeter.contextbroker.validation import (
    DATE_TYPES,
    check_uri_id,
    parse_attr,
    parse_attrs,
    parse_entity_head,
)

_ENTITY_KEYS = frozenset({"id", "type"})


def condition_from_args() -> Condition | None:
    args = current_request().args
    q, mq = args.get("q"), args.get("mq")
    georel, geometry, coords = args.get("georel"), args.get("geometry"), args.get("coords")
    if not (q or mq or georel or geometry or coords):
        return None
    return parse_condition(q=q, mq=mq, georel=georel, geometry=geometry, coords=coords)


def unique_values(rendered: list[Any]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for item in rendered:
        key = encode(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def untyped_names(body: dict[str, Any], key_values: bool) -> frozenset[str]:
    """Attributes whose request gave no ``type`` (an existing attribute then keeps its type)."""
    if key_values:
        return frozenset(body)
    return frozenset(n for n, raw in body.items() if not (isinstance(raw, dict) and "type" in raw))


def missing_description(entity: StoredEntity | tuple[str, str], names: list[str]) -> str:
    ident = f"{entity['id']}/{entity['type']}" if isinstance(entity, dict) else f"{entity[0]}/{entity[1]}"
    return f"{ident} - [ {', '.join(names)} ]"


class EntitiesApi:
    """The entity routes; one instance per app, holding the store and the provider forwarder."""

    def __init__(self, store: Store, forwarder: Forwarder) -> None:
        self.store = store
        self.forwarder = forwarder

    # -- helpers -----------------------------------------------------------------------------------
    def _read_tenant(self) -> tuple[str, TenantStore | None]:
        service = service_from_headers(current_request().headers)
        return service, self.store.existing_tenant(service)

    @staticmethod
    def _type_arg() -> str | None:
        entity_type = current_request().args.get("type")
        if entity_type is not None:
            check_uri_id(entity_type, "entity type")
        return entity_type or None

    def _find_local(self, tenant: TenantStore | None, entity_id: str, entity_type: str | None,
                    paths: list[str], now: float) -> StoredEntity | None:
        if tenant is None:
            return None
        found = [e for e in tenant.by_id(entity_id)
                 if (entity_type is None or e["type"] == entity_type)
                 and path_matches(e["servicePath"], paths) and is_live(e, now)]
        if len(found) > 1:
            raise TooManyResults(DESC_TOO_MANY)
        return found[0] if found else None

    def _find_for_read(self, entity_id: str, attrs: list[str] | None = None) -> StoredEntity:
        """The entity to render, with attributes of registered providers merged in (query forwarding)."""
        check_uri_id(entity_id, "entity id")
        entity_type = self._type_arg()
        service, tenant = self._read_tenant()
        paths = service_paths_for_query(current_request().headers)
        now = time.time()
        entity = self._find_local(tenant, entity_id, entity_type, paths, now)
        if tenant is not None and tenant.registrations and "skipForwarding" not in options():
            entity = self._merge_provided(tenant, service, entity_id, entity_type, entity, attrs, now)
        if entity is None:
            raise NotFound(DESC_ENTITY_NOT_FOUND)
        return entity

    def _merge_provided(self, tenant: TenantStore, service: str, entity_id: str, entity_type: str | None,
                        entity: StoredEntity | None, attrs: list[str] | None,
                        now: float) -> StoredEntity | None:
        wanted = [a for a in attrs if a != "*"] if attrs else None
        providers = providers_for(tenant.registrations, entity_id,
                                  entity["type"] if entity else entity_type, wanted or None, "query",
                                  service_paths_for_query(current_request().headers))
        if not providers:
            return entity
        merged_attrs: dict[str, StoredAttr] = dict(entity["attrs"]) if entity else {}
        found_type = entity["type"] if entity else entity_type
        got = False
        for url, match in providers.items():
            remote = self.forwarder.query(url, entity_id, found_type, match.attrs, service=service,
                                          service_path=current_request().headers.get("Fiware-ServicePath"),
                                          correlator=current_request().headers.get("Fiware-Correlator", ""))
            if remote is None:
                continue
            got = True
            found_type = found_type or remote.get("type")
            for name, raw in remote.items():
                if name in _ENTITY_KEYS:
                    continue
                try:
                    merged_attrs[name] = parse_attr(name, raw, now)
                except BadRequest:
                    continue
        if entity is None and not got:
            return None
        base: StoredEntity = entity or {
            "id": entity_id, "type": found_type or "Thing", "servicePath": "/", "attrs": {},
            "creDate": now, "modDate": now, "expDate": None}
        return {**base, "attrs": merged_attrs}

    @staticmethod
    def _write_target(txn: WriteTxn, entity_id: str, entity_type: str | None, service_path: str,
                      now: float) -> StoredEntity | None:
        found = [e for e in txn.find(entity_id, entity_type, service_path) if is_live(e, now)]
        if len(found) > 1:
            raise TooManyResults(DESC_TOO_MANY)
        return found[0] if found else None

    def _forward_update(self, tenant: TenantStore, service: str, entity_id: str, entity_type: str | None,
                        service_path: str,
                        incoming: dict[str, StoredAttr]) -> tuple[dict[str, StoredAttr], bool]:
        """Send registered attributes to their providers; returns (local attributes, all forwards ok)."""
        if not tenant.registrations or not incoming:
            return incoming, True
        if entity_type is None:
            local = tenant.by_id(entity_id)
            if len(local) == 1:
                entity_type = local[0]["type"]
        providers = providers_for(tenant.registrations, entity_id, entity_type, list(incoming), "update",
                                  [service_path])
        if not providers:
            return incoming, True
        if entity_type is None:
            for reg in tenant.registrations.values():
                for ent in reg["dataProvided"]["entities"]:
                    if "type" in ent:
                        entity_type = ent["type"]
                        break
                if entity_type:
                    break
        forwarded: set[str] = set()
        ok = True
        for url, match in providers.items():
            attrs = {n: incoming[n] for n in match.attrs if n in incoming}
            forwarded.update(attrs)
            ok = self.forwarder.update(url, entity_id, entity_type or "Thing", attrs, service=service,
                                       service_path=current_request().headers.get("Fiware-ServicePath") or service_path,
                                       correlator=current_request().headers.get("Fiware-Correlator", "")) and ok
        return {n: a for n, a in incoming.items() if n not in forwarded}, ok

    # -- collection --------------------------------------------------------------------------------
    def list_entities(self) -> Response:
        opts = options()
        mode = render_mode(opts)
        args = current_request().args
        ids = csv_param("id")
        types = csv_param("type")
        id_pattern = args.get("idPattern")
        type_pattern = args.get("typePattern")
        if ids and id_pattern:
            raise BadRequest("Incompatible parameters: id, IdPattern")
        if types and type_pattern:
            raise BadRequest("Incompatible parameters: type, typePattern")
        limit, offset = pagination()
        attrs = csv_param("attrs")
        metadata = csv_param("metadata")
        condition = condition_from_args()
        order_by = args.get("orderBy")
        order = parse_order_by(order_by) if order_by else None
        paths = service_paths_for_query(current_request().headers)
        pattern = EntityPattern(
            ids=frozenset(ids) if ids else None,
            id_re=compile_pattern(id_pattern, "idPattern") if id_pattern else None,
            types=frozenset(types) if types else None,
            type_re=compile_pattern(type_pattern, "typePattern") if type_pattern else None,
        )
        patterns = [pattern] if (ids or types or id_pattern or type_pattern) else []
        _, tenant = self._read_tenant()
        early = None if (order is not None or "count" in opts or "unique" in opts) else offset + limit
        matched = select(tenant, patterns, paths, condition, time.time(), early)
        if order is not None:
            matched = sort_entities(matched, order, condition.geo if condition else None)
        total = len(matched)
        page = matched[offset:offset + limit]
        rendered = [render_entity(e, mode=mode, attrs=attrs, metadata=metadata) for e in page]
        if "unique" in opts:
            rendered = unique_values(rendered)
        headers = {"Fiware-Total-Count": str(total)} if "count" in opts else None
        return json_response(rendered, 200, headers)

    def create_entity(self) -> Response:
        opts = options()
        key_values = "keyValues" in opts
        service = service_from_headers(current_request().headers)
        service_path = service_path_for_update(current_request().headers)
        body = read_json()
        entity_id, entity_type = parse_entity_head(body)
        now = time.time()
        attrs, expires = parse_attrs(body, now, key_values=key_values, skip=_ENTITY_KEYS)
        correlator = current_request().headers.get("Fiware-Correlator", "")
        tenant = self.store.tenant(service)
        with tenant.write() as txn:
            txn.forced = "forcedUpdate" in options()
            existing = txn.get((entity_id, entity_type, service_path))
            if existing is not None and is_live(existing, now):
                if "upsert" not in opts:
                    raise Unprocessable(DESC_ALREADY_EXISTS)
                operations.update(txn, existing, attrs, mode="append", service=service, now=now,
                                  correlator=correlator, expires=expires,
                                  untyped=untyped_names(body, key_values))
            else:
                operations.create(txn, service=service, service_path=service_path, entity_id=entity_id,
                                  entity_type=entity_type, attrs=attrs, expires=expires, now=now,
                                  correlator=correlator)
        if "upsert" in opts:
            return empty_response(204)
        return empty_response(201, {"Location": f"/v2/entities/{entity_id}?type={entity_type}"})

    # -- one entity --------------------------------------------------------------------------------
    def get_entity(self, entity_id: str) -> Response:
        opts = options()
        attrs = csv_param("attrs")
        entity = self._find_for_read(entity_id, attrs)
        rendered = render_entity(entity, mode=render_mode(opts), attrs=attrs,
                                 metadata=csv_param("metadata"))
        return json_response(rendered)

    def get_entity_attrs(self, entity_id: str) -> Response:
        opts = options()
        attrs = csv_param("attrs")
        entity = self._find_for_read(entity_id, attrs)
        rendered = render_entity(entity, mode=render_mode(opts), attrs=attrs,
                                 metadata=csv_param("metadata"))
        if isinstance(rendered, dict):
            rendered.pop("id", None)
            rendered.pop("type", None)
        return json_response(rendered)

    def delete_entity(self, entity_id: str) -> Response:
        check_uri_id(entity_id, "entity id")
        entity_type = self._type_arg()
        service = service_from_headers(current_request().headers)
        service_path = service_path_for_update(current_request().headers)
        tenant = self.store.existing_tenant(service)
        if tenant is None:
            raise NotFound(DESC_ENTITY_NOT_FOUND)
        with tenant.write() as txn:
            txn.forced = "forcedUpdate" in options()
            entity = self._write_target(txn, entity_id, entity_type, service_path, time.time())
            if entity is None:
                raise NotFound(DESC_ENTITY_NOT_FOUND)
            operations.delete_entity(txn, entity, service=service,
                                     correlator=current_request().headers.get("Fiware-Correlator", ""))
        return empty_response(204)

    def _update_entity(self, entity_id: str, mode: operations.UpdateMode) -> Response:
        check_uri_id(entity_id, "entity id")
        entity_type = self._type_arg()
        opts = options()
        key_values = "keyValues" in opts
        if mode == "append" and "append" in opts:
            mode = "appendStrict"
        service = service_from_headers(current_request().headers)
        service_path = service_path_for_update(current_request().headers)
        body = read_object()
        if not body:
            raise BadRequest(DESC_EMPTY_PAYLOAD)
        if "id" in body:
            raise BadRequest("entity id specified in payload")
        if "type" in body:
            raise BadRequest("entity type specified in payload")
        now = time.time()
        incoming, expires = parse_attrs(body, now, key_values=key_values)
        tenant = self.store.tenant(service)
        forwarded_all = False
        if mode in ("update", "replace"):
            local, ok = self._forward_update(tenant, service, entity_id, entity_type, service_path, incoming)
            if not ok:
                raise NotFound(DESC_ENTITY_NOT_FOUND)
            forwarded_all = bool(incoming) and not local
            incoming = local
        if forwarded_all and expires is None:
            return empty_response(204)
        correlator = current_request().headers.get("Fiware-Correlator", "")
        with tenant.write() as txn:
            txn.forced = "forcedUpdate" in options()
            entity = self._write_target(txn, entity_id, entity_type, service_path, now)
            if entity is None:
                raise NotFound(DESC_ENTITY_NOT_FOUND)
            outcome = operations.update(txn, entity, incoming, mode=mode, service=service, now=now,
                                        correlator=correlator, expires=expires,
                                        untyped=untyped_names(body, key_values),
                                        override_metadata="overrideMetadata" in opts)
        if outcome.missing:
            applied = len(outcome.missing) < len(incoming)
            desc = "do not exist: " + missing_description(entity, outcome.missing)
            raise PartialUpdate(desc) if applied else Unprocessable(desc)
        if outcome.existing:
            applied = len(outcome.existing) < len(incoming)
            desc = ("one or more of the attributes in the request already exist: "
                    + missing_description(entity, outcome.existing))
            raise PartialUpdate(desc) if applied else Unprocessable(desc)
        return empty_response(204)

    def append_attrs(self, entity_id: str) -> Response:
        return self._update_entity(entity_id, "append")

    def update_attrs(self, entity_id: str) -> Response:
        return self._update_entity(entity_id, "update")

    def replace_attrs(self, entity_id: str) -> Response:
        return self._update_entity(entity_id, "replace")

    # -- one attribute -----------------------------------------------------------------------------
    def get_attr(self, entity_id: str, attr_name: str) -> Response:
        check_uri_id(attr_name, "attribute name")
        entity = self._find_for_read(entity_id, [attr_name])
        attr = entity["attrs"].get(attr_name)
        if attr is None:
            raise NotFound(DESC_ATTR_NOT_FOUND)
        return json_response(render_attr(attr, metadata=csv_param("metadata")))

    def _put_attr(self, entity_id: str, attr_name: str, value_only: bool) -> Response:
        check_uri_id(entity_id, "entity id")
        check_uri_id(attr_name, "attribute name")
        entity_type = self._type_arg()
        service = service_from_headers(current_request().headers)
        service_path = service_path_for_update(current_request().headers)
        now = time.time()
        if value_only:
            raw_value = read_json(allow_text=True)
            if isinstance(raw_value, str) and current_request().mimetype == "text/plain":
                raw_value = _text_value(raw_value)
            attr = parse_attr(attr_name, {"value": raw_value}, now, check_name=False)
            untyped = frozenset({attr_name})
        else:
            body = read_object()
            if not body:
                raise BadRequest(DESC_EMPTY_PAYLOAD)
            attr = parse_attr(attr_name, body, now, check_name=False)
            untyped = frozenset() if "type" in body else frozenset({attr_name})
        tenant = self.store.tenant(service)
        local, ok = self._forward_update(tenant, service, entity_id, entity_type, service_path,
                                         {attr_name: attr})
        if not ok:
            raise NotFound(DESC_ENTITY_NOT_FOUND)
        if not local:
            return empty_response(204)
        with tenant.write() as txn:
            txn.forced = "forcedUpdate" in options()
            entity = self._write_target(txn, entity_id, entity_type, service_path, now)
            if entity is None:
                raise NotFound(DESC_ENTITY_NOT_FOUND)
            previous = entity["attrs"].get(attr_name)
            if previous is None:
                raise NotFound(DESC_ATTR_NOT_FOUND)
            if value_only:
                attr = {**attr, "metadata": previous["metadata"]}
                if previous["type"] in DATE_TYPES:
                    attr = parse_attr(attr_name, {"type": previous["type"], "value": attr["value"],
                                                  "metadata": previous["metadata"]}, now, check_name=False)
            operations.update(txn, entity, {attr_name: attr}, mode="update", service=service, now=now,
                              correlator=current_request().headers.get("Fiware-Correlator", ""), untyped=untyped,
                              override_metadata=True)
        return empty_response(204)

    def put_attr(self, entity_id: str, attr_name: str) -> Response:
        return self._put_attr(entity_id, attr_name, value_only=False)

    def put_attr_value(self, entity_id: str, attr_name: str) -> Response:
        return self._put_attr(entity_id, attr_name, value_only=True)

    def delete_attr(self, entity_id: str, attr_name: str) -> Response:
        check_uri_id(entity_id, "entity id")
        check_uri_id(attr_name, "attribute name")
        entity_type = self._type_arg()
        service = service_from_headers(current_request().headers)
        service_path = service_path_for_update(current_request().headers)
        tenant = self.store.existing_tenant(service)
        if tenant is None:
            raise NotFound(DESC_ENTITY_NOT_FOUND)
        now = time.time()
        with tenant.write() as txn:
            txn.forced = "forcedUpdate" in options()
            entity = self._write_target(txn, entity_id, entity_type, service_path, now)
            if entity is None:
                raise NotFound(DESC_ENTITY_NOT_FOUND)
            missing = operations.delete_attrs(txn, entity, [attr_name], service=service, now=now,
                                              correlator=current_request().headers.get("Fiware-Correlator", ""))
        if missing:
            raise NotFound(DESC_ATTR_NOT_FOUND)
        return empty_response(204)

    def get_attr_value(self, entity_id: str, attr_name: str) -> Response:
        check_uri_id(attr_name, "attribute name")
        entity = self._find_for_read(entity_id, [attr_name])
        attr = entity["attrs"].get(attr_name)
        if attr is None:
            raise NotFound(DESC_ATTR_NOT_FOUND)
        value = attr["value"]
        accept = current_request().accept_mimetypes
        if isinstance(value, dict | list):
            if accept and not (accept.accept_json or "text/plain" in accept):
                raise NotAcceptable("accepted MIME types: application/json, text/plain")
            return json_response(value)
        if accept and "text/plain" not in accept and accept.best != "*/*":
            raise NotAcceptable("accepted MIME types: text/plain")
        return Response(encode(value), 200, mimetype="text/plain")

    # -- types -------------------------------------------------------------------------------------
    def _type_summaries(self) -> dict[str, tuple[dict[str, list[str]], int]]:
        _, tenant = self._read_tenant()
        paths = service_paths_for_query(current_request().headers)
        summaries: dict[str, tuple[dict[str, list[str]], int]] = {}
        for entity in select(tenant, [], paths, None, time.time()):
            attrs, count = summaries.get(entity["type"], ({}, 0))
            for name, attr in entity["attrs"].items():
                types = attrs.setdefault(name, [])
                if attr["type"] not in types:
                    types.append(attr["type"])
            summaries[entity["type"]] = (attrs, count + 1)
        return summaries

    @staticmethod
    def _render_type_attrs(attrs: dict[str, list[str]]) -> dict[str, Any]:
        return {name: {"types": sorted(types)} for name, types in attrs.items()}

    def list_types(self) -> Response:
        opts = options()
        limit, offset = pagination()
        summaries = self._type_summaries()
        names = sorted(summaries)
        page = names[offset:offset + limit]
        out: list[Any]
        if "values" in opts:
            out = list(page)
        else:
            out = [{"type": t, "attrs": self._render_type_attrs(summaries[t][0]), "count": summaries[t][1]}
                   for t in page]
        headers = {"Fiware-Total-Count": str(len(names))} if "count" in opts else None
        return json_response(out, 200, headers)

    def get_type(self, entity_type: str) -> Response:
        check_uri_id(entity_type, "entity type")
        summary = self._type_summaries().get(entity_type)
        if summary is None:
            raise NotFound(DESC_TYPE_NOT_FOUND)
        return json_response({"attrs": self._render_type_attrs(summary[0]), "count": summary[1]})


def _text_value(text: str) -> Any:
    """A ``text/plain`` attribute value: a JSON literal (quoted string, number, true/false/null) or text."""
    stripped = text.strip()
    try:
        value = json.loads(stripped)
    except ValueError:
        return stripped
    if isinstance(value, dict | list):
        raise BadRequest("Content-Type text/plain is only for strings, numbers, booleans and null")
    return value


def blueprint(api: EntitiesApi) -> Blueprint:
    bp = Blueprint("entities", __name__)
    bp.add_url_rule("/v2/entities", view_func=api.list_entities, methods=["GET"])
    bp.add_url_rule("/v2/entities", view_func=api.create_entity, methods=["POST"])
    bp.add_url_rule("/v2/entities/<entity_id>", view_func=api.get_entity, methods=["GET"])
    bp.add_url_rule("/v2/entities/<entity_id>", view_func=api.delete_entity, methods=["DELETE"])
    bp.add_url_rule("/v2/entities/<entity_id>/attrs", view_func=api.get_entity_attrs, methods=["GET"])
    bp.add_url_rule("/v2/entities/<entity_id>/attrs", view_func=api.append_attrs, methods=["POST"])
    bp.add_url_rule("/v2/entities/<entity_id>/attrs", view_func=api.update_attrs, methods=["PATCH"])
    bp.add_url_rule("/v2/entities/<entity_id>/attrs", view_func=api.replace_attrs, methods=["PUT"])
    bp.add_url_rule("/v2/entities/<entity_id>/attrs/<attr_name>", view_func=api.get_attr, methods=["GET"])
    bp.add_url_rule("/v2/entities/<entity_id>/attrs/<attr_name>", view_func=api.put_attr, methods=["PUT"])
    bp.add_url_rule("/v2/entities/<entity_id>/attrs/<attr_name>", view_func=api.delete_attr,
                    methods=["DELETE"])
    bp.add_url_rule("/v2/entities/<entity_id>/attrs/<attr_name>/value", view_func=api.get_attr_value,
                    methods=["GET"])
    bp.add_url_rule("/v2/entities/<entity_id>/attrs/<attr_name>/value", view_func=api.put_attr_value,
                    methods=["PUT"])
    bp.add_url_rule("/v2/types", view_func=api.list_types, methods=["GET"])
    bp.add_url_rule("/v2/types/<entity_type>", view_func=api.get_type, methods=["GET"])
    return bp
