"""Provisioning from an inventory: service groups and devices (IoT Agent north API), static entities and
Device entities (NGSI-v2), subscriptions from ``orion_config/``; plan, apply, diff, export, delete.

Talks only the standard APIs, so the same inventory provisions the embedded stack and real FIWARE GEs.
See docs/provisioning.md.
"""

from flexmeter.provisioning.apply import Report, apply_plan, delete_plan
from flexmeter.provisioning.errors import EndpointError, InventoryError, Problem, ProvisioningError, SecretError
from flexmeter.provisioning.inventory import load_inventory
from flexmeter.provisioning.operations import Session, Target, apply, delete, export, open_session, plan
from flexmeter.provisioning.plan import Plan

__all__ = [
    "EndpointError",
    "InventoryError",
    "Plan",
    "Problem",
    "ProvisioningError",
    "Report",
    "SecretError",
    "Session",
    "Target",
    "apply",
    "apply_plan",
    "delete",
    "delete_plan",
    "export",
    "load_inventory",
    "open_session",
    "plan",
]
