"""MQTT south transport: an MQTT 5 subscriber of its own, QoS 1, PUBACK only after the inbox commit.

paho-mqtt spends ~0.3 ms of Python per received message on this hardware, which caps an agent near
2-3k messages/s; beyond that Mosquitto queues and, past ``max_queued_messages``, drops QoS 1 messages.
This client does only what the agent needs (CONNECT with a persistent session, SUBSCRIBE, PUBLISH in,
PUBACK out, PINGREQ, PUBLISH out for commands), so a message costs a few microseconds before it is in the
pipeline's queue.

A persistent MQTT 5 session (``clean_start=0``, session expiry ``FLEXMETER_MQTT_SESSION_EXPIRY``, 7 days by
default, a client id stable across restarts of the same data dir) makes the MQTT broker keep QoS 1 messages
for the agent while it is away; a message is acknowledged only once the pipeline has persisted it, so a crash
before that means redelivery. The Receive Maximum is the protocol's largest (65,535): the MQTT broker may
have that many unacknowledged messages in flight to us, so a burst (5,000 meters pushing on the same
second) is in flight rather than in Mosquitto's per-client queue, which drops QoS 1 messages past
``max_queued_messages`` (1,000 by default).

A broker that speaks only MQTT 3.1.1 (the embedded amqtt broker, older Mosquitto, many cloud brokers)
refuses the MQTT 5 CONNECT; the client then falls back to 3.1.1 with a persistent session (clean session 0)
and keeps that version for the life of the transport.

Credentials (``mqtt://user:password@host``) and TLS (``mqtts://``) are the connection's (``mqttlink.py``): a
refused CONNECT or certificate is logged as an error, shown in ``last_error`` (``/health``), and retried
with a back-off up to 30 s; the agent goes on with its other transports.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial

from flexmeter.config import get_settings
from flexmeter.iot_agents.core.family import Family, Message, Route
from flexmeter.iot_agents.core.mqttlink import (
    MQTT5,
    MQTT311,
    MqttConnectRefused,
    MqttEndpoint,
    MqttError,
    MqttProtocolError,
    MqttSocket,
    check_connack,
    connect_packet,
    encode_string,
    encode_varint,
    host_port,
)
from flexmeter.iot_agents.core.mqttlink import packet as _packet
from flexmeter.iot_agents.core.pipeline import Inbound

__all__ = ["MqttEndpoint", "MqttProtocolError", "MqttTransport", "encode_string", "encode_varint", "host_port"]

log = logging.getLogger(__name__)

RECEIVE_MAXIMUM = 65535
"""Unacknowledged QoS 1 messages the MQTT broker may have in flight to the agent."""
KEEPALIVE = 30
_VERSION_REFUSED = {0x01, 0x84}  # 3.1.1 "unacceptable protocol version", MQTT 5 "unsupported protocol version"
TOPIC_CACHE = 100_000
"""Distinct topics whose route the client remembers (cleared when full)."""
AUTH_RETRY_MAX = 30.0
"""Seconds between attempts once the MQTT broker refuses our credentials or certificate (it will not change
its mind every 5 s; the operator fixes the configuration and the agent reconnects within this delay)."""


class _VersionRefused(MqttProtocolError):
    """The MQTT broker refused MQTT 5: retry with 3.1.1."""


def _needs_operator(exc: MqttError) -> bool:
    """Refused credentials, a refused certificate or a bad setting: retrying soon does not help."""
    if isinstance(exc, MqttConnectRefused):
        return exc.is_auth
    return not isinstance(exc, MqttProtocolError)


class MqttTransport:
    def __init__(self, url: str | MqttEndpoint, client_id: str, routes: list[tuple[Family, Route]],
                 submit: Callable[[Inbound], None]) -> None:
        self.endpoint = url if isinstance(url, MqttEndpoint) else MqttEndpoint.parse(url)
        self.url = self.endpoint.display
        """The URL without the password: the only form that reaches logs and /health."""
        self._tls = self.endpoint.ssl_context() if self.endpoint.tls else None  # a missing CA file fails here
        self.client_id = client_id
        self.routes = [(f, r) for f, r in routes if r.transport == "mqtt"]
        self.submit = submit
        self.connected = threading.Event()
        self.last_error: str | None = None
        """Why the last connection attempt failed or the session ended (None while connected)."""
        self.refused = False
        """The last attempt was refused for a reason only the operator can fix (credentials, certificate)."""
        self._stop = threading.Event()
        self._sock: MqttSocket | None = None
        self._send_lock = threading.Lock()
        self._next_id = 0
        self._last_send = 0.0
        self._acks = bytearray()
        self._ack_lock = threading.Lock()
        self._by_topic: dict[bytes, tuple[Family, Route, Mapping[str, str]] | None] = {}
        """Topic -> its route and parameters: matching every route per message costs more than the rest of
        the reception (a topic is one device's; bounded by :data:`TOPIC_CACHE`)."""
        self.version = MQTT5
        self._thread = threading.Thread(target=self._run, name="iota-mqtt", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                self._send(bytes([0xE0, 0]))  # DISCONNECT, reason 0: the session (and its queue) stays
            sock.shutdown()
        self._thread.join(timeout=5)

    def filters(self) -> list[str]:
        seen: list[str] = []
        for _, route in self.routes:
            if route.mqtt_filter() not in seen:
                seen.append(route.mqtt_filter())
        return seen

    def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                self._session()
                delay = 0.2
            except _VersionRefused:
                log.info("MQTT %s does not speak MQTT 5; using MQTT 3.1.1", self.url)
                self.version = MQTT311
                delay = 0.0
            except MqttError as exc:
                if self._stop.is_set():
                    break
                self.last_error = str(exc)
                self.refused = _needs_operator(exc)
                if self.refused:  # credentials, certificate, configuration: not worth hammering
                    delay = min(max(delay * 2, 1.0), AUTH_RETRY_MAX)
                    log.error("MQTT %s: %s; retrying in %.0f s", self.url, exc, delay)
                    self.connected.clear()
                    self._close()
                    self._stop.wait(delay)
                    continue
                log.warning("MQTT %s: %s; reconnecting in %.1f s", self.url, exc, delay)
            except OSError as exc:
                if self._stop.is_set():
                    break
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.refused = False
                log.warning("MQTT %s: %s; reconnecting in %.1f s", self.url, exc, delay)
            finally:
                self.connected.clear()
                self._close()
            self._stop.wait(delay)
            delay = min(max(delay * 2, 0.2), 5.0)

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- the session ----------------------------------------------------------------------------------------
    def _session(self) -> None:
        sock = self.endpoint.connect(timeout=10, context=self._tls)
        self._sock = sock
        v5 = self.version == MQTT5
        props = b""
        if v5:
            props = (bytes([0x11]) + struct.pack("!I", get_settings().mqtt_session_expiry)
                     + bytes([0x21]) + struct.pack("!H", RECEIVE_MAXIMUM))
        self._send(connect_packet(self.client_id, version=self.version, keepalive=KEEPALIVE, clean=False,
                                  endpoint=self.endpoint, properties=props))
        reader = _Reader(sock)
        try:
            first, body = reader.packet(self._stop)
        except OSError as exc:
            if v5 and not self._stop.is_set():  # some 3.1.1-only brokers just close the connection
                raise _VersionRefused() from exc
            raise
        sock.set_timeout(1.0)
        try:
            resumed = check_connack(first, body, self.version, self.url)
        except MqttConnectRefused as exc:
            if v5 and exc.code in _VERSION_REFUSED:
                raise _VersionRefused() from exc
            raise
        self.last_error = None
        self.refused = False
        filters = self.filters()
        if filters:
            payload = b"".join(encode_string(f) + bytes([0x01]) for f in filters)  # QoS 1, no options
            properties = b"\x00" if v5 else b""
            self._send(_packet(0x82, struct.pack("!H", self._packet_id()) + properties + payload))
        else:
            self.connected.set()
        log.info("MQTT connected to %s (session %s); subscribing to %s", self.url,
                 "resumed" if resumed else "new", ", ".join(filters))
        while not self._stop.is_set():
            if time.monotonic() - self._last_send > KEEPALIVE / 2:
                self._send(bytes([0xC0, 0]))  # PINGREQ
            try:
                first, body = reader.packet(self._stop)
            except TimeoutError:
                continue
            kind = first >> 4
            if kind == 3:
                self._on_publish(first, body)
            elif kind == 9:
                codes = body[2:]
                if v5:
                    props_len, pos = _read_varint(body, 2)
                    codes = body[pos + props_len:]
                if any(code >= 0x80 for code in codes):
                    raise MqttProtocolError(f"SUBSCRIBE refused: {codes.hex()} (not authorized for a topic?)")
                self.connected.set()  # subscribed: nothing published to our topics is missed from now on
            elif kind == 14:
                raise MqttProtocolError(f"the MQTT broker disconnected us (reason {body[:1].hex() or '00'})")
            # PUBACK (4) for our commands, PINGRESP (13): nothing to do

    def _on_publish(self, first: int, body: bytes) -> None:
        qos = (first >> 1) & 3
        topic_len = (body[0] << 8) | body[1]
        pos = 2 + topic_len
        raw_topic = body[2:pos]
        packet_id = 0
        if qos:
            packet_id = (body[pos] << 8) | body[pos + 1]
            pos += 2
        if self.version == MQTT5:
            if body[pos] < 0x80:  # the usual one-byte property length
                pos += 1 + body[pos]
            else:
                props_len, pos = _read_varint(body, pos)
                pos += props_len
        target = self._by_topic.get(raw_topic)
        if target is None and raw_topic not in self._by_topic:
            target = self._match(raw_topic.decode("utf-8", "replace"))
            if len(self._by_topic) >= TOPIC_CACHE:
                self._by_topic.clear()
            self._by_topic[raw_topic] = target
        if target is not None:
            family, route, params = target
            self.submit(Inbound(family, Message(route, body[pos:], params), ack=partial(self._ack, packet_id, qos)))
            return
        log.warning("MQTT message on %s matches no route; acknowledged", raw_topic.decode("utf-8", "replace"))
        self._ack(packet_id, qos)
        self.flush_acks()

    def _match(self, topic: str) -> tuple[Family, Route, Mapping[str, str]] | None:
        """The first route matching ``topic``, with its parameters (shared by every message on the topic:
        read-only, as ``Message.params`` always is)."""
        for family, route in self.routes:
            params = route.match(topic)
            if params is not None:
                return family, route, params
        return None

    def _ack(self, packet_id: int, qos: int) -> None:
        """Queue the PUBACK; :meth:`flush_acks` (after each pipeline commit) sends them in one write."""
        if qos == 1:
            with self._ack_lock:
                self._acks += b"\x40\x02" + struct.pack("!H", packet_id)
        elif qos == 2:
            with self._ack_lock:
                self._acks += b"\x50\x02" + struct.pack("!H", packet_id)  # PUBREC; PUBREL/PUBCOMP not needed

    def flush_acks(self) -> None:
        with self._ack_lock:
            data, self._acks = bytes(self._acks), bytearray()
        if data:
            try:
                self._send(data)
            except OSError as exc:  # the MQTT broker redelivers what we could not acknowledge
                log.warning("MQTT acks not sent (%s); the messages will be redelivered", exc)

    def _packet_id(self) -> int:
        with self._send_lock:
            self._next_id = self._next_id % 65535 + 1
            return self._next_id

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise OSError("not connected")
        with self._send_lock:
            sock.sendall(data)
            self._last_send = time.monotonic()

    def publish(self, topic: str, payload: bytes) -> None:
        """QoS 1 publication (commands); raises OSError when the MQTT broker is not connected."""
        properties = b"\x00" if self.version == MQTT5 else b""
        body = encode_string(topic) + struct.pack("!H", self._packet_id()) + properties + payload
        self._send(_packet(0x32, body))


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise MqttProtocolError("malformed variable byte integer")


class _Reader:
    """Whole MQTT packets out of a socket, with a read buffer (one recv serves many small packets)."""

    def __init__(self, sock: MqttSocket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self, stop: threading.Event) -> None:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise OSError("connection closed by the MQTT broker")
        self.buffer += chunk

    def packet(self, stop: threading.Event) -> tuple[int, bytes]:
        while True:
            buf = self.buffer
            if len(buf) >= 2:
                length, shift, pos = 0, 0, 1
                complete_header = False
                while pos < len(buf) and pos <= 4:
                    byte = buf[pos]
                    length |= (byte & 0x7F) << shift
                    pos += 1
                    if not byte & 0x80:
                        complete_header = True
                        break
                    shift += 7
                if complete_header and len(buf) >= pos + length:
                    first = buf[0]
                    body = bytes(buf[pos:pos + length])
                    del buf[:pos + length]
                    return first, body
            try:
                self._fill(stop)
            except TimeoutError:
                if stop.is_set():
                    raise OSError("stopping") from None
                raise
