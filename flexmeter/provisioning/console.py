"""The implementation of `flexmeter provision plan|apply|diff|export|delete INVENTORY` (see commands.py).

Progress bars go to stderr; stdout has the tables (or, with ``--json``, one JSON object). Exit codes:
0 done (``diff``: no difference), 1 some item failed (``diff``: differences found), 2 the inventory is
invalid or an endpoint cannot be read (nothing was changed).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from flexmeter.config import get_settings
from flexmeter.provisioning.apply import Report
from flexmeter.provisioning.errors import EndpointError, InventoryError
from flexmeter.provisioning.operations import Session, Target, open_session
from flexmeter.provisioning.operations import apply as apply_op
from flexmeter.provisioning.operations import delete as delete_op
from flexmeter.provisioning.operations import export as export_op
from flexmeter.provisioning.operations import plan as plan_op
from flexmeter.provisioning.plan import Plan

DETAIL_LIMIT = 50



def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 140, highlight=False)


class RichProgress:
    """The apply/delete progress sink: one bar per step, on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True), disable=not enabled,
                                 transient=False)
        self.tasks: dict[str, TaskID] = {}
        self.started = False

    def start(self, name: str, total: int) -> None:
        if not self.started:
            self.progress.start()
            self.started = True
        self.tasks[name] = self.progress.add_task(name, total=total)

    def advance(self, name: str, amount: int) -> None:
        self.progress.advance(self.tasks[name], amount)

    def stop(self) -> None:
        if self.started:
            self.progress.stop()


def _target(ngsi_url: str | None, iota_url: str | None, ql_url: str | None, service: str | None,
            token: str | None, token_file: Path | None, variables: list[str] | None) -> Target:
    settings = get_settings()
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            typer.echo(f"provision: cannot read the token file: {exc.strerror}", err=True)
            raise typer.Exit(2) from exc
    if service is None and "service" in settings.model_fields_set:
        service = settings.service
    parsed: dict[str, str] = {}
    for item in variables or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            typer.echo(f"provision: --var wants NAME=VALUE, not {item!r}", err=True)
            raise typer.Exit(2)
        parsed[name] = value
    return Target(ngsi_url=ngsi_url or settings.ngsi_url, iota_url=iota_url or settings.iota_url,
                  ql_url=ql_url or settings.ql_url, service=service, token=token or settings.token,
                  vars=parsed, service_url=settings.service_url)


def _open(inventory: Path, target: Target, json_out: bool) -> Session:
    try:
        return open_session(inventory, target)
    except InventoryError as exc:
        if json_out:
            typer.echo(json.dumps({"ok": False, "problems": [
                {"file": p.file, "line": p.line, "where": p.where, "reason": p.reason} for p in exc.problems]}))
        typer.echo(f"provision: {inventory} is not valid ({len(exc.problems)} problem(s)); nothing was changed:",
                   err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(2) from exc


def _fail_endpoint(exc: EndpointError, json_out: bool) -> typer.Exit:
    if json_out:
        typer.echo(json.dumps({"ok": False, "error": str(exc)}))
    typer.echo(f"provision: {exc}", err=True)
    return typer.Exit(2)


def _checks_table(session: Session) -> Table:
    table = Table(title="endpoints", title_justify="left")
    for column in ("endpoint", "url", "ok", "detail"):
        table.add_column(column)
    for check in session.checks:
        table.add_row(check.name, check.url, "yes" if check.ok else "NO", check.detail)
    return table


def _plan_tables(plan: Plan, console: Console, *, title: str) -> None:
    table = Table(title=title, title_justify="left")
    actions = ("create", "update", "unchanged", "extra")
    table.add_column("kind")
    for action in actions:
        table.add_column(action if action != "extra" else "not in inventory", justify="right")
    for kind, row in plan.counts().items():
        table.add_row(kind, *(str(row.get(a, 0)) for a in actions))
    console.print(table)
    interesting = plan.by_action("create", "update", "extra")
    for change in interesting[:DETAIL_LIMIT]:
        where = f"{change.service}{change.service_path}"
        sign = {"create": "+", "update": "~", "extra": "?"}[change.action]
        origin = f"  ({change.origin})" if change.origin else ""
        console.print(f"{sign} {change.label} in {where}{origin}", markup=False)
        for diff in change.fields[:10]:
            console.print(f"    {diff.field}: {json.dumps(diff.remote)} -> {json.dumps(diff.wanted)}", markup=False)
    if len(interesting) > DETAIL_LIMIT:
        console.print(f"... and {len(interesting) - DETAIL_LIMIT} more (--json lists them all)", markup=False)


def _report(report: Report, console: Console, elapsed: float) -> None:
    columns = ("created", "updated", "deleted", "unchanged", "failed", "skipped", "not attempted")
    table = Table(title=f"{report.operation}: summary ({elapsed:.1f} s)", title_justify="left")
    table.add_column("kind")
    for column in columns:
        table.add_column(column, justify="right")
    for kind, row in report.summary().items():
        table.add_row(kind, *(str(row[c]) for c in columns))
    console.print(table)
    for outcome in report.with_status("failed", "skipped"):
        console.print(f"FAILED {outcome.change.label} in {outcome.change.service}{outcome.change.service_path} "
                      f"({outcome.change.origin}): {outcome.reason}", markup=False)
    if report.aborted:
        applied = report.with_status("applied")
        console.print(f"STOPPED: {report.aborted}", markup=False)
        console.print(f"applied before stopping: {len(applied)} item(s); not attempted: "
                      f"{len(report.with_status('not attempted'))} (run apply again once the endpoint is back)",
                      markup=False)
        for outcome in applied[:DETAIL_LIMIT]:
            console.print(f"  applied: {outcome.change.action} {outcome.change.label}", markup=False)
        if len(applied) > DETAIL_LIMIT:
            console.print(f"  ... and {len(applied) - DETAIL_LIMIT} more applied (see --json)", markup=False)


def _run_plan(inventory: Path, target: Target, json_out: bool, *, diff: bool) -> None:
    session = _open(inventory, target, json_out)
    try:
        try:
            plan = plan_op(session, with_extra=diff)
        except EndpointError as exc:
            raise _fail_endpoint(exc, json_out) from exc
    finally:
        session.close()
    different = bool(plan.by_action("create", "update", "extra"))
    if json_out:
        typer.echo(json.dumps({"ok": True, "checks": [c.__dict__ for c in session.checks],
                               "summary": plan.counts(), "changes": [c.as_json() for c in plan.changes
                                                                     if c.action != "unchanged"]}))
    else:
        console = _console()
        console.print(_checks_table(session))
        _plan_tables(plan, console, title="diff" if diff else "plan")
        if not different:
            console.print("no changes: the endpoints hold what the inventory declares", markup=False)
    if diff and different:
        raise typer.Exit(1)


def plan_command(inventory: Path, ngsi_url: str, iota_url: str,
                 ql_url: str, service: str, token: str, token_file: Path,
                 var: list[str], json_out: bool) -> None:
    """Show what `apply` would create or update (nothing is changed)."""
    _run_plan(inventory, _target(ngsi_url, iota_url, ql_url, service, token, token_file, var), json_out, diff=False)


def diff_command(inventory: Path, ngsi_url: str, iota_url: str,
                 ql_url: str, service: str, token: str, token_file: Path,
                 var: list[str], json_out: bool) -> None:
    """Compare the inventory with what the endpoints hold, field by field; exit 1 when they differ."""
    _run_plan(inventory, _target(ngsi_url, iota_url, ql_url, service, token, token_file, var), json_out, diff=True)


def _run_change(inventory: Path, target: Target, json_out: bool, quiet: bool, operation: str,
                purge: bool = False) -> None:
    session = _open(inventory, target, json_out)
    for check in session.checks:
        if not check.ok:
            typer.echo(f"provision: warning: {check.name} at {check.url}: {check.detail}", err=True)
    progress = RichProgress(enabled=not quiet)
    started = time.perf_counter()
    try:
        if operation == "apply":
            _, report = apply_op(session, progress)
        else:
            report = delete_op(session, progress, purge_measurements=purge)
    except EndpointError as exc:
        raise _fail_endpoint(exc, json_out) from exc
    finally:
        session.close()
    elapsed = time.perf_counter() - started
    if json_out:
        typer.echo(json.dumps({**report.as_json(), "seconds": round(elapsed, 3)}))
    else:
        _report(report, _console(), elapsed)
    if not report.ok:
        raise typer.Exit(1)


def apply_command(inventory: Path, ngsi_url: str, iota_url: str,
                  ql_url: str, service: str, token: str, token_file: Path,
                  var: list[str], json_out: bool, quiet: bool) -> None:
    """Create and update what the inventory declares (idempotent: a second run changes nothing)."""
    _run_change(inventory, _target(ngsi_url, iota_url, ql_url, service, token, token_file, var), json_out, quiet,
                "apply")


def delete_command(inventory: Path, ngsi_url: str, iota_url: str,
                   ql_url: str, service: str, token: str, token_file: Path,
                   var: list[str], json_out: bool, quiet: bool,
                   purge_measurements: bool,
                   yes: bool) -> None:
    """Remove the inventory's subscriptions, entities, devices and service groups."""
    if not yes and sys.stdin.isatty():
        typer.confirm(f"delete everything {inventory} declares?", abort=True)
    _run_change(inventory, _target(ngsi_url, iota_url, ql_url, service, token, token_file, var), json_out, quiet,
                "delete", purge_measurements)


def export_command(inventory: Path, ngsi_url: str, iota_url: str,
                   ql_url: str, service: str, token: str, token_file: Path,
                   var: list[str], json_out: bool,
                   out: Path | None) -> None:
    """Write what the endpoints hold, in the inventory's tenants and service paths, as an inventory."""
    from flexmeter.provisioning.export import dump_yaml

    session = _open(inventory, _target(ngsi_url, iota_url, ql_url, service, token, token_file, var), json_out)
    try:
        document: dict[str, Any] = export_op(session)
    except EndpointError as exc:
        raise _fail_endpoint(exc, json_out) from exc
    finally:
        session.close()
    if json_out:
        typer.echo(json.dumps(document))
        return
    text = dump_yaml(document)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        meters = sum(len(t.get("meters", [])) for t in document["tenants"])
        typer.echo(f"exported {meters} meter(s) to {out}", err=True)
