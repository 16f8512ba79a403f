"""``flexmeter bench query``: the query-language micro-benchmark (see :mod:`.bench`)."""

from __future__ import annotations

import json

import typer


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
    groups["bench"].command("query")(bench_query_command)
