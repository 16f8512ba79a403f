"""Provisioning what the workload needs, through the standard APIs only (so it works on the real GEs):
a Connode service group and the meters on the IoT Agent north API, and the broker subscriptions of
orion_config/ (time series, business service) plus the local receiver's."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import requests

from flexmeter.evaluation.errors import EvaluationError
from flexmeter.evaluation.workload import ENTITY_TYPE, Fleet


@dataclass
class Tenant:
    service: str = field(default_factory=lambda: f"e2e{uuid.uuid4().hex[:8]}")
    path: str = "/e2e"
    apikey: str = field(default_factory=lambda: f"e2e{uuid.uuid4().hex[:10]}")

    @property
    def headers(self) -> dict[str, str]:
        return {"Fiware-Service": self.service, "Fiware-ServicePath": self.path}


def _check(response: requests.Response, what: str) -> None:
    if response.status_code >= 300:
        raise EvaluationError(f"{what}: {response.status_code} {response.text[:300]}")


def provision_agent(iota_url: str, tenant: Tenant, fleet: Fleet, chunk: int = 1000) -> None:
    http = requests.Session()
    _check(http.post(f"{iota_url}/iot/services", headers=tenant.headers, timeout=30, json={"services": [
        {"apikey": tenant.apikey, "resource": "/connode", "entity_type": ENTITY_TYPE,
         "autoprovision": False}]}), "creating the Connode service group")
    for first in range(0, fleet.devices, chunk):
        devices = [{"device_id": fleet.device_id(i), "protocol": "connode", "entity_type": ENTITY_TYPE}
                   for i in range(first, min(fleet.devices, first + chunk))]
        _check(http.post(f"{iota_url}/iot/devices", headers=tenant.headers, timeout=120,
                         json={"devices": devices}), "provisioning the meters")


def wait_agent_ready(iota_url: str, timeout: float = 120.0) -> None:
    """Wait until the agent is subscribed on MQTT and has created the command subscriptions of the devices
    just provisioned (a flexmeter agent's /health; other agents: no wait), so the workload meets a steady agent."""
    deadline = time.time() + timeout
    health: dict[str, object] = {}
    while time.time() < deadline:
        try:
            response = requests.get(f"{iota_url}/health", timeout=5)
            if response.status_code == 404:
                return
            health = response.json()
        except (requests.RequestException, ValueError):
            return
        if health.get("mqtt") and not health.get("commandSubscriptionsPending") and not health.get("outbox"):
            return
        time.sleep(0.2)
    raise EvaluationError(f"the agent at {iota_url} is not ready after {timeout:.0f} s: MQTT connected "
                          f"{health.get('mqtt')}, command subscriptions pending "
                          f"{health.get('commandSubscriptionsPending')}, outbox {health.get('outbox')}")


def subscribe(ngsi_url: str, tenant: Tenant, *, ql_url: str | None, service_url: str | None,
              receiver_url: str | None, receiver_ids: list[str] | None = None) -> list[str]:
    """The orion_config subscriptions for this tenant, and the receiver's; returns their ids."""
    from flexmeter.provisioning.subscriptions import load_subscription, orion_config_dir

    bodies = []
    if ql_url:
        bodies.append(load_subscription(orion_config_dir() / "subscriptions" / "timeseries.json", QL_URL=ql_url))
    if service_url:
        bodies.append(load_subscription(orion_config_dir() / "subscriptions" / "service-readings.json",
                                        SERVICE_URL=service_url))
    if receiver_url:
        bodies.append({"description": "flexmeter bench e2e: readings' arrival in the broker",
                       "subject": {"entities": [{"idPattern": ".*", "type": ENTITY_TYPE}] if receiver_ids is None
                                   else [{"id": i, "type": ENTITY_TYPE} for i in receiver_ids],
                                   "condition": {"attrs": []}},
                       "notification": {"http": {"url": receiver_url}, "attrs": ["TimeInstant"],
                                        "attrsFormat": "normalized"}})
    ids = []
    for body in bodies:
        response = requests.post(f"{ngsi_url}/v2/subscriptions", headers=tenant.headers, json=body, timeout=30)
        _check(response, f"creating the subscription {body.get('description')!r}")
        ids.append(response.headers.get("Location", "").rsplit("/", 1)[-1])
    return ids
