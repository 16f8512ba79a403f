"""``flexmeter timeseries`` (the service) and ``flexmeter bench timeseries`` (its benchmark)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from flexmeter.config import get_settings

log = logging.getLogger(__name__)


def timeseries_command(
    host: str = typer.Option(None, "--host", help="Address to bind (FLEXMETER_HOST)."),
    port: int = typer.Option(None, "--port", help="Port (FLEXMETER_TIMESERIES_PORT, 8668; 0 = free port)."),
    db: Path = typer.Option(None, "--db", help="SQLite file (default DATA_DIR/timeseries.db)."),
    postgres: str = typer.Option(None, "--postgres", help="PostgreSQL DSN: QuantumLeap's own table layout."),
    threads: int = typer.Option(8, "--threads", help="HTTP worker threads."),
) -> None:
    """The QuantumLeap-compatible time-series service (notifications in, QuantumLeap queries out)."""
    from flexmeter.quantumleap.api import create_app
    from flexmeter.quantumleap.store import open_store
    from flexmeter.serving import serve

    settings = get_settings()
    dsn = postgres or settings.postgres_dsn
    store = open_store(str(db or settings.db_path("timeseries")), dsn if postgres or not db else None)
    log.info("time series on %s", "PostgreSQL" if store.backend == "postgres" else f"SQLite {store}")
    app = create_app(store)
    serve(
        app,
        host or settings.host,
        settings.timeseries_port if port is None else port,
        threads=threads,
        on_stop=[store.close],
    )


def bench_timeseries_command(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    backend: str = typer.Option("sqlite", "--backend", help="sqlite or postgres."),
    postgres: str = typer.Option(
        None,
        "--postgres",
        help="DSN for the postgres backend (FLEXMETER_POSTGRES_DSN, else postgresql://postgres@127.0.0.1:5432/test).",
    ),
    duration: float = typer.Option(10.0, "--duration", help="Seconds per ingest figure."),
    year_rows: int = typer.Option(3_153_600, "--year-rows", help="Readings of the one-year meter (10 s)."),
    meters: int = typer.Option(10_000, "--meters", help="Meters for the lastN=1 latency figure (0: ingest only)."),
    threads: int = typer.Option(8, "--threads", help="HTTP worker threads of the benchmarked server."),
) -> None:
    """Ingest rate, aggregation time and lastN latency of the time-series service."""
    from flexmeter.quantumleap.bench import run_bench

    dsn = postgres or get_settings().postgres_dsn or "postgresql://postgres@127.0.0.1:5432/test"
    report = run_bench(
        backend,
        dsn=dsn,
        duration=duration,
        year_rows=year_rows,
        meters=meters,
        progress=not as_json,
        threads=threads,
    )
    if as_json:
        print(json.dumps(report))
    else:
        for key, value in report["conditions"].items():
            print(f"  {key}: {value}")
        for name, figure in report["figures"].items():
            target = f"  (target {figure['target']})" if "target" in figure else ""
            print(f"{name}: {figure['value']} {figure['unit']}{target}")


def register(groups: dict[str, typer.Typer]) -> None:
    groups["root"].command("timeseries")(timeseries_command)
    groups["bench"].command("timeseries")(bench_timeseries_command)
