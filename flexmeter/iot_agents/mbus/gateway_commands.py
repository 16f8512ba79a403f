"""``flexmeter gateway mbus``: the M-Bus bus master of a field computer (docs/mbus-agent.md §3)."""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import typer

log = logging.getLogger(__name__)


def _meters(addresses: list[str] | None) -> list[int | str]:
    meters: list[int | str] = []
    for item in addresses or []:
        for part in item.replace(",", " ").split():
            if part.isdigit() and len(part) <= 3:
                meters.append(int(part))
            else:
                meters.append(part.upper())
    return meters


def gateway_mbus_command(
    serial_device: str = typer.Option(None, "--serial", help="Serial device of the M-Bus level converter."),
    tcp: str = typer.Option(None, "--tcp", help="HOST:PORT of an M-Bus-over-TCP converter."),
    baud: int = typer.Option(2400, help="Bus speed (sets the byte time and the response timeout)."),
    timeout: float = typer.Option(None, help="Response timeout in s (default: 330 bit times + 50 ms, + 0.2 s on TCP)."),
    retries: int = typer.Option(2, help="Retries of a request without a valid answer (same FCB)."),
    mqtt_url: str = typer.Option(None, help="MQTT broker of the agent (FLEXMETER_MQTT_URL)."),
    apikey: str = typer.Option("mbus", help="Service group apikey: topic mbus/<apikey>/<gateway-id>/up."),
    gateway_id: str = typer.Option(None, help="Concentrator name in uplinks (default: the host name)."),
    interval: float = typer.Option(300.0, help="Seconds between readouts of all meters."),
    addresses: list[str] = typer.Option(None, "--addresses", help="Meters: primary addresses (0-250) and/or "
                                        "16-hex-digit secondary addresses, comma separated or repeated."),
    scan: bool = typer.Option(False, "--scan", help="Find the meters first (see --scan-mode) and read those."),
    scan_mode: str = typer.Option("primary", help="primary (SND_NKE to 0..250) or secondary (wildcard search)."),
    buffer: Path = typer.Option(None, help="Store-and-forward SQLite file (default DATA_DIR/gateway/uplink.db)."),
    once: bool = typer.Option(False, "--once", help="One readout, forward what is buffered, then exit."),
    flush_timeout: float = typer.Option(5.0, help="With --once: seconds to wait for the MQTT broker."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (scan result / --once summary)."),
) -> None:
    """Read M-Bus meters over a serial line or a TCP converter and publish the frames to the M-Bus agent."""
    from flexmeter.config import get_settings
    from flexmeter.iot_agents.core.mqttlink import MqttConfigError

    from .gateway.buffer import UplinkBuffer
    from .gateway.errors import TransportClosedError
    from .gateway.master import BusTiming, MbusMaster
    from .gateway.publisher import MqttUplink
    from .gateway.runner import GatewayRunner
    from .gateway.transport import SerialTransport, TcpTransport, Transport

    if bool(serial_device) == bool(tcp):
        typer.echo("gateway mbus: give exactly one of --serial DEV and --tcp HOST:PORT", err=True)
        raise typer.Exit(2)
    if scan_mode not in ("primary", "secondary"):
        typer.echo("gateway mbus: --scan-mode is primary or secondary", err=True)
        raise typer.Exit(2)
    meters = _meters(addresses)
    if not meters and not scan:
        typer.echo("gateway mbus: give --addresses or --scan", err=True)
        raise typer.Exit(2)
    settings = get_settings()
    transport: Transport
    try:
        if tcp:
            host, _, port = tcp.rpartition(":")
            transport = TcpTransport(host or "127.0.0.1", int(port))
        else:
            transport = SerialTransport(serial_device, baud)
    except (ValueError, TransportClosedError) as exc:
        typer.echo(f"gateway mbus: {exc}", err=True)
        raise typer.Exit(2) from exc
    timing = BusTiming(baud, extra=0.2 if tcp else 0.0, response_timeout_override=timeout)
    master = MbusMaster(transport, timing, retries=retries)
    summary: dict[str, object] = {"timing": timing.describe()}
    try:
        if scan:
            found: list[int | str] = list(master.scan_primary() if scan_mode == "primary" else master.scan_secondary())
            summary["scan"] = {"mode": scan_mode, "found": found}
            log.info("scan (%s) found %d meter(s): %s", scan_mode, len(found), found)
            meters = meters + [m for m in found if m not in meters]
            if not once and not meters:
                typer.echo("gateway mbus: the scan found no meter", err=True)
                raise typer.Exit(1)
        store = UplinkBuffer(buffer or settings.data_dir / "gateway" / "uplink.db")
        try:
            uplink = MqttUplink(mqtt_url or settings.mqtt_url, store)
        except MqttConfigError as exc:
            store.close()
            typer.echo(f"gateway mbus: {exc}", err=True)
            raise typer.Exit(2) from None
        uplink.start()
        runner = GatewayRunner(master, store, uplink, apikey=apikey, concentrator=gateway_id or socket.gethostname(),
                               meters=meters, interval=interval)
        if once:
            result = runner.cycle() if meters else None
            deadline = time.monotonic() + flush_timeout
            while store.depth() and time.monotonic() < deadline:
                if uplink.wait_connected(min(0.2, max(0.0, deadline - time.monotonic()))):
                    runner.flush()
            summary.update(meters=[str(m) for m in meters], frames=result.frames if result else 0,
                           failures=result.failures if result else {}, published=uplink.published,
                           buffered=store.depth(), retried=master.retried)
            uplink.stop()
            store.close()
        else:
            stop = threading.Event()

            def _stop(signum: int, frame: FrameType | None) -> None:
                stop.set()

            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, _stop)
            print(f"gateway mbus: reading {len(meters)} meter(s) every {interval:g} s, topic {runner.topic}",
                  file=sys.stderr, flush=True)
            runner.run(stop)
            uplink.stop()
            summary.update(cycles=runner.cycles, buffered=store.depth(), published=uplink.published)
            store.close()
    except TransportClosedError as exc:
        typer.echo(f"gateway mbus: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        master.close()
    if json_out:
        typer.echo(json.dumps(summary))
    elif once or scan:
        for key, value in summary.items():
            typer.echo(f"{key}: {value}")


def register(groups: dict[str, typer.Typer]) -> None:
    groups["gateway"].command("mbus")(gateway_mbus_command)
