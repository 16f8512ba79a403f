"""The subscription engine on its own: real SQLite, real worker threads, a real HTTP receiver and Mosquitto.

Changes are built as the store builds them (see helpers); the API and the broker process are covered by
test_api.py and test_broker.py.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from flexmeter.contextbroker.errors import BadRequest
from flexmeter.contextbroker.subscriptions import SubscriptionEngine
from flexmeter.contextbroker.subscriptions.model import Subscription
from flexmeter.contextbroker.subscriptions.validation import parse_create
from flexmeter.metrics import Registry
from tests.contextbroker.subscriptions.conftest import Receiver
from tests.contextbroker.subscriptions.helpers import created, deleted, entity, updated
from tests.support.processes import free_port

EngineFactory = Callable[..., SubscriptionEngine]


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[EngineFactory]:
    engines: list[SubscriptionEngine] = []

    def _make(**kwargs: Any) -> SubscriptionEngine:
        engine = SubscriptionEngine(tmp_path / "broker.db", Registry(), **kwargs)
        engine.start()
        engines.append(engine)
        return engine

    yield _make
    for engine in engines:
        engine.stop(drain_timeout=2)


def path() -> str:
    return f"/n/{uuid.uuid4().hex[:10]}"


def subscribe(engine: SubscriptionEngine, notification: dict[str, Any], *, service: str = "",
              service_path: str = "/", **extra: Any) -> Subscription:
    body: dict[str, Any] = {"subject": extra.pop("subject", {"entities": [{"idPattern": ".*"}]}),
                            "notification": notification, **extra}
    return engine.create(service, service_path, parse_create(body))


def test_normalized_notification_with_headers(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine()
    p = path()
    sub = subscribe(engine, {"http": {"url": receiver.url + p}}, service="tenant_a")
    room = entity("Room1", temperature=21.5, pressure=720)
    engine.on_changes([created(room, service="tenant_a")])
    [got] = receiver.wait(p, 1)
    body = got.json()
    assert body["subscriptionId"] == sub.id and len(sub.id) == 24
    assert body["data"] == [{"id": "Room1", "type": "Room",
                             "temperature": {"type": "Number", "value": 21.5, "metadata": {}},
                             "pressure": {"type": "Number", "value": 720, "metadata": {}}}]
    assert got.headers["Ngsiv2-Attrsformat"] == "normalized"
    assert got.headers["Fiware-Service"] == "tenant_a"
    assert got.headers["Fiware-Servicepath"] == "/"
    assert got.headers["Fiware-Correlator"] == "corr-1"
    assert got.headers["Content-Type"] == "application/json"
    assert engine.wait_idle()
    state = sub.render(time.time())["notification"]
    assert state["timesSent"] == 1 and state["lastSuccessCode"] == 200 and "lastNotification" in state


@pytest.mark.parametrize(("fmt", "expected"), [
    ("keyValues", {"subscriptionId": None, "data": [{"id": "R", "type": "Room", "t": 1, "h": "x"}]}),
    ("values", {"subscriptionId": None, "data": [[1, "x"]]}),
    ("simplifiedNormalized", {"id": "R", "type": "Room", "t": {"type": "Number", "value": 1, "metadata": {}},
                              "h": {"type": "Text", "value": "x", "metadata": {}}}),
    ("simplifiedKeyValues", {"id": "R", "type": "Room", "t": 1, "h": "x"}),
])
def test_attrs_formats(make_engine: EngineFactory, receiver: Receiver, fmt: str,
                       expected: dict[str, Any]) -> None:
    engine = make_engine()
    p = path()
    sub = subscribe(engine, {"http": {"url": receiver.url + p}, "attrsFormat": fmt})
    engine.on_changes([created(entity("R", t=1, h="x"))])
    [got] = receiver.wait(p, 1)
    if "subscriptionId" in expected:
        expected = {**expected, "subscriptionId": sub.id}
    assert got.json() == expected
    assert got.headers["Ngsiv2-Attrsformat"] == fmt


def test_attrs_except_attrs_and_builtins(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine()
    p1, p2 = path(), path()
    subscribe(engine, {"http": {"url": receiver.url + p1}, "attrs": ["h", "alterationType", "dateCreated"],
                       "attrsFormat": "keyValues"})
    subscribe(engine, {"http": {"url": receiver.url + p2}, "exceptAttrs": ["h"], "attrsFormat": "keyValues"})
    engine.on_changes([created(entity("R", t=1, h="x"))])
    [a] = receiver.wait(p1, 1)
    [b] = receiver.wait(p2, 1)
    data = a.json()["data"][0]
    assert data["h"] == "x" and data["alterationType"] == "entityCreate" and "t" not in data
    assert data["dateCreated"].endswith("Z")
    assert b.json()["data"] == [{"id": "R", "type": "Room", "t": 1}]


def test_condition_attrs_and_default_alteration_types(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine()
    p = path()
    subscribe(engine, {"http": {"url": receiver.url + p}, "attrsFormat": "keyValues"},
              subject={"entities": [{"id": "R", "type": "Room"}], "condition": {"attrs": ["t"]}})
    room = entity("R", t=1, h="x")
    engine.on_changes([created(room)])                     # create: t among the attributes -> notified
    engine.on_changes([updated(room, h="y")])              # h changed, not t -> nothing
    engine.on_changes([updated(room, t=1)])                # t updated but unchanged -> entityUpdate: nothing
    engine.on_changes([updated(room, t=2)])                # t changed -> notified
    engine.on_changes([created(entity("Other", t=1))])     # another id -> nothing
    engine.on_changes([deleted(room)])                     # delete not in the default alteration types
    assert engine.wait_idle()
    time.sleep(0.2)
    got = receiver.at(p)
    assert [g.json()["data"][0]["t"] for g in got] == [1, 2]


def test_alteration_types(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine()
    p_upd, p_del = path(), path()
    subscribe(engine, {"http": {"url": receiver.url + p_upd}, "attrs": ["t", "alterationType"],
                       "attrsFormat": "keyValues"},
              subject={"entities": [{"idPattern": "^R"}], "condition": {"alterationTypes": ["entityUpdate"]}})
    subscribe(engine, {"http": {"url": receiver.url + p_del}, "attrsFormat": "keyValues"},
              subject={"entities": [{"idPattern": ".*", "typePattern": "^Ro"}],
                       "condition": {"alterationTypes": ["entityDelete"]}})
    room = entity("R", t=1)
    engine.on_changes([created(room)])
    engine.on_changes([updated(room, t=1)])
    engine.on_changes([updated(room, t=5)])
    engine.on_changes([deleted(room)])
    upd = receiver.wait(p_upd, 2)
    [dele] = receiver.wait(p_del, 1)
    assert [u.json()["data"][0]["alterationType"] for u in upd] == ["entityUpdate", "entityChange"]
    assert dele.json()["data"] == [{"id": "R", "type": "Room", "t": 1}]


def test_metadata_previous_value_and_action_type(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine()
    p = path()
    subscribe(engine, {"http": {"url": receiver.url + p}, "metadata": ["previousValue", "actionType"]})
    room = entity("R", t=1, h="x")
    engine.on_changes([updated(room, t=2)])
    [got] = receiver.wait(p, 1)
    data = got.json()["data"][0]
    assert data["t"]["metadata"] == {"previousValue": {"type": "Number", "value": 1},
                                     "actionType": {"type": "Text", "value": "update"}}
    assert data["h"]["metadata"] == {}


def test_only_changed_attrs(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine()
    p = path()
    subscribe(engine, {"http": {"url": receiver.url + p}, "onlyChangedAttrs": True,
                       "attrsFormat": "keyValues"})
    room = entity("R", t=1, h="x", z=0)
    engine.on_changes([updated(room, h="y")])
    [got] = receiver.wait(p, 1)
    assert got.json()["data"] == [{"id": "R", "type": "Room", "h": "y"}]


def test_http_custom_templates(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine()
    p = path()
    subscribe(engine, {"httpCustom": {
        "url": receiver.url + p + "/${id}", "method": "PUT",
        "headers": {"X-Type": "${type}", "Content-Type": "text/plain", "Fiware-Correlator": "ignored"},
        "qs": {"t": "${t}", "svc": "${service}", "missing": "${nothere}"},
        "payload": "The temperature is ${t} degrees in ${servicePath}, s=${s} %3Cok%3E",
    }}, service="custom", service_path="/a")
    engine.on_changes([created(entity("Room9", path="/a", t=23.4, s={"k": [1]}), service="custom")])
    [got] = receiver.wait(p + "/Room9", 1)
    assert got.method == "PUT"
    assert got.args == {"t": "23.4", "svc": "custom"}
    assert got.headers["X-Type"] == "Room" and got.headers["Content-Type"] == "text/plain"
    assert got.headers["Fiware-Correlator"] == "corr-1"
    assert got.headers["Ngsiv2-Attrsformat"] == "custom"
    assert got.body.decode() == 'The temperature is 23.4 degrees in /a, s={"k":[1]} <ok>'


def test_http_custom_json_template(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine()
    p = path()
    subscribe(engine, {"httpCustom": {"url": receiver.url + p,
                                      "json": {"entity": "${id}", "t": "${t}", "text": "t=${t}",
                                               "l": ["${h}", 3]}}})
    engine.on_changes([created(entity("R", t=1.5, h=True))])
    [got] = receiver.wait(p, 1)
    assert got.json() == {"entity": "R", "t": 1.5, "text": "t=1.5", "l": [True, 3]}
    assert got.headers["Content-Type"] == "application/json"


def test_throttling_oneshot_and_expiry(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine()
    p_thr, p_one, p_exp = path(), path(), path()
    subscribe(engine, {"http": {"url": receiver.url + p_thr}}, throttling=60)
    one = subscribe(engine, {"http": {"url": receiver.url + p_one}}, status="oneshot")
    exp = subscribe(engine, {"http": {"url": receiver.url + p_exp}},
                    expires=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1.5)))
    room = entity("R", t=0)
    for i in range(1, 4):
        engine.on_changes([updated(room, t=i)])
    assert engine.wait_idle()
    time.sleep(1.6)
    engine.on_changes([updated(room, t=9)])
    assert engine.wait_idle()
    time.sleep(0.2)
    assert len(receiver.at(p_thr)) == 1
    assert len(receiver.at(p_one)) == 1
    assert len(receiver.at(p_exp)) == 3
    now = time.time()
    assert one.render(now)["status"] == "inactive"
    assert exp.render(now)["status"] == "expired"
    assert 'flexmeter_broker_notifications_throttled_total{service=""} 3' in engine.metrics.render()


def test_failures_4xx_and_max_fails_limit(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine()
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    failing = subscribe(engine, {"http": {"url": dead}, "maxFailsLimit": 2})
    p = path()
    answering = subscribe(engine, {"http": {"url": receiver.url + "/status/404" + p}})
    room = entity("R", t=0)
    engine.on_changes([updated(room, t=1)])
    assert engine.wait_idle()
    now = time.time()
    first = failing.render(now)
    assert first["status"] == "failed" and first["notification"]["failsCounter"] == 1
    assert "lastFailureReason" in first["notification"] and "lastSuccess" not in first["notification"]
    ok = answering.render(now)
    assert ok["status"] == "active" and ok["notification"]["lastSuccessCode"] == 404
    for i in range(2, 5):
        engine.on_changes([updated(room, t=i)])
        assert engine.wait_idle()
    final = failing.render(time.time())
    assert final["status"] == "inactive" and final["notification"]["failsCounter"] == 3
    assert final["notification"]["timesSent"] == 3
    text = engine.metrics.render()
    assert 'flexmeter_broker_notifications_failed_total{service=""} 3' in text


def test_order_kept_per_subscription(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine(workers=4)
    p = path()
    subscribe(engine, {"http": {"url": receiver.url + p}, "attrsFormat": "keyValues"})
    room = entity("R", n=0)
    for i in range(1, 201):
        engine.on_changes([updated(room, n=i)])
    got = receiver.wait(p, 200)
    assert [g.json()["data"][0]["n"] for g in got] == list(range(1, 201))


def test_notify_batch_groups_one_batch(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine(notify_batch=40)
    p = path()
    subscribe(engine, {"http": {"url": receiver.url + p}, "attrsFormat": "keyValues"})
    engine.on_changes([created(entity(f"E{i}", n=i)) for i in range(100)])
    got = receiver.wait(p, 3)
    assert engine.wait_idle()
    assert [len(g.json()["data"]) for g in receiver.at(p)] == [40, 40, 20]
    assert [d["n"] for g in got for d in g.json()["data"]] == list(range(100))


def test_queue_overflow_is_counted(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine(workers=1, queue_capacity=2)
    p = path()
    subscribe(engine, {"http": {"url": receiver.url + "/sleep/0.3" + p}})
    room = entity("R", n=0)
    for i in range(6):
        engine.on_changes([updated(room, n=i + 1)])
    assert engine.wait_idle(10)
    delivered = len(receiver.at("/sleep/0.3" + p))
    text = engine.metrics.render()
    prefix = "flexmeter_broker_notifications_dropped_total{"
    dropped = [line for line in text.splitlines() if line.startswith(prefix)]
    assert dropped and float(dropped[0].split()[-1]) == 6 - delivered
    assert delivered < 6


def test_expression_filters(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine()
    p = path()
    subscribe(engine, {"http": {"url": receiver.url + p}, "attrsFormat": "keyValues"},
              subject={"entities": [{"idPattern": ".*"}], "condition": {"expression": {"q": "t>10"}}})
    room = entity("R", t=0)
    engine.on_changes([updated(room, t=5)])
    engine.on_changes([updated(room, t=15)])
    [got] = receiver.wait(p, 1)
    assert engine.wait_idle()
    assert got.json()["data"][0]["t"] == 15 and len(receiver.at(p)) == 1
    with pytest.raises(BadRequest):
        parse_create({"subject": {"entities": [{"id": "R"}], "condition": {"expression": {"q": "t>>"}}},
                      "notification": {"http": {"url": "http://x"}}})


def test_service_path_scope(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine()
    p_exact, p_tree = path(), path()
    subscribe(engine, {"http": {"url": receiver.url + p_exact}}, service_path="/a")
    subscribe(engine, {"http": {"url": receiver.url + p_tree}}, service_path="/a/#")
    engine.on_changes([created(entity("R1", path="/a", t=1))])
    engine.on_changes([created(entity("R2", path="/a/b", t=1))])
    engine.on_changes([created(entity("R3", path="/c", t=1))])
    assert engine.wait_idle()
    time.sleep(0.1)
    assert [g.json()["data"][0]["id"] for g in receiver.at(p_exact)] == ["R1"]
    assert sorted(g.json()["data"][0]["id"] for g in receiver.at(p_tree)) == ["R1", "R2"]


def test_persisted_across_restart(tmp_path: Path, receiver: Receiver) -> None:
    p = path()
    first = SubscriptionEngine(tmp_path / "b.db", Registry())
    first.start()
    sub = subscribe(first, {"http": {"url": receiver.url + p}}, service="persist")
    first.on_changes([created(entity("R", t=1), service="persist")])
    receiver.wait(p, 1)
    first.stop()
    second = SubscriptionEngine(tmp_path / "b.db", Registry())
    second.start()
    try:
        again = second.get("persist", sub.id)
        assert again.render(time.time())["notification"]["timesSent"] == 1
        second.on_changes([created(entity("R2", t=1), service="persist")])
        receiver.wait(p, 2)
    finally:
        second.stop()


def test_mqtt_and_mqtt_custom(make_engine: EngineFactory, mqtt_url: str) -> None:
    engine = make_engine()
    topic = f"flexmeter-test/{uuid.uuid4().hex}"
    received: list[tuple[str, bytes]] = []
    done = threading.Event()
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    subscribed = threading.Event()

    def on_message(c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        received.append((msg.topic, bytes(msg.payload)))
        if len(received) >= 2:
            done.set()

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect("127.0.0.1", int(mqtt_url.rsplit(":", 1)[1]))
    client.subscribe(topic + "/#", qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(5)
        sub = subscribe(engine, {"mqtt": {"url": mqtt_url, "topic": topic + "/plain", "qos": 1},
                                 "attrsFormat": "keyValues"})
        subscribe(engine, {"mqttCustom": {"url": mqtt_url, "topic": topic + "/${id}", "qos": 0,
                                          "payload": "t=${t}"}})
        engine.on_changes([created(entity("R7", t=3))])
        assert done.wait(10), received
    finally:
        client.loop_stop()
        client.disconnect()
    by_topic = dict(received)
    assert json.loads(by_topic[topic + "/plain"]) == {"subscriptionId": sub.id,
                                                      "data": [{"id": "R7", "type": "Room", "t": 3}]}
    assert by_topic[topic + "/R7"] == b"t=3"


def test_timeout_is_a_failure(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine(timeout=0.3)
    p = "/sleep/1" + path()
    sub = subscribe(engine, {"http": {"url": receiver.url + p}})
    engine.on_changes([created(entity("R", t=1))])
    assert engine.wait_idle()
    n = sub.render(time.time())["notification"]
    assert n["failsCounter"] == 1 and n["lastFailureReason"] == "Timeout was reached"


def test_notify_on_metadata_change_false(make_engine: EngineFactory, receiver: Receiver) -> None:
    from flexmeter.contextbroker.model import EntityChange

    engine = make_engine()
    p = path()
    subscribe(engine, {"http": {"url": receiver.url + p}, "attrsFormat": "keyValues"},
              subject={"entities": [{"id": "R"}], "condition": {"notifyOnMetadataChange": False}})
    room = entity("R", t=1)
    new = copy.deepcopy(room)
    new["attrs"]["t"]["metadata"] = {"unitCode": {"type": "Text", "value": "CEL"}}
    names = frozenset({"t"})
    engine.on_changes([EntityChange("", "/", "entityChange", new, room, names, names)])  # metadata only
    engine.on_changes([updated(room, t=2)])
    [got] = receiver.wait(p, 1)
    assert engine.wait_idle()
    assert got.json()["data"][0]["t"] == 2 and len(receiver.at(p)) == 1


def test_covered_renders_missing_attributes_as_null(make_engine: EngineFactory, receiver: Receiver) -> None:
    engine = make_engine()
    p = path()
    subscribe(engine, {"http": {"url": receiver.url + p}, "attrs": ["t", "missing"], "covered": True})
    engine.on_changes([created(entity("R", t=1, h="x"))])
    [got] = receiver.wait(p, 1)
    assert got.json()["data"] == [{"id": "R", "type": "Room",
                                   "t": {"type": "Number", "value": 1, "metadata": {}},
                                   "missing": {"type": "None", "value": None, "metadata": {}}}]
