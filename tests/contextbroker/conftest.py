"""Fixtures for the broker contract tests: an NGSI-v2 client on a tenant of its own per test.

The tests run against ``ngsi_url`` (the embedded broker, or any NGSI-v2 server when NGSI_URL is set), so
they can qualify a real Orion; tests of the embedded broker's own internals say so in their name.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.processes import FlexmeterProcess


class Ngsi:
    """A thin requests wrapper that adds the tenant headers and keeps raw responses for assertions."""

    def __init__(self, base: str, service: str, service_path: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.service = service
        self.service_path = service_path
        self.session = requests.Session()
        self.session.trust_env = False

    def headers(self, extra: dict[str, str] | None = None, *, json_body: bool = False) -> dict[str, str]:
        headers = {"Fiware-Service": self.service}
        if self.service_path is not None:
            headers["Fiware-ServicePath"] = self.service_path
        if json_body:
            headers["Content-Type"] = "application/json"
        headers.update(extra or {})
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | str | None = None,
    ) -> requests.Response:
        data: bytes | str | None = raw
        if body is not None:
            data = json.dumps(body)
        return self.session.request(
            method,
            self.base + path,
            data=data,
            params=params,
            timeout=10,
            headers=self.headers(headers, json_body=data is not None and raw is None),
        )

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def create(self, entity: dict[str, Any], **kw: Any) -> requests.Response:
        response = self.post("/v2/entities", entity, **kw)
        assert response.status_code in (201, 204), response.text
        return response


def unique_service() -> str:
    return "t" + uuid.uuid4().hex[:16]


@pytest.fixture
def ngsi(ngsi_url: str) -> Ngsi:
    """A client on a fresh tenant of the broker under test."""
    return Ngsi(ngsi_url, unique_service())


def assert_error(response: requests.Response, status: int, error: str, description: str | None = None) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["error"] == error, body
    if description is not None:
        assert body["description"] == description, body


@pytest.fixture(scope="session")
def broker_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlexmeterProcess]:
    """One embedded broker per test process for this area: tests isolate themselves by tenant, and a
    broker start costs seconds on a loaded machine."""
    proc = FlexmeterProcess(["broker", "--port", "0", "--db", str(tmp_path_factory.mktemp("cb") / "b.db")])
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def ngsi_url(broker_session: FlexmeterProcess) -> str:
    """NGSI_URL when set (qualify a real Orion with the same tests), else this area's embedded broker."""
    return os.environ.get("NGSI_URL") or broker_session.url


@pytest.fixture(scope="module")
def module_broker_url(broker_session: FlexmeterProcess) -> str:
    """The embedded broker itself (for tests of its own endpoints, e.g. /metrics), never NGSI_URL."""
    return broker_session.url
