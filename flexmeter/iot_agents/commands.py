"""`flexmeter agent [FAMILY ...]` and `flexmeter bench agent`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import typer

from flexmeter.config import get_settings


def agent_command(
    families: list[str] = typer.Argument(None, help="Families to host (default: every available one)."),
    host: str = typer.Option(None, help="Address to bind (FLEXMETER_HOST)."),
    north_port: int = typer.Option(None, help="North (provisioning) API port; 0 = a free port. Default 4041."),
    south_port: int = typer.Option(None, help="South HTTP port; 0 = a free port. Default 7896."),
    ngsi_url: str = typer.Option(None, help="NGSI-v2 context broker (FLEXMETER_NGSI_URL)."),
    mqtt_url: str = typer.Option(None, help="MQTT broker for south traffic and commands; 'none' disables."),
    amqp_url: str = typer.Option(None, help="AMQP broker; 'none' disables."),
    coap_port: str = typer.Option(None, help="South CoAP (UDP) port; 0 = a free port; 'none' disables. Default 5683."),
    data_dir: Path = typer.Option(None, help="Registry, outbox, dead letters (default: DATA_DIR/agent)."),
    token: str = typer.Option(None, help="Bearer token required on the north API (FLEXMETER_TOKEN)."),
    command_timeout: float = typer.Option(30.0, help="Seconds before a command with no reply is ERROR."),
    linger: float = typer.Option(0.02, help="Seconds a small batch waits to coalesce before it is sent."),
    public_url: str = typer.Option(None, help="The north URL the broker notifies (default http://HOST:PORT)."),
    durable: bool = typer.Option(False, help="fsync the outbox on every commit (survive power loss)."),
) -> None:
    """Run the IoT Agent: north API (iotagent-node-lib compatible), south MQTT/HTTP/AMQP/CoAP, durable outbox."""
    from flexmeter.iot_agents.core.agent import AgentConfig, run_agent
    from flexmeter.iot_agents.core.family import UnknownFamilyError, available_families, load_family

    settings = get_settings()
    chosen = list(families or []) or available_families()
    try:
        for name in chosen:
            load_family(name)
    except UnknownFamilyError as exc:
        typer.echo(f"agent: {exc}", err=True)
        raise typer.Exit(2) from exc

    def url(value: str | None, default: str) -> str | None:
        value = value if value is not None else default
        return None if value.lower() in ("", "none", "off") else value

    # The default CoAP port is optional (taken: a warning, no CoAP); a port asked for must be had.
    coap_optional = coap_port is None and "iota_coap_port" not in settings.model_fields_set
    coap: int | None = settings.iota_coap_port
    if coap_port is not None:
        try:
            coap = None if coap_port.lower() in ("", "none", "off") else int(coap_port)
        except ValueError as exc:
            typer.echo(f"agent: --coap-port must be a port number or 'none', not {coap_port!r}", err=True)
            raise typer.Exit(2) from exc

    config = AgentConfig(
        families=chosen,
        ngsi_url=ngsi_url or settings.ngsi_url,
        data_dir=data_dir or settings.data_dir / "agent",
        host=host or settings.host,
        north_port=settings.iota_north_port if north_port is None else north_port,
        south_port=settings.iota_south_port if south_port is None else south_port,
        mqtt_url=url(mqtt_url, settings.mqtt_url),
        amqp_url=url(amqp_url, settings.amqp_url),
        coap_port=coap,
        coap_optional=coap_optional,
        token=token or settings.token,
        ngsi_token=settings.token,
        command_timeout=command_timeout,
        linger=linger,
        public_url=public_url,
        durable=durable,
    )
    from flexmeter.iot_agents.core.coap import CoapPortInUse

    try:
        run_agent(config)
    except CoapPortInUse as exc:
        typer.echo(f"agent: {exc}", err=True)
        raise typer.Exit(2) from exc


def bench_agent_command(
    duration: float = typer.Option(10.0, help="Seconds of sustained publishing."),
    rate: int = typer.Option(6000, help="Target readings per second published."),
    devices: int = typer.Option(500, help="Distinct devices."),
    mqtt_url: str = typer.Option(None, help="MQTT broker (default FLEXMETER_MQTT_URL)."),
    per_message: int = typer.Option(1, help="Readings per MQTT message (a JSON array, as gateways batch)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Readings/s from MQTT publish to entities in an embedded broker, with loss and p50/p99 latency."""
    from flexmeter.iot_agents.core.bench import run_bench

    result = run_bench(duration=duration, rate=rate, devices=devices,
                       mqtt_url=mqtt_url or get_settings().mqtt_url, per_message=per_message)
    if json_out:
        typer.echo(json.dumps(result))
    else:
        for key, value in result.items():
            typer.echo(f"{key:>28}: {value}")


def deadletters_command(
    data_dir: Path = typer.Option(None, help="The agent's data directory (default: DATA_DIR/agent)."),
    unattributed: bool = typer.Option(False, "--unattributed",
                                      help="Only those no tenant owns (an apikey no service group has)."),
    service: str = typer.Option(None, help="Only this tenant's (Fiware-Service)."),
    service_path: str = typer.Option(None, help="Only this service path's (with --service)."),
    limit: int = typer.Option(100, min=0, help="At most this many (0 = all: an export)."),
    offset: int = typer.Option(0, min=0, help="Skip this many (oldest first)."),
    count_only: bool = typer.Option(False, "--count", help="Print only how many there are."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """The agent's dead letters, for the operator: every tenant's, or --unattributed (those the tenant-scoped
    north API /iot/deadletters shows to nobody). Reads DATA_DIR/outbox.db read-only, agent running or not."""
    from datetime import UTC, datetime

    from flexmeter.iot_agents.core.outbox import read_dead_letters

    directory = data_dir or get_settings().data_dir / "agent"
    try:
        count, letters = read_dead_letters(directory / "outbox.db", unattributed=unattributed, service=service,
                                           service_path=service_path, limit=0 if count_only else limit or None,
                                           offset=offset)
    except (FileNotFoundError, sqlite3.Error) as exc:
        typer.echo(f"deadletters: cannot read {directory / 'outbox.db'}: {exc}", err=True)
        raise typer.Exit(2) from exc
    if json_out:
        body: dict[str, object] = {"count": count}
        if not count_only:
            body["deadLetters"] = [{**d.as_json(), "service": d.service, "servicePath": d.service_path}
                                   for d in letters]
        typer.echo(json.dumps(body, ensure_ascii=False))
        return
    if count_only:
        typer.echo(str(count))
        return
    for d in letters:
        at = datetime.fromtimestamp(d.at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        owner = f"{d.service}{d.service_path or ''}" if d.service is not None else "(unattributed)"
        typer.echo(f"{d.id}  {at}  {d.family}  {d.error}  {owner}  {d.reason}")
    typer.echo(f"{len(letters)} of {count} dead letter(s)" + (f" from offset {offset}" if offset else ""), err=True)


def register(groups: dict[str, typer.Typer]) -> None:
    groups["root"].command("agent")(agent_command)
    groups["root"].command("deadletters")(deadletters_command)
    groups["bench"].command("agent")(bench_agent_command)
