"""Curated conformance checks of an IoT Agent north API (iotagent-node-lib's provisioning API, doc/api.md).

The agent's own tests start their own agents, so they cannot qualify a given endpoint; these checks talk
only to the URL they are given, under a fresh tenant, and clean up after themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import requests


@dataclass
class CheckResult:
    area: str
    name: str
    outcome: str
    """passed, failed, skipped or error"""
    message: str = ""
    seconds: float = 0.0


AREA = "IoT Agent north API"


def run_iota_checks(iota_url: str) -> list[CheckResult]:
    import time

    http = requests.Session()
    tenant = {"Fiware-Service": f"conf{uuid.uuid4().hex[:8]}", "Fiware-ServicePath": "/conformance"}
    apikey = f"k{uuid.uuid4().hex[:10]}"
    device = f"conf-{uuid.uuid4().hex[:6]}"
    group = {"apikey": apikey, "resource": "/iot/json", "entity_type": "ConformanceMeter",
             "attributes": [{"object_id": "e", "name": "energy", "type": "Number"}]}

    def about() -> str | None:
        body = http.get(f"{iota_url}/iot/about", timeout=10).json()
        return None if "libVersion" in body else f"no libVersion in {body}"

    def headers_required() -> str | None:
        response = http.get(f"{iota_url}/iot/devices", timeout=10)
        return None if response.status_code == 400 else f"{response.status_code} without fiware-service"

    def create_group() -> str | None:
        response = http.post(f"{iota_url}/iot/services", headers=tenant, json={"services": [group]}, timeout=10)
        return None if response.status_code == 201 else f"{response.status_code} {response.text[:200]}"

    def list_groups() -> str | None:
        body = http.get(f"{iota_url}/iot/services", headers=tenant, timeout=10).json()
        keys = [g.get("apikey") for g in body.get("services", [])]
        return None if apikey in keys and "count" in body else f"group not listed: {body}"

    def duplicate_group() -> str | None:
        response = http.post(f"{iota_url}/iot/services", headers=tenant, json={"services": [group]}, timeout=10)
        return None if response.status_code == 409 else f"{response.status_code} (409 expected)"

    def create_device() -> str | None:
        response = http.post(f"{iota_url}/iot/devices", headers=tenant, timeout=10, json={"devices": [
            {"device_id": device, "entity_type": "ConformanceMeter", "protocol": "IoTA-JSON",
             "attributes": [{"object_id": "e", "name": "energy", "type": "Number"}]}]})
        return None if response.status_code == 201 else f"{response.status_code} {response.text[:200]}"

    def get_device() -> str | None:
        body = http.get(f"{iota_url}/iot/devices/{device}", headers=tenant, timeout=10).json()
        ok = body.get("device_id") == device and body.get("entity_name")
        return None if ok else f"unexpected device body {body}"

    def list_devices() -> str | None:
        body = http.get(f"{iota_url}/iot/devices", headers=tenant, timeout=10).json()
        ids = [d.get("device_id") for d in body.get("devices", [])]
        return None if device in ids and body.get("count", 0) >= 1 else f"device not listed: {body}"

    def duplicate_device() -> str | None:
        response = http.post(f"{iota_url}/iot/devices", headers=tenant, timeout=10,
                             json={"devices": [{"device_id": device, "protocol": "IoTA-JSON"}]})
        return None if response.status_code == 409 else f"{response.status_code} (409 expected)"

    def update_device() -> str | None:
        response = http.put(f"{iota_url}/iot/devices/{device}", headers=tenant, timeout=10,
                            json={"attributes": [{"object_id": "p", "name": "power", "type": "Number"}]})
        return None if response.status_code == 204 else f"{response.status_code} (204 expected)"

    def unknown_device() -> str | None:
        response = http.get(f"{iota_url}/iot/devices/nope-{uuid.uuid4().hex[:6]}", headers=tenant, timeout=10)
        if response.status_code != 404:
            return f"{response.status_code} (404 expected)"
        return None if response.json().get("name") == "DEVICE_NOT_FOUND" else f"body {response.text[:200]}"

    def delete_device() -> str | None:
        response = http.delete(f"{iota_url}/iot/devices/{device}", headers=tenant, timeout=10)
        if response.status_code != 204:
            return f"{response.status_code} (204 expected)"
        gone = http.get(f"{iota_url}/iot/devices/{device}", headers=tenant, timeout=10).status_code
        return None if gone == 404 else f"still there after DELETE ({gone})"

    def delete_group() -> str | None:
        response = http.delete(f"{iota_url}/iot/services", headers=tenant, timeout=10,
                               params={"apikey": apikey, "resource": "/iot/json"})
        return None if response.status_code == 204 else f"{response.status_code} (204 expected)"

    checks: list[tuple[str, Callable[[], str | None]]] = [
        ("GET /iot/about answers libVersion", about),
        ("fiware-service is required on /iot/devices (400)", headers_required),
        ("POST /iot/services creates a group (201)", create_group),
        ("GET /iot/services lists it with count", list_groups),
        ("a duplicate group is refused (409)", duplicate_group),
        ("POST /iot/devices creates a device (201)", create_device),
        ("GET /iot/devices/{id} returns it with entity_name", get_device),
        ("GET /iot/devices lists it with count", list_devices),
        ("a duplicate device is refused (409)", duplicate_device),
        ("PUT /iot/devices/{id} updates attributes (204)", update_device),
        ("an unknown device is 404 DEVICE_NOT_FOUND", unknown_device),
        ("DELETE /iot/devices/{id} (204), then 404", delete_device),
        ("DELETE /iot/services?apikey&resource (204)", delete_group),
    ]
    results = []
    for name, check in checks:
        began = time.monotonic()
        try:
            problem = check()
            outcome, message = ("passed", "") if problem is None else ("failed", problem)
        except (requests.RequestException, ValueError) as exc:
            outcome, message = "error", f"{type(exc).__name__}: {exc}"
        results.append(CheckResult(AREA, name, outcome, message, round(time.monotonic() - began, 3)))
    return results
