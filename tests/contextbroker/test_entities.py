"""Contract tests of /v2/entities, its attribute sub-resources and /v2/types (Orion's API manual).

They run against ``ngsi_url``: the embedded broker, or a real Orion when NGSI_URL is set.
"""

from __future__ import annotations

from typing import Any

from tests.contextbroker.conftest import Ngsi, assert_error

NOT_FOUND = "The requested entity has not been found. Check type and id"


def room(entity_id: str = "Room1", temperature: Any = 21.5, **extra: Any) -> dict[str, Any]:
    return {
        "id": entity_id,
        "type": "Room",
        "temperature": {
            "type": "Number",
            "value": temperature,
            "metadata": {"unitCode": {"type": "Text", "value": "CEL"}},
        },
        "name": {"value": "lab"},
        **extra,
    }


def test_create_get_delete(ngsi: Ngsi) -> None:
    response = ngsi.post("/v2/entities", room())
    assert response.status_code == 201
    assert response.headers["Location"] == "/v2/entities/Room1?type=Room"
    assert response.text == ""
    got = ngsi.get("/v2/entities/Room1")
    assert got.status_code == 200
    assert got.headers["Content-Type"].startswith("application/json")
    assert got.json() == {
        "id": "Room1",
        "type": "Room",
        "temperature": {
            "type": "Number",
            "value": 21.5,
            "metadata": {"unitCode": {"type": "Text", "value": "CEL"}},
        },
        "name": {"type": "Text", "value": "lab", "metadata": {}},
    }
    assert_error(ngsi.post("/v2/entities", room()), 422, "Unprocessable", "Already Exists")
    assert ngsi.delete("/v2/entities/Room1").status_code == 204
    assert_error(ngsi.get("/v2/entities/Room1"), 404, "NotFound", NOT_FOUND)
    assert_error(ngsi.delete("/v2/entities/Room1"), 404, "NotFound", NOT_FOUND)


def test_default_types_and_thing(ngsi: Ngsi) -> None:
    ngsi.create(
        {
            "id": "E",
            "n": {"value": 1},
            "t": {"value": "x"},
            "b": {"value": True},
            "s": {"value": {"a": [1, 2]}},
            "z": {"value": None},
            "l": {"value": [1]},
        }
    )
    body = ngsi.get("/v2/entities/E").json()
    assert body["type"] == "Thing"
    assert {k: v["type"] for k, v in body.items() if isinstance(v, dict)} == {
        "n": "Number",
        "t": "Text",
        "b": "Boolean",
        "s": "StructuredValue",
        "z": "None",
        "l": "StructuredValue",
    }


def test_key_values_create_and_render(ngsi: Ngsi) -> None:
    response = ngsi.post(
        "/v2/entities",
        {"id": "K1", "type": "Meter", "power": 3.5, "on": False},
        params={"options": "keyValues"},
    )
    assert response.status_code == 201
    assert ngsi.get("/v2/entities/K1", params={"options": "keyValues"}).json() == {
        "id": "K1",
        "type": "Meter",
        "power": 3.5,
        "on": False,
    }
    assert ngsi.get("/v2/entities/K1", params={"options": "values", "attrs": "on,power"}).json() == [
        False,
        3.5,
    ]
    assert ngsi.get("/v2/entities/K1/attrs", params={"options": "keyValues"}).json() == {
        "power": 3.5,
        "on": False,
    }


def test_datetime_and_builtins(ngsi: Ngsi) -> None:
    ngsi.create(
        {
            "id": "D1",
            "type": "T",
            "when": {"type": "DateTime", "value": "2024-01-01T01:00:00+01:00"},
            "x": {"value": 1},
        }
    )
    body = ngsi.get(
        "/v2/entities/D1", params={"attrs": "when,dateCreated,dateModified", "metadata": "dateCreated"}
    ).json()
    assert body["when"]["value"] == "2024-01-01T00:00:00.000Z"
    assert body["when"]["metadata"]["dateCreated"]["type"] == "DateTime"
    assert body["dateCreated"]["type"] == "DateTime"
    assert body["dateCreated"]["value"].endswith("Z")
    assert "x" not in body
    plain = ngsi.get("/v2/entities/D1").json()
    assert "dateCreated" not in plain and "dateModified" not in plain
    assert plain["when"]["metadata"] == {}
    bad = ngsi.post("/v2/entities", {"id": "D2", "when": {"type": "DateTime", "value": "not a date"}})
    assert_error(bad, 400, "BadRequest")


def test_date_expires(ngsi: Ngsi) -> None:
    ngsi.create({"id": "X1", "type": "T", "dateExpires": {"type": "DateTime", "value": "2099-01-01T00:00:00Z"}})
    assert "dateExpires" not in ngsi.get("/v2/entities/X1").json()
    got = ngsi.get("/v2/entities/X1", params={"attrs": "dateExpires"}).json()
    assert got["dateExpires"] == {"type": "DateTime", "value": "2099-01-01T00:00:00.000Z", "metadata": {}}


def test_upsert(ngsi: Ngsi) -> None:
    first = ngsi.post("/v2/entities", room(temperature=1), params={"options": "upsert"})
    assert first.status_code == 204  # Orion's quirk: 204 even when it creates
    second = ngsi.post(
        "/v2/entities",
        {"id": "Room1", "type": "Room", "temperature": {"value": 2}, "extra": {"value": "x"}},
        params={"options": "upsert"},
    )
    assert second.status_code == 204
    body = ngsi.get("/v2/entities/Room1", params={"options": "keyValues"}).json()
    assert body == {"id": "Room1", "type": "Room", "temperature": 2, "name": "lab", "extra": "x"}


def test_list_filters_pagination_and_count(ngsi: Ngsi) -> None:
    for i in range(25):
        ngsi.create({"id": f"M{i:02d}", "type": "Meter" if i % 2 else "Valve", "n": {"value": i}})
    page = ngsi.get("/v2/entities")
    assert page.status_code == 200 and len(page.json()) == 20  # Orion's default limit
    assert "Fiware-Total-Count" not in page.headers
    counted = ngsi.get("/v2/entities", params={"options": "count", "limit": 5, "offset": 20})
    assert counted.headers["Fiware-Total-Count"] == "25"
    assert [e["id"] for e in counted.json()] == ["M20", "M21", "M22", "M23", "M24"]  # creation order
    meters = ngsi.get("/v2/entities", params={"type": "Meter", "limit": 100, "options": "count"})
    assert meters.headers["Fiware-Total-Count"] == "12"
    assert {e["type"] for e in meters.json()} == {"Meter"}
    by_ids = ngsi.get("/v2/entities", params={"id": "M03,M01", "options": "keyValues"}).json()
    assert [e["id"] for e in by_ids] == ["M01", "M03"]
    pattern = ngsi.get("/v2/entities", params={"idPattern": "^M1[0-2]$", "options": "keyValues"}).json()
    assert [e["id"] for e in pattern] == ["M10", "M11", "M12"]
    type_pattern = ngsi.get("/v2/entities", params={"typePattern": "^Val", "limit": 1000, "options": "count"})
    assert type_pattern.headers["Fiware-Total-Count"] == "13"
    assert_error(ngsi.get("/v2/entities", params={"limit": 1001}), 400, "BadRequest")
    assert_error(ngsi.get("/v2/entities", params={"limit": 0}), 400, "BadRequest")
    assert_error(ngsi.get("/v2/entities", params={"offset": "x"}), 400, "BadRequest")
    assert_error(ngsi.get("/v2/entities", params={"id": "a", "idPattern": "b"}), 400, "BadRequest")


def test_q_order_and_unique(ngsi: Ngsi) -> None:
    for i, color in enumerate(["red", "blue", "red", "green"]):
        ngsi.create({"id": f"C{i}", "type": "Car", "speed": {"value": 10 * i}, "color": {"value": color}})
    fast = ngsi.get("/v2/entities", params={"q": "speed>=20", "options": "keyValues", "attrs": "speed"}).json()
    assert [e["id"] for e in fast] == ["C2", "C3"]
    ordered = ngsi.get("/v2/entities", params={"orderBy": "!speed", "options": "keyValues"}).json()
    assert [e["id"] for e in ordered] == ["C3", "C2", "C1", "C0"]
    unique = ngsi.get("/v2/entities", params={"attrs": "color", "options": "unique"}).json()
    assert unique == [["red"], ["blue"], ["green"]]
    typed = ngsi.get("/v2/entities", params={"q": "color=='red'", "options": "keyValues"}).json()
    assert [e["id"] for e in typed] == ["C0", "C2"]


def test_patch_put_post_attrs(ngsi: Ngsi) -> None:
    ngsi.create(room())
    assert ngsi.patch("/v2/entities/Room1/attrs", {"temperature": {"type": "Number", "value": 30}}).status_code == 204
    body = ngsi.get("/v2/entities/Room1").json()
    assert body["temperature"]["value"] == 30
    assert body["temperature"]["metadata"] == {"unitCode": {"type": "Text", "value": "CEL"}}  # kept
    partial = ngsi.patch("/v2/entities/Room1/attrs", {"temperature": {"value": 31}, "ghost": {"value": 1}})
    assert_error(partial, 422, "PartialUpdate")
    assert ngsi.get("/v2/entities/Room1/attrs/temperature/value", headers={"Accept": "text/plain"}).text == "31"
    assert ngsi.post("/v2/entities/Room1/attrs", {"humidity": {"value": 40}}).status_code == 204
    strict = ngsi.post("/v2/entities/Room1/attrs", {"humidity": {"value": 41}}, params={"options": "append"})
    assert_error(strict, 422, "Unprocessable")
    assert ngsi.put("/v2/entities/Room1/attrs", {"only": {"value": "this"}}).status_code == 204
    assert ngsi.get("/v2/entities/Room1", params={"options": "keyValues"}).json() == {
        "id": "Room1",
        "type": "Room",
        "only": "this",
    }
    assert_error(ngsi.patch("/v2/entities/Nope/attrs", {"a": {"value": 1}}), 404, "NotFound", NOT_FOUND)
    assert_error(ngsi.patch("/v2/entities/Room1/attrs", {"id": "x"}), 400, "BadRequest")


def test_single_attribute_routes(ngsi: Ngsi) -> None:
    ngsi.create(room())
    attr = ngsi.get("/v2/entities/Room1/attrs/temperature")
    assert attr.json() == {
        "type": "Number",
        "value": 21.5,
        "metadata": {"unitCode": {"type": "Text", "value": "CEL"}},
    }
    assert ngsi.put("/v2/entities/Room1/attrs/temperature", {"value": 25, "type": "Number"}).status_code == 204
    assert ngsi.get("/v2/entities/Room1/attrs/temperature").json()["value"] == 25
    assert (
        ngsi.put(
            "/v2/entities/Room1/attrs/name/value", raw='"kitchen"', headers={"Content-Type": "text/plain"}
        ).status_code
        == 204
    )
    value = ngsi.get("/v2/entities/Room1/attrs/name/value", headers={"Accept": "text/plain"})
    assert value.text == '"kitchen"'
    assert ngsi.put("/v2/entities/Room1/attrs/name/value", {"nested": [1, 2]}).status_code == 204
    assert ngsi.get("/v2/entities/Room1/attrs/name/value").json() == {"nested": [1, 2]}
    assert ngsi.delete("/v2/entities/Room1/attrs/name").status_code == 204
    assert_error(
        ngsi.get("/v2/entities/Room1/attrs/name"),
        404,
        "NotFound",
        "The entity does not have such an attribute",
    )
    assert_error(ngsi.delete("/v2/entities/Room1/attrs/name"), 404, "NotFound")
    assert_error(ngsi.put("/v2/entities/Room1/attrs/ghost", {"value": 1}), 404, "NotFound")


def test_same_id_two_types(ngsi: Ngsi) -> None:
    ngsi.create({"id": "Dup", "type": "A", "x": {"value": 1}})
    ngsi.create({"id": "Dup", "type": "B", "x": {"value": 2}})
    assert_error(
        ngsi.get("/v2/entities/Dup"),
        409,
        "TooManyResults",
        "More than one matching entity. Please refine your query",
    )
    assert ngsi.get("/v2/entities/Dup", params={"type": "B"}).json()["x"]["value"] == 2


def test_types(ngsi: Ngsi) -> None:
    ngsi.create({"id": "A1", "type": "Meter", "p": {"value": 1}})
    ngsi.create({"id": "A2", "type": "Meter", "p": {"value": "x"}, "q": {"value": True}})
    ngsi.create({"id": "B1", "type": "Building", "h": {"value": 3}})
    listed = ngsi.get("/v2/types", params={"options": "count"})
    assert listed.headers["Fiware-Total-Count"] == "2"
    assert listed.json() == [
        {"type": "Building", "attrs": {"h": {"types": ["Number"]}}, "count": 1},
        {
            "type": "Meter",
            "attrs": {"p": {"types": ["Number", "Text"]}, "q": {"types": ["Boolean"]}},
            "count": 2,
        },
    ]
    assert ngsi.get("/v2/types", params={"options": "values"}).json() == ["Building", "Meter"]
    assert ngsi.get("/v2/types/Building").json() == {"attrs": {"h": {"types": ["Number"]}}, "count": 1}
    assert_error(ngsi.get("/v2/types/Nothing"), 404, "NotFound", "Entity type not found")


def test_service_paths_scope(ngsi: Ngsi) -> None:
    ngsi.create({"id": "S1", "type": "T"}, headers={"Fiware-ServicePath": "/turin/dh"})
    ngsi.create({"id": "S2", "type": "T"}, headers={"Fiware-ServicePath": "/turin/water"})
    ngsi.create({"id": "S3", "type": "T"}, headers={"Fiware-ServicePath": "/malmo"})

    def ids(path: str | None) -> list[str]:
        headers = {"Fiware-ServicePath": path} if path else {}
        return [e["id"] for e in ngsi.get("/v2/entities", headers=headers).json()]

    assert ids(None) == ["S1", "S2", "S3"]
    assert ids("/turin/#") == ["S1", "S2"]
    assert ids("/turin") == []
    assert ids("/turin/dh") == ["S1"]
    assert ids("/malmo, /turin/water") == ["S2", "S3"]
    assert_error(ngsi.get("/v2/entities/S1", headers={"Fiware-ServicePath": "/malmo"}), 404, "NotFound")
    assert ngsi.get("/v2/entities/S1", headers={"Fiware-ServicePath": "/turin/#"}).status_code == 200


def test_tenants_are_isolated(ngsi: Ngsi) -> None:
    other = Ngsi(ngsi.base, ngsi.service + "x")
    ngsi.create({"id": "Secret", "type": "T"})
    assert other.get("/v2/entities").json() == []
    assert_error(other.get("/v2/entities/Secret"), 404, "NotFound")
    upper = Ngsi(ngsi.base, ngsi.service.upper())  # tenants are case-insensitive (lowercased)
    assert [e["id"] for e in upper.get("/v2/entities").json()] == ["Secret"]


def test_version_and_v2(ngsi: Ngsi) -> None:
    version = ngsi.session.get(ngsi.base + "/version", timeout=5).json()
    assert isinstance(version["orion"]["version"], str)
    assert ngsi.get("/v2").json()["entities_url"] == "/v2/entities"


def test_patch_variants_and_correlator(ngsi: Ngsi) -> None:
    ngsi.create({"id": "urn:ngsi-ld:Meter:1", "type": "A", "p": {"value": 1}})
    ngsi.create({"id": "urn:ngsi-ld:Meter:1", "type": "B", "p": {"value": 1}})
    ambiguous = ngsi.patch("/v2/entities/urn:ngsi-ld:Meter:1/attrs", {"p": {"value": 2}})
    assert_error(ambiguous, 409, "TooManyResults")
    typed = ngsi.patch(
        "/v2/entities/urn:ngsi-ld:Meter:1/attrs",
        {"p": 5},
        params={"type": "B", "options": "keyValues"},
        headers={"Fiware-Correlator": "corr-42"},
    )
    assert typed.status_code == 204, typed.text
    assert typed.headers["Fiware-Correlator"] == "corr-42"
    got = ngsi.get("/v2/entities/urn:ngsi-ld:Meter:1", params={"type": "B"}).json()
    assert got["p"] == {"type": "Number", "value": 5, "metadata": {}}
    assert ngsi.get("/v2/entities/urn:ngsi-ld:Meter:1", params={"type": "A"}).json()["p"]["value"] == 1
    assert ngsi.get("/v2/entities", params={"limit": 1}).headers.get("Fiware-Correlator")
    assert_error(ngsi.patch("/v2/entities/urn:ngsi-ld:Meter:1/attrs", {}, params={"type": "A"}), 400, "BadRequest")
    assert_error(
        ngsi.patch("/v2/entities/urn:ngsi-ld:Meter:1/attrs", raw="{x", headers={"Content-Type": "application/json"}),
        400,
        "ParseError",
    )
