"""plan / apply / diff / export / delete as library calls (the CLI in ``commands.py`` renders them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flexmeter.config import get_settings
from flexmeter.provisioning.apply import ProgressSink, Report, apply_plan, delete_plan
from flexmeter.provisioning.desired import Desired, compile_inventory
from flexmeter.provisioning.export import export_inventory
from flexmeter.provisioning.inventory import load_inventory
from flexmeter.provisioning.plan import Plan, make_plan
from flexmeter.provisioning.remote import Check, Endpoints, check_endpoints, read_remote


@dataclass
class Target:
    """Where to provision: URLs, tenant override, token, template variables."""

    ngsi_url: str
    iota_url: str
    ql_url: str | None = None
    service: str | None = None
    token: str | None = None
    vars: dict[str, str] = field(default_factory=dict)
    service_url: str | None = None

    def endpoints(self) -> Endpoints:
        return Endpoints(self.ngsi_url, self.iota_url, self.ql_url, self.token)

    def template_vars(self) -> dict[str, str]:
        """``${QL_URL}``, ``${NGSI_URL}``, ``${IOTA_URL}``, ``${SERVICE_URL}``; ``vars`` override them
        (e.g. ``QL_URL=http://quantumleap:8668`` when the broker reaches QuantumLeap by another name)."""
        values = {"NGSI_URL": self.ngsi_url, "IOTA_URL": self.iota_url}
        if self.ql_url:
            values["QL_URL"] = self.ql_url
        values["SERVICE_URL"] = self.service_url or get_settings().service_url
        return {**values, **self.vars}


@dataclass
class Session:
    """One run: the compiled inventory, the endpoints, and the state read from them."""

    desired: Desired
    endpoints: Endpoints
    checks: list[Check]

    def close(self) -> None:
        self.endpoints.close()


def open_session(path: Path | str, target: Target, environ: Mapping[str, str] | None = None) -> Session:
    """Load and compile the inventory (raises InventoryError), then check the endpoints."""
    loaded = load_inventory(path, service=target.service)
    desired = compile_inventory(loaded, target.template_vars(), environ)
    endpoints = target.endpoints()
    return Session(desired, endpoints, check_endpoints(endpoints))


def plan(session: Session, *, with_extra: bool = False) -> Plan:
    return make_plan(session.desired, read_remote(session.endpoints, session.desired), with_extra=with_extra)


def apply(session: Session, progress: ProgressSink | None = None) -> tuple[Plan, Report]:
    current = plan(session)
    return current, apply_plan(current, session.endpoints, progress)


def delete(session: Session, progress: ProgressSink | None = None, *, purge_measurements: bool = False) -> Report:
    return delete_plan(plan(session), session.endpoints, progress, purge_measurements=purge_measurements)


def export(session: Session) -> dict[str, Any]:
    return export_inventory(session.desired, read_remote(session.endpoints, session.desired))
