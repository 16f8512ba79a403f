"""`flexmeter agent midori` end to end through the machine's RabbitMQ: readings published land in the broker,
and a RabbitMQ restart mid-stream loses nothing (acks only after the outbox, persistent messages)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

import pika
import pika.exceptions
import pytest
import requests

from tests.iot_agents.core.conftest import count_entities, get_entity, provision, wait_for
from tests.iot_agents.midori.conftest import MidoriSetup
from tests.support.processes import FlexmeterProcess

PERSISTENT = pika.BasicProperties(delivery_mode=2, content_type="application/json")


class ConfirmingPublisher:
    """Publishes persistent messages with publisher confirms; reconnects and republishes until confirmed."""

    def __init__(self, amqp_url: str, queue: str) -> None:
        self.amqp_url = amqp_url
        self.queue = queue
        self.connection: pika.BlockingConnection | None = None
        self.channel: object = None
        self.retries = 0

    def _connect(self) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        channel = self.connection.channel()
        channel.confirm_delivery()
        self.channel = channel

    def publish(self, body: bytes, deadline: float) -> None:
        while True:
            try:
                if self.connection is None or not self.connection.is_open:
                    self._connect()
                self.channel.basic_publish("", self.queue, body, PERSISTENT, mandatory=True)  # type: ignore[attr-defined]
                return
            except (pika.exceptions.AMQPError, OSError):
                self.retries += 1
                self.connection = None
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        if self.connection is not None and self.connection.is_open:
            self.connection.close()


def sample_message(n: int) -> bytes:
    return json.dumps({"sensor": f"MID-{n:04d}", "samples": [
        {"ts": 1764237600 + n, "voltage": 230.0 + n / 10, "current": 1.5, "activePower": float(n),
         "reactivePower": -1.25}]}).encode()


def test_readings_published_on_the_queue_land_in_the_broker(
        midori: MidoriSetup, module_broker: FlexmeterProcess, tenant: dict[str, str]) -> None:
    ngsi = module_broker.url
    agent = midori.start_agent(ngsi)
    provision(agent.url, tenant, [{"apikey": midori.apikey, "resource": "/midori"}])
    publisher = ConfirmingPublisher(midori.amqp_url, midori.queue)
    try:
        samples = [{"ts": f"2026-11-27T10:00:0{s}Z", "voltage": 230.4, "current": 1.5 + s,
                    "activePower": 300.5 + s, "reactivePower": -35.1} for s in range(3)]
        publisher.publish(json.dumps({"sensor": "MIDORI-TO-0042", "samples": samples}).encode(), time.time() + 10)
        publisher.publish(b'{"sensor": "MIDORI-TO-0042", "samples": [{"voltage": 1}]}', time.time() + 10)
    finally:
        publisher.close()
    meter = wait_for(lambda: (e := get_entity(ngsi, tenant, "ACMeasurement:MIDORI-TO-0042"))
                     and e["TimeInstant"]["value"] == "2026-11-27T10:00:02.000Z" and e)
    assert meter["totalActivePower"]["value"] == 302.5
    assert meter["totalActivePower"]["metadata"]["unitCode"]["value"] == "WTT"
    assert meter["totalReactivePower"]["value"] == -35.1
    assert meter["totalReactivePower"]["metadata"]["unitCode"]["value"] == "D44"
    assert meter["phaseVoltage"]["value"] == {"L": 230.4} and meter["current"]["value"] == {"L": 3.5}
    metrics = wait_for(lambda: (text := requests.get(f"{agent.url}/metrics", timeout=5).text)
                       and 'iota_dead_lettered_total{family="midori"} 1' in text and text)
    assert 'iota_decoded_total{family="midori"} 3' in metrics  # three 1 Hz samples, three readings
    letters = requests.get(f"{agent.url}/iot/deadletters", headers=tenant, timeout=5).json()["deadLetters"]
    assert any("samples[0].ts" in d["reason"] for d in letters)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def _wait_amqp(url: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", 5672), timeout=1):
                pass
            pika.BlockingConnection(pika.URLParameters(url)).close()
            return
        except (OSError, pika.exceptions.AMQPError):
            time.sleep(0.2)
    raise AssertionError("RabbitMQ did not answer on 5672 after start_app")


@pytest.mark.xdist_group("rabbitmq-restart")
def test_rabbitmq_restart_mid_stream_loses_nothing(
        midori: MidoriSetup, module_broker: FlexmeterProcess, tenant: dict[str, str]) -> None:
    ngsi = module_broker.url
    agent = midori.start_agent(ngsi)
    provision(agent.url, tenant, [{"apikey": midori.apikey, "resource": "/midori"}])
    total, restart_after = 60, 20
    published = threading.Event()
    failures: list[BaseException] = []
    publisher = ConfirmingPublisher(midori.amqp_url, midori.queue)

    def stream() -> None:
        try:
            for n in range(total):
                publisher.publish(sample_message(n), time.time() + 60)
                if n == restart_after:
                    published.set()
                time.sleep(0.02)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)
        finally:
            published.set()
            try:
                publisher.close()
            except (pika.exceptions.AMQPError, OSError):
                pass

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    assert published.wait(30)
    try:
        _rabbitmqctl("stop_app")  # mid-stream: the publisher retries, the agent's deliveries go unacked
        time.sleep(0.5)
    finally:
        _rabbitmqctl("start_app")
        _wait_amqp(midori.amqp_url)
    thread.join(60)
    assert not failures, failures
    assert publisher.retries > 0  # the restart really happened mid-stream
    assert wait_for(lambda: count_entities(ngsi, tenant, "ACMeasurement") == total, timeout=40)
    for n in (0, restart_after, restart_after + 1, total - 1):
        meter = get_entity(ngsi, tenant, f"ACMeasurement:MID-{n:04d}")
        assert meter is not None and meter["totalActivePower"]["value"] == n
    health = requests.get(f"{agent.url}/health", timeout=5).json()
    assert health["deadLetters"] == 0
