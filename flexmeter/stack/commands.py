"""`flexmeter up` (the embedded stack) and `flexmeter mqtt-broker`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import typer

from flexmeter.config import get_settings


def mqtt_broker_command(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(1883, help="MQTT port."),
) -> None:
    """Run an embedded MQTT broker (amqtt) for machines without Mosquitto."""
    from flexmeter.stack.mqtt_broker import run_mqtt_broker

    run_mqtt_broker(host, port)


def up_command(
    data_dir: Path = typer.Option(None, help="Where the components keep their data (FLEXMETER_DATA_DIR)."),
    with_simulator: bool = typer.Option(True, help="Start the Turin and Malmö pilot simulators."),
    speed: float = typer.Option(1.0, help="Simulated seconds per wall second for the pilot simulators."),
) -> None:
    """Run the whole embedded stack as child processes until Ctrl-C."""
    from flexmeter.stack.up import run_stack

    settings = get_settings()
    directory = data_dir or settings.data_dir
    raise typer.Exit(run_stack(settings, directory, with_simulator=with_simulator,
                               simulate_args=["--speed", str(speed), "--truth", str(directory / "truth.json")]))


def mqtt_host_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 1883


def register(groups: dict[str, typer.Typer]) -> None:
    groups["root"].command("up")(up_command)
    groups["root"].command("mqtt-broker")(mqtt_broker_command)
