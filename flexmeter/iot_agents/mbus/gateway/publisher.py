"""MQTT uplink (paho-mqtt 2.x, QoS 1) draining the store-and-forward buffer oldest first.

The client reconnects on its own (``loop_start`` + ``connect_async``); :meth:`MqttUplink.flush` publishes only
while connected and deletes a buffered uplink once its PUBACK arrived, so a broker outage just leaves the
uplinks in the buffer. A PUBACK lost after the broker took the message means a duplicate, which the agent
drops (same meter, access number and time).
"""

from __future__ import annotations

import logging
import threading
import uuid
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .buffer import UplinkBuffer

log = logging.getLogger(__name__)


class MqttUplink:
    def __init__(self, url: str, buffer: UplinkBuffer, client_id: str | None = None,
                 publish_timeout: float = 10.0) -> None:
        parsed = urlparse(url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 1883
        self.buffer = buffer
        self.publish_timeout = publish_timeout
        self.connected = threading.Event()
        self.published = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"flexmeter-gw-{uuid.uuid4().hex[:10]}")
        if parsed.username:
            self.client.username_pw_set(parsed.username, parsed.password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self._started = False
        self._flush_lock = threading.Lock()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                    properties: object = None) -> None:
        if not getattr(reason, "is_failure", False):
            self.connected.set()
            log.info("uplink connected to mqtt://%s:%s", self.host, self.port)

    def _on_disconnect(self, *args: object) -> None:
        self.connected.clear()

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.client.connect_async(self.host, self.port, keepalive=30)
            self.client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def flush(self) -> int:
        """Publish buffered uplinks oldest first while connected; returns how many the broker acknowledged."""
        sent = 0
        with self._flush_lock:
            while self.connected.is_set():
                rows = self.buffer.oldest(100)
                if not rows:
                    break
                for row_id, topic, payload in rows:
                    if not self.connected.is_set():
                        return sent
                    info = self.client.publish(topic, payload, qos=1)
                    try:
                        info.wait_for_publish(timeout=self.publish_timeout)
                    except (RuntimeError, ValueError) as exc:
                        log.info("uplink publish failed (%s); keeping %d buffered", exc, self.buffer.depth())
                        return sent
                    if not info.is_published():
                        return sent
                    self.buffer.delete(row_id)
                    sent += 1
                    self.published += 1
        return sent

    def stop(self) -> None:
        if self._started:
            self.client.disconnect()
            self.client.loop_stop()
            self._started = False
