"""An embedded MQTT 3.1.1 broker (amqtt), for machines where no Mosquitto answers.

`flexmeter up` starts it only when nothing listens at the configured MQTT URL; production uses a real
broker (Mosquitto, RabbitMQ's MQTT plugin, ...), and the tests use the machine's Mosquitto.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from flexmeter.serving import announce_ready

log = logging.getLogger(__name__)


def broker_config(host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


async def _run(host: str, port: int) -> None:
    from amqtt.broker import Broker

    broker = Broker(broker_config(host, port))
    await broker.start()
    announce_ready(f"mqtt://{host}:{port}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping the embedded MQTT broker")
    await broker.shutdown()


def run_mqtt_broker(host: str, port: int) -> None:
    asyncio.run(_run(host, port))
