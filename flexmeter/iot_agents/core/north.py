"""The north (provisioning) API, compatible with iotagent-node-lib: /iot/about, /iot/services (/iot/groups),
/iot/devices, plus /notify (commands), /metrics, /health and /iot/deadletters (flexmeter's).

Status codes follow the FIWARE agents: 201 ``{}`` on create, 204 on PUT/DELETE, 404/409/400 with
``{"name", "message"}`` bodies; ``fiware-service``/``fiware-servicepath`` are mandatory on /iot/*, and every
/iot/* answer is the caller's tenant's only (dead letters included). /metrics and /health carry counts, never
a tenant's data or a secret. With a token, /iot/* and /notify require it (``X-Auth-Token`` or ``Authorization:
Bearer``).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from flexmeter.iot_agents.core.errors import (
    IotAgentError,
    MissingHeaders,
    Unauthorized,
    WrongSyntax,
)
from flexmeter.iot_agents.core.metrics import AgentMetrics
from flexmeter.iot_agents.core.outbox import Outbox
from flexmeter.iot_agents.core.registry import Registry
from flexmeter.metrics import PROMETHEUS_CONTENT_TYPE

log = logging.getLogger(__name__)

LIB_VERSION = "4.6.0"
"""The iotagent-node-lib provisioning API version this one follows."""

Json = dict[str, Any]


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _no_content() -> Response:
    return Response(status=204)


class NorthHooks:
    """What the rest of the agent wants to know about provisioning changes."""

    def __init__(self) -> None:
        self.device_changed: Callable[[str, str, str], None] = lambda s, p, d: None
        self.notification: Callable[[str, str, Json], int] = lambda s, p, b: 0
        self.status: Callable[[], Json] = lambda: {}


def create_north_app(registry: Registry, outbox: Outbox, metrics: AgentMetrics, hooks: NorthHooks, *,
                     port: int = 4041, version: str = "0.1.0", token: str | None = None,
                     families: list[str] | None = None) -> Flask:
    app = Flask("flexmeter.iot_agents.north")

    def tenant() -> tuple[str, str]:
        service = request.headers.get("Fiware-Service")
        path = request.headers.get("Fiware-ServicePath")
        missing = [name for name, value in (("fiware-service", service), ("fiware-servicepath", path)) if not value]
        if missing:
            raise MissingHeaders(missing)
        assert service is not None and path is not None
        return service.lower(), path

    def body_json() -> Any:
        raw = request.get_data()
        try:
            return json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WrongSyntax(f"the body is not JSON ({exc})") from exc

    @app.errorhandler(IotAgentError)
    def _iota_error(exc: IotAgentError) -> Response:
        return _json(exc.body(), exc.status)

    @app.errorhandler(404)
    def _not_found(exc: Any) -> Response:
        return _json({"name": "NOT_FOUND", "message": f"Route not found: {request.method} {request.path}"}, 404)

    @app.errorhandler(405)
    def _not_allowed(exc: Any) -> Response:
        return _json({"name": "METHOD_NOT_IMPLEMENTED",
                      "message": f"IoT Agents do not support the endpoint: {request.method} {request.path}"}, 405)

    @app.errorhandler(500)
    def _server_error(exc: Any) -> Response:
        return _json({"name": "SERVER_ERROR", "message": "internal error; see the agent's log"}, 500)

    @app.before_request
    def _auth() -> None:
        """With a token, /iot/* and /notify (a notification there sends commands to devices) require it;
        the agent's own command subscriptions send it."""
        if not token or not (request.path.startswith("/iot/") or request.path.rstrip("/") == "/notify"):
            return
        given = request.headers.get("X-Auth-Token") or request.headers.get("Authorization", "").removeprefix(
            "Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("a valid X-Auth-Token (or Authorization: Bearer) is required")

    @app.get("/iot/about")
    def about() -> Response:
        return _json({"libVersion": LIB_VERSION, "port": str(port), "baseRoot": "/", "version": version,
                      "implementation": "flexmeter", "families": families or []})

    @app.get("/health")
    def health() -> Response:
        return _json({"status": "ok", "outbox": outbox.depth(), "deadLetters": outbox.dead_count(),
                      "deadLettersUnattributed": outbox.unattributed_count(), **hooks.status()})

    @app.get("/metrics")
    def metrics_view() -> Response:
        return Response(metrics.render(), mimetype=None, content_type=PROMETHEUS_CONTENT_TYPE)

    # -- service groups ------------------------------------------------------------------------------------
    def list_groups(key: str) -> Response:
        service, path = tenant()
        limit = request.args.get("limit", type=int)
        offset = request.args.get("offset", default=0, type=int)
        groups = registry.list_groups(service, path, limit, offset or 0)
        return _json({"count": len(groups), key: groups})

    def create_groups(key: str) -> Response:
        service, path = tenant()
        body = body_json()
        groups = body.get(key, body.get("services", body.get("groups"))) if isinstance(body, dict) else None
        if not isinstance(groups, list) or not groups:
            raise WrongSyntax(f"the body needs a non-empty {key!r} array")
        registry.create_groups(service, path, groups)
        return _json({}, 201)

    def group_key_params() -> tuple[str, str]:
        apikey = request.args.get("apikey")
        resource = request.args.get("resource", "")
        if apikey is None:
            raise WrongSyntax("the apikey query parameter is mandatory (and resource)")
        return resource, apikey

    def tenant_devices_changed(service: str, path: str) -> None:
        _, devices = registry.list_devices(service, path, limit=100000)
        for device in devices:
            hooks.device_changed(service, path, device["device_id"])

    def update_group() -> Response:
        service, path = tenant()
        resource, apikey = group_key_params()
        patch = body_json()
        if not isinstance(patch, dict):
            raise WrongSyntax("the body must be a service group object")
        registry.update_group(service, path, resource, apikey, patch)
        tenant_devices_changed(service, path)
        return _no_content()

    def delete_group() -> Response:
        service, path = tenant()
        resource, apikey = group_key_params()
        registry.delete_group(service, path, resource, apikey)
        tenant_devices_changed(service, path)
        return _no_content()

    for route, key in (("/iot/services", "services"), ("/iot/groups", "groups")):
        app.add_url_rule(route, f"list_{key}", lambda key=key: list_groups(key), methods=["GET"])
        app.add_url_rule(route, f"create_{key}", lambda key=key: create_groups(key), methods=["POST"])
        app.add_url_rule(route, f"update_{key}", update_group, methods=["PUT"])
        app.add_url_rule(route, f"delete_{key}", delete_group, methods=["DELETE"])

    # -- devices ---------------------------------------------------------------------------------------------
    @app.get("/iot/devices")
    def list_devices() -> Response:
        service, path = tenant()
        limit = request.args.get("limit", default=20, type=int) or 20
        offset = request.args.get("offset", default=0, type=int) or 0
        count, devices = registry.list_devices(service, path, limit, offset)
        return _json({"count": count, "devices": devices})

    @app.post("/iot/devices")
    def create_devices() -> Response:
        service, path = tenant()
        body = body_json()
        devices = body.get("devices") if isinstance(body, dict) else None
        if not isinstance(devices, list) or not devices:
            raise WrongSyntax("the body needs a non-empty 'devices' array")
        created = registry.create_devices(service, path, devices)
        for device in created:
            hooks.device_changed(service, path, device["device_id"])
        return _json({}, 201)

    @app.get("/iot/devices/<device_id>")
    def get_device(device_id: str) -> Response:
        service, path = tenant()
        return _json(registry.get_device(service, path, device_id))

    @app.put("/iot/devices/<device_id>")
    def update_device(device_id: str) -> Response:
        service, path = tenant()
        patch = body_json()
        if not isinstance(patch, dict):
            raise WrongSyntax("the body must be a device object")
        registry.update_device(service, path, device_id, patch)
        hooks.device_changed(service, path, device_id)
        return _no_content()

    @app.delete("/iot/devices/<device_id>")
    def delete_device(device_id: str) -> Response:
        service, path = tenant()
        registry.delete_device(service, path, device_id)
        hooks.device_changed(service, path, device_id)
        return _no_content()

    # -- commands, dead letters ------------------------------------------------------------------------------
    @app.post("/notify")
    def notify() -> Response:
        service = (request.headers.get("Fiware-Service") or "").lower()
        path = request.headers.get("Fiware-ServicePath") or "/"
        body = body_json()
        if not isinstance(body, dict):
            raise WrongSyntax("a notification is an object with 'data'")
        hooks.notification(service, path, body)
        return _json({}, 200)

    @app.get("/iot/deadletters")
    def dead_letters() -> Response:
        """The caller's tenant's dead letters only (``fiware-servicepath: /*``: every path of the service).
        Letters whose apikey no group has belong to no tenant and are listed to none (counted in /health)."""
        service, path = tenant()
        limit = min(request.args.get("limit", default=100, type=int) or 100, 1000)
        offset = max(request.args.get("offset", default=0, type=int) or 0, 0)
        count, letters = outbox.tenant_dead_letters(service, None if path in ("/*", "/#") else path, limit, offset)
        return _json({"count": count, "deadLetters": [d.as_json() for d in letters]})

    return app
