"""The embedded MQTT broker used by `flexmeter up` where no Mosquitto runs: a real publish/subscribe."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.processes import FlexmeterProcess, free_port


def test_embedded_mqtt_broker_delivers_qos1() -> None:
    port = free_port()
    with FlexmeterProcess(["mqtt-broker", "--port", str(port)]) as proc:
        assert proc.url == f"mqtt://127.0.0.1:{port}"
        received: list[bytes] = []
        got = threading.Event()
        subscribed = threading.Event()

        sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sub-test")
        sub.on_message = lambda c, u, m: (received.append(m.payload), got.set())
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.connect("127.0.0.1", port)
        sub.subscribe("/json/key/dev1/attrs", qos=1)
        sub.loop_start()
        assert subscribed.wait(10)

        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub-test")
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        pub.publish("/json/key/dev1/attrs", b'{"t": 21.5}', qos=1).wait_for_publish(10)
        assert got.wait(10)
        assert received == [b'{"t": 21.5}']
        for client in (pub, sub):
            client.loop_stop()
            client.disconnect()
