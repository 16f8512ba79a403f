"""`flexmeter agent midori` end to end through the machine's RabbitMQ: readings published land in the broker,
and a RabbitMQ restart mid-stream loses nothing (acks only after the outbox, persistent messages)."""

from __future__ import annotations

import contextlib
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

# One test restarts the shared RabbitMQ: every test using the shared brokers runs in this xdist group.
pytestmark = pytest.mark.xdist_group("shared-brokers")

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


def sample_message(n: int, apikey: str) -> bytes:
    return json.dumps({"sensor": f"MID-{n:04d}", "apikey": apikey, "samples": [
        {"ts": 1795773600 + n, "voltage": 230.0 + n / 10, "current": 1.5, "activePower": float(n),
         "reactivePower": -1.25}]}).encode()


def readings_published_on_the_queue_land_in_the_broker(midori: MidoriSetup, agent: FlexmeterProcess, ngsi: str,
                                                       tenant: dict[str, str]) -> None:
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


def test_readings_land_and_a_rabbitmq_restart_mid_stream_loses_nothing(
        midori: MidoriSetup, module_broker: FlexmeterProcess, tenant: dict[str, str]) -> None:
    """One agent (starting one costs seconds): first a 3-sample message and a bad one, then the restart."""
    ngsi = module_broker.url
    agent = midori.start_agent(ngsi)
    provision(agent.url, tenant, [{"apikey": midori.apikey, "resource": "/midori"}])
    readings_published_on_the_queue_land_in_the_broker(midori, agent, ngsi, tenant)
    other = {**tenant, "Fiware-ServicePath": "/restart"}
    apikey = f"r{midori.apikey}"
    provision(agent.url, other, [{"apikey": apikey, "resource": "/midori"}])
    restart_after, after_restart = 20, 20
    started = threading.Event()
    restarted = threading.Event()
    failures: list[BaseException] = []
    confirmed: list[int] = []
    publisher = ConfirmingPublisher(midori.amqp_url, midori.queue)

    def stream() -> None:
        """One message (one sensor) every 20 ms, until 20 more have been confirmed after the restart."""
        n = 0
        try:
            while not restarted.is_set() or n < len(confirmed_at_restart) + after_restart:
                publisher.publish(sample_message(n, apikey), time.time() + 60)
                confirmed.append(n)
                n += 1
                if n == restart_after:
                    started.set()
                time.sleep(0.02)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)
        finally:
            started.set()
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                publisher.close()

    confirmed_at_restart: list[int] = []
    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    assert started.wait(30)
    try:
        _rabbitmqctl("stop_app")  # mid-stream: the publisher retries, the agent's deliveries go unacked
    finally:
        _rabbitmqctl("start_app")
        _wait_amqp(midori.amqp_url)
        confirmed_at_restart.extend(confirmed)
        restarted.set()
    thread.join(60)
    assert not failures, failures
    assert publisher.retries > 0  # the restart really happened mid-stream
    total = len(confirmed)
    assert total >= restart_after + after_restart
    assert wait_for(lambda: count_entities(ngsi, other, "ACMeasurement") == total, timeout=40)
    for n in (0, restart_after, len(confirmed_at_restart), total - 1):
        meter = get_entity(ngsi, other, f"ACMeasurement:MID-{n:04d}")
        assert meter is not None and meter["totalActivePower"]["value"] == n
    health = requests.get(f"{agent.url}/health", timeout=5).json()
    assert health["deadLetters"] == 1  # the bad message of the first part, nothing from the restart
