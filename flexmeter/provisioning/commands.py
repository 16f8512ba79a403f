"""`flexmeter provision plan|apply|diff|export|delete INVENTORY`: registration only.

Every `flexmeter` process imports all command modules at start, so this one stays light and the work
(:mod:`flexmeter.provisioning.console`) is imported when a provision command actually runs.
"""

from __future__ import annotations

from pathlib import Path

import typer

INVENTORY = typer.Argument(..., exists=False, help="Inventory YAML (see docs/provisioning.md).")
NGSI_URL = typer.Option(None, "--ngsi-url", help="NGSI-v2 broker (FLEXMETER_NGSI_URL).")
IOTA_URL = typer.Option(None, "--iota-url", help="IoT Agent north API (FLEXMETER_IOTA_URL).")
QL_URL = typer.Option(None, "--ql-url", help="QuantumLeap / time series (FLEXMETER_QL_URL).")
SERVICE = typer.Option(None, "--service", help="Tenant: renames a one-tenant inventory, or picks one tenant "
                       "(FLEXMETER_SERVICE).")
TOKEN = typer.Option(None, "--token", help="Bearer token; prefer FLEXMETER_TOKEN or --token-file.")
TOKEN_FILE = typer.Option(None, "--token-file", help="Read the bearer token from this file.")
VARS = typer.Option(None, "--var", help="NAME=VALUE for ${NAME} in subscription templates (repeatable).")
JSON_OUT = typer.Option(False, "--json", help="Print one JSON object on stdout.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars.")


def plan_command(inventory: Path = INVENTORY, ngsi_url: str = NGSI_URL, iota_url: str = IOTA_URL,
                 ql_url: str = QL_URL, service: str = SERVICE, token: str = TOKEN, token_file: Path = TOKEN_FILE,
                 var: list[str] = VARS, json_out: bool = JSON_OUT) -> None:
    """Show what `apply` would create or update (nothing is changed)."""
    from flexmeter.provisioning import console

    console.plan_command(inventory, ngsi_url, iota_url, ql_url, service, token, token_file, var, json_out)


def diff_command(inventory: Path = INVENTORY, ngsi_url: str = NGSI_URL, iota_url: str = IOTA_URL,
                 ql_url: str = QL_URL, service: str = SERVICE, token: str = TOKEN, token_file: Path = TOKEN_FILE,
                 var: list[str] = VARS, json_out: bool = JSON_OUT) -> None:
    """Compare the inventory with what the endpoints hold, field by field; exit 1 when they differ."""
    from flexmeter.provisioning import console

    console.diff_command(inventory, ngsi_url, iota_url, ql_url, service, token, token_file, var, json_out)


def apply_command(inventory: Path = INVENTORY, ngsi_url: str = NGSI_URL, iota_url: str = IOTA_URL,
                  ql_url: str = QL_URL, service: str = SERVICE, token: str = TOKEN, token_file: Path = TOKEN_FILE,
                  var: list[str] = VARS, json_out: bool = JSON_OUT, quiet: bool = QUIET) -> None:
    """Create and update what the inventory declares (idempotent: a second run changes nothing)."""
    from flexmeter.provisioning import console

    console.apply_command(inventory, ngsi_url, iota_url, ql_url, service, token, token_file, var, json_out, quiet)


def delete_command(inventory: Path = INVENTORY, ngsi_url: str = NGSI_URL, iota_url: str = IOTA_URL,
                   ql_url: str = QL_URL, service: str = SERVICE, token: str = TOKEN, token_file: Path = TOKEN_FILE,
                   var: list[str] = VARS, json_out: bool = JSON_OUT, quiet: bool = QUIET,
                   purge_measurements: bool = typer.Option(False, help="Also delete each meter's measurement "
                                                           "entity (its current values) from the broker."),
                   yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Remove the inventory's subscriptions, entities, devices and service groups."""
    from flexmeter.provisioning import console

    console.delete_command(inventory, ngsi_url, iota_url, ql_url, service, token, token_file, var, json_out, quiet,
                           purge_measurements, yes)


def export_command(inventory: Path = INVENTORY, ngsi_url: str = NGSI_URL, iota_url: str = IOTA_URL,
                   ql_url: str = QL_URL, service: str = SERVICE, token: str = TOKEN, token_file: Path = TOKEN_FILE,
                   var: list[str] = VARS, json_out: bool = JSON_OUT,
                   out: Path = typer.Option(None, "--out", "-o", help="Write the YAML here (default: stdout).")
                   ) -> None:
    """Write what the endpoints hold, in the inventory's tenants and service paths, as an inventory."""
    from flexmeter.provisioning import console

    console.export_command(inventory, ngsi_url, iota_url, ql_url, service, token, token_file, var, json_out, out)


def register(groups: dict[str, typer.Typer]) -> None:
    group = groups["provision"]
    group.command("plan")(plan_command)
    group.command("apply")(apply_command)
    group.command("diff")(diff_command)
    group.command("export")(export_command)
    group.command("delete")(delete_command)
