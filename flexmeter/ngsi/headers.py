"""The FIWARE multi-tenancy headers, as one value passed to every client call."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FiwareHeaders:
    """``Fiware-Service`` (a utility) and ``Fiware-ServicePath`` (a pilot area); None omits the header."""

    service: str | None = None
    service_path: str | None = None
    token: str | None = None
    correlator: str | None = None

    def as_dict(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.service:
            headers["Fiware-Service"] = self.service
        if self.service_path:
            headers["Fiware-ServicePath"] = self.service_path
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
            headers["X-Auth-Token"] = self.token
        if self.correlator:
            headers["Fiware-Correlator"] = self.correlator
        return headers

    def with_path(self, service_path: str) -> FiwareHeaders:
        return FiwareHeaders(self.service, service_path, self.token, self.correlator)
