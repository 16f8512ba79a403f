"""A paho subscriber that records what the gateway publishes (topic, payload), for the gateway's tests."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class Subscriber:
    """Subscribed (QoS 1) before it returns; ``user``/``password`` for a broker with a password file."""

    def __init__(self, host: str, port: int, topic: str, user: str | None = None,
                 password: str | None = None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        self.got = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}")
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_connect = lambda c, u, f, r, p=None: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.ready.wait(5)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.got:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self.got.notify_all()

    def wait(self, count: int, timeout: float = 10) -> list[tuple[str, bytes]]:
        with self.got:
            assert self.got.wait_for(lambda: len(self.messages) >= count, timeout), self.messages
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
