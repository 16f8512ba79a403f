"""A minimal MQTT 3.1.1 QoS 1 publisher over a raw socket, for load generation in benchmarks.

paho's per-message Python overhead would measure the publisher, not the agent; this one encodes PUBLISH
packets itself, writes them in bulk and counts PUBACKs on a reader thread (at most ``window`` unacked).
"""

from __future__ import annotations

import socket
import struct
import threading
import time

from flexmeter.iot_agents.core.mqtt import encode_string, encode_varint


class RawPublisher:
    def __init__(self, host: str, port: int, client_id: str, window: int = 2000) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = encode_string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60) + encode_string(client_id)
        self.sock.sendall(bytes([0x10]) + encode_varint(len(body)) + body)
        connack = self._read_exact(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"MQTT CONNACK refused: {connack.hex()}")
        self.window = threading.Semaphore(window)
        self.acked = 0
        self._next_id = 0
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._read_acks, daemon=True)
        self._reader.start()

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
        except OSError:
            return

    def publish_many(self, messages: list[tuple[str, bytes]]) -> None:
        out = bytearray()
        for topic, payload in messages:
            if not self.window.acquire(blocking=False):
                self.sock.sendall(out)
                out.clear()
                self.window.acquire()
            self._next_id = self._next_id % 65535 + 1
            body = encode_string(topic) + struct.pack("!H", self._next_id) + payload
            out += bytes([0x32]) + encode_varint(len(body)) + body
        self.sock.sendall(out)

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
