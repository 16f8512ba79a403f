"""A short run through the real Mosquitto, RabbitMQ and an HTTP receiver: everything sent is received."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
import pika
import pytest

from flexmeter.serving import BackgroundServer
from flexmeter.simulator.emitters import AmqpEmitter, HttpEmitter, MqttEmitter
from flexmeter.simulator.generate import generated_fleet
from flexmeter.simulator.model import Simulation
from flexmeter.simulator.runner import Runner

from .conftest import START

# These tests publish uplinks on the shared Mosquitto/RabbitMQ, where every agent under test subscribes
# to all apikeys (and one restarts RabbitMQ): one xdist worker runs them in turn, so counts stay exact.
pytestmark = pytest.mark.xdist_group("shared-brokers")


class Receiver:
    """An HTTP endpoint counting the ENNOVA batches it gets."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.bodies.append(json.loads(environ["wsgi.input"].read(length)))
        self.headers.append(environ.get("HTTP_FIWARE_SERVICE", ""))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]


def test_a_run_reaches_mosquitto_rabbitmq_and_http(mqtt_url: str, amqp_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    fleet = generated_fleet(["turin", "malmo"], 0.01, 11)
    for meter in fleet.meters:  # unique topics: tests run in parallel on one broker
        meter.apikey = f"{meter.apikey}-{tag}"
    apikeys = {m.apikey for m in fleet.meters}
    queue = f"sim-midori-{tag}"

    received: Counter[str] = Counter()
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-test-{tag}")
    client.on_message = lambda _c, _u, msg: received.update([msg.topic.split("/")[0]])
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    client.subscribe([(f"{family}/{key}/#", 1) for key in apikeys for family in ("mbus", "dlms", "connode")])
    assert subscribed.wait(5)

    receiver = Receiver()
    server = BackgroundServer(receiver).start()
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    try:
        sim = Simulation(fleet, 11, START, 120, midori_queue=queue)
        emitters = {"mqtt": MqttEmitter(mqtt_url, client_id=f"sim-{tag}"), "amqp": AmqpEmitter(amqp_url, (queue,)),
                    "http": HttpEmitter(server.url)}
        summary = Runner(sim, emitters, speed=0, duration=120, progress_every=0).run()
        assert summary["readings_failed"] == 0
        assert summary["readings_delivered"] == summary["readings_sent"] == sum(sim.truth.sent.values())
        messages = emitters["mqtt"].counts.messages
        deadline = time.monotonic() + 10
        while sum(received.values()) < messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(received.values()) == messages
        assert received["dlms"] == sim.truth.messages["dlms"]
        assert received["connode"] == sim.truth.messages["connode"]
        assert received["mbus"] == sim.truth.messages["mbus"] + sim.truth.messages["wmbus"]
        depth = channel.queue_declare(queue, durable=True, passive=True).method.message_count
        assert depth == sim.truth.messages["midori"] == 120
        assert len(receiver.bodies) == sim.truth.messages["ennova"]
        assert set(receiver.headers) == {"iren"}
    finally:
        channel.queue_delete(queue)
        connection.close()
        server.stop()
        client.loop_stop()
        client.disconnect()
