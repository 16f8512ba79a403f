"""Notifications end to end through the broker process: updates answer first, headers, batches, restarts."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
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


def test_http_custom_and_mqtt_through_the_broker(module_broker: FlexmeterProcess, receiver: Receiver,
                                                 mqtt_url: str) -> None:
    base, svc = module_broker.url, tenant()
    topic = f"flexmeter-test/{svc}"
    got_mqtt: list[bytes] = []
    event = threading.Event()
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    subscribed = threading.Event()

    def on_message(c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        got_mqtt.append(bytes(msg.payload))
        event.set()

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect("127.0.0.1", int(mqtt_url.rsplit(":", 1)[1]))
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(5)
        custom = {"subject": {"entities": [{"idPattern": "^Meter"}], "condition": {"attrs": ["power"]}},
                  "notification": {"httpCustom": {"url": receiver.url + f"/custom/{svc}/${{id}}",
                                                  "method": "PUT", "qs": {"p": "${power}"},
                                                  "json": {"meter": "${id}", "kw": "${power}"}}}}
        via_mqtt = {"subject": {"entities": [{"idPattern": "^Meter"}]},
                    "notification": {"mqtt": {"url": mqtt_url, "topic": topic, "qos": 1},
                                     "attrs": ["power"], "attrsFormat": "simplifiedKeyValues"}}
        for payload in (custom, via_mqtt):
            r = requests.post(base + "/v2/subscriptions", json=payload, headers={"Fiware-Service": svc},
                              timeout=10)
            assert r.status_code == 201, r.text
        r = requests.post(base + "/v2/entities?options=keyValues", timeout=10, headers={"Fiware-Service": svc},
                          json={"id": "Meter1", "type": "ElectricityMeter", "power": 3.5})
        assert r.status_code == 201, r.text
        [got] = receiver.wait(f"/custom/{svc}/Meter1", 1)
        assert got.method == "PUT" and got.args == {"p": "3.5"}
        assert got.json() == {"meter": "Meter1", "kw": 3.5}
        assert event.wait(10)
        assert json.loads(got_mqtt[0]) == {"id": "Meter1", "type": "ElectricityMeter", "power": 3.5}
    finally:
        client.loop_stop()
        client.disconnect()
