"""MQTT uplink (paho-mqtt 2.x, QoS 1) draining the store-and-forward buffer oldest first.

The client reconnects on its own (``loop_start`` + ``connect_async``); :meth:`MqttUplink.flush` publishes only
while connected and deletes a buffered uplink once its PUBACK arrived, so a broker outage just leaves the
uplinks in the buffer. A PUBACK lost after the broker took the message means a duplicate, which the agent
drops (same meter, access number and time).

Where and how to connect is the agent's :class:`~flexmeter.iot_agents.core.mqttlink.MqttEndpoint`:
``mqtt://user:password@host`` or ``mqtts://`` (TLS, the broker's certificate and name verified), with the
``FLEXMETER_MQTT_USERNAME``/``_PASSWORD``/``_CA_FILE``/``_CERT_FILE``/``_KEY_FILE`` settings when the URL does
not say. A refused CONNECT (bad password) is logged with its reason and kept in ``last_error``; paho keeps
retrying, so fixing the broker side needs no restart. The password never appears in a log line.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from flexmeter.iot_agents.core.mqttlink import MqttEndpoint

from .buffer import UplinkBuffer

if TYPE_CHECKING:
    from flexmeter.config import Settings

log = logging.getLogger(__name__)


class MqttUplink:
    def __init__(self, url: str | MqttEndpoint, buffer: UplinkBuffer, client_id: str | None = None,
                 publish_timeout: float = 10.0, settings: Settings | None = None) -> None:
        """``url``: an MQTT URL, completed by ``settings`` (default: :func:`flexmeter.config.get_settings`),
        or a ready :class:`MqttEndpoint`. Raises ``MqttConfigError`` for an unknown scheme or a TLS file
        that is missing or not usable."""
        if isinstance(url, MqttEndpoint):
            endpoint = url
        else:
            if settings is None:
                from flexmeter.config import get_settings

                settings = get_settings()
            endpoint = MqttEndpoint.from_settings(url, settings)
        self.endpoint = endpoint
        self.host = endpoint.host
        self.port = endpoint.port
        self.buffer = buffer
        self.publish_timeout = publish_timeout
        self.connected = threading.Event()
        self.last_error: str | None = None
        """Why the last connection attempt failed (refused CONNECT, TLS), None once connected."""
        self.published = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"flexmeter-gw-{uuid.uuid4().hex[:10]}")
        if endpoint.username is not None or endpoint.password is not None:
            self.client.username_pw_set(endpoint.username or "", endpoint.password)
        if endpoint.tls:  # CERT_REQUIRED, the broker's name checked against the URL's host
            self.client.tls_set_context(endpoint.ssl_context())
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self._started = False
        self._flush_lock = threading.Lock()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                    properties: object = None) -> None:
        if getattr(reason, "is_failure", False):
            error = f"CONNECT to {self.endpoint.display} refused: {reason}"
            if error != self.last_error:
                log.error("uplink: %s; retrying", error)
            self.last_error = error
            return
        self.last_error = None
        self.connected.set()
        log.info("uplink connected to %s", self.endpoint.display)

    def _on_disconnect(self, *args: object) -> None:
        self.connected.clear()

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        """TCP or TLS failed before CONNECT (paho retries); the TLS reason is logged by paho's own logger."""
        if self.last_error is None:
            self.last_error = f"cannot connect to {self.endpoint.display}"

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.client.on_connect_fail = self._on_connect_fail
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
