"""The Turin and Malmö example inventories, applied by ``flexmeter up`` / ``make run`` (one call)."""

from __future__ import annotations

from pathlib import Path

from flexmeter.provisioning.apply import Report
from flexmeter.provisioning.operations import Target, apply, open_session


def examples_dir() -> Path:
    """The checkout's ``examples/`` (or ``./examples`` for an installed package, as in the Docker image)."""
    checkout = Path(__file__).resolve().parents[2] / "examples"
    return checkout if checkout.is_dir() else Path.cwd() / "examples"


PILOT_INVENTORIES = ("turin.yaml", "malmo.yaml")


def apply_pilots(ngsi_url: str, iota_url: str, ql_url: str | None, *, token: str | None = None,
                 service_url: str | None = None) -> list[Report]:
    """Apply both pilots' inventories (idempotent: a restart changes nothing). Raises InventoryError or
    EndpointError before changing anything; item failures are in the reports (``report.ok``)."""
    reports = []
    for name in PILOT_INVENTORIES:
        session = open_session(examples_dir() / name, Target(ngsi_url, iota_url, ql_url, token=token,
                                                             service_url=service_url))
        try:
            reports.append(apply(session)[1])
        finally:
            session.close()
    return reports
