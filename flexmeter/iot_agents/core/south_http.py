"""The south HTTP port (7896): every family's HTTP routes (iotagent-json's ``POST /iot/json?k=&i=``...).

The answer waits for the pipeline: 200 once the reading is in the outbox, or the FIWARE agents' error
(unknown apikey 404 DEVICE_GROUP_NOT_FOUND, unknown device with autoprovision off 404 DEVICE_NOT_FOUND,
malformed payload 400) once it is in the dead letters. Polling devices fetch their commands here (``getCmd=1``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from flexmeter.iot_agents.core.errors import IotAgentError, MandatoryParamsNotFound, PersistTimeout
from flexmeter.iot_agents.core.family import Family, Message, Route
from flexmeter.iot_agents.core.pipeline import Inbound, Outcome


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


Poll = Callable[[str, str], dict[str, Any]]
"""(apikey, device_id) -> the commands queued for a polling device (``CommandFlow.poll``)."""


def create_south_app(routes: list[tuple[Family, Route]], submit: Callable[[Inbound], None], *,
                     timeout: float = 30.0, poll: Poll | None = None) -> Flask:
    """``poll``: answer ``getCmd=1`` (iotagent-json's polling commands) on the routes that take ``apikey`` and
    ``device_id`` from the query: ``GET /iot/json?k=&i=&getCmd=1`` (no measure; ``d=<json>`` carries one, as
    iotagent-json allows), or a ``POST`` with ``getCmd=1`` whose answer is the commands instead of ``{}``."""
    app = Flask("flexmeter.iot_agents.south")

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

    @app.get("/health")
    def health() -> Response:
        return _json({"status": "ok"})

    def query_params(route: Route, path_params: dict[str, str], extra_missing: list[str]) -> dict[str, str]:
        params = dict(path_params)
        missing = []
        for query_name, param in route.query.items():
            value = request.args.get(query_name)
            if value:
                params[param] = value
            elif param in ("apikey", "device_id"):
                missing.append(query_name)
        if missing or extra_missing:
            raise MandatoryParamsNotFound(missing + extra_missing)
        return params

    def persist(family: Family, route: Route, params: dict[str, str], payload: bytes,
                content_type: str | None) -> None:
        """Through the pipeline; returns once the measure is in the outbox, raises its FIWARE error."""
        done = threading.Event()
        result: list[Outcome] = []

        def finish(outcome: Outcome) -> None:
            result.append(outcome)
            done.set()

        submit(Inbound(family, Message(route, payload, params, content_type), done=finish))
        if not done.wait(timeout):
            raise PersistTimeout("the agent did not persist the measure in time")
        outcome = result[0]
        if outcome.error is not None:
            raise outcome.error

    def answer(params: dict[str, str]) -> Response:
        if poll is not None and request.args.get("getCmd") == "1" and "apikey" in params and "device_id" in params:
            return _json(poll(params["apikey"], params["device_id"]), 200)
        return _json({}, 200)

    def handler(family: Family, route: Route) -> Callable[..., Response]:
        def view(**path_params: str) -> Response:
            params = query_params(route, path_params, [])
            persist(family, route, params, request.get_data(), request.content_type)
            return answer(params)

        return view

    def get_handler(family: Family, route: Route) -> Callable[..., Response]:
        def view(**path_params: str) -> Response:
            measure = request.args.get("d")
            fetch = request.args.get("getCmd") == "1"
            params = query_params(route, path_params, [] if measure or fetch else ["d (or getCmd=1)"])
            if measure:
                persist(family, route, params, measure.encode(), "application/json")
            return answer(params)

        return view

    for family, route in routes:
        if route.transport != "http":
            continue
        rule = route.pattern.replace("{", "<").replace("}", ">")
        app.add_url_rule(rule, f"{family.name}:{route.pattern}", handler(family, route), methods=["POST"])
        pollable = {"apikey", "device_id"} <= set(route.query.values())
        if poll is not None and route.kind == "measure" and pollable:
            app.add_url_rule(rule, f"{family.name}:{route.pattern}:get", get_handler(family, route), methods=["GET"])
    return app
