"""What the endpoints hold, read through the standard APIs only (IoT Agent north API, NGSI-v2,
QuantumLeap), for every tenant and service path an inventory covers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flexmeter.ngsi import FiwareHeaders, NgsiClient, NgsiClientError
from flexmeter.ngsi.iota import IotAgentClient
from flexmeter.ngsi.quantumleap import QuantumLeapClient
from flexmeter.provisioning.desired import STATIC_TYPES, Desired
from flexmeter.provisioning.errors import EndpointError

Json = dict[str, Any]
Ident = tuple[str, str, str, str]


@dataclass
class Endpoints:
    """The three clients and the token; one of each for the whole run (pooled connections)."""

    ngsi_url: str
    iota_url: str
    ql_url: str | None = None
    token: str | None = None
    timeout: float = 60.0
    ngsi: NgsiClient = field(init=False)
    iota: IotAgentClient = field(init=False)
    ql: QuantumLeapClient | None = field(init=False)

    def __post_init__(self) -> None:
        self.ngsi = NgsiClient(self.ngsi_url, timeout=self.timeout)
        self.iota = IotAgentClient(self.iota_url, timeout=self.timeout)
        self.ql = QuantumLeapClient(self.ql_url, timeout=self.timeout) if self.ql_url else None

    def headers(self, service: str, service_path: str) -> FiwareHeaders:
        return FiwareHeaders(service, service_path, self.token)

    def close(self) -> None:
        for client in (self.ngsi, self.iota, self.ql):
            if client is not None:
                client.close()


@dataclass
class Check:
    name: str
    url: str
    ok: bool
    detail: str


def check_endpoints(endpoints: Endpoints) -> list[Check]:
    """Reachability and versions (Orion ``/version``, the agent's ``/iot/about``, QuantumLeap ``/version``)."""
    checks: list[Check] = []
    probes: list[tuple[str, str, Any]] = [
        ("context broker", endpoints.ngsi_url, lambda: endpoints.ngsi.version().get("orion", {}).get("version")),
        ("IoT Agent", endpoints.iota_url, lambda: endpoints.iota.about().get("libVersion")),
    ]
    if endpoints.ql is not None:
        ql = endpoints.ql
        probes.append(("time series", str(endpoints.ql_url), lambda: ql.version().get("version")))
    for name, url, probe in probes:
        try:
            checks.append(Check(name, url, True, f"version {probe()}"))
        except NgsiClientError as exc:
            reason = "connection refused" if "refused" in str(exc) else str(exc)[:160]
            checks.append(Check(name, url, False, reason))
    return checks


@dataclass
class Remote:
    """Remote resources by identity ``(kind, service, path, key)``; ``extra`` scopes listed in full."""

    items: dict[Ident, Json] = field(default_factory=dict)
    #: subscription ids by identity
    ids: dict[Ident, str] = field(default_factory=dict)

    def get(self, ident: Ident) -> Json | None:
        return self.items.get(ident)


def _group_key(group: Json) -> str:
    return f"{group.get('resource') or ''}|{group.get('apikey')}"


def read_remote(endpoints: Endpoints, desired: Desired, *, entity_types: Iterable[str] = STATIC_TYPES) -> Remote:
    """Everything in the inventory's scopes: groups, devices, entities of the provisioned types, and the
    subscriptions of the service paths the inventory subscribes in. Raises :class:`EndpointError`."""
    remote = Remote()
    types = list(entity_types)
    try:
        for service, path in desired.scopes:
            headers = endpoints.headers(service, path)
            for group in endpoints.iota.list_groups(headers=headers):
                if group.get("subservice", path) == path:
                    remote.items[("group", service, path, _group_key(group))] = group
            for dev in endpoints.iota.iter_devices(headers=headers, page=1000):
                if dev.get("service_path", path) == path:
                    remote.items[("device", service, path, str(dev["device_id"]))] = dev
            for entity_type in types:
                for entity in endpoints.ngsi.iter_entities(headers=headers, type=entity_type, page=1000):
                    remote.items[("entity", service, path, f"{entity['type']}|{entity['id']}")] = entity
        for service, path in sorted({(r.service, r.service_path) for r in desired.of("subscription")}):
            for sub in endpoints.ngsi.list_subscriptions(headers=endpoints.headers(service, path)):
                ident = ("subscription", service, path, str(sub.get("description") or ""))
                if ident[3] and ident not in remote.items:
                    remote.items[ident] = sub
                    remote.ids[ident] = str(sub["id"])
    except NgsiClientError as exc:
        raise EndpointError(f"cannot read the current state (nothing was changed): {exc}") from exc
    return remote
