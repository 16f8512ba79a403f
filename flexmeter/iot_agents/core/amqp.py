"""AMQP south transport (pika): a durable queue, manual acks sent after the outbox commit.

Routes with a ``queue`` are consumed from that queue (Midori's); the others are bound to the topic exchange
(``amq.topic``, where RabbitMQ's MQTT plugin also publishes) with the route pattern, ``/`` becoming ``.``.
Reconnects with back-off when RabbitMQ goes away; unacked deliveries are redelivered by RabbitMQ.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import pika
import pika.exceptions

from flexmeter.iot_agents.core.family import Family, Message, Route
from flexmeter.iot_agents.core.pipeline import Inbound

log = logging.getLogger(__name__)

EXCHANGE = "amq.topic"


class AmqpTransport:
    def __init__(self, url: str, queue: str, routes: list[tuple[Family, Route]],
                 submit: Callable[[Inbound], None], prefetch: int = 500) -> None:
        self.url = url
        self.queue = queue
        self.routes = [(f, r) for f, r in routes if r.transport == "amqp"]
        self.submit = submit
        self.prefetch = prefetch
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._connection: pika.BlockingConnection | None = None
        self._thread = threading.Thread(target=self._run, name="iota-amqp", daemon=True)

    def start(self) -> None:
        if self.routes:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        connection = self._connection
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):  # already closing
                connection.add_callback_threadsafe(connection.close)
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self._consume()
                delay = 0.5
            except (pika.exceptions.AMQPError, OSError) as exc:
                self.connected.clear()
                if self._stop.is_set():
                    return
                log.warning("AMQP %s: %s; reconnecting in %.1f s", self.url, exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10)
            except Exception:
                log.exception("AMQP consumer error")
                self._stop.wait(delay)

    def _consume(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        self._connection = connection
        channel = connection.channel()
        channel.basic_qos(prefetch_count=self.prefetch)
        own_queue_routes = [(f, r) for f, r in self.routes if r.queue is None]
        queues: set[str] = set()
        if own_queue_routes:
            channel.queue_declare(self.queue, durable=True)
            for _, route in own_queue_routes:
                channel.queue_bind(self.queue, EXCHANGE, routing_key=route.amqp_binding())
            queues.add(self.queue)
        for _, route in self.routes:
            if route.queue:
                channel.queue_declare(route.queue, durable=True)
                queues.add(route.queue)
        for queue in queues:
            channel.basic_consume(queue, self._on_message(channel, connection, queue), auto_ack=False)
        self.connected.set()
        log.info("AMQP consuming %s", ", ".join(sorted(queues)))
        while not self._stop.is_set():
            connection.process_data_events(time_limit=0.5)
        if connection.is_open:
            connection.close()

    def _on_message(self, channel: object, connection: pika.BlockingConnection,
                    queue: str) -> Callable[..., None]:
        def handle(ch: object, method: object, properties: object, body: bytes) -> None:
            tag = getattr(method, "delivery_tag", 0)
            routing_key = str(getattr(method, "routing_key", ""))
            topic = routing_key.replace(".", "/")

            def ack(tag: int = tag) -> None:
                def do_ack() -> None:
                    if channel.is_open:  # type: ignore[attr-defined]
                        channel.basic_ack(tag)  # type: ignore[attr-defined]
                connection.add_callback_threadsafe(do_ack)

            for family, route in self.routes:
                if route.queue is not None:
                    if route.queue != queue:
                        continue
                    params = route.match(topic) or {}
                elif queue != self.queue:
                    continue
                else:
                    params_or_none = route.match(topic)
                    if params_or_none is None:
                        continue
                    params = params_or_none
                content_type = getattr(properties, "content_type", None)
                self.submit(Inbound(family, Message(route, body, params, content_type), ack=ack))
                return
            log.warning("AMQP message on %s (%s) matches no route; acknowledged and dropped", queue, routing_key)
            ack()
            time.sleep(0)

        return handle
