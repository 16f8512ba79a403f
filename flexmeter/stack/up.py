"""What `flexmeter up` (and so `make run`) starts, in order, and what it prints for a newcomer."""

from __future__ import annotations

import socket
from pathlib import Path

import typer

from flexmeter.config import Settings
from flexmeter.stack.supervisor import Child, StackError, Supervisor

# One notification may carry up to this many entities of a batch update (an extension Orion lacks):
# the embedded time series and service take many entities per notification, and it keeps the
# broker → subscriber hop from being the bottleneck of the whole pipeline (docs/contextbroker.md).
NOTIFY_BATCH = 100


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _say(text: str) -> None:
    typer.echo(f"{'up':<10}| {text}")


def run_stack(settings: Settings, data_dir: Path, *, with_simulator: bool, simulate_args: list[str] | None = None,
              ) -> int:
    from flexmeter.provisioning.pilots import apply_pilots
    from flexmeter.stack.commands import mqtt_host_port

    data_dir.mkdir(parents=True, exist_ok=True)
    host = settings.host
    supervisor = Supervisor()
    mqtt_host, mqtt_port = mqtt_host_port(settings.mqtt_url)
    try:
        for name, port in (("broker", settings.broker_port), ("timeseries", settings.timeseries_port),
                           ("agent north", settings.iota_north_port), ("agent south", settings.iota_south_port),
                           ("service", settings.service_port)):
            if _port_open(host, port):
                raise StackError(f"port {port} ({name}) is already in use: is another stack running?")
        if _port_open(mqtt_host, mqtt_port):
            _say(f"using the MQTT broker already at {settings.mqtt_url}")
        else:
            supervisor.start(Child("mqtt", ["mqtt-broker", "--host", mqtt_host, "--port", str(mqtt_port)]))
        broker = supervisor.start(Child("broker", [
            "broker", "--host", host, "--port", str(settings.broker_port), "--db", str(data_dir / "broker.db"),
            "--notify-batch", str(NOTIFY_BATCH),
        ]))
        timeseries = supervisor.start(Child("timeseries", [
            "timeseries", "--host", host, "--port", str(settings.timeseries_port),
            "--db", str(data_dir / "timeseries.db"),
        ]))
        agent = supervisor.start(Child("agent", [
            "agent", "--host", host, "--north-port", str(settings.iota_north_port),
            "--south-port", str(settings.iota_south_port), "--ngsi-url", broker.url,
            "--mqtt-url", settings.mqtt_url, "--amqp-url", settings.amqp_url, "--data-dir", str(data_dir / "agent"),
        ]))
        service = supervisor.start(Child("service", [
            "service", "--host", host, "--port", str(settings.service_port), "--ngsi-url", broker.url,
            "--ql-url", timeseries.url, "--data-dir", str(data_dir / "service"),
        ]))
        _say("provisioning the Turin (iren) and Malmö (eon) pilots from examples/")
        north_url = f"http://{host}:{settings.iota_north_port}"
        for report in apply_pilots(broker.url, north_url, timeseries.url, service_url=service.url):
            if not report.ok:
                raise StackError(f"provisioning failed: {report}")
        if with_simulator:
            supervisor.start(Child("simulator", [
                "simulate", "--pilot", "all", "--mqtt-url", settings.mqtt_url, "--amqp-url", settings.amqp_url,
                "--south-url", f"http://{host}:{settings.iota_south_port}", *(simulate_args or []),
            ], wait_ready=False))
        _say("the embedded stack is running; Ctrl-C stops everything")
        _say(f"dashboard:                      {service.url}/")
        _say(f"context broker (Orion API):     {broker.url}/v2/entities  (headers Fiware-Service: iren or eon)")
        _say(f"time series (QuantumLeap API):  {timeseries.url}/v2/entities")
        _say(f"IoT Agent north API:            {agent.url}/iot/devices")
        _say("try: curl -H 'Fiware-Service: eon' -H 'Fiware-ServicePath: /#' "
             f"'{broker.url}/v2/entities?type=ACMeasurement&options=keyValues&limit=3'")
        dead = supervisor.wait()
        if dead:
            typer.echo(f"{'up':<10}| {dead} exited; stopping the stack", err=True)
            return 1
        return 0
    except StackError as exc:
        typer.echo(f"{'up':<10}| {exc}", err=True)
        return 1
    finally:
        supervisor.stop_all()
