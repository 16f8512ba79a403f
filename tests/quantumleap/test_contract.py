"""QuantumLeap 1.0.0 contract: notify, time index, queries, shapes, errors, delete, tenancy.

Runs against ``flexmeter timeseries`` on both backends, or against any QuantumLeap when QL_URL is set.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests

from flexmeter.ngsi.errors import NgsiResponseError
from flexmeter.ngsi.headers import FiwareHeaders
from flexmeter.ngsi.quantumleap import QuantumLeapClient
from tests.quantumleap.conftest import Server
from tests.quantumleap.helpers import meter

NOT_FOUND = {"error": "Not Found", "description": "No records were found for such query."}


def status_of(call: object) -> NgsiResponseError:
    assert callable(call)
    with pytest.raises(NgsiResponseError) as info:
        call()
    return info.value


def test_version_and_health(ql: QuantumLeapClient) -> None:
    assert "version" in ql.version()
    assert ql.health()["status"] == "pass"


def test_notify_answers_quantumleap_string_and_entity_shape(ql: QuantumLeapClient) -> None:
    answer = ql.notify([meter("m1", "2024-03-01T10:00:00Z", power=1.5, status="ok"),
                        meter("m1", "2024-03-01T10:00:10.123+00:00", power=2)])
    assert answer == "Notification successfully processed"
    body = ql.entity("m1")
    assert body["entityId"] == "m1" and body["entityType"] == "Meter"
    assert body["index"] == ["2024-03-01T10:00:00.000+00:00", "2024-03-01T10:00:10.123+00:00"]
    names = [a["attrName"] for a in body["attributes"]]
    assert names == sorted(names) and {"power", "status"} <= set(names)
    power = next(a for a in body["attributes"] if a["attrName"] == "power")
    assert power["values"] == [1.5, 2.0]
    status = next(a for a in body["attributes"] if a["attrName"] == "status")
    assert status["values"] == ["ok", None], "an attribute missing from a notification is null in that row"
    value = ql.entity("m1", value=True)
    assert set(value) == {"index", "attributes"}


def test_many_entities_per_notification_with_servicepath_list(ql: QuantumLeapClient, ql_server: Server) -> None:
    entities = [meter(f"sp{i}", "2024-03-01T10:00:00Z", power=i) for i in range(4)]
    paths = "/turin, /turin/dh, /turinx, /malmo"
    response = requests.post(f"{ql_server.url}/v2/notify", json={"data": entities}, timeout=10,
                             headers={**ql.headers.as_dict(), "Fiware-ServicePath": paths})
    assert response.status_code == 200, response.text
    seen = {e["entityId"] for e in ql.entity_type("Meter", headers=ql.headers.with_path("/turin"))["entities"]}
    assert seen == {"sp0", "sp1"}, "hierarchical: /turin sees /turin/dh but not /turinx"
    everything = ql.entity_type("Meter", headers=ql.headers.with_path("/"))["entities"]
    assert {e["entityId"] for e in everything} == {"sp0", "sp1", "sp2", "sp3"}
    assert status_of(lambda: ql.entity("sp3", headers=ql.headers.with_path("/turin"))).status == 404
    bad = requests.post(f"{ql_server.url}/v2/notify", json={"data": entities}, timeout=10,
                        headers={**ql.headers.as_dict(), "Fiware-ServicePath": "/a,/b"})
    assert bad.status_code == 400


@pytest.mark.parametrize("body, detail", [
    (b"{not json", "JSON"),
    (b'{"subscriptionId": "x"}', "data"),
    (b'{"data": [{"type": "Meter", "p": {"value": 1}}]}', "id"),
    (b'{"data": [{"id": "x", "p": {"value": 1}}]}', "type"),
])
def test_notify_rejects_bad_bodies_with_problem(ql_server: Server, tenant: str, body: bytes, detail: str) -> None:
    response = requests.post(f"{ql_server.url}/v2/notify", data=body, timeout=10,
                             headers={"Content-Type": "application/json", "Fiware-Service": tenant})
    assert response.status_code == 400
    if ql_server.backend != "external":
        problem = response.json()
        assert problem["status"] == 400 and problem["title"] == "Bad Request" and detail in problem["detail"]


def test_time_index_precedence(ql: QuantumLeapClient) -> None:
    def meta(at: str) -> dict[str, object]:
        return {"TimeInstant": {"type": "DateTime", "value": at}}

    ql.notify([meter("ti-header", "2024-01-01T00:00:00Z", obs={"type": "DateTime", "value": "2024-01-05T00:00:00Z"},
                     power=1)], time_index_attribute="obs")
    ql.notify([{"id": "ti-attr", "type": "Meter", "TimeInstant": {"type": "DateTime", "value": "2024-01-02T00:00Z"},
                "timestamp": {"type": "DateTime", "value": "2024-01-09T00:00:00Z"},
                "power": {"type": "Number", "value": 1, "metadata": meta("2024-01-08T00:00:00Z")}}])
    ql.notify([{"id": "ti-meta", "type": "Meter",
                "power": {"type": "Number", "value": 1, "metadata": meta("2024-01-03T00:00:00Z")},
                "energy": {"type": "Number", "value": 2, "metadata": meta("2024-01-03T05:00:00+02:00")},
                "timestamp": {"type": "DateTime", "value": "2024-01-09T00:00:00Z"}}])
    ql.notify([{"id": "ti-ts", "type": "Meter", "timestamp": {"type": "DateTime", "value": "2024-01-04T00:00:00Z"},
                "dateModified": {"type": "DateTime", "value": "2024-01-09T00:00:00Z"},
                "power": {"type": "Number", "value": 1}}])
    ql.notify([{"id": "ti-dm", "type": "Meter", "dateModified": {"type": "DateTime", "value": "2024-01-06T00:00:00Z"},
                "power": {"type": "Number", "value": 1}}])
    before = datetime.now(UTC).timestamp()
    ql.notify([{"id": "ti-now", "type": "Meter", "power": {"type": "Number", "value": 1}}])
    after = time.time()
    assert ql.entity("ti-header")["index"] == ["2024-01-05T00:00:00.000+00:00"]
    assert ql.entity("ti-attr")["index"] == ["2024-01-02T00:00:00.000+00:00"]
    assert ql.entity("ti-meta")["index"] == ["2024-01-03T03:00:00.000+00:00"], "newest metadata, in UTC"
    assert ql.entity("ti-ts")["index"] == ["2024-01-04T00:00:00.000+00:00"]
    assert ql.entity("ti-dm")["index"] == ["2024-01-06T00:00:00.000+00:00"]
    stamp = datetime.fromisoformat(ql.entity("ti-now")["index"][0]).timestamp()
    assert before - 1 <= stamp <= after + 1


def test_last_n_limit_offset_and_date_range(ql: QuantumLeapClient) -> None:
    ql.notify([meter("q1", f"2024-03-01T{h:02d}:00:00Z", power=h) for h in range(10)])
    last = ql.entity_attr("q1", "power", last_n=3)
    assert last["values"] == [7.0, 8.0, 9.0], "lastN answers the newest N, oldest first"
    assert last["index"][0] == "2024-03-01T07:00:00.000+00:00"
    assert ql.entity_attr("q1", "power", limit=2, offset=3)["values"] == [3.0, 4.0]
    ranged = ql.entity_attr("q1", "power", from_date="2024-03-01T02:00:00Z", to_date="2024-03-01T04:00:00")
    assert ranged["values"] == [2.0, 3.0, 4.0], "fromDate and toDate are inclusive"
    assert ql.entity_attr("q1", "power", value=True, last_n=1) == {
        "index": ["2024-03-01T09:00:00.000+00:00"], "values": [9.0]}


def test_aggregation(ql: QuantumLeapClient) -> None:
    ql.notify([meter("ag", f"2024-03-01T{h:02d}:{m:02d}:00Z", power=float(h * 10 + m))
               for h in (0, 1, 3) for m in (0, 30)])
    hourly = ql.entity_attr("ag", "power", aggr_method="avg", aggr_period="hour")
    assert hourly["index"] == ["2024-03-01T00:00:00.000+00:00", "2024-03-01T01:00:00.000+00:00",
                               "2024-03-01T03:00:00.000+00:00"]
    assert hourly["values"] == [15.0, 25.0, 45.0]
    for method, expected in (("sum", 2 * (0 + 10 + 30) + 90), ("min", 0.0), ("max", 60.0), ("count", 6)):
        total = ql.entity_attr("ag", "power", aggr_method=method)
        assert total["values"] == [expected] and total["index"] == []
    daily = ql.entity_type("Meter", attrs="power", aggr_method="count", aggr_period="day")
    assert daily["entities"][0]["index"] == ["2024-03-01T00:00:00.000+00:00"]
    assert daily["entities"][0]["attributes"] == [{"attrName": "power", "values": [6]}]
    monthly = ql.entity_attr("ag", "power", aggr_method="max", aggr_period="month")
    assert monthly["index"] == ["2024-03-01T00:00:00.000+00:00"] and monthly["values"] == [60.0]


def test_error_bodies(ql: QuantumLeapClient) -> None:
    ql.notify([meter("e1", "2024-03-01T00:00:00Z", power=1)])
    missing = status_of(lambda: ql.entity("nobody"))
    assert missing.status == 404 and missing.body == NOT_FOUND
    assert status_of(lambda: ql.entity_attr("e1", "nothing")).body == NOT_FOUND
    bad = status_of(lambda: ql.entity_attr("e1", "power", aggr_period="hour"))
    assert bad.status == 400 and bad.body["error"] == "Bad parameters use"
    assert status_of(lambda: ql.entity_attr("e1", "power", from_date="yesterday")).status == 422
    assert status_of(lambda: ql.entity_type("Meter", options="keyValues")).status == 501
    assert status_of(lambda: ql.entity_type("Meter", attrs="power", aggr_method="avg",
                                             aggr_scope="global")).status == 501
    assert status_of(lambda: ql.entity("e1", aggr_method="avg")).status == 400, "aggrMethod needs attrs"


def test_type_and_attr_endpoints_shapes(ql: QuantumLeapClient) -> None:
    ql.notify([meter("t1", "2024-03-01T00:00:00Z", power=1, voltage=230),
               meter("t2", "2024-03-01T00:00:00Z", power=2),
               meter("h1", "2024-03-01T00:00:00Z", entity_type="HeatMeter", power=3)])
    by_type = ql.entity_type("Meter")
    assert by_type["entityType"] == "Meter"
    assert [e["entityId"] for e in by_type["entities"]] == ["t1", "t2"]
    assert set(by_type["entities"][0]) == {"entityId", "index", "attributes"}
    assert set(ql.entity_type("Meter", value=True)) == {"values"}
    type_attr = ql.type_attr("Meter", "power")
    assert type_attr["entityType"] == "Meter" and type_attr["attrName"] == "power"
    assert [(e["entityId"], e["values"]) for e in type_attr["entities"]] == [("t1", [1.0]), ("t2", [2.0])]
    assert ql.type_attr("Meter", "power", id="t2", value=True)["values"][0]["entityId"] == "t2"
    attr = ql.attr("power")
    assert attr["attrName"] == "power"
    assert sorted(t["entityType"] for t in attr["types"]) == ["HeatMeter", "Meter"]
    attrs = ql.attrs(attrs="power,voltage")["attrs"]
    assert [a["attrName"] for a in attrs] == ["power", "voltage"]
    voltage = attrs[1]["types"][0]
    assert voltage == {"entityType": "Meter", "entities": [
        {"entityId": "t1", "index": ["2024-03-01T00:00:00.000+00:00"], "values": [230.0]},
        {"entityId": "t2", "index": ["2024-03-01T00:00:00.000+00:00"], "values": [None]}]}, "rows keep nulls"
    listing = ql.entities()
    assert {(e["entityId"], e["entityType"]) for e in listing} == {("t1", "Meter"), ("t2", "Meter"),
                                                                    ("h1", "HeatMeter")}
    assert listing[0]["index"] == "2024-03-01T00:00:00.000+00:00"
    assert [e["entityId"] for e in ql.entities(type="HeatMeter")] == ["h1"]
    assert [e["entityId"] for e in ql.entity_type("Meter", id_pattern="^t[2-9]$")["entities"]] == ["t2"]


def test_ambiguous_id_needs_type(ql: QuantumLeapClient) -> None:
    ql.notify([meter("same", "2024-03-01T00:00:00Z", power=1),
               meter("same", "2024-03-01T00:00:00Z", entity_type="HeatMeter", power=2)])
    assert status_of(lambda: ql.entity("same")).status == 400
    assert ql.entity("same", type="HeatMeter")["entityType"] == "HeatMeter"


def test_delete_by_entity_and_type(ql: QuantumLeapClient) -> None:
    ql.notify([meter("d1", f"2024-03-01T0{h}:00:00Z", power=h) for h in range(5)])
    ql.notify([meter("d2", "2024-03-01T00:00:00Z", power=1)])
    ql.delete_entity("d1", type="Meter", from_date="2024-03-01T01:00:00Z", to_date="2024-03-01T02:00:00Z")
    assert ql.entity_attr("d1", "power")["values"] == [0.0, 3.0, 4.0]
    ql.delete_entity("d1", type="Meter")
    assert status_of(lambda: ql.entity("d1")).status == 404
    assert status_of(lambda: ql.delete_entity("d1", type="Meter")).status == 404
    ql.delete_type("Meter")
    assert status_of(lambda: ql.entity("d2")).status == 404


def test_tenants_are_isolated(ql: QuantumLeapClient) -> None:
    ql.notify([meter("iso", "2024-03-01T00:00:00Z", power=1)])
    other = FiwareHeaders(service=(ql.headers.service or "") + "x", service_path="/")
    assert status_of(lambda: ql.entity("iso", headers=other)).status == 404
    assert ql.entity("iso")["entityId"] == "iso"


def test_column_types_follow_ngsi_type(ql: QuantumLeapClient) -> None:
    ql.notify([{"id": "ty", "type": "Meter", "TimeInstant": {"type": "DateTime", "value": "2024-03-01T00:00:00Z"},
                "energy": {"type": "Number", "value": 3},
                "pulses": {"type": "Integer", "value": 7},
                "on": {"type": "Boolean", "value": True},
                "read": {"type": "DateTime", "value": "2024-03-01T01:00:00+01:00"},
                "info": {"type": "StructuredValue", "value": {"a": [1, 2]}},
                "location": {"type": "geo:json", "value": {"type": "Point", "coordinates": [7.68, 45.07]}}}])
    ql.notify([meter("ty", "2024-03-01T00:00:10Z", energy=3.25)])
    body = ql.entity("ty")
    values = {a["attrName"]: a["values"] for a in body["attributes"]}
    assert values["energy"] == [3.0, 3.25], "a Number column takes decimals even when the first value was 3"
    assert values["pulses"] == [7, None] and values["on"] == [True, None]
    assert values["read"][0] == "2024-03-01T00:00:00.000+00:00"
    assert values["info"][0] == {"a": [1, 2]}
    assert values["location"][0] == {"type": "Point", "coordinates": [7.68, 45.07]}


def test_geo_queries(ql: QuantumLeapClient) -> None:
    def at(entity_id: str, lat: float, lon: float) -> dict[str, object]:
        return meter(entity_id, "2024-03-01T00:00:00Z", power=1,
                     location={"type": "geo:json", "value": {"type": "Point", "coordinates": [lon, lat]}})

    ql.notify([at("turin", 45.0703, 7.6869), at("malmo", 55.6050, 13.0038)])
    near = ql.entity_type("Meter", georel="near;maxDistance:10000", geometry="point", coords="45.07,7.68")
    assert [e["entityId"] for e in near["entities"]] == ["turin"]
    box = ql.entity_type("Meter", georel="coveredBy", geometry="box", coords="55,12;56,14")
    assert [e["entityId"] for e in box["entities"]] == ["malmo"]
    assert status_of(lambda: ql.entity_type("Meter", georel="near;maxDistance:10", geometry="point",
                                            coords="0,0")).status == 404
    assert status_of(lambda: ql.entity_type("Meter", georel="coveredBy", geometry="box")).status == 400


def test_attribute_named_value_is_not_the_value_variant(ql: QuantumLeapClient) -> None:
    """SmartMeteringObservation's reading is called ``value``: /attrs/value must still be the attribute."""
    ql.notify([meter("smo", "2024-03-01T00:00:00Z", entity_type="SmartMeteringObservation", value=42.5)])
    body = ql.entity_attr("smo", "value")
    assert body["entityId"] == "smo" and body["attrName"] == "value" and body["values"] == [42.5]
    assert ql.entity_attr("smo", "value", value=True) == {"index": ["2024-03-01T00:00:00.000+00:00"],
                                                          "values": [42.5]}
    assert ql.type_attr("SmartMeteringObservation", "value")["attrName"] == "value"
