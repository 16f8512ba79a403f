"""IoT Agent north (provisioning) API client: iotagent-node-lib's /iot/about, /iot/services, /iot/devices.

Works against flexmeter's agent and the FIWARE agents alike; errors are :class:`NgsiResponseError` with
``error``/``description`` taken from the agents' ``name``/``message``.
"""

from __future__ import annotations

from typing import Any

from flexmeter.ngsi.errors import NgsiResponseError
from flexmeter.ngsi.headers import FiwareHeaders
from flexmeter.ngsi.http import HttpApi

Json = dict[str, Any]


class IotAgentClient(HttpApi):
    """One method per provisioning operation; tenant from the client's headers or ``headers=``."""

    def about(self) -> Json:
        result: Json = self.request("GET", "/iot/about").json()
        return result

    # -- service groups ---------------------------------------------------------------------------------
    def list_groups(self, *, headers: FiwareHeaders | None = None, limit: int | None = None,
                    offset: int | None = None) -> list[Json]:
        body = self.request("GET", "/iot/services", headers=headers,
                            params={"limit": limit, "offset": offset}).json()
        groups: list[Json] = body.get("services", body.get("groups", []))
        return groups

    def create_groups(self, groups: list[Json], *, headers: FiwareHeaders | None = None) -> None:
        self.request("POST", "/iot/services", json={"services": groups}, headers=headers)

    def create_group(self, group: Json, *, headers: FiwareHeaders | None = None) -> None:
        self.create_groups([group], headers=headers)

    def update_group(self, apikey: str, patch: Json, *, resource: str = "",
                     headers: FiwareHeaders | None = None) -> None:
        self.request("PUT", "/iot/services", json=patch, params={"apikey": apikey, "resource": resource},
                     headers=headers)

    def delete_group(self, apikey: str, *, resource: str = "", headers: FiwareHeaders | None = None) -> None:
        self.request("DELETE", "/iot/services", params={"apikey": apikey, "resource": resource}, headers=headers)

    # -- devices -------------------------------------------------------------------------------------------
    def list_devices(self, *, headers: FiwareHeaders | None = None, limit: int = 20,
                     offset: int = 0) -> tuple[int, list[Json]]:
        body = self.request("GET", "/iot/devices", headers=headers,
                            params={"limit": limit, "offset": offset}).json()
        return int(body.get("count", 0)), list(body.get("devices", []))

    def iter_devices(self, *, headers: FiwareHeaders | None = None, page: int = 500) -> list[Json]:
        devices: list[Json] = []
        offset = 0
        while True:
            count, batch = self.list_devices(headers=headers, limit=page, offset=offset)
            devices.extend(batch)
            offset += len(batch)
            if not batch or offset >= count:
                return devices

    def create_devices(self, devices: list[Json], *, headers: FiwareHeaders | None = None) -> None:
        self.request("POST", "/iot/devices", json={"devices": devices}, headers=headers)

    def create_device(self, device: Json, *, headers: FiwareHeaders | None = None) -> None:
        self.create_devices([device], headers=headers)

    def get_device(self, device_id: str, *, headers: FiwareHeaders | None = None) -> Json:
        result: Json = self.request("GET", f"/iot/devices/{device_id}", headers=headers).json()
        return result

    def device_exists(self, device_id: str, *, headers: FiwareHeaders | None = None) -> bool:
        try:
            self.get_device(device_id, headers=headers)
        except NgsiResponseError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def update_device(self, device_id: str, patch: Json, *, headers: FiwareHeaders | None = None) -> None:
        self.request("PUT", f"/iot/devices/{device_id}", json=patch, headers=headers)

    def delete_device(self, device_id: str, *, headers: FiwareHeaders | None = None) -> None:
        self.request("DELETE", f"/iot/devices/{device_id}", headers=headers)
