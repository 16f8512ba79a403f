"""``flexmeter broker``: the embedded Orion-compatible context broker as a server process."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from flexmeter.config import get_settings
from flexmeter.serving import serve

log = logging.getLogger(__name__)


def broker_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(None, "--port", help="Port (default 1026, FLEXMETER_BROKER_PORT; 0 = any)."),
    db: Path = typer.Option(None, "--db", help="SQLite file of the default tenant (others live beside it)."),
    notify_batch: int = typer.Option(None, "--notify-batch", min=1,
                                     help="Let one notification carry up to N entities of a batch update."),
    threads: int = typer.Option(8, "--threads", min=1, help="HTTP worker threads."),
) -> None:
    """Run the NGSI-v2 context broker (Orion-compatible) until SIGTERM/SIGINT."""
    from flexmeter.contextbroker.app import create_app

    settings = get_settings()
    db_path = db or settings.db_path("broker")
    broker = create_app(db_path, notify_batch=notify_batch)
    broker.start()
    log.info("broker database %s", db_path)
    serve(broker.app, host, settings.broker_port if port is None else port, threads=threads,
          on_stop=[broker.stop], max_request_body_size=16 * 1024 * 1024)


def register(groups: dict[str, typer.Typer]) -> None:
    groups["root"].command("broker")(broker_command)
