"""The ``flexmeter`` command. Each component registers its own commands (see ``COMMAND_MODULES``).

Conventions (DESIGN.md §6): servers print ``ready on http://HOST:PORT`` and stop on SIGTERM/SIGINT;
``--json`` prints one JSON object on stdout and nothing else there; logs go to stderr.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

app = typer.Typer(
    name="flexmeter",
    help="FLEXMETER on FIWARE: IoT Agents, context broker, time series and services for smart metering.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
decode_app = typer.Typer(help="Decode one meter frame (hex string, '-' for stdin, or a file).",
                         no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks: print the figures and the conditions they were measured in.",
                        no_args_is_help=True)
provision_app = typer.Typer(help="Provision tenants, devices, entities and subscriptions from an inventory.",
                            no_args_is_help=True)
gateway_app = typer.Typer(help="Field-side gateways (bus masters) that publish frames to the agents.",
                          no_args_is_help=True)
app.add_typer(decode_app, name="decode")
app.add_typer(bench_app, name="bench")
app.add_typer(provision_app, name="provision")
app.add_typer(gateway_app, name="gateway")
bench_decode_app = typer.Typer(help="Decoder throughput on the public corpora.", no_args_is_help=True)
bench_app.add_typer(bench_decode_app, name="decode")

GROUPS: dict[str, typer.Typer] = {
    "root": app,
    "decode": decode_app,
    "bench": bench_app,
    "provision": provision_app,
    "gateway": gateway_app,
    "bench-decode": bench_decode_app,
}

# Modules exposing ``register(groups: dict[str, typer.Typer]) -> None``; each adds its own commands.
COMMAND_MODULES: list[str] = [
    "flexmeter.stack.commands",
    "flexmeter.config_commands",
    "flexmeter.quantumleap.commands",
    "flexmeter.iot_agents.commands",
    "flexmeter.contextbroker.commands",
    "flexmeter.contextbroker.bench_commands",
    "flexmeter.iot_agents.mbus.commands",
    "flexmeter.iot_agents.dlms.commands",
    "flexmeter.service.commands",
    "flexmeter.provisioning.commands",
    "flexmeter.iot_agents.mbus.gateway_commands",
    "flexmeter.simulator.commands",
    "flexmeter.evaluation.commands",
]


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging on stderr.")) -> None:
    configured = os.environ.get("FLEXMETER_LOG_LEVEL", "INFO").upper()
    level = logging.DEBUG if verbose else getattr(logging, configured, logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register_all() -> None:
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(GROUPS)


_register_all()


def main() -> None:
    """The console entry point: a configuration error is one line on stderr and exit status 2, not a traceback."""
    from flexmeter.config import ConfigError

    try:
        app()
    except ConfigError as exc:
        print(f"flexmeter: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
