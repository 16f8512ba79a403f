"""``/v2/subscriptions`` CRUD and Orion's validation errors, against the broker process."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
import requests

from tests.contextbroker.subscriptions.conftest import Receiver
from tests.support.processes import FlexmeterProcess

HTTP_A = {"http": {"url": "http://a"}}
SUBS = "/v2/subscriptions"


def tenant() -> str:
    return "t" + uuid.uuid4().hex[:12]


def headers(service: str, path: str | None = None, **extra: str) -> dict[str, str]:
    out = {"Fiware-Service": service, **extra}
    if path is not None:
        out["Fiware-ServicePath"] = path
    return out


def body(url: str = "http://127.0.0.1:9/x", **extra: Any) -> dict[str, Any]:
    return {"description": "d", "subject": {"entities": [{"id": "R1", "type": "Room"}],
                                            "condition": {"attrs": ["t"]}},
            "notification": {"http": {"url": url}, "attrs": ["t"]}, **extra}


def create(base: str, service: str, payload: dict[str, Any], path: str | None = None) -> str:
    r = requests.post(base + "/v2/subscriptions", json=payload, headers=headers(service, path), timeout=10)
    assert r.status_code == 201, r.text
    location = r.headers["Location"]
    match = re.fullmatch(r"/v2/subscriptions/([0-9a-f]{24})", location)
    assert match, location
    return match.group(1)


def test_crud_cycle(module_broker: FlexmeterProcess) -> None:
    base, svc = module_broker.url, tenant()
    sub_id = create(base, svc, body(expires="2040-01-01T14:00:00.00Z", throttling=5))
    r = requests.get(f"{base}/v2/subscriptions/{sub_id}", headers=headers(svc), timeout=10)
    assert r.status_code == 200
    assert r.json() == {
        "id": sub_id, "description": "d",
        "subject": {"entities": [{"id": "R1", "type": "Room"}],
                    "condition": {"attrs": ["t"], "notifyOnMetadataChange": True}},
        "notification": {"attrs": ["t"], "onlyChangedAttrs": False, "attrsFormat": "normalized",
                         "http": {"url": "http://127.0.0.1:9/x"}, "covered": False},
        "expires": "2040-01-01T14:00:00.000Z", "status": "active", "throttling": 5,
    }
    r = requests.patch(f"{base}/v2/subscriptions/{sub_id}", json={"status": "inactive", "throttling": 0},
                       headers=headers(svc), timeout=10)
    assert r.status_code == 204, r.text
    got = requests.get(f"{base}/v2/subscriptions/{sub_id}", headers=headers(svc), timeout=10).json()
    assert got["status"] == "inactive" and "throttling" not in got and got["description"] == "d"
    r = requests.delete(f"{base}/v2/subscriptions/{sub_id}", headers=headers(svc), timeout=10)
    assert r.status_code == 204
    r = requests.get(f"{base}/v2/subscriptions/{sub_id}", headers=headers(svc), timeout=10)
    assert r.status_code == 404
    assert r.json() == {"error": "NotFound",
                        "description": "The requested subscription has not been found. Check id"}
    r = requests.delete(f"{base}/v2/subscriptions/{sub_id}", headers=headers(svc), timeout=10)
    assert r.status_code == 404


def test_list_pagination_count_and_scoping(module_broker: FlexmeterProcess) -> None:
    base, svc, other = module_broker.url, tenant(), tenant()
    ids = [create(base, svc, body(description=f"s{i}"), path="/a" if i < 3 else "/b") for i in range(5)]
    create(base, other, body())
    r = requests.get(base + "/v2/subscriptions?options=count&limit=2&offset=1", headers=headers(svc),
                     timeout=10)
    assert r.status_code == 200 and r.headers["Fiware-Total-Count"] == "5"
    assert [s["id"] for s in r.json()] == ids[1:3]
    r = requests.get(base + "/v2/subscriptions", headers=headers(svc, "/b"), timeout=10)
    assert [s["id"] for s in r.json()] == ids[3:]
    r = requests.get(base + "/v2/subscriptions", headers=headers(tenant()), timeout=10)
    assert r.status_code == 200 and r.json() == []
    r = requests.get(f"{base}/v2/subscriptions/{ids[0]}", headers=headers(other), timeout=10)
    assert r.status_code == 404
    r = requests.get(base + "/v2/subscriptions?limit=0", headers=headers(svc), timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "BadRequest"


@pytest.mark.parametrize(("payload", "description"), [
    ({}, "empty payload"),
    ({"notification": HTTP_A}, "no subject for subscription specified"),
    ({"subject": {"entities": [{"id": "R"}]}}, "no notification for subscription specified"),
    ({"subject": {"entities": []}, "notification": HTTP_A}, "subject entities is empty"),
    ({"subject": {"entities": [{"id": "R", "idPattern": "R.*"}]}, "notification": HTTP_A},
     "subject entities element has id and idPattern"),
    ({"subject": {"entities": [{"idPattern": "(("}]}, "notification": HTTP_A},
     "Invalid regex for entity idPattern"),
    ({"subject": {"entities": [{"id": "R"}]}, "notification": {"http": {"url": "ftp://a"}}}, "Invalid URL: ftp://a"),
    ({"subject": {"entities": [{"id": "R"}]}, "notification": {"attrs": []}},
     "http, httpCustom, mqtt or mqttCustom is missing"),
    ({"subject": {"entities": [{"id": "R"}]}, "notification": {**HTTP_A, "attrsFormat": "x"}},
     "invalid attrsFormat, accepted values: legacy, normalized, simplifiedNormalized, keyValues, "
     "simplifiedKeyValues, values"),
    ({"subject": {"entities": [{"id": "R"}]}, "notification": HTTP_A, "status": "on"},
     "status is not valid: it has to be either active, inactive or oneshot"),
    ({"subject": {"entities": [{"id": "R"}]}, "notification": HTTP_A, "expires": "soon"},
     "expires has an invalid format"),
    ({"subject": {"entities": [{"id": "R"}], "condition": {"alterationTypes": ["entityMoved"]}},
      "notification": HTTP_A}, "unknown subscription alterationType: entityMoved"),
    ({"subject": {"entities": [{"id": "R"}], "condition": {"expression": {"georel": "near"}}},
      "notification": HTTP_A},
     "partial geo expression: geometry, georel and coords have to be provided together"),
    ({"subject": {"entities": [{"id": "R"}]},
      "notification": {**HTTP_A, "attrs": ["a"], "exceptAttrs": ["b"]}},
     "http notification has attrs and exceptAttrs"),
])
def test_validation_errors(module_broker: FlexmeterProcess, payload: dict[str, Any],
                           description: str) -> None:
    r = requests.post(module_broker.url + SUBS, json=payload, headers=headers(tenant()), timeout=10)
    assert r.status_code == 400, r.text
    assert r.json() == {"error": "BadRequest", "description": description}


def test_bad_q_is_rejected(module_broker: FlexmeterProcess) -> None:
    payload = {"subject": {"entities": [{"id": "R"}], "condition": {"expression": {"q": "t>>>"}}},
               "notification": HTTP_A}
    r = requests.post(module_broker.url + SUBS, json=payload, headers=headers(tenant()), timeout=10)
    assert r.status_code == 400 and r.json()["error"] == "BadRequest"


def test_bad_json_media_type_and_service_paths(module_broker: FlexmeterProcess) -> None:
    base = module_broker.url
    r = requests.post(base + "/v2/subscriptions", data="{bad", timeout=10,
                      headers={**headers(tenant()), "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "ParseError"
    r = requests.post(base + "/v2/subscriptions", data="x", timeout=10,
                      headers={**headers(tenant()), "Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["error"] == "UnsupportedMediaType"
    r = requests.post(base + "/v2/subscriptions", json=body(), headers=headers(tenant(), "/a,/b"), timeout=10)
    assert r.status_code == 400
    assert r.json()["description"] == "max one service-path allowed for subscriptions"
    r = requests.patch(base + "/v2/subscriptions/" + "0" * 24, json={"status": "active"},
                       headers=headers(tenant()), timeout=10)
    assert r.status_code == 404


def test_no_initial_notification(module_broker: FlexmeterProcess, receiver: Receiver) -> None:
    base, svc = module_broker.url, tenant()
    p = f"/initial/{svc}"
    requests.post(base + "/v2/entities", json={"id": "R1", "type": "Room", "t": {"value": 1}},
                  headers=headers(svc), timeout=10).raise_for_status()
    create(base, svc, body(url=receiver.url + p))
    time.sleep(0.5)
    assert receiver.at(p) == []
