"""Registrations CRUD and forwarding to a real HTTP context provider (how IoT Agents get commands)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Response, request

from flexmeter.serving import BackgroundServer
from tests.contextbroker.conftest import Ngsi, assert_error


class Provider:
    """An NGSI-v2 context provider: records forwarded updates, answers forwarded queries."""

    def __init__(self) -> None:
        self.updates: list[tuple[dict[str, str], Any]] = []
        self.queries: list[Any] = []
        self.fail = False
        self._lock = threading.Lock()
        app = Flask("provider")

        @app.post("/v2/op/update")
        def op_update() -> Response:
            with self._lock:
                self.updates.append((dict(request.headers), request.get_json()))
            return Response(status=500 if self.fail else 204)

        @app.post("/v2/op/query")
        def op_query() -> Response:
            body = request.get_json()
            with self._lock:
                self.queries.append(body)
            entity = body["entities"][0]
            result = {
                "id": entity["id"],
                "type": entity.get("type", "Device"),
                "battery": {"type": "Number", "value": 87, "metadata": {}},
            }
            return Response(json.dumps([result]), 200, mimetype="application/json")

        self.server = BackgroundServer(app)

    @property
    def url(self) -> str:
        return self.server.url + "/v2"


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    p.server.start()
    try:
        yield p
    finally:
        p.server.stop()


def registration(url: str, attrs: list[str], mode: str = "all", **entity: str) -> dict[str, Any]:
    return {
        "description": "commands of a device",
        "dataProvided": {"entities": [entity or {"id": "Dev1", "type": "Device"}], "attrs": attrs},
        "provider": {"http": {"url": url}, "supportedForwardingMode": mode},
    }


def test_crud(ngsi: Ngsi) -> None:
    response = ngsi.post("/v2/registrations", registration("http://localhost:4041/v2", ["reset"]))
    assert response.status_code == 201, response.text
    location = response.headers["Location"]
    reg_id = location.rsplit("/", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{24}", reg_id)
    got = ngsi.get(location).json()
    assert got["id"] == reg_id
    assert got["dataProvided"] == {"entities": [{"id": "Dev1", "type": "Device"}], "attrs": ["reset"]}
    assert got["provider"]["http"]["url"] == "http://localhost:4041/v2"
    assert got["status"] == "active"
    listed = ngsi.get("/v2/registrations", params={"options": "count"})
    assert listed.headers["Fiware-Total-Count"] == "1"
    assert [r["id"] for r in listed.json()] == [reg_id]
    assert ngsi.delete(location).status_code == 204
    assert_error(ngsi.get(location), 404, "NotFound", "The requested registration has not been found. Check id")
    assert ngsi.get("/v2/registrations").json() == []


def test_invalid_registrations(ngsi: Ngsi) -> None:
    assert_error(ngsi.post("/v2/registrations", {"provider": {"http": {"url": "http://x"}}}), 400, "BadRequest")
    bad_url = registration("ftp://x", ["a"])
    assert_error(ngsi.post("/v2/registrations", bad_url), 400, "BadRequest")
    bad_mode = registration("http://x", ["a"], mode="sometimes")
    assert_error(ngsi.post("/v2/registrations", bad_mode), 400, "BadRequest")


def test_update_of_registered_attribute_is_forwarded(ngsi: Ngsi, provider: Provider) -> None:
    ngsi.create({"id": "Dev1", "type": "Device", "reset_status": {"value": "UNKNOWN"}})
    assert ngsi.post("/v2/registrations", registration(provider.url, ["reset"])).status_code == 201
    response = ngsi.patch(
        "/v2/entities/Dev1/attrs",
        {"reset": {"type": "command", "value": "now"}, "reset_status": {"value": "PENDING"}},
        headers={"Fiware-ServicePath": "/"},
    )
    assert response.status_code == 204, response.text
    assert len(provider.updates) == 1
    headers, body = provider.updates[0]
    assert headers["Fiware-Service"] == ngsi.service
    assert body["actionType"] == "update"
    assert body["entities"] == [
        {"id": "Dev1", "type": "Device", "reset": {"type": "command", "value": "now", "metadata": {}}}
    ]
    queries = len(provider.queries)
    local = ngsi.get("/v2/entities/Dev1", params={"options": "keyValues,skipForwarding"}).json()
    assert len(provider.queries) == queries  # skipForwarding: the provider is not asked
    assert "battery" not in local
    assert local["reset_status"] == "PENDING"  # the unregistered attribute is stored locally
    batch = {
        "actionType": "update",
        "entities": [{"id": "Dev1", "type": "Device", "reset": {"value": "again"}}],
    }
    assert ngsi.post("/v2/op/update", batch).status_code == 204
    assert len(provider.updates) == 2
    assert provider.updates[1][1]["entities"][0]["reset"]["value"] == "again"


def test_failed_forward_is_reported(ngsi: Ngsi, provider: Provider) -> None:
    ngsi.create({"id": "Dev1", "type": "Device"})
    ngsi.post("/v2/registrations", registration(provider.url, ["reset"]))
    provider.fail = True
    response = ngsi.patch("/v2/entities/Dev1/attrs", {"reset": {"value": "x"}})
    assert response.status_code == 404, response.text


def test_query_of_registered_attribute_is_forwarded(ngsi: Ngsi, provider: Provider) -> None:
    ngsi.create({"id": "Dev1", "type": "Device", "name": {"value": "meter"}})
    ngsi.post("/v2/registrations", registration(provider.url, ["battery"], mode="query"))
    body = ngsi.get("/v2/entities/Dev1", params={"options": "keyValues"}).json()
    assert body == {"id": "Dev1", "type": "Device", "name": "meter", "battery": 87}
    assert provider.queries[-1]["entities"] == [{"id": "Dev1", "type": "Device"}]
    assert provider.queries[-1]["attrs"] == ["battery"]
    value = ngsi.get("/v2/entities/Dev1/attrs/battery/value", headers={"Accept": "text/plain"})
    assert value.text == "87"
    # a query-only registration never receives updates
    ngsi.patch("/v2/entities/Dev1/attrs", {"name": {"value": "x"}})
    assert provider.updates == []


def test_registrations_are_scoped_by_service_path(ngsi: Ngsi, provider: Provider) -> None:
    turin = {"Fiware-ServicePath": "/turin"}
    malmo = {"Fiware-ServicePath": "/malmo"}
    assert ngsi.post("/v2/registrations", registration(provider.url, ["reset"]), headers=turin).status_code == 201
    ngsi.create({"id": "Dev1", "type": "Device"}, headers=malmo)
    ngsi.create({"id": "Dev1", "type": "Device"}, headers=turin)
    assert ngsi.patch("/v2/entities/Dev1/attrs", {"reset": {"value": 1}}, headers=malmo).status_code == 422
    assert provider.updates == []
    assert ngsi.patch("/v2/entities/Dev1/attrs", {"reset": {"value": 1}}, headers=turin).status_code == 204
    assert len(provider.updates) == 1
    assert provider.updates[0][0]["Fiware-Servicepath"] == "/turin"
    assert len(ngsi.get("/v2/registrations", headers=malmo).json()) == 0
    assert len(ngsi.get("/v2/registrations", headers=turin).json()) == 1
