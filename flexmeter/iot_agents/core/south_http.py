"""The south HTTP port (7896): every family's HTTP routes (iotagent-json's ``POST /iot/json?k=&i=``...).

The answer waits for the pipeline: 200 once the reading is in the outbox, or the FIWARE agents' error
(unknown apikey 404 DEVICE_GROUP_NOT_FOUND, unknown device with autoprovision off 404 DEVICE_NOT_FOUND,
malformed payload 400) once it is in the dead letters.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from flexmeter.iot_agents.core.errors import IotAgentError, MandatoryParamsNotFound
from flexmeter.iot_agents.core.family import Family, Message, Route
from flexmeter.iot_agents.core.pipeline import Inbound, Outcome


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def create_south_app(routes: list[tuple[Family, Route]], submit: Callable[[Inbound], None], *,
                     timeout: float = 30.0) -> Flask:
    app = Flask("flexmeter.iot_agents.south")

    @app.errorhandler(IotAgentError)
    def _iota_error(exc: IotAgentError) -> Response:
        return _json(exc.body(), exc.status)

    @app.errorhandler(404)
    def _not_found(exc: Any) -> Response:
        return _json({"name": "NOT_FOUND", "message": f"Route not found: {request.method} {request.path}"}, 404)

    @app.get("/health")
    def health() -> Response:
        return _json({"status": "ok"})

    def handler(family: Family, route: Route) -> Callable[..., Response]:
        def view(**path_params: str) -> Response:
            params = dict(path_params)
            missing = []
            for query_name, param in route.query.items():
                value = request.args.get(query_name)
                if value:
                    params[param] = value
                elif param in ("apikey", "device_id"):
                    missing.append(query_name)
            if missing:
                raise MandatoryParamsNotFound(missing)
            done = threading.Event()
            result: list[Outcome] = []

            def finish(outcome: Outcome) -> None:
                result.append(outcome)
                done.set()

            message = Message(route, request.get_data(), params, request.content_type)
            submit(Inbound(family, message, done=finish))
            if not done.wait(timeout):
                return _json({"name": "TIMEOUT", "message": "the agent did not persist the measure in time"}, 503)
            outcome = result[0]
            if outcome.error is not None:
                raise outcome.error
            return _json({}, 200)

        return view

    for family, route in routes:
        if route.transport != "http":
            continue
        rule = route.pattern.replace("{", "<").replace("}", ">")
        app.add_url_rule(rule, f"{family.name}:{route.pattern}", handler(family, route), methods=["POST"])
    return app
