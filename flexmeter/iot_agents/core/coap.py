"""CoAP south transport (aiocoap, UDP): every family route with transport ``coap``, for mesh gateways.

The Malmö mesh is 6LoWPAN, where CoAP over UDP is the natural uplink. A request goes through the same
submit path as the south HTTP port: the pipeline decodes and maps it and commits the result (outbox rows,
or the dead letter) before the answer, so a CON request's ``2.04 Changed`` means the reading is durable;
a gateway that gets no answer retransmits (aiocoap's message layer answers duplicates itself).

Answers: ``2.04`` accepted; the FIWARE agents' errors with their JSON body (``{"name", "message"}``) as
payload: ``4.00`` bad payload (dead-lettered) or missing ``k``/``i``, ``4.04`` unknown apikey or device
(autoprovision off) or path, ``4.05`` a method other than POST/PUT, ``4.13`` a payload over 1 MiB,
``5.03`` (with Max-Age, RFC 7252 §5.9.3.4) when the pipeline cannot take or commit it in time or the agent
is stopping. ``GET /.well-known/core`` lists the fixed-path routes (RFC 6690).

The aiocoap server runs on an event loop of its own thread; the pipeline's ``done`` callback (its thread)
resolves the request's future through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import aiocoap
import aiocoap.resource
from aiocoap.numbers.codes import Code

from flexmeter.iot_agents.core.errors import IotAgentError, MandatoryParamsNotFound
from flexmeter.iot_agents.core.family import Family, Message, Route
from flexmeter.iot_agents.core.pipeline import Inbound, Outcome

log = logging.getLogger(__name__)

COAP_PORT = 5683
MAX_PAYLOAD = 1 << 20
"""Bytes of one (blockwise-assembled) request; beyond it 4.13."""
RETRY_AFTER = 5
"""Max-Age (seconds) of a 5.03: when the gateway should try again."""
JSON_FORMAT = 50  # application/json

_STATUS_CODES: dict[int, Code] = {
    400: Code.BAD_REQUEST, 401: Code.UNAUTHORIZED, 403: Code.FORBIDDEN, 404: Code.NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED, 409: Code.CONFLICT, 413: Code.REQUEST_ENTITY_TOO_LARGE,
    415: Code.UNSUPPORTED_CONTENT_FORMAT, 503: Code.SERVICE_UNAVAILABLE,
}


class CoapPortInUse(OSError):
    """The CoAP UDP port is held by another socket (another agent, another CoAP server)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"CoAP port {port}/udp on {host} is in use")
        self.errno = errno.EADDRINUSE


def coap_code(status: int) -> Code:
    """The CoAP response code of an HTTP status (the FIWARE errors' statuses)."""
    if status in _STATUS_CODES:
        return _STATUS_CODES[status]
    return Code.BAD_REQUEST if 400 <= status < 500 else Code.INTERNAL_SERVER_ERROR


def _bind_host(host: str) -> str:
    return "::" if host in ("", "0.0.0.0", "::") else host  # aiocoap's udp6 socket is dual-stack


def claim_port(host: str, port: int) -> int:
    """The UDP port the server will bind: ``port``, or a free one for 0.

    Binds a probe socket *without* SO_REUSEPORT: aiocoap sets that option, so two agents would otherwise
    both bind 5683 and the kernel would split the datagrams between them without a word. Raises
    :class:`CoapPortInUse` when the port is taken.
    """
    family, _, _, _, address = socket.getaddrinfo(_bind_host(host), port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        if family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CoapPortInUse(host, port) from exc
            raise
        return int(probe.getsockname()[1])


def _error(code: Code, name: str, message: str, max_age: int | None = None) -> aiocoap.Message:
    response = aiocoap.Message(code=code, payload=json.dumps({"name": name, "message": message}).encode(),
                               content_format=JSON_FORMAT)
    if max_age is not None:
        response.opt.max_age = max_age
    return response


def _content_type(request: aiocoap.Message) -> str | None:
    fmt = request.opt.content_format
    if fmt is None:
        return None
    try:
        return str(fmt.media_type)
    except (AttributeError, KeyError, ValueError):
        return None


class _Root(aiocoap.resource.Resource, aiocoap.resource.PathCapable):
    """The server site: takes every path (routes have placeholders) and hands it to the transport."""

    def __init__(self, transport: CoapTransport) -> None:
        super().__init__()
        self.transport = transport

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        return await self.transport.handle(request)


class CoapTransport:
    """The CoAP server of one agent: bound at :meth:`start`, stopped (loop and thread) at :meth:`stop`."""

    def __init__(self, host: str, port: int, routes: list[tuple[Family, Route]], submit: Callable[[Inbound], None],
                 *, timeout: float = 30.0, pending: Callable[[], int] | None = None, max_pending: int = 50_000) -> None:
        self.host = host
        self.port = port
        self.routes = [(f, r) for f, r in routes if r.transport == "coap"]
        self.submit = submit
        self.timeout = timeout
        self.pending = pending
        self.max_pending = max_pending
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._closing = False
        self._in_flight = 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"coap://{host}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Bind and serve; raises what the bind raised (the agent must not start half-configured)."""
        self._thread = threading.Thread(target=self._run, name="iota-coap", daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise TimeoutError("the CoAP server did not start within 15 s")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._context = loop.run_until_complete(aiocoap.Context.create_server_context(
                _Root(self), bind=(_bind_host(self.host), self.port), transports=["udp6"],
                loggername="flexmeter.iot_agents.coap"))
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        log.info("CoAP listening on %s (%d routes)", self.url, len(self.routes))
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(asyncio.wait_for(self._context.shutdown(), 5))
            except Exception:
                log.exception("shutting the CoAP server down")
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    def stop(self, grace: float = 5.0) -> None:
        """Refuse new requests (5.03), let those being committed get their answer, then close the socket and
        the loop. Called before the pipeline stops, so in-flight requests still complete."""
        self._closing = True
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        deadline = time.monotonic() + grace
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    # -- requests ---------------------------------------------------------------------------------------------
    def match(self, segments: list[str]) -> tuple[Family, Route, dict[str, str]] | None:
        """The first route whose pattern matches the Uri-Path (patterns with or without a leading ``/``)."""
        if any("/" in segment for segment in segments):
            return None  # an escaped "/" inside a segment would shift the levels
        path = "/".join(segments)
        for family, route in self.routes:
            params = route.match("/" + path if route.pattern.startswith("/") else path)
            if params is not None:
                return family, route, params
        return None

    async def handle(self, request: aiocoap.Message) -> aiocoap.Message:
        segments = list(request.opt.uri_path)
        method = str(request.code)
        if segments == [".well-known", "core"] and request.code == Code.GET:
            return self._link_format()
        found = self.match(segments)
        if found is None:
            return _error(Code.NOT_FOUND, "NOT_FOUND", f"Route not found: {method} /{'/'.join(segments)}")
        family, route, params = found
        if request.code not in (Code.POST, Code.PUT):
            return _error(Code.METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED",
                          f"{method} not allowed on /{'/'.join(segments)}: use POST")
        if route.query:
            query = dict(item.partition("=")[::2] for item in request.opt.uri_query)
            missing = []
            for query_name, param in route.query.items():
                if query.get(query_name):
                    params[param] = query[query_name]
                elif param in ("apikey", "device_id"):
                    missing.append(query_name)
            if missing:
                return self._iota_error(MandatoryParamsNotFound(missing))
        payload = bytes(request.payload)
        if len(payload) > MAX_PAYLOAD:
            return _error(Code.REQUEST_ENTITY_TOO_LARGE, "PAYLOAD_TOO_LARGE",
                          f"payload of {len(payload)} bytes; at most {MAX_PAYLOAD}")
        if self._closing:
            return _error(Code.SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", "the agent is stopping", RETRY_AFTER)
        if self.pending is not None and self.pending() >= self.max_pending:
            return _error(Code.SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE",
                          "the agent's pipeline is full; retry later", RETRY_AFTER)
        self._in_flight += 1
        try:
            outcome = await self._submit(family, Message(route, payload, params, _content_type(request)))
        finally:
            self._in_flight -= 1
        if outcome is None:
            return _error(Code.SERVICE_UNAVAILABLE, "TIMEOUT", "the agent did not persist the measure in time",
                          RETRY_AFTER)
        if outcome.error is not None:
            return self._iota_error(outcome.error)
        return aiocoap.Message(code=Code.CHANGED)

    async def _submit(self, family: Family, message: Message) -> Outcome | None:
        """Hand the message to the pipeline and wait for its commit (None: not committed in time)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()

        def resolve(outcome: Outcome) -> None:
            if not future.done():
                future.set_result(outcome)

        def done(outcome: Outcome) -> None:  # on the pipeline's thread
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(resolve, outcome)

        self.submit(Inbound(family, message, done=done))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            return None

    @staticmethod
    def _iota_error(exc: IotAgentError) -> aiocoap.Message:
        return _error(coap_code(exc.status), exc.name, exc.message)

    def _link_format(self) -> aiocoap.Message:
        links = [f'</{route.pattern.lstrip("/")}>;rt="flexmeter.{family.name}.{route.kind}";ct=50'
                 for family, route in self.routes if "{" not in route.pattern]
        return aiocoap.Message(code=Code.CONTENT, payload=",".join(links).encode(), content_format=40)
