"""``flexmeter service`` (the business service and dashboard) and ``flexmeter bench service``."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from flexmeter.config import get_settings

log = logging.getLogger(__name__)


def service_command(
    host: str = typer.Option(None, "--host", help="Address to bind (FLEXMETER_HOST)."),
    port: int = typer.Option(None, "--port", help="Port (FLEXMETER_SERVICE_PORT, 5050; 0 = free port)."),
    ngsi_url: str = typer.Option(None, "--ngsi-url", help="Broker for results and commands (FLEXMETER_NGSI_URL)."),
    ql_url: str = typer.Option(None, "--ql-url", help="Time series (FLEXMETER_QL_URL); recorded for clients."),
    data_dir: Path = typer.Option(None, "--data-dir", help="State directory (default DATA_DIR/service)."),
    token: str = typer.Option(None, "--token", help="Bearer token for /v1 and the breaker (FLEXMETER_TOKEN)."),
    timezone: str = typer.Option("UTC", "--timezone", help="Local zone of days, nights and months."),
    threads: int = typer.Option(8, "--threads", help="HTTP worker threads."),
    no_results: bool = typer.Option(False, "--no-results", help="Compute but do not write results to the broker."),
    silence_after: float = typer.Option(None, "--silence-after", help="Seconds of data time without a reading "
                                        "before a meter is silent (900; docs/service.md, Completeness)."),
) -> None:
    """The business-logic service: notifications in, KPIs/alarms/commands out as NGSI entities, plus a dashboard."""
    from flexmeter.service.app import create_app
    from flexmeter.service.config import ServiceConfig
    from flexmeter.service.engine import Engine
    from flexmeter.serving import serve

    settings = get_settings()
    config = ServiceConfig(
        data_dir=data_dir or settings.data_dir / "service",
        ngsi_url=None if no_results else (ngsi_url or settings.ngsi_url),
        ql_url=ql_url or settings.ql_url,
        token=(token or settings.token) or None,
        timezone=timezone,
        silence_after_s=ServiceConfig.silence_after_s if silence_after is None else silence_after,
    )
    engine = Engine(config).start()
    app = create_app(config, engine)
    log.info("service state in %s, results to %s", config.data_dir, config.ngsi_url or "nowhere")
    serve(app, host or settings.host, settings.service_port if port is None else port, threads=threads,
          on_stop=[engine.stop])


def bench_service_command(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    duration: float = typer.Option(10.0, "--duration", help="Sizes the load (s at 8,000 entities/s)."),
    meters: int = typer.Option(400, "--meters", help="Meters (electricity, heat and water mixed)."),
    batch: int = typer.Option(200, "--batch", help="Entities per notification."),
    clients: int = typer.Option(2, "--clients", help="Concurrent notifying connections."),
) -> None:
    """Entity updates/s the service processes with every analytic on (notifications over HTTP)."""
    from flexmeter.bench_output import print_report
    from flexmeter.service.bench import run_bench

    print_report(run_bench(duration=duration, meters=meters, batch=batch, clients=clients, progress=not as_json),
                 as_json)


def register(groups: dict[str, typer.Typer]) -> None:
    groups["root"].command("service")(service_command)
    groups["bench"].command("service")(bench_service_command)
