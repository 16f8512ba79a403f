"""Notifications end to end through the broker process: updates answer first, headers, batches, restarts."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import requests

from tests.conftest import start_broker
from tests.contextbroker.subscriptions.conftest import Receiver
from tests.support.processes import FlexmeterProcess


def tenant() -> str:
    return "t" + uuid.uuid4().hex[:12]


def subscribe(base: str, service: str, url: str, path: str = "/", **notification: Any) -> str:
    payload = {"subject": {"entities": [{"idPattern": ".*", "type": "Room"}]},
               "notification": {"http": {"url": url}, **notification}}
    r = requests.post(base + "/v2/subscriptions", json=payload, timeout=10,
                      headers={"Fiware-Service": service, "Fiware-ServicePath": path})
    assert r.status_code == 201, r.text
    return r.headers["Location"].rsplit("/", 1)[1]


def test_update_answers_before_the_notification(module_broker: FlexmeterProcess, receiver: Receiver) -> None:
    base, svc = module_broker.url, tenant()
    p = f"/sleep/1.5/{svc}"
    sub_id = subscribe(base, svc, receiver.url + p, "/turin", attrsFormat="keyValues")
    hdrs = {"Fiware-Service": svc, "Fiware-ServicePath": "/turin", "Fiware-Correlator": "corr-" + svc}
    started = time.monotonic()
    r = requests.post(base + "/v2/entities", json={"id": "R1", "type": "Room", "t": {"value": 7}},
                      headers=hdrs, timeout=10)
    elapsed = time.monotonic() - started
    assert r.status_code == 201 and elapsed < 1.0, elapsed
    [got] = receiver.wait(p, 1)
    assert got.json() == {"subscriptionId": sub_id, "data": [{"id": "R1", "type": "Room", "t": 7}]}
    assert got.headers["Fiware-Service"] == svc
    assert got.headers["Fiware-Servicepath"] == "/turin"
    assert got.headers["Fiware-Correlator"].startswith("corr-" + svc)
    assert got.headers["Ngsiv2-Attrsformat"] == "keyValues"


def test_batch_update_and_status_fields(module_broker: FlexmeterProcess, receiver: Receiver) -> None:
    base, svc = module_broker.url, tenant()
    p = f"/batch/{svc}"
    sub_id = subscribe(base, svc, receiver.url + p, attrsFormat="keyValues")
    entities = [{"id": f"R{i}", "type": "Room", "n": {"value": i}} for i in range(5)]
    r = requests.post(base + "/v2/op/update", json={"actionType": "append", "entities": entities},
                      headers={"Fiware-Service": svc}, timeout=10)
    assert r.status_code == 204, r.text
    got = receiver.wait(p, 5)
    assert [g.json()["data"][0]["n"] for g in got] == [0, 1, 2, 3, 4]
    time.sleep(0.2)
    status = requests.get(f"{base}/v2/subscriptions/{sub_id}", headers={"Fiware-Service": svc},
                          timeout=10).json()
    n = status["notification"]
    assert n["timesSent"] == 5 and n["lastSuccessCode"] == 200 and n["lastSuccess"].endswith("Z")
    assert status["status"] == "active"


def test_restart_after_kill_keeps_subscriptions(tmp_path: Path, receiver: Receiver) -> None:
    svc = tenant()
    p = f"/restart/{svc}"
    broker = start_broker(tmp_path)
    try:
        sub_id = subscribe(broker.url, svc, receiver.url + p, attrsFormat="keyValues")
        requests.post(broker.url + "/v2/entities", json={"id": "R1", "type": "Room", "t": {"value": 1}},
                      headers={"Fiware-Service": svc}, timeout=10).raise_for_status()
        receiver.wait(p, 1)
        broker.kill()
        broker = start_broker(tmp_path)
        r = requests.get(f"{broker.url}/v2/subscriptions/{sub_id}", headers={"Fiware-Service": svc},
                         timeout=10)
        assert r.status_code == 200, r.text
        requests.patch(broker.url + "/v2/entities/R1/attrs", json={"t": {"value": 2}},
                       headers={"Fiware-Service": svc}, timeout=10).raise_for_status()
        got = receiver.wait(p, 2)
        assert got[-1].json()["data"][0]["t"] == 2
    finally:
        broker.stop()
