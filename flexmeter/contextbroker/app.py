"""The broker's WSGI app: routes, Orion's error bodies for every failure, metrics, the subscription engine.

Every error a client can cause is rendered as Orion renders it (``{"error", "description"}`` with
Orion's status); an unknown URL is Orion's 400 "Service not found"; nothing a client sends may produce
a 500 (an unexpected exception is logged and rendered as Orion's 500 body).
"""

from __future__ import annotations

import collections
import logging
import platform
import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.exceptions import RequestEntityTooLarge as WerkzeugTooLarge

from flexmeter import __version__
from flexmeter.contextbroker import batch_api, entities_api, registrations
from flexmeter.contextbroker.errors import (
    DESC_BAD_VERB,
    DESC_GET_DELETE_CONTENT_TYPE,
    DESC_NO_CONTENT_LENGTH,
    DESC_PARSE,
    DESC_SERVICE_NOT_FOUND,
    BadRequest,
    LengthRequired,
    MethodNotAllowed,
    NotAcceptable,
    OrionError,
    ParseError,
    RequestEntityTooLarge,
)
from flexmeter.contextbroker.http import MAX_PAYLOAD, json_response
from flexmeter.contextbroker.model import EntityChange
from flexmeter.contextbroker.store import Store
from flexmeter.contextbroker.subscriptions import SubscriptionEngine
from flexmeter.metrics import PROMETHEUS_CONTENT_TYPE, Registry

log = logging.getLogger(__name__)

ORION_COMPATIBLE = "3.10.1"
PURGE_INTERVAL = 30.0
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_NO_BODY_METHODS = frozenset({"GET", "DELETE"})


class Broker:
    """The broker's parts, wired: store → (after commit) subscription engine; routes on a Flask app."""

    def __init__(self, db_path: Path, *, notify_batch: int | None = None,
                 metrics: Registry | None = None) -> None:
        self.db_path = Path(db_path)
        self.metrics = metrics or Registry()
        self.started = time.time()
        self.requests = self.metrics.counter("flexmeter_broker_requests_total",
                                             "HTTP requests served by the broker, by method and status.")
        self.updates = self.metrics.counter("flexmeter_broker_entity_changes_total",
                                            "Committed entity changes, by alteration type.")
        self.engine = SubscriptionEngine(self.db_path, self.metrics, notify_batch)
        self.store = Store(self.db_path, listener=self._on_changes)
        self.forwarder = registrations.Forwarder(self.metrics)
        self.app = self._build_app()
        self._stopping = threading.Event()
        self._purger = threading.Thread(target=self._purge_loop, name="broker-ttl", daemon=True)

    def _on_changes(self, changes: list[EntityChange]) -> None:
        counts = collections.Counter(change.alteration for change in changes)
        for alteration, count in counts.items():
            self.updates.inc(count, alteration=alteration)
        self.engine.on_changes(changes)

    def start(self) -> None:
        self.engine.start()
        self._purger.start()

    def stop(self) -> None:
        self._stopping.set()
        try:
            self.engine.stop()
        finally:
            if self._purger.is_alive():
                self._purger.join(timeout=5)
            self.store.close()

    def _purge_loop(self) -> None:
        """Remove expired entities every ``PURGE_INTERVAL`` seconds, as Orion's TTL monitor does."""
        while not self._stopping.wait(PURGE_INTERVAL):
            for tenant in self.store.open_tenants():
                try:
                    tenant.purge_expired(time.time())
                except Exception:
                    log.exception("purging expired entities of tenant %r failed", tenant.service)

    # -- app ---------------------------------------------------------------------------------------
    def _build_app(self) -> Flask:
        app = Flask("flexmeter.contextbroker")
        app.url_map.strict_slashes = False
        ents = entities_api.EntitiesApi(self.store, self.forwarder)
        app.register_blueprint(entities_api.blueprint(self.store, self.forwarder))
        app.register_blueprint(batch_api.blueprint(self.store, ents))
        app.register_blueprint(registrations.blueprint(self.store))
        app.register_blueprint(self.engine.blueprint())
        app.add_url_rule("/version", "version", self._version, methods=["GET"])
        app.add_url_rule("/v2", "v2", self._v2, methods=["GET"])
        app.add_url_rule("/metrics", "metrics", self._metrics, methods=["GET"])
        app.add_url_rule("/health", "health", self._health, methods=["GET"])
        app.before_request(self._before)
        app.after_request(self._after)
        app.register_error_handler(OrionError, self._orion_error)
        app.register_error_handler(HTTPException, self._http_error)
        app.register_error_handler(Exception, self._unexpected)
        return app

    @staticmethod
    def _before() -> None:
        environ = request.environ
        if not environ.get("HTTP_FIWARE_CORRELATOR"):
            environ["HTTP_FIWARE_CORRELATOR"] = str(uuid.uuid4())
        length = request.content_length
        if length is not None and length > MAX_PAYLOAD:
            raise RequestEntityTooLarge(f"payload size: {length}, max size supported: {MAX_PAYLOAD}")
        method = request.method
        if method in _BODY_METHODS and not length:
            raise LengthRequired(DESC_NO_CONTENT_LENGTH)
        if method in _NO_BODY_METHODS and environ.get("CONTENT_TYPE") and not length:
            raise BadRequest(DESC_GET_DELETE_CONTENT_TYPE)
        accept = environ.get("HTTP_ACCEPT")
        if accept and "*/*" not in accept and "json" not in accept and "application/*" not in accept:
            path = request.path
            if not ((path.endswith("/value") and "text/plain" in accept) or path == "/metrics"):
                raise NotAcceptable("acceptable MIME types: application/json")

    def _after(self, response: Response) -> Response:
        response.headers["Fiware-Correlator"] = request.environ.get("HTTP_FIWARE_CORRELATOR", "")
        self.requests.inc(method=request.method, status=str(response.status_code))
        return response

    @staticmethod
    def _orion_error(exc: OrionError) -> Response:
        response = json_response(exc.body(), exc.status)
        if isinstance(exc, MethodNotAllowed) and getattr(exc, "allow", None):
            response.headers["Allow"] = ", ".join(exc.allow)  # type: ignore[attr-defined]
        return response

    def _http_error(self, exc: HTTPException) -> Response:
        if isinstance(exc, WerkzeugNotFound) and not isinstance(exc, WerkzeugMethodNotAllowed):
            return json_response(BadRequest(DESC_SERVICE_NOT_FOUND).body(), 400)
        if isinstance(exc, WerkzeugMethodNotAllowed):
            response = json_response(MethodNotAllowed(DESC_BAD_VERB).body(), 405)
            if exc.valid_methods:
                response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
            return response
        if isinstance(exc, WerkzeugTooLarge):
            return json_response(RequestEntityTooLarge(
                f"payload size: {request.content_length}, max size supported: {MAX_PAYLOAD}").body(), 413)
        status = exc.code or 400
        if status == 400:
            return json_response(ParseError(DESC_PARSE).body(), 400)
        return json_response(OrionError(exc.description or exc.name, status=status,
                                        error=exc.name.replace(" ", "")).body(), status)

    @staticmethod
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, RecursionError):  # absurdly nested input that slipped through: the client's fault
            return json_response(ParseError(DESC_PARSE).body(), 400)
        log.exception("unexpected error on %s %s", request.method, request.path)
        return json_response(OrionError("internal error, see the broker's log").body(), 500)

    # -- small endpoints ---------------------------------------------------------------------------
    def _version(self) -> Response:
        uptime = int(time.time() - self.started)
        days, rest = divmod(uptime, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        body: dict[str, Any] = {"orion": {
            "version": f"{ORION_COMPATIBLE}-compatible flexmeter {__version__}",
            "uptime": f"{days} d, {hours} h, {minutes} m, {seconds} s",
            "git_hash": "nogitversion",
            "compile_time": "nodate",
            "compiled_by": "flexmeter",
            "compiled_in": "python",
            "release_date": "nodate",
            "machine": platform.machine(),
            "doc": "https://fiware-orion.rtfd.io/",
            "libversions": {
                "python": sys.version.split()[0],
                "sqlite": sqlite3.sqlite_version,
            },
        }}
        return json_response(body)

    @staticmethod
    def _v2() -> Response:
        return json_response({
            "entities_url": "/v2/entities",
            "types_url": "/v2/types",
            "subscriptions_url": "/v2/subscriptions",
            "registrations_url": "/v2/registrations",
        })

    def _metrics(self) -> Response:
        return Response(self.metrics.render(), 200, content_type=PROMETHEUS_CONTENT_TYPE)

    @staticmethod
    def _health() -> Response:
        return json_response({"status": "ok"})


def create_app(db_path: Path, *, notify_batch: int | None = None, metrics: Registry | None = None) -> Broker:
    """A broker on ``db_path`` (the default tenant's SQLite file; other tenants live beside it)."""
    return Broker(db_path, notify_batch=notify_batch, metrics=metrics)
