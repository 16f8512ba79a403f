"""The broker's WSGI app: routes, Orion's error bodies for every failure, metrics, the subscription engine.

Every error a client can cause is rendered as Orion renders it (``{"error", "description"}`` with
Orion's status); an unknown URL is Orion's 400 "Service not found"; nothing a client sends may produce
a 500 (an unexpected exception is logged and rendered as Orion's 500 body).
"""

from __future__ import annotations

import collections
import logging
import platform
import random
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
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
from flexmeter.contextbroker.http import MAX_PAYLOAD, FastRequest, json_response, set_fast_request
from flexmeter.contextbroker.model import EntityChange
from flexmeter.contextbroker.store import Store
from flexmeter.contextbroker.subscriptions import SubscriptionEngine
from flexmeter.metrics import PROMETHEUS_CONTENT_TYPE, Registry

log = logging.getLogger(__name__)

ORION_COMPATIBLE = "3.10.1"
PURGE_INTERVAL = 30.0
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_NO_BODY_METHODS = frozenset({"GET", "DELETE"})
_FastRoute = tuple[Callable[..., Response], tuple[str, ...], str]  # view, its arguments, path
_PATCH_ATTRS = re.compile(r"^/v2/entities/([^/]+)/attrs$")


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
        self._request_counts: dict[tuple[str, str], int] = {}
        self._request_lock = threading.Lock()
        self.metrics.on_collect(self._collect_requests)
        self.engine = SubscriptionEngine(self.db_path, self.metrics, notify_batch)
        self.store = Store(self.db_path, listener=self._on_changes)
        self.forwarder = registrations.Forwarder(self.metrics)
        self.app = self._build_app()
        self._stopping = threading.Event()
        self._purger = threading.Thread(target=self._purge_loop, name="broker-ttl", daemon=True)

    def _on_changes(self, changes: list[EntityChange]) -> None:
        if len(changes) == 1:
            self.updates.inc(1, alteration=changes[0].alteration)
        else:
            for alteration, count in collections.Counter(change.alteration for change in changes).items():
                self.updates.inc(count, alteration=alteration)
        self.engine.on_changes(changes)

    def _count_request(self, method: str, status: str) -> None:
        """Count a request in a plain dict; folded into the metric when it is rendered (cheaper)."""
        key = (method, status)
        with self._request_lock:
            self._request_counts[key] = self._request_counts.get(key, 0) + 1

    def _collect_requests(self) -> None:
        with self._request_lock:
            counts = list(self._request_counts.items())
        for (method, status), count in counts:
            self.requests.set(count, method=method, status=status)

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
        batch = batch_api.BatchApi(self.store, ents)
        app.register_blueprint(entities_api.blueprint(ents))
        app.register_blueprint(batch_api.blueprint(batch))
        self._fast_patch = ents.update_attrs
        self._fast_batch = batch.update
        app.register_blueprint(registrations.blueprint(self.store))
        app.register_blueprint(self.engine.blueprint())
        app.add_url_rule("/version", "version", self._version, methods=["GET"])
        app.add_url_rule("/v2", "v2", self._v2, methods=["GET"])
        app.add_url_rule("/metrics", "metrics", self._metrics, methods=["GET"])
        app.add_url_rule("/health", "health", self._health, methods=["GET"])
        app.wsgi_app = self._wrap(app.wsgi_app)  # type: ignore[method-assign]
        app.register_error_handler(OrionError, self._orion_error)
        app.register_error_handler(HTTPException, self._http_error)
        app.register_error_handler(Exception, self._unexpected)
        return app

    def _wrap(self, inner: Any) -> Any:
        """WSGI middleware doing Orion's request-level checks, the correlator and the request metric.

        Cheaper than Flask's before/after hooks on the hot paths (single PATCH, batch updates).
        """
        count_request = self._count_request

        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            correlator = environ.get("HTTP_FIWARE_CORRELATOR")
            if not correlator:
                correlator = environ["HTTP_FIWARE_CORRELATOR"] = new_correlator()
            method = environ.get("REQUEST_METHOD", "GET")
            seen: list[str] = []

            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                headers.append(("Fiware-Correlator", correlator))
                seen.append(status[:3])
                return start_response(status, headers, exc_info)

            error = _precheck(environ, method)
            if error is None:
                fast = self._fast_route(environ, method)
                result = inner(environ, start) if fast is None else self._serve_fast(environ, start, *fast)
            else:
                body = json_response(error.body(), error.status).get_data()
                start(f"{error.status} {HTTPStatus(error.status).phrase}",
                      [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                result = [body]
            count_request(method, seen[0] if seen else "000")
            return result

        return wsgi

    def _fast_route(self, environ: dict[str, Any], method: str) -> _FastRoute | None:
        """The hot routes (PATCH of an entity's attributes, batch update), served without Flask."""
        if method == "PATCH":
            path = environ.get("PATH_INFO", "")
            match = _PATCH_ATTRS.match(path)
            if match is not None:
                entity_id = match.group(1).encode("latin-1").decode("utf-8", "replace")
                return self._fast_patch, (entity_id,), path
        elif method == "POST" and environ.get("PATH_INFO") == "/v2/op/update":
            return self._fast_batch, (), "/v2/op/update"
        return None

    def _serve_fast(self, environ: dict[str, Any], start: Any, view: Callable[..., Response],
                    args: tuple[str, ...], path: str) -> Any:
        set_fast_request(FastRequest(environ, path))
        try:
            response = view(*args)
        except OrionError as exc:
            response = self._orion_error(exc)
        except Exception as exc:  # never a bare 500 page: Orion's body, and the traceback in the log
            log.exception("unexpected error on %s %s", environ.get("REQUEST_METHOD"), path)
            response = json_response(OrionError("internal error, see the broker's log").body(), 500)
            if isinstance(exc, RecursionError):
                response = json_response(ParseError(DESC_PARSE).body(), 400)
        finally:
            set_fast_request(None)
        return response(environ, start)

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


def new_correlator() -> str:
    """A random (version 4) UUID as text, as Orion's correlators; cheaper than ``str(uuid.uuid4())``."""
    h = f"{random.getrandbits(128) & _UUID4_MASK | _UUID4_BITS:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UUID4_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_BITS = (0x4000 << 64) | (0x8000 << 48)


def _precheck(environ: dict[str, Any], method: str) -> OrionError | None:
    """Orion's checks before routing: 413, 411, Content-Type on GET/DELETE, Accept (406)."""
    raw_length = environ.get("CONTENT_LENGTH")
    try:
        length = int(raw_length) if raw_length else 0
    except ValueError:
        return BadRequest("invalid Content-Length")
    if length > MAX_PAYLOAD:
        return RequestEntityTooLarge(f"payload size: {length}, max size supported: {MAX_PAYLOAD}")
    if method in _BODY_METHODS and length <= 0:
        return LengthRequired(DESC_NO_CONTENT_LENGTH)
    if method in _NO_BODY_METHODS and environ.get("CONTENT_TYPE") and not length:
        return BadRequest(DESC_GET_DELETE_CONTENT_TYPE)
    accept = environ.get("HTTP_ACCEPT")
    if accept and "*/*" not in accept and "json" not in accept and "application/*" not in accept:
        path = environ.get("PATH_INFO", "")
        if not ((path.endswith("/value") and "text/plain" in accept) or path == "/metrics"):
            return NotAcceptable("acceptable MIME types: application/json")
    return None


def create_app(db_path: Path, *, notify_batch: int | None = None, metrics: Registry | None = None) -> Broker:
    """A broker on ``db_path`` (the default tenant's SQLite file; other tenants live beside it)."""
    return Broker(db_path, notify_batch=notify_batch, metrics=metrics)
