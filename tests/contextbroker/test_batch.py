"""Contract tests of POST /v2/op/update (every actionType) and POST /v2/op/query."""

from __future__ import annotations

from typing import Any

from tests.contextbroker.conftest import Ngsi, assert_error


def meter(i: int, power: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Meter:{i:03d}",
        "type": "Meter",
        "power": {"type": "Number", "value": power},
        **extra,
    }


def key_values(ngsi: Ngsi, **params: Any) -> list[dict[str, Any]]:
    response = ngsi.get("/v2/entities", params={"options": "keyValues", "limit": 1000, **params})
    assert response.status_code == 200, response.text
    return list(response.json())


def test_append_creates_then_updates(ngsi: Ngsi) -> None:
    batch = {"actionType": "append", "entities": [meter(i, i * 1.5) for i in range(100)]}
    response = ngsi.post("/v2/op/update", batch)
    assert response.status_code == 204, response.text
    assert len(key_values(ngsi)) == 100
    again = {
        "actionType": "append",
        "entities": [meter(i, 7.0, status={"value": "ok"}) for i in range(0, 100, 10)],
    }
    assert ngsi.post("/v2/op/update", again).status_code == 204
    entities = {e["id"]: e for e in key_values(ngsi)}
    assert entities["urn:ngsi-ld:Meter:010"] == {
        "id": "urn:ngsi-ld:Meter:010",
        "type": "Meter",
        "power": 7.0,
        "status": "ok",
    }
    assert entities["urn:ngsi-ld:Meter:011"]["power"] == 16.5


def test_key_values_batch(ngsi: Ngsi) -> None:
    batch = {"actionType": "append", "entities": [{"id": "K", "type": "T", "v": 1, "s": "x"}]}
    assert ngsi.post("/v2/op/update", batch, params={"options": "keyValues"}).status_code == 204
    assert ngsi.get("/v2/entities/K").json()["v"] == {"type": "Number", "value": 1, "metadata": {}}


def test_append_strict(ngsi: Ngsi) -> None:
    ngsi.create(meter(1, 1.0))
    fresh = {"actionType": "appendStrict", "entities": [meter(2, 2.0)]}
    assert ngsi.post("/v2/op/update", fresh).status_code == 204
    clash = {"actionType": "appendStrict", "entities": [meter(1, 5.0)]}
    assert_error(ngsi.post("/v2/op/update", clash), 422, "Unprocessable")
    assert ngsi.get("/v2/entities/urn:ngsi-ld:Meter:001").json()["power"]["value"] == 1.0


def test_update_and_missing(ngsi: Ngsi) -> None:
    ngsi.create(meter(1, 1.0))
    ok = {"actionType": "update", "entities": [meter(1, 9.0)]}
    assert ngsi.post("/v2/op/update", ok).status_code == 204
    assert ngsi.get("/v2/entities/urn:ngsi-ld:Meter:001").json()["power"]["value"] == 9.0
    missing_entity = {"actionType": "update", "entities": [meter(5, 1.0)]}
    assert_error(ngsi.post("/v2/op/update", missing_entity), 404, "NotFound")
    assert_error(ngsi.get("/v2/entities/urn:ngsi-ld:Meter:005"), 404, "NotFound")  # update never creates
    mixed = {"actionType": "update", "entities": [meter(1, 3.0), meter(6, 1.0)]}
    response = ngsi.post("/v2/op/update", mixed)
    assert response.status_code == 422, response.text
    assert ngsi.get("/v2/entities/urn:ngsi-ld:Meter:001").json()["power"]["value"] == 3.0


def test_replace_and_delete(ngsi: Ngsi) -> None:
    ngsi.create(meter(1, 1.0, status={"value": "ok"}))
    ngsi.create(meter(2, 2.0, status={"value": "ok"}))
    replace = {
        "actionType": "replace",
        "entities": [{"id": "urn:ngsi-ld:Meter:001", "type": "Meter", "voltage": {"value": 230}}],
    }
    assert ngsi.post("/v2/op/update", replace).status_code == 204
    assert ngsi.get("/v2/entities/urn:ngsi-ld:Meter:001", params={"options": "keyValues"}).json() == {
        "id": "urn:ngsi-ld:Meter:001",
        "type": "Meter",
        "voltage": 230,
    }
    delete_attr = {
        "actionType": "delete",
        "entities": [{"id": "urn:ngsi-ld:Meter:002", "type": "Meter", "status": {}}],
    }
    assert ngsi.post("/v2/op/update", delete_attr).status_code == 204
    assert ngsi.get("/v2/entities/urn:ngsi-ld:Meter:002", params={"options": "keyValues"}).json() == {
        "id": "urn:ngsi-ld:Meter:002",
        "type": "Meter",
        "power": 2.0,
    }
    delete = {
        "actionType": "delete",
        "entities": [
            {"id": "urn:ngsi-ld:Meter:001", "type": "Meter"},
            {"id": "urn:ngsi-ld:Meter:002", "type": "Meter"},
        ],
    }
    assert ngsi.post("/v2/op/update", delete).status_code == 204
    assert key_values(ngsi) == []


def test_bad_batches(ngsi: Ngsi) -> None:
    assert_error(ngsi.post("/v2/op/update", {"actionType": "explode", "entities": [meter(1, 1)]}), 400, "BadRequest")
    assert_error(ngsi.post("/v2/op/update", {"entities": [meter(1, 1)]}), 400, "BadRequest")
    assert_error(ngsi.post("/v2/op/update", {"actionType": "append", "entities": []}), 400, "BadRequest")
    assert_error(ngsi.post("/v2/op/update", {"actionType": "append", "entities": "x"}), 400, "BadRequest")
    bad_one = {"actionType": "append", "entities": [meter(1, 1), {"id": "bad id", "type": "T"}]}
    assert_error(ngsi.post("/v2/op/update", bad_one), 400, "BadRequest")
    assert key_values(ngsi) == []  # validation happens before any write: nothing half-applied


def test_op_query(ngsi: Ngsi) -> None:
    entities = [meter(i, float(i)) for i in range(10)] + [{"id": "B1", "type": "Building", "h": {"value": 1}}]
    assert ngsi.post("/v2/op/update", {"actionType": "append", "entities": entities}).status_code == 204
    response = ngsi.post(
        "/v2/op/query",
        {
            "entities": [{"idPattern": ".*", "type": "Meter"}],
            "attrs": ["power"],
            "expression": {"q": "power>6"},
        },
        params={"options": "count,keyValues"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["Fiware-Total-Count"] == "3"
    assert response.json() == [
        {"id": f"urn:ngsi-ld:Meter:{i:03d}", "type": "Meter", "power": float(i)} for i in (7, 8, 9)
    ]
    by_id = ngsi.post(
        "/v2/op/query",
        {"entities": [{"id": "B1"}, {"id": "urn:ngsi-ld:Meter:001"}]},
        params={"options": "keyValues"},
    ).json()
    assert [e["id"] for e in by_id] == ["urn:ngsi-ld:Meter:001", "B1"]
    everything = ngsi.post("/v2/op/query", {}, params={"limit": 1000}).json()
    assert len(everything) == 11
    assert_error(ngsi.post("/v2/op/query", {"entities": [{"idPattern": "("}]}), 400, "BadRequest")


def test_op_notify_applies_a_notification(ngsi: Ngsi) -> None:
    notification = {
        "subscriptionId": "5f1e0a7b9c3d2e1f0a9b8c7d",
        "data": [meter(1, 4.5), {"id": "B1", "type": "Building", "h": {"type": "Number", "value": 2}}],
    }
    response = ngsi.post("/v2/op/notify", notification)
    assert response.status_code == 200, response.text
    assert {e["id"]: e for e in key_values(ngsi)}["urn:ngsi-ld:Meter:001"]["power"] == 4.5
    notification["data"] = [meter(1, 5.5)]
    assert ngsi.post("/v2/op/notify", notification).status_code == 200
    assert ngsi.get("/v2/entities/urn:ngsi-ld:Meter:001").json()["power"]["value"] == 5.5
    assert_error(ngsi.post("/v2/op/notify", {"data": []}), 400, "BadRequest", "/subscriptionId/ must be a JSON String")
    assert_error(
        ngsi.post("/v2/op/notify", {"subscriptionId": "x", "data": {}}),
        400,
        "BadRequest",
        "/data/ must be a JSON Array",
    )
