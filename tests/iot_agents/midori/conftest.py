"""Midori agents: real `flexmeter agent midori` processes on the machine's RabbitMQ, one queue per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pytest

from tests.iot_agents.core.conftest import tenant
from tests.support.processes import FlexmeterProcess

__all__ = ["tenant"]


class MidoriSetup:
    def __init__(self, amqp_url: str, tmp_path: Path) -> None:
        self.amqp_url = amqp_url
        self.tmp_path = tmp_path
        self.queue = f"flexmeter-test-midori-{uuid.uuid4().hex[:10]}"
        self.apikey = f"m{uuid.uuid4().hex[:8]}"
        self.processes: list[FlexmeterProcess] = []
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        connection.channel().queue_declare(self.queue, durable=True)  # before the first publish
        connection.close()

    def start_agent(self, ngsi_url: str) -> FlexmeterProcess:
        proc = FlexmeterProcess(
            ["agent", "midori", "--north-port", "0", "--south-port", "0", "--ngsi-url", ngsi_url,
             "--mqtt-url", "none", "--amqp-url", self.amqp_url, "--data-dir", str(self.tmp_path / "agent"),
             "--linger", "0.01"],
            env={"FLEXMETER_MIDORI_QUEUE": self.queue, "FLEXMETER_MIDORI_APIKEY": self.apikey}).start()
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.processes:
            proc.stop()
        try:
            connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
            connection.channel().queue_delete(self.queue)
            connection.close()
        except pika.exceptions.AMQPError:
            pass


@pytest.fixture
def midori(amqp_url: str, tmp_path: Path) -> Iterator[MidoriSetup]:
    setup = MidoriSetup(amqp_url, tmp_path)
    yield setup
    setup.close()


Publish = Callable[[str, bytes], None]
