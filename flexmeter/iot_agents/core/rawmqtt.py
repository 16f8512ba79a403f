"""A minimal MQTT 3.1.1 QoS 1 publisher over a raw socket, for load generation in benchmarks.

paho's per-message Python overhead would measure the publisher, not the agent; this one encodes PUBLISH
packets itself, writes them in bulk and counts PUBACKs on a reader thread (at most ``window`` unacked).
It connects like the agent (``mqttlink``): user name/password and TLS from an :class:`MqttEndpoint`.
"""

from __future__ import annotations

import struct
import threading
import time

from flexmeter.iot_agents.core.mqttlink import (
    MQTT311,
    MqttEndpoint,
    MqttProtocolError,
    MqttSocket,
    check_connack,
    connect_packet,
    encode_string,
    encode_varint,
)


class RawPublisher:
    def __init__(self, host: str, port: int, client_id: str, window: int = 2000, *,
                 endpoint: MqttEndpoint | None = None) -> None:
        self.endpoint = endpoint or MqttEndpoint(host, port)
        self.sock: MqttSocket = self.endpoint.connect(timeout=30)
        self.sock.sendall(connect_packet(client_id, version=MQTT311, keepalive=60, clean=True,
                                         endpoint=self.endpoint))
        header = self._read_exact(2)
        body = self._read_exact(header[1])
        try:
            check_connack(header[0], body, MQTT311, self.endpoint.display)
        except MqttProtocolError:
            self.sock.close()
            raise
        self.sock.set_timeout(None)  # the reader waits for acks as long as it takes; close() ends it
        self.window = threading.Semaphore(window)
        self.acked = 0
        self._next_id = 0
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._read_acks, daemon=True)
        self._reader.start()

    @classmethod
    def from_url(cls, url: str | MqttEndpoint, client_id: str, window: int = 2000) -> RawPublisher:
        endpoint = url if isinstance(url, MqttEndpoint) else MqttEndpoint.parse(url)
        return cls(endpoint.host, endpoint.port, client_id, window, endpoint=endpoint)

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("MQTT connection closed")
            data += chunk
        return data

    def _read_acks(self) -> None:
        buffer = b""
        try:
            while not self._done.is_set():
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                while len(buffer) >= 2:
                    length = buffer[1]  # PUBACK/PINGRESP: remaining length < 128
                    if len(buffer) < 2 + length:
                        break
                    if buffer[0] == 0x40:
                        self.acked += 1
                        self.window.release()
                    buffer = buffer[2 + length:]
        except (OSError, ValueError):  # closed under us (ValueError: select on a closed TLS socket)
            return

    def publish_many(self, messages: list[tuple[str, bytes]]) -> None:
        out = bytearray()
        for topic, payload in messages:
            if not self.window.acquire(blocking=False):
                self.sock.sendall(bytes(out))
                out.clear()
                self.window.acquire()
            self._next_id = self._next_id % 65535 + 1
            body = encode_string(topic) + struct.pack("!H", self._next_id) + payload
            out += bytes([0x32]) + encode_varint(len(body)) + body
        self.sock.sendall(bytes(out))

    def wait_acked(self, count: int, timeout: float = 60.0) -> bool:
        deadline = time.time() + timeout
        while self.acked < count and time.time() < deadline:
            time.sleep(0.01)
        return self.acked >= count

    def close(self) -> None:
        self._done.set()
        try:
            self.sock.sendall(bytes([0xE0, 0]))
        finally:
            self.sock.close()
