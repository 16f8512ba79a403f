"""MQTT south transport (paho-mqtt 2.x): QoS 1 subscriptions, manual acks after the outbox commit.

A persistent MQTT 5 session (``clean_start=False`` with a long session expiry, a client id stable across
restarts of the same data dir)
makes the MQTT broker keep QoS 1 messages for the agent while it is down or restarting; a message is
acknowledged (PUBACK) only once the pipeline has persisted it, so a crash before that means redelivery.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from flexmeter.iot_agents.core.family import Family, Message, Route
from flexmeter.iot_agents.core.pipeline import Inbound

log = logging.getLogger(__name__)

SESSION_EXPIRY = 7 * 24 * 3600
"""Seconds the MQTT broker keeps the agent's session (subscriptions, queued QoS 1 messages) while it is away."""
RECEIVE_MAXIMUM = 2000
"""Unacknowledged QoS 1 messages the MQTT broker may have in flight to the agent."""


def host_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 1883


class MqttTransport:
    def __init__(self, url: str, client_id: str, routes: list[tuple[Family, Route]],
                 submit: Callable[[Inbound], None]) -> None:
        self.url = url
        self.routes = [(f, r) for f, r in routes if r.transport == "mqtt"]
        self.submit = submit
        self.connected = threading.Event()
        # MQTT 5: the session outlives the connection (expiry below) and our Receive Maximum, not the MQTT
        # broker's small default in-flight window (20 in Mosquitto), bounds the unacknowledged messages.
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                                  manual_ack=True)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._pub_lock = threading.Lock()

    def start(self) -> None:
        host, port = host_port(self.url)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        self.client.connect_async(host, port, keepalive=30, clean_start=False, properties=properties)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def filters(self) -> list[str]:
        seen: list[str] = []
        for _, route in self.routes:
            if route.mqtt_filter() not in seen:
                seen.append(route.mqtt_filter())
        return seen

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                    properties: object = None) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT connection refused: %s", reason)
            return
        filters = self.filters()
        if filters:
            client.subscribe([(f, SubscribeOptions(qos=1)) for f in filters])
        else:
            self.connected.set()
        log.info("MQTT connected to %s; subscribing to %s", self.url, ", ".join(filters))

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reasons: object,
                      properties: object = None) -> None:
        self.connected.set()  # subscribed: from now on nothing published to our topics is missed

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                       properties: object = None) -> None:
        self.connected.clear()
        log.warning("MQTT disconnected (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        for family, route in self.routes:
            params = route.match(topic)
            if params is None:
                continue
            mid, qos = msg.mid, msg.qos

            def ack(mid: int = mid, qos: int = qos) -> None:
                if qos > 0:
                    client.ack(mid, qos)

            self.submit(Inbound(family, Message(route, bytes(msg.payload), params), ack=ack))
            return
        # Not ours (overlapping wildcard): acknowledge so the MQTT broker does not redeliver it forever.
        if msg.qos > 0:
            client.ack(msg.mid, msg.qos)

    def publish(self, topic: str, payload: bytes) -> None:
        with self._pub_lock:
            info = self.client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("MQTT publish to %s queued with rc=%s", topic, info.rc)
