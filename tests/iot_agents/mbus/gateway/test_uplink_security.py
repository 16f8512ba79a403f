"""The gateway's MQTT uplink with user/password and TLS, against a private Mosquitto with a password file and
TLS listeners (``tests/iot_agents/core/secure_mosquitto.py``): the URL's credentials, the FLEXMETER_MQTT_*
settings, a refused password, and ``flexmeter gateway mbus`` taking them from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from flexmeter.config import Settings
from flexmeter.iot_agents.core.mqttlink import MqttConfigError, MqttEndpoint
from flexmeter.iot_agents.mbus.encode import encode_value
from flexmeter.iot_agents.mbus.gateway.buffer import UplinkBuffer
from flexmeter.iot_agents.mbus.gateway.publisher import MqttUplink
from flexmeter.simulator.mbus_slave import MbusSlaveSimulator, SimMeter
from tests.iot_agents.core.conftest import wait_for
from tests.iot_agents.core.secure_mosquitto import PASSWORD, USER, SecureMosquitto
from tests.iot_agents.mbus.gateway.subscriber import Subscriber


def _forward(mosquitto: SecureMosquitto, tmp_path: Path, url: str | MqttEndpoint,
             settings: Settings | None = None) -> MqttUplink:
    """One buffered uplink forwarded through ``url``: it arrives, and leaves the buffer."""
    topic = f"mbus/k{uuid.uuid4().hex[:8]}/gw1/up"
    buffer = UplinkBuffer(tmp_path / f"{uuid.uuid4().hex[:6]}.db")
    buffer.put(topic, b'{"frames": []}')
    subscriber = Subscriber("127.0.0.1", mosquitto.plain, topic, USER, PASSWORD)
    uplink = MqttUplink(url, buffer, settings=settings or Settings())
    try:
        uplink.start()
        assert uplink.wait_connected(5), uplink.last_error
        assert uplink.flush() == 1 and buffer.depth() == 0
        assert subscriber.wait(1) == [(topic, b'{"frames": []}')]
        assert uplink.last_error is None
    finally:
        uplink.stop()
        subscriber.close()
        buffer.close()
    return uplink


def test_credentials_in_the_url(mosquitto: SecureMosquitto, tmp_path: Path) -> None:
    uplink = _forward(mosquitto, tmp_path, mosquitto.url("mqtt", mosquitto.plain))
    assert (uplink.endpoint.username, uplink.endpoint.password) == (USER, PASSWORD)  # percent-decoded


def test_credentials_and_tls_files_from_the_settings(mosquitto: SecureMosquitto, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXMETER_MQTT_USERNAME", USER)
    monkeypatch.setenv("FLEXMETER_MQTT_PASSWORD", PASSWORD)
    monkeypatch.setenv("FLEXMETER_MQTT_CA_FILE", str(mosquitto.ca_file))
    _forward(mosquitto, tmp_path, f"mqtts://127.0.0.1:{mosquitto.tls}", Settings())
    # a broker that requires a client certificate
    monkeypatch.setenv("FLEXMETER_MQTT_CERT_FILE", str(mosquitto.client_cert))
    monkeypatch.setenv("FLEXMETER_MQTT_KEY_FILE", str(mosquitto.client_key))
    uplink = _forward(mosquitto, tmp_path, f"mqtts://127.0.0.1:{mosquitto.mutual}", Settings())
    assert uplink.endpoint.tls and uplink.endpoint.cert_file == str(mosquitto.client_cert)


def test_wrong_password_keeps_the_uplink_buffered_and_says_why(mosquitto: SecureMosquitto, tmp_path: Path) -> None:
    buffer = UplinkBuffer(tmp_path / "wrong.db")
    buffer.put("mbus/k/gw1/up", b"{}")
    uplink = MqttUplink(mosquitto.url("mqtt", mosquitto.plain, password="not-it"), buffer, settings=Settings())
    try:
        uplink.start()
        error = wait_for(lambda: uplink.last_error, timeout=5)
        assert "refused" in error and "not authorized" in error.lower(), error
        assert "not-it" not in error and "mqtt://meter-gw:***@127.0.0.1" in error
        assert not uplink.connected.is_set() and uplink.flush() == 0 and buffer.depth() == 1
    finally:
        uplink.stop()
        buffer.close()


def test_tls_with_a_wrong_ca_does_not_connect(mosquitto: SecureMosquitto, tmp_path: Path) -> None:
    buffer = UplinkBuffer(":memory:")
    settings = Settings(mqtt_ca_file=mosquitto.wrong_ca_file)
    uplink = MqttUplink(mosquitto.url("mqtts", mosquitto.tls), buffer, settings=settings)
    try:
        uplink.start()
        wait_for(lambda: uplink.last_error, timeout=5)
        assert not uplink.connected.is_set()
    finally:
        uplink.stop()
    with pytest.raises(MqttConfigError, match="not found"):
        MqttUplink("mqtts://127.0.0.1:8883", buffer, settings=Settings(mqtt_ca_file=tmp_path / "missing.pem"))
    with pytest.raises(MqttConfigError, match="scheme"):
        MqttUplink("http://127.0.0.1:1883", buffer, settings=Settings())


def test_gateway_command_takes_the_password_and_ca_from_the_environment(mosquitto: SecureMosquitto,
                                                                        tmp_path: Path) -> None:
    sim = MbusSlaveSimulator([SimMeter(5, "12345678", telegrams=[encode_value("energy", Decimal(1000), "Wh", 3)])])
    sim.start()
    apikey = f"k{uuid.uuid4().hex[:8]}"
    subscriber = Subscriber("127.0.0.1", mosquitto.plain, f"mbus/{apikey}/+/up", USER, PASSWORD)
    env = {**os.environ, "FLEXMETER_MQTT_USERNAME": USER, "FLEXMETER_MQTT_PASSWORD": PASSWORD,
           "FLEXMETER_MQTT_CA_FILE": str(mosquitto.ca_file)}
    try:
        done = subprocess.run([sys.executable, "-m", "flexmeter", "gateway", "mbus", "--tcp", sim.address,
                               "--addresses", "5", "--apikey", apikey, "--gateway-id", "gw1", "--buffer",
                               str(tmp_path / "uplink.db"), "--timeout", "0.1", "--mqtt-url",
                               f"mqtts://127.0.0.1:{mosquitto.tls}", "--once", "--json"],
                              capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["published"] == 1 and summary["buffered"] == 0, summary
        ((topic, payload),) = subscriber.wait(1)
        assert topic == f"mbus/{apikey}/gw1/up" and b"frames" in payload
        assert PASSWORD not in done.stderr
    finally:
        subscriber.close()
        sim.stop()
