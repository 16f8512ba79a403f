"""MQTT user name/password and TLS, against a private Mosquitto with a password file and TLS listeners."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from flexmeter.iot_agents.core.json_family import JsonFamily
from flexmeter.iot_agents.core.mqtt import MqttTransport
from flexmeter.iot_agents.core.mqttlink import MqttConnectRefused, MqttEndpoint, MqttTlsError
from flexmeter.iot_agents.core.pipeline import Inbound
from flexmeter.iot_agents.core.rawmqtt import RawPublisher
from tests.iot_agents.core.conftest import AgentFactory, must_get_entity, provision, wait_for
from tests.iot_agents.core.secure_mosquitto import PASSWORD, USER, SecureMosquitto
from tests.support.processes import FlexmeterProcess


class Received:
    """The transport's pipeline side: collects messages and acknowledges them (as after an inbox commit)."""

    def __init__(self) -> None:
        self.items: list[Inbound] = []
        self.arrived = threading.Event()
        self.transport: MqttTransport | None = None

    def submit(self, item: Inbound) -> None:
        self.items.append(item)
        if item.ack is not None:
            item.ack()
        assert self.transport is not None
        self.transport.flush_acks()
        self.arrived.set()


def subscriber(endpoint: MqttEndpoint) -> tuple[MqttTransport, Received]:
    received = Received()
    family = JsonFamily()
    transport = MqttTransport(endpoint, f"test-sec-{uuid.uuid4().hex[:8]}",
                              [(family, route) for route in family.routes], received.submit)
    received.transport = transport
    transport.start()
    return transport, received


def deliver(mosquitto: SecureMosquitto, endpoint: MqttEndpoint) -> None:
    """A message published with ``endpoint`` reaches a transport subscribed with ``endpoint``."""
    transport, received = subscriber(endpoint)
    try:
        assert transport.connected.wait(5), transport.last_error
        key = uuid.uuid4().hex[:8]
        publisher = RawPublisher.from_url(endpoint, f"test-pub-{key}")
        try:
            publisher.publish_many([(f"/json/{key}/dev1/attrs", b'{"t": 21.5}')])
            assert publisher.wait_acked(1, timeout=5)
        finally:
            publisher.close()
        assert received.arrived.wait(5)
        (item,) = received.items
        assert item.message.payload == b'{"t": 21.5}' and item.message.params == {"apikey": key, "device_id": "dev1"}
        assert transport.last_error is None
    finally:
        transport.stop()


def test_url_credentials_are_parsed_and_never_displayed() -> None:
    endpoint = MqttEndpoint.parse("mqtts://gw%40site:p%3Ass@broker.example", ca_file="/ca.pem")
    assert (endpoint.host, endpoint.port, endpoint.tls) == ("broker.example", 8883, True)
    assert (endpoint.username, endpoint.password) == ("gw@site", "p:ss")
    assert endpoint.display == "mqtts://gw@site:***@broker.example:8883"
    assert "p:ss" not in repr(endpoint)
    assert endpoint.url_without_password == "mqtts://gw%40site@broker.example:8883"
    assert MqttEndpoint.parse(endpoint.url_without_password).username == "gw@site"
    settings_user = MqttEndpoint.parse("mqtt://127.0.0.1", username="u", password="from-env")
    assert (settings_user.port, settings_user.username, settings_user.password) == (1883, "u", "from-env")


def test_right_credentials_deliver(mosquitto: SecureMosquitto) -> None:
    deliver(mosquitto, MqttEndpoint.parse(mosquitto.url("mqtt", mosquitto.plain)))


def test_wrong_password_is_named_and_does_not_crash(mosquitto: SecureMosquitto) -> None:
    wrong = MqttEndpoint.parse(mosquitto.url("mqtt", mosquitto.plain, password="not-it"))
    with pytest.raises(MqttConnectRefused) as refused:  # the bench publisher speaks MQTT 3.1.1
        RawPublisher.from_url(wrong, "test-wrong")
    assert refused.value.is_auth and refused.value.code == 0x05 and "not authorized" in str(refused.value)
    assert "not-it" not in str(refused.value)

    transport, received = subscriber(wrong)  # the agent's MQTT 5 client: keeps retrying, says why
    try:
        wait_for(lambda: transport.last_error, timeout=5)
        assert transport.last_error is not None
        assert "0x87 not authorized (MQTT 5)" in transport.last_error, transport.last_error
        assert "not-it" not in transport.last_error and not transport.connected.is_set()
        assert transport._thread.is_alive()
    finally:
        started = time.monotonic()
        transport.stop()
        assert time.monotonic() - started < 3  # stop() is not stuck behind the retry delay
    assert not received.items


def test_tls_with_the_ca_delivers(mosquitto: SecureMosquitto) -> None:
    deliver(mosquitto, MqttEndpoint.parse(mosquitto.url("mqtts", mosquitto.tls), ca_file=str(mosquitto.ca_file)))


def test_tls_with_a_wrong_ca_or_name_is_a_certificate_error(mosquitto: SecureMosquitto) -> None:
    wrong_ca = MqttEndpoint.parse(mosquitto.url("mqtts", mosquitto.tls), ca_file=str(mosquitto.wrong_ca_file))
    with pytest.raises(MqttTlsError, match=r"certificate of 127\.0\.0\.1:[0-9]+ is not accepted: self.signed"):
        RawPublisher.from_url(wrong_ca, "test-wrong-ca")
    other_name = MqttEndpoint.parse(mosquitto.url("mqtts", mosquitto.tls_other_name), ca_file=str(mosquitto.ca_file))
    with pytest.raises(MqttTlsError, match=r"mismatch, certificate is not valid for '127\.0\.0\.1'"):
        RawPublisher.from_url(other_name, "test-other-name")

    transport, _ = subscriber(wrong_ca)
    try:
        wait_for(lambda: transport.last_error, timeout=5)
        assert "is not accepted" in str(transport.last_error) and not transport.connected.is_set()
    finally:
        transport.stop()


def test_client_certificate_when_the_broker_requires_one(mosquitto: SecureMosquitto) -> None:
    url = mosquitto.url("mqtts", mosquitto.mutual)
    deliver(mosquitto, MqttEndpoint.parse(url, ca_file=str(mosquitto.ca_file), cert_file=str(mosquitto.client_cert),
                                          key_file=str(mosquitto.client_key)))
    with pytest.raises(MqttTlsError, match="does it require a client certificate"):
        RawPublisher.from_url(MqttEndpoint.parse(url, ca_file=str(mosquitto.ca_file)), "test-no-client-cert")


def test_agent_over_tls_with_credentials_from_the_environment(
        agent_factory: AgentFactory, module_broker: FlexmeterProcess, mosquitto: SecureMosquitto,
        tenant: dict[str, str], tmp_path: Path) -> None:
    """The agent process: user in the URL, password and CA from FLEXMETER_* (Settings); nothing secret logged."""
    ngsi = module_broker.url
    url = mosquitto.url("mqtts", mosquitto.tls, password=None)
    agent = agent_factory(ngsi, "json", mqtt_url=url, env={"FLEXMETER_MQTT_PASSWORD": PASSWORD,
                                                           "FLEXMETER_MQTT_CA_FILE": str(mosquitto.ca_file)})
    key = f"k{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key, "entity_type": "Meter"}])
    health = wait_for(lambda: (h := requests.get(f"{agent.url}/health", timeout=5).json())["mqtt"] and h)
    assert health["mqttError"] is None
    publisher = RawPublisher.from_url(MqttEndpoint.parse(mosquitto.url("mqtts", mosquitto.tls),
                                                         ca_file=str(mosquitto.ca_file)), f"pub-{key}")
    try:
        publisher.publish_many([(f"/json/{key}/tls1/attrs", b'{"e": 42}')])
        assert publisher.wait_acked(1, timeout=5)
    finally:
        publisher.close()
    entity = wait_for(lambda: must_get_entity(ngsi, tenant, "Meter:tls1"))
    assert entity["e"]["value"] == 42
    assert PASSWORD not in agent.log() and f"{USER}:***@127.0.0.1" in agent.log(), agent.log()

    wrong = agent_factory(ngsi, "json", data_dir=tmp_path / "wrong", mqtt_url=url,
                          env={"FLEXMETER_MQTT_PASSWORD": "not-it", "FLEXMETER_MQTT_CA_FILE": str(mosquitto.ca_file)})
    health = wait_for(lambda: (h := requests.get(f"{wrong.url}/health", timeout=5).json())["mqttError"] and h)
    assert health["mqtt"] is False and "not authorized" in health["mqttError"], health
    assert "not-it" not in wrong.log() and "not authorized" in wrong.log()
