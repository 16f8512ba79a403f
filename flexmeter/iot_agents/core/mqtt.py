"""MQTT south transport: an MQTT 5 subscriber of its own, QoS 1, PUBACK only after the inbox commit.

paho-mqtt spends ~0.3 ms of Python per received message on this hardware, which caps an agent near
2-3k messages/s; beyond that Mosquitto queues and, past ``max_queued_messages``, drops QoS 1 messages.
This client does only what the agent needs (CONNECT with a persistent session, SUBSCRIBE, PUBLISH in,
PUBACK out, PINGREQ, PUBLISH out for commands), so a message costs a few microseconds before it is in the
pipeline's queue.

A persistent MQTT 5 session (``clean_start=0``, session expiry 7 days, a client id stable across restarts of
the same data dir) makes the MQTT broker keep QoS 1 messages for the agent while it is away; a message is
acknowledged only once the pipeline has persisted it, so a crash before that means redelivery. The Receive
Maximum (2000) is the number of unacknowledged messages the MQTT broker may have in flight to us.

A broker that speaks only MQTT 3.1.1 (the embedded amqtt broker, older Mosquitto, many cloud brokers)
refuses the MQTT 5 CONNECT; the client then falls back to 3.1.1 with a persistent session (clean session 0)
and keeps that version for the life of the transport.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from urllib.parse import urlparse

from flexmeter.iot_agents.core.family import Family, Message, Route
from flexmeter.iot_agents.core.pipeline import Inbound

log = logging.getLogger(__name__)

SESSION_EXPIRY = 7 * 24 * 3600
"""Seconds the MQTT broker keeps the agent's session (subscriptions, queued QoS 1 messages) while it is away."""
RECEIVE_MAXIMUM = 2000
"""Unacknowledged QoS 1 messages the MQTT broker may have in flight to the agent."""
KEEPALIVE = 30
MQTT5, MQTT311 = 5, 4
_VERSION_REFUSED = {0x01, 0x84}  # 3.1.1 "unacceptable protocol version", MQTT 5 "unsupported protocol version"


def host_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 1883


def encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_varint(len(body)) + body


class MqttProtocolError(Exception):
    """The MQTT broker sent something this client does not accept (refused CONNECT, bad packet)."""


class _VersionRefused(MqttProtocolError):
    """The MQTT broker refused MQTT 5: retry with 3.1.1."""


class MqttTransport:
    def __init__(self, url: str, client_id: str, routes: list[tuple[Family, Route]],
                 submit: Callable[[Inbound], None]) -> None:
        self.url = url
        self.client_id = client_id
        self.routes = [(f, r) for f, r in routes if r.transport == "mqtt"]
        self.submit = submit
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._next_id = 0
        self._last_send = 0.0
        self._acks = bytearray()
        self._ack_lock = threading.Lock()
        self.version = MQTT5
        self._thread = threading.Thread(target=self._run, name="iota-mqtt", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            try:
                self._send(bytes([0xE0, 0]))  # DISCONNECT, reason 0: the session (and its queue) stays
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
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
            except (OSError, MqttProtocolError) as exc:
                if self._stop.is_set():
                    break
                log.warning("MQTT %s: %s; reconnecting in %.1f s", self.url, exc, delay)
            finally:
                self.connected.clear()
                if self._sock is not None:
                    with contextlib.suppress(OSError):
                        self._sock.close()
                    self._sock = None
            self._stop.wait(delay)
            delay = min(max(delay * 2, 0.2), 5.0)

    # -- the session ----------------------------------------------------------------------------------------
    def _session(self) -> None:
        host, port = host_port(self.url)
        sock = socket.create_connection((host, port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        v5 = self.version == MQTT5
        variable = encode_string("MQTT") + bytes([self.version, 0x00]) + struct.pack("!H", KEEPALIVE)
        if v5:
            props = (bytes([0x11]) + struct.pack("!I", SESSION_EXPIRY)
                     + bytes([0x21]) + struct.pack("!H", RECEIVE_MAXIMUM))
            variable += encode_varint(len(props)) + props
        self._send(_packet(0x10, variable + encode_string(self.client_id)))
        reader = _Reader(sock)
        try:
            first, body = reader.packet(self._stop)
        except OSError as exc:
            if v5 and not self._stop.is_set():  # some 3.1.1-only brokers just close the connection
                raise _VersionRefused() from exc
            raise
        sock.settimeout(1.0)
        if first >> 4 != 2 or len(body) < 2 or body[1] != 0:
            if v5 and len(body) > 1 and body[1] in _VERSION_REFUSED:
                raise _VersionRefused()
            raise MqttProtocolError(f"CONNECT refused (reason {body[1] if len(body) > 1 else '?'})")
        filters = self.filters()
        if filters:
            payload = b"".join(encode_string(f) + bytes([0x01]) for f in filters)  # QoS 1, no options
            properties = b"\x00" if v5 else b""
            self._send(_packet(0x82, struct.pack("!H", self._packet_id()) + properties + payload))
        else:
            self.connected.set()
        log.info("MQTT connected to %s (session %s); subscribing to %s", self.url,
                 "resumed" if body[0] & 1 else "new", ", ".join(filters))
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
                    raise MqttProtocolError(f"SUBSCRIBE refused: {codes.hex()}")
                self.connected.set()  # subscribed: nothing published to our topics is missed from now on
            elif kind == 14:
                raise MqttProtocolError(f"the MQTT broker disconnected us (reason {body[:1].hex() or '00'})")
            # PUBACK (4) for our commands, PINGRESP (13): nothing to do

    def _on_publish(self, first: int, body: bytes) -> None:
        qos = (first >> 1) & 3
        topic_len = struct.unpack_from("!H", body)[0]
        topic = body[2:2 + topic_len].decode("utf-8", "replace")
        pos = 2 + topic_len
        packet_id = 0
        if qos:
            packet_id = struct.unpack_from("!H", body, pos)[0]
            pos += 2
        if self.version == MQTT5:
            props_len, pos = _read_varint(body, pos)
            pos += props_len
        payload = body[pos:]
        for family, route in self.routes:
            params = route.match(topic)
            if params is None:
                continue
            def ack(pid: int = packet_id, q: int = qos) -> None:
                self._ack(pid, q)

            self.submit(Inbound(family, Message(route, payload, params), ack=ack))
            return
        log.warning("MQTT message on %s matches no route; acknowledged", topic)
        self._ack(packet_id, qos)
        self.flush_acks()

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

    def __init__(self, sock: socket.socket) -> None:
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
