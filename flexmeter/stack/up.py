"""What `flexmeter up` (and so `make run`) starts, in order, and what it prints for a newcomer."""

from __future__ import annotations

import socket
from pathlib import Path

import typer

from flexmeter.config import Settings
from flexmeter.ngsi import FiwareHeaders, NgsiClient
from flexmeter.stack.orion_config import ORION_CONFIG, ensure_subscription, load_subscription
from flexmeter.stack.supervisor import Child, StackError, Supervisor

PILOT_TENANTS = {"iren": "/turin", "eon": "/malmo"}


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def registered_commands() -> set[str]:
    from flexmeter.cli import app

    return {c.name or "" for c in app.registered_commands}


def run_stack(settings: Settings, data_dir: Path, *, with_simulator: bool) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    available = registered_commands()
    host = settings.host
    supervisor = Supervisor()
    from flexmeter.stack.commands import mqtt_host_port

    mqtt_host, mqtt_port = mqtt_host_port(settings.mqtt_url)
    try:
        if _port_open(mqtt_host, mqtt_port):
            typer.echo(f"up        | using the MQTT broker already at {settings.mqtt_url}")
        else:
            supervisor.start(Child("mqtt", ["mqtt-broker", "--host", mqtt_host, "--port", str(mqtt_port)]))
        broker = supervisor.start(Child("broker", [
            "broker", "--host", host, "--port", str(settings.broker_port), "--db", str(data_dir / "broker.db"),
        ]))
        ql_url = ""
        if "timeseries" in available:
            timeseries = supervisor.start(Child("timeseries", [
                "timeseries", "--host", host, "--port", str(settings.timeseries_port),
                "--db", str(data_dir / "timeseries.db"),
            ]))
            ql_url = timeseries.url
        if "agent" in available:
            supervisor.start(Child("agent", [
                "agent", "--north-port", str(settings.iota_north_port), "--south-port", str(settings.iota_south_port),
                "--ngsi-url", broker.url, "--mqtt-url", settings.mqtt_url, "--amqp-url", settings.amqp_url,
                "--data-dir", str(data_dir / "agent"),
            ]))
        if ql_url:
            _apply_timeseries_subscriptions(broker.url, ql_url)
        typer.echo("up        | the embedded stack is running; Ctrl-C stops it")
        typer.echo(f"up        | context broker (Orion API):      {broker.url}/v2/entities")
        if ql_url:
            typer.echo(f"up        | time series (QuantumLeap API):   {ql_url}/v2/entities")
        dead = supervisor.wait()
        if dead:
            typer.echo(f"up        | {dead} exited; stopping the stack", err=True)
            return 1
        return 0
    except StackError as exc:
        typer.echo(f"up        | {exc}", err=True)
        return 1
    finally:
        supervisor.stop_all()


def _apply_timeseries_subscriptions(ngsi_url: str, ql_url: str) -> None:
    subscription = load_subscription(ORION_CONFIG / "subscriptions" / "timeseries.json", QL_URL=ql_url)
    with NgsiClient(ngsi_url) as client:
        for tenant, path in PILOT_TENANTS.items():
            ensure_subscription(client, subscription, FiwareHeaders(tenant, f"{path}/#"))
