"""``flexmeter bench broker``: registers the broker benchmark (see :mod:`flexmeter.contextbroker.bench`)."""

from __future__ import annotations

import json
import sys

import typer


def bench_broker_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    duration: float = typer.Option(3.0, "--duration", help="Seconds per figure."),
    client_threads: int = typer.Option(4, "--client-threads", help="Concurrent client threads."),
    notify_batch: int = typer.Option(100, "--notify-batch",
                                     help="Entities per notification in the batched runs."),
    receiver: str = typer.Option("asyncio", "--receiver",
                                 help="Notification receiver: asyncio (fast, default) or waitress."),
) -> None:
    """Update and notification throughput and latency of the embedded broker (its own process)."""
    from flexmeter.contextbroker.bench import format_text, run_bench

    def progress(text: str) -> None:
        print(f"... {text}", file=sys.stderr, flush=True)

    result = run_bench(duration, client_threads=client_threads, notify_batch=notify_batch,
                       receiver_server=receiver, progress=progress)
    if json_output:
        print(json.dumps(result))
    else:
        print(format_text(result))


def bench_query_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    duration: float = typer.Option(1.0, "--duration", help="Seconds per figure."),
    entities: int = typer.Option(10_000, "--entities", help="Synthetic entities scanned per pass."),
) -> None:
    """Compiled q/mq/geo evaluations per second, parses per second and orderBy sort time."""
    from flexmeter.contextbroker.query.bench import format_text, run_bench

    result = run_bench(duration, entities)
    print(json.dumps(result) if json_output else format_text(result))


def register(groups: dict[str, typer.Typer]) -> None:
    groups["bench"].command("broker")(bench_broker_command)
    groups["bench"].command("query")(bench_query_command)
