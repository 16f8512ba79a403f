"""``/v2/op/update``, ``/v2/op/query`` and ``/v2/op/notify``: many entities in one request, one transaction.

The update path is the broker's hot path (IoT Agents send one batch per meter reading cycle), so it
validates everything first, then applies the whole batch under one writer lock and one commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response

from flexmeter.contextbroker import operations
from flexmeter.contextbroker.entities_api import (
    EntitiesApi,
    missing_description,
    unique_values,
    untyped_names,
)
from flexmeter.contextbroker.errors import (
    DESC_ENTITY_NOT_FOUND,
    DESC_TOO_MANY,
    BadRequest,
    NotFound,
    PartialUpdate,
    Unprocessable,
)
from flexmeter.contextbroker.http import (
    current_request,
    empty_response,
    json_response,
    options,
    pagination,
    read_object,
    render_mode,
)
from flexmeter.contextbroker.model import StoredAttr
from flexmeter.contextbroker.query import parse_condition, parse_order_by, sort_entities
from flexmeter.contextbroker.render import render_entity
from flexmeter.contextbroker.selection import EntityPattern, compile_pattern, is_live, select
from flexmeter.contextbroker.store import Store, WriteTxn
from flexmeter.contextbroker.tenancy import (
    service_from_headers,
    service_path_for_update,
    service_paths_for_query,
)
from flexmeter.contextbroker.validation import check_identifier, parse_attrs

ACTION_TYPES = ("append", "appendStrict", "update", "delete", "replace")
_ENTITY_KEYS = frozenset({"id", "type"})


class _Item:
    __slots__ = ("attrs", "body", "entity_id", "entity_type", "expires")

    def __init__(self, entity_id: str, entity_type: str | None, attrs: dict[str, StoredAttr],
                 expires: float | None, body: dict[str, Any]) -> None:
        self.entity_id = entity_id
        self.entity_type = entity_type
        self.attrs = attrs
        self.expires = expires
        self.body = body


def _parse_items(entities: Any, action: str, key_values: bool, now: float) -> list[_Item]:
    if not isinstance(entities, list):
        raise BadRequest("/entities/ must be a JSON array")
    if not entities:
        raise BadRequest("empty entities vector")
    items = []
    for raw in entities:
        if not isinstance(raw, dict):
            raise BadRequest("not a JSON object")
        if "id" not in raw:
            raise BadRequest("entity id length: 0, min length supported: 1")
        entity_id = check_identifier(raw["id"], "entity id")
        entity_type = raw.get("type")
        if entity_type is not None:
            check_identifier(entity_type, "entity type")
        elif action in ("append", "appendStrict"):
            entity_type = "Thing"
        attrs: dict[str, StoredAttr]
        expires: float | None = None
        if action == "delete":
            attrs = {check_identifier(n, "attribute name"): {"type": "", "value": None, "metadata": {},
                                                             "creDate": now, "modDate": now}
                     for n in raw if n not in _ENTITY_KEYS}
        else:
            attrs, expires = parse_attrs(raw, now, key_values=key_values, skip=_ENTITY_KEYS)
        items.append(_Item(entity_id, entity_type, attrs, expires, raw))
    return items


class _Result:
    __slots__ = ("applied", "errors", "existing", "not_found")

    def __init__(self) -> None:
        self.applied = 0
        self.not_found = 0
        self.errors: list[str] = []
        self.existing: list[str] = []


def _apply(txn: WriteTxn, item: _Item, action: str, result: _Result, *, service: str, service_path: str,
           now: float, correlator: str, key_values: bool, override_metadata: bool) -> None:
    """One entity of a batch, with the semantics of ``action``; failures are collected in ``result``."""
    found = [e for e in txn.find(item.entity_id, item.entity_type, service_path) if is_live(e, now)]
    if len(found) > 1:
        result.errors.append(f"{item.entity_id} - [{DESC_TOO_MANY}]")
        return
    entity = found[0] if found else None
    if entity is None:
        if action in ("append", "appendStrict"):
            operations.create(txn, service=service, service_path=service_path, entity_id=item.entity_id,
                              entity_type=item.entity_type or "Thing", attrs=item.attrs, expires=item.expires,
                              now=now, correlator=correlator)
            result.applied += 1
        else:
            ident = f"{item.entity_id}/{item.entity_type}" if item.entity_type else item.entity_id
            result.errors.append(f"{ident} - [entity itself]")
            result.not_found += 1
        return
    if action == "delete":
        if not item.attrs:
            operations.delete_entity(txn, entity, service=service, correlator=correlator)
            result.applied += 1
            return
        missing = operations.delete_attrs(txn, entity, list(item.attrs), service=service, now=now,
                                          correlator=correlator)
        if missing:
            result.errors.append(missing_description(entity, missing))
        if len(missing) < len(item.attrs):
            result.applied += 1
        return
    mode: operations.UpdateMode = action  # type: ignore[assignment]
    outcome = operations.update(txn, entity, item.attrs, mode=mode, service=service, now=now,
                                correlator=correlator, expires=item.expires,
                                untyped=untyped_names(item.body, key_values),
                                override_metadata=override_metadata)
    failed = outcome.missing or outcome.existing
    if outcome.missing:
        result.errors.append(missing_description(entity, outcome.missing))
    if outcome.existing:
        result.existing.append(missing_description(entity, outcome.existing))
    if len(failed) < len(item.attrs) or not item.attrs:
        result.applied += 1


class BatchApi:
    """``/v2/op/update`` and ``/v2/op/query``; ``update`` is also served by the app's fast path."""

    def __init__(self, store: Store, entities_api: EntitiesApi) -> None:
        self.update = make_update(store, entities_api)
        self.notify = make_update(store, entities_api, notify=True)
        self.query = make_query(store)


def blueprint(api: BatchApi) -> Blueprint:
    bp = Blueprint("batch", __name__)
    bp.add_url_rule("/v2/op/update", view_func=api.update, methods=["POST"], endpoint="batch_update")
    bp.add_url_rule("/v2/op/query", view_func=api.query, methods=["POST"], endpoint="batch_query")
    bp.add_url_rule("/v2/op/notify", view_func=api.notify, methods=["POST"], endpoint="batch_notify")
    return bp


def make_update(store: Store, entities_api: EntitiesApi, *, notify: bool = False) -> Callable[[], Response]:
    """``/v2/op/update``; with ``notify``, Orion's ``/v2/op/notify`` (a notification applied as append)."""

    def batch_update() -> Response:
        opts = options()
        key_values = "keyValues" in opts
        service = service_from_headers(current_request().headers)
        service_path = service_path_for_update(current_request().headers)
        body = read_object()
        action: Any
        raw_entities: Any
        if notify:
            subscription_id = body.get("subscriptionId")
            if not isinstance(subscription_id, str):
                raise BadRequest("/subscriptionId/ must be a JSON String")
            if not isinstance(body.get("data"), list):
                raise BadRequest("/data/ must be a JSON Array")
            action, raw_entities = "append", body["data"]
            if not raw_entities:
                return empty_response(200)
        else:
            action, raw_entities = body.get("actionType"), body.get("entities")
        if action is None:
            raise BadRequest("actionType missing")
        if action not in ACTION_TYPES:
            raise BadRequest("invalid update action type: right ones are: "
                             "append, appendStrict, delete, replace, update")
        now = time.time()
        items = _parse_items(raw_entities, action, key_values, now)
        tenant = store.tenant(service)
        correlator = current_request().headers.get("Fiware-Correlator", "")
        errors: list[str] = []
        if action in ("update", "replace") and tenant.registrations:
            for item in items:
                local, ok = entities_api._forward_update(tenant, service, item.entity_id, item.entity_type,
                                                         service_path, item.attrs)
                if not ok:
                    errors.append(f"{item.entity_id}/{item.entity_type or ''} - [entity itself]")
                item.attrs = local
        result = _Result()
        with tenant.write() as txn:
            txn.forced = "forcedUpdate" in opts
            for item in items:
                _apply(txn, item, action, result, service=service, service_path=service_path, now=now,
                       correlator=correlator, key_values=key_values,
                       override_metadata="overrideMetadata" in opts)
        errors.extend(result.errors)
        applied, not_found, existing_errors = result.applied, result.not_found, result.existing
        if existing_errors:
            desc = "one or more of the attributes in the request already exist: " + ", ".join(existing_errors)
            raise PartialUpdate(desc) if applied else Unprocessable(desc)
        if errors:
            if not applied and not_found == len(items):
                raise NotFound(DESC_ENTITY_NOT_FOUND)
            desc = "do not exist: " + ", ".join(errors)
            raise PartialUpdate(desc) if applied else Unprocessable(desc)
        return empty_response(200 if notify else 204)

    return batch_update


def make_query(store: Store) -> Callable[[], Response]:
    def batch_query() -> Response:
        opts = options()
        mode = render_mode(opts)
        limit, offset = pagination()
        body = read_object()
        for key in body:
            if key not in ("entities", "attrs", "expression", "metadata", "attributes"):
                raise BadRequest(f"Invalid field for query: {key}")
        patterns: list[EntityPattern] = []
        entities = body.get("entities", [])
        if not isinstance(entities, list):
            raise BadRequest("/entities/ must be a JSON array")
        for ent in entities:
            if not isinstance(ent, dict):
                raise BadRequest("not a JSON object")
            if "id" in ent and "idPattern" in ent:
                raise BadRequest("Incompatible parameters: id, IdPattern")
            if "type" in ent and "typePattern" in ent:
                raise BadRequest("Incompatible parameters: type, typePattern")
            id_value = ent.get("id")
            type_value = ent.get("type")
            if id_value is not None and not isinstance(id_value, str):
                raise BadRequest("Invalid JSON type for entity id")
            if type_value is not None and not isinstance(type_value, str):
                raise BadRequest("Invalid JSON type for entity type")
            patterns.append(EntityPattern(
                ids=frozenset([id_value]) if id_value else None,
                id_re=compile_pattern(ent["idPattern"], "idPattern") if "idPattern" in ent else None,
                types=frozenset([type_value]) if type_value else None,
                type_re=compile_pattern(ent["typePattern"], "typePattern") if "typePattern" in ent else None,
            ))
        attrs = body.get("attrs", body.get("attributes"))
        metadata = body.get("metadata")
        for name, value in (("attrs", attrs), ("metadata", metadata)):
            if value is not None and (not isinstance(value, list)
                                      or not all(isinstance(v, str) for v in value)):
                raise BadRequest(f"/{name}/ must be an array of strings")
        expression = body.get("expression") or {}
        if not isinstance(expression, dict):
            raise BadRequest("/expression/ must be a JSON object")
        condition = None
        if expression:
            condition = parse_condition(q=expression.get("q"), mq=expression.get("mq"),
                                        georel=expression.get("georel"), geometry=expression.get("geometry"),
                                        coords=expression.get("coords"))
        order_by = current_request().args.get("orderBy")
        order = parse_order_by(order_by) if order_by else None
        service = service_from_headers(current_request().headers)
        tenant = store.existing_tenant(service)
        paths = service_paths_for_query(current_request().headers)
        early = None if (order is not None or "count" in opts or "unique" in opts) else offset + limit
        matched = select(tenant, patterns, paths, condition, time.time(), early)
        if order is not None:
            matched = sort_entities(matched, order, condition.geo if condition else None)
        total = len(matched)
        rendered = [render_entity(e, mode=mode, attrs=attrs or None, metadata=metadata)
                    for e in matched[offset:offset + limit]]
        if "unique" in opts:
            rendered = unique_values(rendered)
        headers = {"Fiware-Total-Count": str(total)} if "count" in opts else None
        return json_response(rendered, 200, headers)

    return batch_query

