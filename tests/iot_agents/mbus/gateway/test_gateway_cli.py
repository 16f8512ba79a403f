"""`flexmeter gateway mbus` as a process: simulated slaves over TCP, uplinks to the real Mosquitto, and the
store-and-forward buffer while the MQTT broker is unreachable."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from flexmeter.iot_agents.core.mqtt import host_port
from flexmeter.iot_agents.mbus import decode_mbus
from flexmeter.iot_agents.mbus.encode import encode_value
from flexmeter.iot_agents.mbus.uplink import parse_json_uplink
from flexmeter.simulator.mbus_slave import MbusSlaveSimulator, SimMeter
from tests.iot_agents.mbus.gateway.subscriber import Subscriber
from tests.support.processes import free_port

# These tests publish uplinks on the shared Mosquitto/RabbitMQ, where every agent under test subscribes
# to all apikeys (and one restarts RabbitMQ): one xdist worker runs them in turn, so counts stay exact.
pytestmark = pytest.mark.xdist_group("shared-brokers")


def _gateway(*args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "flexmeter", "gateway", "mbus", *args, "--once", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_buffers_while_mqtt_is_down_then_forwards_in_order(mqtt_url: str, tmp_path: Path) -> None:
    meters = [SimMeter(5, "12345678", telegrams=[encode_value("energy", Decimal(100000), "Wh", 3)]),
              SimMeter(7, "12345679", telegrams=[encode_value("energy", Decimal(1000), "Wh", 3),
                                                  encode_value("energy", Decimal(2000), "Wh", 3)])]
    sim = MbusSlaveSimulator(meters).start()
    apikey = f"k{uuid.uuid4().hex[:8]}"
    common = ["--tcp", sim.address, "--addresses", "5,7", "--apikey", apikey, "--gateway-id", "gw1",
              "--buffer", str(tmp_path / "uplink.db"), "--timeout", "0.1"]
    subscriber = Subscriber(*host_port(mqtt_url), f"mbus/{apikey}/+/up")
    try:
        down = _gateway(*common, "--mqtt-url", f"mqtt://127.0.0.1:{free_port()}", "--flush-timeout", "0.5")
        assert down["frames"] == 3 and down["published"] == 0 and down["buffered"] == 1, down
        assert down["timing"]["char_time_s"] == round(11 / 2400, 6)  # type: ignore[index]
        up = _gateway(*common, "--mqtt-url", mqtt_url)
        assert up["frames"] == 3 and up["published"] == 2 and up["buffered"] == 0, up
        (_, first), (_, second) = subscriber.wait(2)
        for payload in (first, second):
            frames = parse_json_uplink(payload)
            assert [f.concentrator for f in frames] == ["gw1"] * 3
            assert all(f.kind == "mbus" and f.received is not None for f in frames)
            assert [decode_mbus(f.data).id for f in frames] == ["12345678", "12345679", "12345679"]
        older, newer = (parse_json_uplink(p)[0].received for p in (first, second))
        assert older is not None and newer is not None and older < newer  # oldest first
    finally:
        subscriber.close()
        sim.stop()


def test_scan_finds_the_meters(tmp_path: Path) -> None:
    sim = MbusSlaveSimulator([SimMeter(3, "11111111"), SimMeter(9, "22222222")]).start()
    try:
        result = _gateway("--tcp", sim.address, "--scan", "--scan-mode", "secondary", "--timeout", "0.06",
                          "--mqtt-url", f"mqtt://127.0.0.1:{free_port()}", "--flush-timeout", "0",
                          "--buffer", str(tmp_path / "b.db"))
        assert result["scan"] == {"mode": "secondary", "found": ["111111112C2D1B04", "222222222C2D1B04"]}
        assert result["frames"] == 2 and result["buffered"] == 1
    finally:
        sim.stop()
