"""The REST API (``/v1``), the notification endpoint (``/notify``), health, metrics, OpenAPI, dashboard.

Tenants are FIWARE's: ``Fiware-Service`` and ``Fiware-ServicePath`` headers on every call (the broker sends
them on notifications). With a token configured, ``/v1`` requires ``Authorization: Bearer <token>`` (or
``X-Auth-Token``); the breaker always requires it. Reads first settle pending computations, so they see
every reading already accepted.
"""

from __future__ import annotations

import hmac
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, jsonify, request, send_from_directory

from flexmeter.metrics import PROMETHEUS_CONTENT_TYPE
from flexmeter.ngsi_models import parse_datetime
from flexmeter.service.breaker import Breaker, who
from flexmeter.service.engine import Engine
from flexmeter.service.errors import BadRequest, Forbidden, ServiceError, Unauthorized
from flexmeter.service.openapi import openapi_document
from flexmeter.service.periods import RESOLUTIONS, local_date
from flexmeter.service.queries import Queries
from flexmeter.service.results import building_key
from flexmeter.service.store import tenant_key

STATIC = Path(__file__).parent / "static"
api = Blueprint("service_api", __name__)


def _engine() -> Engine:
    engine: Engine = current_app.config["ENGINE"]
    return engine


def _queries() -> Queries:
    queries: Queries = current_app.config["QUERIES"]
    return queries


def _tenant() -> str:
    return tenant_key(request.headers.get("Fiware-Service", ""), request.headers.get("Fiware-ServicePath", "/") or "/")


def _presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-Auth-Token") or request.args.get("access_token")


def _check_token(required: bool) -> str | None:
    expected = _engine().config.token
    presented = _presented_token()
    if expected is None:
        if required:
            raise Forbidden("the breaker needs the service to run with --token (an authenticated caller)")
        return presented
    if presented is None:
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Unauthorized("the bearer token is not valid")
    return presented


def _time_arg(name: str, default: float) -> float:
    text = request.args.get(name)
    if not text:
        return default
    try:
        return parse_datetime(text).timestamp()
    except ValueError as exc:
        raise BadRequest(f"{name} must be an ISO 8601 date-time, not {text!r}") from exc


def _window(tk: str) -> tuple[float, float]:
    row = _engine().store.one("SELECT max(last_t) FROM meters WHERE tk=?", (tk,))
    anchor = float(row[0]) if row and row[0] is not None else time.time()
    return _time_arg("fromDate", anchor - 2 * 86400.0), _time_arg("toDate", anchor + 86400.0)


def _day_arg(tk: str) -> date:
    text = request.args.get("day")
    if text:
        try:
            return date.fromisoformat(text)
        except ValueError as exc:
            raise BadRequest(f"day must be YYYY-MM-DD, not {text!r}") from exc
    row = _engine().store.one("SELECT max(last_t) FROM meters WHERE tk=?", (tk,))
    anchor = float(row[0]) if row and row[0] is not None else time.time()
    return local_date(anchor, _engine().config.timezone)


@api.before_request
def _authenticate() -> None:
    if request.path.startswith("/v1/"):
        _check_token(required=False)


@api.route("/health")
def health() -> Any:
    engine = _engine()
    return jsonify({"status": "ok", "pendingPeriods": engine.jobs.pending(), "outbox": engine.writer.pending(),
                    "ngsiUrl": engine.config.ngsi_url, "qlUrl": engine.config.ql_url})


@api.route("/metrics")
def metrics() -> Response:
    return Response(_engine().metrics.render(), content_type=PROMETHEUS_CONTENT_TYPE)


@api.route("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document())


@api.route("/notify", methods=["POST"])
@api.route("/v1/notify", methods=["POST"])
def notify() -> Any:
    try:  # orjson: the stdlib parser was the service's largest cost per notification
        body = orjson.loads(request.get_data(cache=False))
    except orjson.JSONDecodeError:
        body = None
    if body is None:
        _engine().rejected.inc(reason="not JSON")
        raise BadRequest("the body is not JSON")
    try:
        stats = _engine().notify(request.headers.get("Fiware-Service", ""),
                                 request.headers.get("Fiware-ServicePath", "/") or "/", body)
    except ServiceError as exc:
        _engine().rejected.inc(reason=exc.error)
        raise
    return jsonify(stats)


@api.route("/v1/meters")
def meters() -> Any:
    _engine().settle()
    return jsonify(_queries().meters(_tenant()))


@api.route("/v1/meters/<path:meter>/consumption")
def consumption(meter: str) -> Any:
    _engine().settle()
    tk = _tenant()
    resolution = request.args.get("resolution", "PT15M")
    if resolution not in RESOLUTIONS:
        raise BadRequest(f"resolution must be one of {', '.join(RESOLUTIONS)}")
    t0, t1 = _window(tk)
    if resolution in ("P1D", "P1M") and "fromDate" not in request.args:
        t0 -= 400 * 86400.0
    periods = _queries().profile(tk, meter, resolution, t0, t1)
    return jsonify({"meter": meter, "resolution": resolution, "periods": periods})


@api.route("/v1/buildings/<path:building>/consumption")
def building_consumption(building: str) -> Any:
    _engine().settle()
    tk = _tenant()
    resolution = request.args.get("resolution", "PT1H")
    vector = request.args.get("vector", "electricity")
    if resolution not in RESOLUTIONS:
        raise BadRequest(f"resolution must be one of {', '.join(RESOLUTIONS)}")
    t0, t1 = _window(tk)
    if resolution in ("P1D", "P1M") and "fromDate" not in request.args:
        t0 -= 400 * 86400.0
    periods = _queries().profile(tk, building_key(building, vector), resolution, t0, t1)
    return jsonify({"building": building, "vector": vector, "resolution": resolution, "periods": periods})


@api.route("/v1/meters/<path:meter>/series")
def series(meter: str) -> Any:
    tk = _tenant()
    quantity = request.args.get("quantity", "p")
    t0, t1 = _window(tk)
    return jsonify({"meter": meter, "quantity": quantity, "points": _queries().series(tk, meter, quantity, t0, t1)})


@api.route("/v1/meters/<path:meter>/nialm")
def nialm(meter: str) -> Any:
    tk = _tenant()
    return jsonify(_queries().nialm(tk, meter, _day_arg(tk)))


@api.route("/v1/losses")
def losses() -> Any:
    _engine().settle()
    tk = _tenant()
    t0, t1 = _window(tk)
    return jsonify({"areas": _queries().areas(tk),
                    "balances": _queries().balances(tk, request.args.get("area"), t0, t1)})


@api.route("/v1/alarms")
def alarms() -> Any:
    _engine().settle()
    active = request.args.get("active", "true").lower() != "false"
    return jsonify(_queries().alarms(_tenant(), active))


@api.route("/v1/completeness")
def completeness() -> Any:
    _engine().settle()
    tk = _tenant()
    return jsonify(_queries().completeness(tk, _day_arg(tk)))


@api.route("/v1/heat")
def heat() -> Any:
    _engine().settle()
    tk = _tenant()
    t0, t1 = _window(tk)
    return jsonify(_queries().heat(tk, request.args.get("meter"), t0 - 86400.0, t1))


@api.route("/v1/water")
def water() -> Any:
    _engine().settle()
    return jsonify(_queries().water(_tenant(), request.args.get("meter")))


@api.route("/v1/overview")
def overview() -> Any:
    _engine().settle()
    return jsonify(_queries().overview(_tenant()))


@api.route("/v1/meters/<path:meter>/breaker", methods=["POST"])
def breaker_command(meter: str) -> Any:
    token = _check_token(required=True)
    body = request.get_json(force=True, silent=True) or {}
    action = str(body.get("action", "")).lower()
    breaker: Breaker = current_app.config["BREAKER"]
    result = breaker.request(_tenant(), meter, action, who(token, request.headers.get("X-User")),
                             body.get("entityType"))
    return jsonify(result), 202


@api.route("/v1/meters/<path:meter>/breaker", methods=["GET"])
def breaker_status(meter: str) -> Any:
    breaker: Breaker = current_app.config["BREAKER"]
    return jsonify(breaker.status(_tenant(), meter))


@api.route("/v1/breaker/audit")
def breaker_audit() -> Any:
    breaker: Breaker = current_app.config["BREAKER"]
    return jsonify(breaker.audit(_tenant()))


@api.route("/")
@api.route("/dashboard")
def dashboard() -> Response:
    return send_from_directory(STATIC, "dashboard.html")


@api.route("/static/<path:name>")
def static_file(name: str) -> Response:
    return send_from_directory(STATIC, name, max_age=timedelta(hours=1).seconds)


def register_errors(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> tuple[Any, int]:
        return jsonify(exc.body()), exc.status

    @app.errorhandler(404)
    def _not_found(exc: Exception) -> tuple[Any, int]:
        return jsonify({"error": "NotFound", "description": "no such resource"}), 404

    @app.errorhandler(405)
    def _method(exc: Exception) -> tuple[Any, int]:
        return jsonify({"error": "MethodNotAllowed", "description": "method not allowed here"}), 405
