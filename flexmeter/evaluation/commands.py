"""`flexmeter bench e2e` and `flexmeter evaluate` (heavy imports stay inside the functions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from flexmeter.config import get_settings


def _print_e2e(result: dict[str, Any]) -> None:
    from flexmeter.evaluation.render import e2e_table

    typer.echo(e2e_table(result))


def bench_e2e_command(
    duration: float = typer.Option(20.0, help="Seconds of sustained publishing (60 for the official figure)."),
    rate: float = typer.Option(5000.0, help="Readings per second published."),
    devices: int = typer.Option(None, help="Meters (default: the rate, one reading per meter per second)."),
    ngsi_url: str = typer.Option(None, help="Use this NGSI-v2 broker (e.g. Orion) instead of the embedded one."),
    ql_url: str = typer.Option(None, help="Use this QuantumLeap instead of the embedded time series."),
    iota_url: str = typer.Option(None, help="Use this IoT Agent north API (a flexmeter agent with connode)."),
    service_url: str = typer.Option(None, help="Use this business service instead of starting one."),
    mqtt_url: str = typer.Option(None, help="MQTT broker the meters publish to (FLEXMETER_MQTT_URL)."),
    settle_timeout: float = typer.Option(60.0, help="Seconds without progress before counting what is missing."),
    receiver: str = typer.Option("probes", help="'probes': a local subscriber on 20 probe meters times their "
                                 "arrival in the broker; 'all': on every meter, counting the broker hop reading "
                                 "by reading (a third subscription: more load on the broker)."),
    workload: str = typer.Option("connode", help="'connode': Malmö E350 gateway documents at --rate; 'pilots': "
                                 "the full-scale pilots' mix (M-Bus via the IREN concentrator uplink, wM-Bus, DLMS, "
                                 "Midori over AMQP, ENNOVA over HTTP, Connode) through the simulator at --scale."),
    scale: float = typer.Option(1.0, help="--workload pilots: size relative to the full pilots (~640 readings/s)."),
    seed: int = typer.Option(1, help="--workload pilots: the simulator's seed."),
    amqp_url: str = typer.Option(None, help="--workload pilots: AMQP broker for Midori (FLEXMETER_AMQP_URL)."),
    south_url: str = typer.Option(None, help="--workload pilots with --iota-url: the agent's south HTTP (ENNOVA)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Meters -> MQTT -> agent -> broker -> time series and service: counts per hop, loss, latency, CPU."""
    from flexmeter.evaluation.e2e import E2EOptions, run_e2e
    from flexmeter.evaluation.errors import EvaluationError

    if receiver not in ("all", "probes"):
        typer.echo("bench e2e: --receiver is 'all' or 'probes'", err=True)
        raise typer.Exit(2)
    if workload not in ("connode", "pilots"):
        typer.echo("bench e2e: --workload is 'connode' or 'pilots'", err=True)
        raise typer.Exit(2)
    settings = get_settings()
    options = E2EOptions(duration=duration, rate=rate, devices=devices, mqtt_url=mqtt_url or settings.mqtt_url,
                         ngsi_url=ngsi_url, ql_url=ql_url, iota_url=iota_url, service_url=service_url,
                         host=settings.host, settle_timeout=settle_timeout, receiver=receiver, workload=workload,
                         scale=scale, seed=seed, amqp_url=amqp_url or settings.amqp_url, south_url=south_url)
    try:
        result = run_e2e(options)
    except EvaluationError as exc:
        typer.echo(f"bench e2e: {exc}", err=True)
        raise typer.Exit(1) from exc
    if json_out:
        typer.echo(json.dumps({k: v for k, v in result.items()
                               if k not in ("timeline", "latency_samples_ms")}))
    else:
        _print_e2e(result)
    if result["lost"]:
        raise typer.Exit(3)


def evaluate_command(
    ngsi_url: str = typer.Option(None, help="NGSI-v2 broker to evaluate (default: start the embedded one)."),
    ql_url: str = typer.Option(None, help="QuantumLeap to evaluate (default: the embedded time series)."),
    iota_url: str = typer.Option(None, help="IoT Agent north API to evaluate (default: the embedded agent)."),
    out: Path = typer.Option(Path("evaluation"), help="Directory for report.md, report.html and report.json."),
    duration: float = typer.Option(20.0, help="Seconds of the pilot workload."),
    rate: float = typer.Option(600.0, help="Readings/s of the pilot workload (full-scale pilots: ~600)."),
    areas: str = typer.Option(None, help="Conformance areas to run, comma-separated (default: all)."),
    mqtt_url: str = typer.Option(None, help="MQTT broker the meters publish to (FLEXMETER_MQTT_URL)."),
) -> None:
    """The FIWARE GE evaluation: conformance per API area, then the pilot workload; writes the report."""
    from flexmeter.evaluation.errors import EvaluationError
    from flexmeter.evaluation.evaluate import EvaluateOptions, run_evaluation

    settings = get_settings()
    options = EvaluateOptions(ngsi_url=ngsi_url, ql_url=ql_url, iota_url=iota_url, out=out, duration=duration,
                              rate=rate, mqtt_url=mqtt_url or settings.mqtt_url, host=settings.host,
                              areas=[a.strip() for a in areas.split(",") if a.strip()] if areas else None)
    try:
        written = run_evaluation(options)
    except EvaluationError as exc:
        typer.echo(f"evaluate: {exc}", err=True)
        raise typer.Exit(1) from exc
    for path in written:
        typer.echo(str(path))


def register(groups: dict[str, typer.Typer]) -> None:
    groups["bench"].command("e2e")(bench_e2e_command)
    groups["root"].command("evaluate")(evaluate_command)
