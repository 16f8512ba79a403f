"""``/v2/subscriptions`` routes, scoped by ``Fiware-Service`` and ``Fiware-ServicePath`` as in Orion."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from flask import Blueprint, Response, request

from flexmeter.contextbroker.errors import BadRequest, OrionError
from flexmeter.contextbroker.http import empty_response, json_response, options, pagination, read_json
from flexmeter.contextbroker.subscriptions.validation import parse_create, parse_patch
from flexmeter.contextbroker.tenancy import service_from_headers, service_paths_for_query

if TYPE_CHECKING:
    from flexmeter.contextbroker.subscriptions.engine import SubscriptionEngine


def _headers() -> Mapping[str, str]:
    return cast(Mapping[str, str], request.headers)  # case-insensitive lookups


def _service_path_for_subscription() -> str:
    """The subscription's scope: one path, ``/a/#`` allowed (Orion); ``/`` when the header is absent."""
    header = request.headers.get("Fiware-ServicePath")
    if header is None or header.strip() == "":
        return "/"
    if "," in header:
        raise BadRequest("max one service-path allowed for subscriptions")
    return service_paths_for_query(_headers())[0]


def make_blueprint(engine: SubscriptionEngine) -> Blueprint:
    bp = Blueprint("subscriptions", __name__)

    @bp.errorhandler(OrionError)
    def _orion_error(exc: OrionError) -> Response:
        return json_response(exc.body(), exc.status)

    @bp.get("/v2/subscriptions")
    def list_subscriptions() -> Response:
        service = service_from_headers(_headers())
        paths = service_paths_for_query(_headers())
        limit, offset = pagination()
        opts = options()
        subs = engine.list_subscriptions(service, paths)
        now = time.time()
        page = [s.render(now) for s in subs[offset:offset + limit]]
        headers = {"Fiware-Total-Count": str(len(subs))} if "count" in opts else None
        return json_response(page, 200, headers)

    @bp.post("/v2/subscriptions")
    def create_subscription() -> Response:
        service = service_from_headers(_headers())
        path = _service_path_for_subscription()
        definition = parse_create(read_json())
        sub = engine.create(service, path, definition)
        return empty_response(201, {"Location": f"/v2/subscriptions/{sub.id}"})

    @bp.get("/v2/subscriptions/<sub_id>")
    def get_subscription(sub_id: str) -> Response:
        sub = engine.get(service_from_headers(_headers()), sub_id)
        return json_response(sub.render(time.time()))

    @bp.patch("/v2/subscriptions/<sub_id>")
    def patch_subscription(sub_id: str) -> Response:
        sub = engine.get(service_from_headers(_headers()), sub_id)
        definition = parse_patch(read_json(), sub.definition)
        engine.replace_definition(sub, definition)
        return empty_response(204)

    @bp.delete("/v2/subscriptions/<sub_id>")
    def delete_subscription(sub_id: str) -> Response:
        sub = engine.get(service_from_headers(_headers()), sub_id)
        engine.delete(sub)
        return empty_response(204)

    return bp
