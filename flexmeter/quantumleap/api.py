"""The QuantumLeap 1.0.0 HTTP API over a :class:`Store` (Flask app factory)."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, request

from flexmeter import __version__ as flexmeter_version
from flexmeter.metrics import PROMETHEUS_CONTENT_TYPE, Registry
from flexmeter.quantumleap import QL_VERSION
from flexmeter.quantumleap.errors import NotFound, QuantumLeapError
from flexmeter.quantumleap.model import Query, Series
from flexmeter.quantumleap.notify import SUCCESS, parse_notification, to_rows
from flexmeter.quantumleap.params import parse_query
from flexmeter.quantumleap.store.base import Store, tenant
from flexmeter.quantumleap.timeindex import TIME_INDEX_HEADER, format_instant

log = logging.getLogger(__name__)
JSON_TYPE = "application/json"


def _json(body: Any, status: int = 200, content_type: str = JSON_TYPE) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, content_type=content_type)


def _service() -> str:
    return tenant(request.headers.get("Fiware-Service"))


def _path_header() -> str | None:
    return request.headers.get("Fiware-ServicePath")


def _attributes(series: Series) -> list[dict[str, Any]]:
    return [{"attrName": name, "values": series.values[name]} for name in sorted(series.values)]


def _index(series: Series, q: Query, aggregated_index: list[str]) -> list[str]:
    if q.aggr_method and not q.aggr_period:
        return aggregated_index
    return [format_instant(ms) for ms in series.index]


def _date_index(q: Query) -> list[str]:
    """QuantumLeap's index for an aggregation without period: [fromDate, toDate] ('' when not given)."""
    return [
        format_instant(q.from_ms) if q.from_ms is not None else "",
        format_instant(q.to_ms) if q.to_ms is not None else "",
    ]


def _values_only(body: dict[str, Any], *drop: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in drop}


_SUCCESS_BODY = json.dumps(SUCCESS).encode()
_TIME_INDEX_ENVIRON = "HTTP_" + TIME_INDEX_HEADER.upper().replace("-", "_")


class NotifyFastPath:
    """WSGI wrapper answering ``POST /v2/notify`` without Flask's request machinery (the hot path).

    Every other request goes to the Flask app; the notification semantics are the same function.
    """

    def __init__(self, app: Any, handler: Any) -> None:
        self.app = app
        self.handler = handler

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != "/v2/notify" or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else environ["wsgi.input"].read()
        try:
            self.handler(
                environ.get("HTTP_FIWARE_SERVICE"),
                environ.get("HTTP_FIWARE_SERVICEPATH"),
                environ.get(_TIME_INDEX_ENVIRON),
                body,
            )
        except QuantumLeapError as exc:
            payload = json.dumps(exc.body()).encode()
            start_response(
                f"{exc.status} {_REASONS.get(exc.status, 'Error')}",
                [("Content-Type", exc.content_type), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        except Exception as exc:
            log.exception("notification failed")
            payload = json.dumps({"error": "Internal Server Error", "description": str(exc)}).encode()
            start_response(
                "500 Internal Server Error", [("Content-Type", JSON_TYPE), ("Content-Length", str(len(payload)))]
            )
            return [payload]
        start_response("200 OK", [("Content-Type", JSON_TYPE), ("Content-Length", str(len(_SUCCESS_BODY)))])
        return [_SUCCESS_BODY]


_REASONS = {
    400: "Bad Request",
    404: "Not Found",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    501: "Not Implemented",
}


def create_app(store: Store, registry: Registry | None = None) -> Flask:
    """The WSGI app; ``registry`` gets the service's counters (a new one when None)."""
    app = Flask("flexmeter.quantumleap")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    metrics = registry or Registry()
    notifications = metrics.counter("ql_notifications_total", "Notifications received, by outcome.")
    entities_in = metrics.counter("ql_notified_entities_total", "Entities received in notifications.")
    rows_written = metrics.counter("ql_rows_written_total", "Rows committed (one per entity per notification).")
    empty_entities = metrics.counter("ql_empty_entities_total", "Notified entities without any value (skipped).")
    rejected = metrics.counter(
        "ql_rejected_values_total", "Attribute values that did not fit their column (kept raw), by reason."
    )
    queries = metrics.counter("ql_queries_total", "Queries answered, by endpoint and status.")
    deleted = metrics.counter("ql_deleted_rows_total", "Rows deleted through the API.")
    app.config["FLEXMETER_METRICS"] = metrics

    @app.errorhandler(QuantumLeapError)
    def _ql_error(exc: QuantumLeapError) -> Response:
        return _json(exc.body(), exc.status, exc.content_type)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return _json(
                {"type": "about:blank", "title": exc.name, "status": exc.code, "detail": exc.description},
                exc.code or 500,
                "application/problem+json",
            )
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _json({"error": "Internal Server Error", "description": str(exc)}, 500)

    # -- meta -------------------------------------------------------------------------------------------
    @app.get("/version")
    def version() -> Response:
        return _json({"version": QL_VERSION, "flexmeter": flexmeter_version})

    @app.get("/health")
    def health() -> Response:
        if store.healthy():
            return _json({"status": "pass"}, content_type="application/health+json")
        return _json(
            {"status": "fail", "details": {f"{store.backend}": {"status": "fail"}}},
            503,
            "application/health+json",
        )

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        return Response(metrics.render(), content_type=PROMETHEUS_CONTENT_TYPE)

    @app.get("/v2")
    @app.get("/v2/")
    def list_of_api() -> Response:
        return _json(
            {
                "notify_url": "/v2/notify",
                "entities_url": "/v2/entities",
                "types_url": "/v2/types",
                "attributes_url": "/v2/attrs",
            }
        )

    @app.post("/config")
    def config() -> Response:
        return _json({"error": "Not Implemented", "description": "This API method is not yet implemented."}, 501)

    # -- notify -----------------------------------------------------------------------------------------
    def handle_notify(
        service_header: str | None, path_header: str | None, time_index_attr: str | None, body: bytes
    ) -> None:
        """Parse, write and count one notification; raises the QuantumLeap error to answer."""
        try:
            service = tenant(service_header)
            entities = parse_notification(body)
            rows, empty = to_rows(entities, path_header, time_index_attr)
        except QuantumLeapError:
            notifications.inc(outcome="bad_request")
            raise
        entities_in.inc(len(entities))
        if empty:
            empty_entities.inc(empty)
        if rows:
            try:
                result = store.insert(service, rows)
            except QuantumLeapError:
                notifications.inc(outcome="error")
                raise
            rows_written.inc(result.rows)
            for rejection in result.rejected:
                rejected.inc(reason=rejection.reason)
                log.warning(
                    "value kept raw: %s.%s (%s): %s",
                    rejection.entity_id,
                    rejection.attr,
                    rejection.reason,
                    rejection.detail,
                )
        notifications.inc(outcome="ok")

    @app.post("/v2/notify")
    def notify() -> Response:
        handle_notify(
            request.headers.get("Fiware-Service"),
            _path_header(),
            request.headers.get(TIME_INDEX_HEADER),
            request.get_data(),
        )
        return _json(SUCCESS)

    app.wsgi_app = NotifyFastPath(app.wsgi_app, handle_notify)  # type: ignore[method-assign]

    # -- queries ----------------------------------------------------------------------------------------
    def _answer(endpoint: str, body: Any) -> Response:
        queries.inc(endpoint=endpoint, status="200")
        return _json(body)

    def _not_found(endpoint: str) -> NotFound:
        queries.inc(endpoint=endpoint, status="404")
        return NotFound()

    @app.get("/v2/entities")
    def query_entities() -> Response:
        q = parse_query(request.args, service_path=_path_header(), attrs_param=False)
        found = store.entities(_service(), q)
        if not found:
            raise _not_found("entities")
        return _answer(
            "entities",
            [
                {"entityId": e.entity_id, "entityType": e.entity_type, "index": format_instant(e.last_index)}
                for e in found
            ],
        )

    def _one_entity(entity_id: str, attr: str | None) -> tuple[Query, Series | None]:
        service = _service()
        q = parse_query(request.args, service_path=_path_header(), attr_in_path=attr, entity_id=entity_id)
        if not q.entity_types:
            entity_type = store.resolve_type(service, entity_id, q)
            if entity_type is None:
                return q, None
            q.entity_types = [entity_type]
        series = store.query(service, q)
        return q, (series[0] if series else None)

    @app.get("/v2/entities/<entity_id>", defaults={"value_only": False})
    @app.get("/v2/entities/<entity_id>/value", defaults={"value_only": True})
    def query_entity(entity_id: str, value_only: bool) -> Response:
        q, series = _one_entity(entity_id, None)
        if series is None:
            raise _not_found("entity")
        body = {
            "entityId": series.entity_id,
            "entityType": series.entity_type,
            "index": _index(series, q, []),
            "attributes": _attributes(series),
        }
        if value_only:
            body = _values_only(body, "entityId", "entityType")
        return _answer("entity", body)

    @app.get("/v2/entities/<entity_id>/attrs/<attr_name>", defaults={"value_only": False})
    @app.get("/v2/entities/<entity_id>/attrs/<attr_name>/value", defaults={"value_only": True})
    def query_entity_attr(entity_id: str, attr_name: str, value_only: bool) -> Response:
        q, series = _one_entity(entity_id, attr_name)
        if series is None or not series.values:
            raise _not_found("entity_attr")
        name, values = next(iter(series.values.items()))
        body = {
            "entityId": series.entity_id,
            "entityType": series.entity_type,
            "attrName": name,
            "index": _index(series, q, []),
            "values": values,
        }
        if value_only:
            body = _values_only(body, "entityId", "entityType", "attrName")
        return _answer("entity_attr", body)

    @app.get("/v2/types/<entity_type>", defaults={"value_only": False})
    @app.get("/v2/types/<entity_type>/value", defaults={"value_only": True})
    def query_type(entity_type: str, value_only: bool) -> Response:
        q = parse_query(request.args, service_path=_path_header(), entity_type=entity_type)
        found = store.query(_service(), q)
        if not found:
            raise _not_found("type")
        entities = [
            {"entityId": s.entity_id, "index": _index(s, q, _date_index(q)), "attributes": _attributes(s)}
            for s in found
        ]
        if value_only:
            return _answer("type", {"values": entities})
        return _answer("type", {"entityType": found[0].entity_type, "entities": entities})

    @app.get("/v2/types/<entity_type>/attrs/<attr_name>", defaults={"value_only": False})
    @app.get("/v2/types/<entity_type>/attrs/<attr_name>/value", defaults={"value_only": True})
    def query_type_attr(entity_type: str, attr_name: str, value_only: bool) -> Response:
        q = parse_query(request.args, service_path=_path_header(), attr_in_path=attr_name, entity_type=entity_type)
        found = [s for s in store.query(_service(), q) if s.values]
        if not found:
            raise _not_found("type_attr")
        name = next(iter(found[0].values))
        entities = [
            {"entityId": s.entity_id, "index": _index(s, q, _date_index(q)), "values": s.values[name]} for s in found
        ]
        if value_only:
            return _answer("type_attr", {"values": entities})
        return _answer("type_attr", {"entityType": found[0].entity_type, "attrName": name, "entities": entities})

    def _by_attr_and_type(found: list[Series], q: Query) -> list[dict[str, Any]]:
        names = sorted({name for s in found for name in s.values})
        result = []
        for name in names:
            types: dict[str, list[dict[str, Any]]] = {}
            for s in found:
                if name in s.values:
                    types.setdefault(s.entity_type, []).append(
                        {
                            "entityId": s.entity_id,
                            "index": _index(s, q, _date_index(q)),
                            "values": s.values[name],
                        }
                    )
            result.append({"attrName": name, "types": [{"entityType": t, "entities": e} for t, e in types.items()]})
        return result

    @app.get("/v2/attrs", defaults={"value_only": False})
    @app.get("/v2/attrs/value", defaults={"value_only": True})
    def query_attrs(value_only: bool) -> Response:
        q = parse_query(request.args, service_path=_path_header())
        found = store.query(_service(), q)
        if not found:
            raise _not_found("attrs")
        attrs = _by_attr_and_type(found, q)
        if value_only:
            return _answer("attrs", {"values": attrs})
        return _answer("attrs", {"attrs": attrs})

    @app.get("/v2/attrs/<attr_name>", defaults={"value_only": False})
    @app.get("/v2/attrs/<attr_name>/value", defaults={"value_only": True})
    def query_attr(attr_name: str, value_only: bool) -> Response:
        q = parse_query(request.args, service_path=_path_header(), attr_in_path=attr_name)
        found = store.query(_service(), q)
        if not found:
            raise _not_found("attr")
        attrs = _by_attr_and_type(found, q)
        if value_only:
            return _answer("attr", {"values": attrs[0]["types"]})
        return _answer("attr", attrs[0])

    # -- delete -----------------------------------------------------------------------------------------
    def _delete(q: Query, drop: bool = False) -> Response:
        count = store.delete(_service(), q, drop_table=drop)
        if count == 0 and not drop:
            raise NotFound()
        deleted.inc(count)
        return Response(status=204)

    @app.delete("/v2/entities/<entity_id>")
    def delete_entity(entity_id: str) -> Response:
        q = parse_query(request.args, service_path=_path_header(), attrs_param=False, entity_id=entity_id)
        return _delete(q)

    @app.delete("/v2/types/<entity_type>")
    def delete_type(entity_type: str) -> Response:
        q = parse_query(request.args, service_path=_path_header(), attrs_param=False, entity_type=entity_type)
        drop = (request.args.get("dropTable") or "").lower() == "true"
        if drop and not store.query(_service(), Query(entity_types=[entity_type], limit=1)):
            raise NotFound()
        return _delete(q, drop)

    return app
