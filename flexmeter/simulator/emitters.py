"""Emitters: send the model's :class:`~flexmeter.simulator.model.Emission` s through the real transports.

- MQTT (paho 2.x, QoS 1): a message counts as delivered when the broker's PUBACK arrives; ``close`` waits
  for every outstanding one.
- AMQP (pika, publisher confirms, persistent messages): the Midori queue is declared durable (the agent
  declares it the same way), so a message published before the agent starts waits in RabbitMQ.
- HTTP (requests, one Session): delivered on a 2xx answer; anything else is counted as failed with the
  status.

Every emitter counts messages and readings sent, delivered and failed per family; nothing is retried
silently (a failure is counted and logged, the run goes on).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from flexmeter.simulator.errors import EmitError
from flexmeter.simulator.model import Emission

log = logging.getLogger(__name__)


@dataclass
class Counts:
    sent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    delivered: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    messages: int = 0
    readings_delivered: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"messages": self.messages, "readings_sent": dict(self.sent),
                "readings_delivered": dict(self.delivered), "readings_failed": dict(self.failed)}


class Emitter:
    """Base: ``send`` one emission, ``close`` when done (flushing what is outstanding)."""

    transport = ""

    def __init__(self) -> None:
        self.counts = Counts()
        self._lock = threading.Lock()

    def send(self, emission: Emission) -> None:
        raise NotImplementedError

    def close(self, timeout: float = 30.0) -> None:
        """Flush and disconnect."""

    def _sent(self, emission: Emission) -> None:
        with self._lock:
            self.counts.messages += 1
            self.counts.sent[emission.family] += emission.readings

    def _done(self, family: str, readings: int, ok: bool) -> None:
        with self._lock:
            if ok:
                self.counts.delivered[family] += readings
                self.counts.readings_delivered += readings
            else:
                self.counts.failed[family] += readings


class MemoryEmitter(Emitter):
    """Keeps everything (tests, ``--dry-run``)."""

    def __init__(self, transport: str = "memory", keep: bool = True) -> None:
        super().__init__()
        self.transport = transport
        self.keep = keep
        self.emissions: list[Emission] = []

    def send(self, emission: Emission) -> None:
        self._sent(emission)
        if self.keep:
            self.emissions.append(emission)
        self._done(emission.family, emission.readings, True)


def _host_port(url: str, default_port: int) -> tuple[str, int, str | None, str | None]:
    parsed = urlparse(url)
    return (parsed.hostname or "127.0.0.1", parsed.port or default_port,
            unquote(parsed.username) if parsed.username else None,
            unquote(parsed.password) if parsed.password else None)


class MqttEmitter(Emitter):
    transport = "mqtt"

    def __init__(self, url: str, client_id: str = "", max_inflight: int = 1000) -> None:
        import paho.mqtt.client as mqtt

        super().__init__()
        host, port, user, password = _host_port(url, 1883)
        self._pending: dict[int, tuple[str, int]] = {}
        self._early: set[int] = set()
        self._connected = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=mqtt.MQTTv311, clean_session=True)
        if user:
            self._client.username_pw_set(user, password)
        self._client.max_inflight_messages_set(max_inflight)
        self._client.max_queued_messages_set(0)
        self._client.on_publish = self._on_publish
        self._client.on_connect = lambda *_args: self._connected.set()
        try:
            self._client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise EmitError(f"MQTT broker {host}:{port} does not answer: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(10):
            self._client.loop_stop()
            raise EmitError(f"MQTT broker {host}:{port}: no CONNACK within 10 s")

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, *_rest: Any) -> None:
        with self._lock:
            item = self._pending.pop(mid, None)
            if item is None:  # the PUBACK beat publish() returning the mid: send() settles it
                self._early.add(mid)
        if item is not None:
            self._done(item[0], item[1], True)

    def send(self, emission: Emission) -> None:
        self._sent(emission)
        # never hold our lock across publish(): paho calls on_publish under its own message lock
        info = self._client.publish(emission.channel, emission.payload, qos=1)
        if info.rc != 0:
            log.warning("MQTT publish to %s refused (rc %s)", emission.channel, info.rc)
            self._done(emission.family, emission.readings, False)
            return
        with self._lock:
            early = info.mid in self._early
            if early:
                self._early.discard(info.mid)
            else:
                self._pending[info.mid] = (emission.family, emission.readings)
        if early:
            self._done(emission.family, emission.readings, True)

    def outstanding(self) -> int:
        with self._lock:
            return len(self._pending)

    def close(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.outstanding() and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._lock:
            for family, readings in self._pending.values():
                self.counts.failed[family] += readings
            self._pending.clear()
        self._client.disconnect()
        self._client.loop_stop()


class AmqpEmitter(Emitter):
    transport = "amqp"

    def __init__(self, url: str, queues: Iterable[str] = ("midori",)) -> None:
        import pika
        import pika.exceptions

        super().__init__()
        self._pika = pika
        try:
            self._connection = pika.BlockingConnection(pika.URLParameters(url))
        except pika.exceptions.AMQPError as exc:
            raise EmitError(f"AMQP broker {urlparse(url).hostname}:{urlparse(url).port or 5672} does not "
                            f"answer: {exc!r}") from exc
        self._channel = self._connection.channel()
        self._channel.confirm_delivery()
        self._declared: set[str] = set()
        for queue in queues:
            self._declare(queue)
        self._props = pika.BasicProperties(content_type="application/json", delivery_mode=2)

    def _declare(self, queue: str) -> None:
        if queue not in self._declared:
            self._channel.queue_declare(queue, durable=True)
            self._declared.add(queue)

    def send(self, emission: Emission) -> None:
        self._sent(emission)
        self._declare(emission.channel)
        try:
            self._channel.basic_publish("", emission.channel, emission.payload, self._props, mandatory=True)
        except self._pika.exceptions.AMQPError as exc:  # NackError, UnroutableError, connection lost
            log.warning("AMQP publish to %s failed: %r", emission.channel, exc)
            self._done(emission.family, emission.readings, False)
            return
        self._done(emission.family, emission.readings, True)

    def close(self, timeout: float = 30.0) -> None:
        with contextlib.suppress(self._pika.exceptions.AMQPError):
            self._connection.close()


class HttpEmitter(Emitter):
    transport = "http"

    def __init__(self, base_url: str, verify: bool | str = True, timeout: float = 10.0) -> None:
        import requests

        super().__init__()
        self._session = requests.Session()
        self._session.verify = verify
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._requests = requests

    def send(self, emission: Emission) -> None:
        self._sent(emission)
        headers = {"Content-Type": emission.content_type}
        if emission.service:
            headers["Fiware-Service"] = emission.service
            headers["Fiware-ServicePath"] = emission.service_path or "/"
        try:
            response = self._session.post(self._base + emission.channel, data=emission.payload, headers=headers,
                                          timeout=self._timeout)
        except self._requests.RequestException as exc:
            log.warning("HTTP POST %s failed: %s", emission.channel, exc)
            self._done(emission.family, emission.readings, False)
            return
        ok = 200 <= response.status_code < 300
        if not ok:
            log.warning("HTTP POST %s answered %s: %s", emission.channel, response.status_code, response.text[:200])
        self._done(emission.family, emission.readings, ok)

    def close(self, timeout: float = 30.0) -> None:
        self._session.close()
