"""`flexmeter agent mbus` end to end: concentrator uplinks on the real Mosquitto (and the south HTTP port) ->
SmartMeteringObservation / WaterConsumptionObserved in the embedded broker; duplicates; dead letters."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from flexmeter.iot_agents.mbus.uplink import UplinkFrame, build_json_uplink
from tests.iot_agents.core.conftest import (
    AgentFactory,
    agent_factory,
    get_entity,
    provision,
    publish_all,
    south_url,
    tenant,
    wait_for,
)
from tests.iot_agents.mbus.agent_support import (
    AES_KEY,
    HEAT_ID,
    WATER_ID,
    heat_frame,
    water_telegram,
)
from tests.support.processes import FlexmeterProcess

# These tests publish uplinks on the shared Mosquitto/RabbitMQ, where every agent under test subscribes
# to all apikeys (and one restarts RabbitMQ): one xdist worker runs them in turn, so counts stay exact.
pytestmark = pytest.mark.xdist_group("shared-brokers")

__all__ = ["agent_factory", "tenant"]  # fixtures


def _entity(ngsi: str, tenant: dict[str, str], entity_id: str) -> dict[str, Any]:
    entity = get_entity(ngsi, tenant, entity_id)
    assert entity is not None
    return entity


def _provision(north: str, tenant: dict[str, str], key: str, interval: int | None = None) -> None:
    heat_internal: dict[str, object] = {"interval": interval} if interval else {}
    provision(north, tenant, [{"apikey": key, "resource": "/iot/mbus"}], [
        {"device_id": HEAT_ID, "protocol": "mbus", "entity_type": "SmartMeteringObservation",
         "timezone": "Europe/Rome", "internal_attributes": heat_internal},
        {"device_id": WATER_ID, "protocol": "mbus", "entity_type": "WaterConsumptionObserved",
         "internal_attributes": {"aes_key": AES_KEY.hex()}},
    ])


def test_uplinks_to_entities_duplicates_and_dead_letters(
        agent_factory: AgentFactory, broker_process: FlexmeterProcess, mqtt_url: str,
        tenant: dict[str, str]) -> None:
    ngsi = broker_process.url
    agent = agent_factory(ngsi, "mbus", mqtt_url=mqtt_url)
    key = f"k{uuid.uuid4().hex[:8]}"
    _provision(agent.url, tenant, key)
    received = datetime(2026, 11, 27, 9, 16, 30, tzinfo=UTC)
    uplink = build_json_uplink([UplinkFrame("mbus", heat_frame()), UplinkFrame("wmbus", water_telegram(), rssi=-71)],
                               "c1", received)
    publish_all(mqtt_url, [(f"mbus/{key}/c1/up", uplink)])

    heat = wait_for(lambda: get_entity(ngsi, tenant, f"SmartMeteringObservation:{HEAT_ID}"))
    assert heat["meterType"]["value"] == "Heat"
    assert heat["totalConsumption"]["value"] == 12345
    assert heat["totalConsumption"]["metadata"]["unitCode"]["value"] == "KWH"
    assert heat["volume"]["value"] == 123.45 and heat["volume"]["metadata"]["unitCode"]["value"] == "MTQ"
    assert heat["thermalPower"]["value"] == 5 and heat["thermalPower"]["metadata"]["unitCode"]["value"] == "KWT"
    assert heat["volumeFlow"]["value"] == 1.234 and heat["volumeFlow"]["metadata"]["unitCode"]["value"] == "MQH"
    assert heat["forwardTemperature"]["value"] == 70.1
    assert heat["returnTemperature"]["value"] == 40.5
    assert heat["temperatureDifference"]["metadata"]["unitCode"]["value"] == "KEL"
    assert heat["totalConsumptionStorage1"]["value"] == 10000
    # the meter's own clock (10:15 in Rome, CET) wins over the concentrator's receive time
    assert heat["TimeInstant"]["value"] == "2026-11-27T09:15:00.000Z"

    water = wait_for(lambda: get_entity(ngsi, tenant, f"WaterConsumptionObserved:{WATER_ID}"))
    assert water["waterConsumption"]["value"] == 12345
    assert water["waterConsumption"]["metadata"]["unitCode"]["value"] == "LTR"
    assert water["rssi"]["value"] == -71 and water["concentrator"]["value"] == "c1"
    assert water["TimeInstant"]["value"] == "2026-11-27T09:16:30.000Z"  # no meter clock: the receive time

    # the same water telegram heard by a second concentrator 2 s later: dropped; then a new heat reading
    echo = build_json_uplink([UplinkFrame("wmbus", water_telegram(), rssi=-90)], "c2",
                             received.replace(second=32))
    fresh = build_json_uplink([UplinkFrame("mbus", heat_frame(access=8, energy_kwh=12346,
                                                              when=datetime(2026, 11, 27, 10, 20)))], "c1")
    publish_all(mqtt_url, [(f"mbus/{key}/c2/up", echo), (f"mbus/{key}/c1/up", fresh)])
    wait_for(lambda: _entity(ngsi, tenant, f"SmartMeteringObservation:{HEAT_ID}")["totalConsumption"]["value"]
             == 12346)
    water = get_entity(ngsi, tenant, f"WaterConsumptionObserved:{WATER_ID}")
    assert water is not None and water["concentrator"]["value"] == "c1" and water["rssi"]["value"] == -71

    # a frame with a broken checksum: the whole uplink goes to the dead letters, with the decoder's reason
    bad = bytearray(heat_frame(access=9))
    bad[-2] ^= 0xFF
    publish_all(mqtt_url, [(f"mbus/{key}/c1/up", json.dumps({"concentrator": "c1", "frames": [
        {"hex": bytes(bad).hex(), "kind": "mbus"}]}))])
    dead = wait_for(lambda: requests.get(f"{agent.url}/iot/deadletters", headers=tenant, timeout=5).json()
                    ["deadLetters"])
    assert dead[0]["family"] == "mbus" and "ChecksumError" in dead[0]["reason"], dead
    assert "link.checksum" in dead[0]["reason"]

    # raw binary on the south HTTP port
    response = requests.post(f"{south_url(agent)}/iot/mbus", params={"k": key, "g": "c3", "kind": "mbus"},
                             data=heat_frame(access=10, energy_kwh=12400, when=datetime(2026, 11, 27, 10, 25)),
                             headers={"Content-Type": "application/octet-stream"}, timeout=10)
    assert response.status_code == 200, response.text
    wait_for(lambda: _entity(ngsi, tenant, f"SmartMeteringObservation:{HEAT_ID}")["totalConsumption"]["value"]
             == 12400)
    metrics = requests.get(f"{agent.url}/metrics", timeout=5).text
    assert 'iota_received_total{family="mbus"} 5' in metrics
    assert 'iota_dead_lettered_total{family="mbus"} 1' in metrics


def test_lifecycle_silence_duplicates_and_partial_dead_letters(
        agent_factory: AgentFactory, broker_process: FlexmeterProcess, mqtt_url: str,
        tenant: dict[str, str]) -> None:
    """`flexmeter agent mbus` starts the family's lifecycle: the silence watchdog (a periodic task of the
    core's FamilyContext), the duplicate counter on /metrics, and per-frame dead letters (Rejected items)."""
    ngsi = broker_process.url
    agent = agent_factory(ngsi, "mbus", mqtt_url=mqtt_url, env={"FLEXMETER_MBUS_SILENCE_CHECK": "0.2"})
    key = f"k{uuid.uuid4().hex[:8]}"
    _provision(agent.url, tenant, key, interval=1)
    uplink = build_json_uplink([UplinkFrame("mbus", heat_frame())], "c1", datetime.now(UTC))
    publish_all(mqtt_url, [(f"mbus/{key}/c1/up", uplink), (f"mbus/{key}/c2/up", uplink)])
    wait_for(lambda: get_entity(ngsi, tenant, f"SmartMeteringObservation:{HEAT_ID}"))
    wait_for(lambda: 'iota_duplicates_dropped_total{family="mbus"} 1'
             in requests.get(f"{agent.url}/metrics", timeout=5).text)
    # interval 1 s, factor 3: silent after 3 s without a telegram
    try:
        anomaly = wait_for(lambda: get_entity(ngsi, tenant, f"Anomaly:{HEAT_ID}:silence"), timeout=10)
    except AssertionError:
        raise AssertionError(agent.log()) from None
    assert anomaly["type"] == "Anomaly" and anomaly["anomalyType"]["value"] == "silence"
    assert anomaly["status"]["value"] == "active"
    assert anomaly["refDevice"]["value"] == f"SmartMeteringObservation:{HEAT_ID}"
    assert anomaly["detectedBy"]["value"].startswith("urn:")
    # the water meter has no interval: not watched
    assert get_entity(ngsi, tenant, f"Anomaly:{WATER_ID}:silence") is None
    # heard again (with a broken frame in the same uplink): the anomaly is resolved, and only the broken
    # frame is a dead letter, with its own bytes
    bad = bytearray(water_telegram(access=5))
    bad[5] ^= 0x01
    again = build_json_uplink([UplinkFrame("mbus", heat_frame(access=8)), UplinkFrame("wmbus", bytes(bad))],
                              "c1", datetime.now(UTC))
    publish_all(mqtt_url, [(f"mbus/{key}/c1/up", again)])
    wait_for(lambda: _entity(ngsi, tenant, f"Anomaly:{HEAT_ID}:silence")["status"]["value"] == "resolved")
    letters = requests.get(f"{agent.url}/iot/deadletters", headers=tenant, timeout=5).json()["deadLetters"]
    # one dead letter: the bad frame (twice at most, if a loaded broker redelivered the message: at-least-once)
    assert letters and all(d["raw"] == letters[0]["raw"] for d in letters), letters
    dead = letters[0]
    assert dead["raw"] == {"hex": bytes(bad).hex()} or dead["raw"] == {"hex": bytes(bad).hex().upper()}, dead
    assert "frame 2 of 2 (wmbus" in dead["reason"] and dead["context"]["frame"] == 1, dead
    assert dead["context"]["kind"] == "wmbus" and dead["context"]["params"]["apikey"] == key, dead
    metrics = requests.get(f"{agent.url}/metrics", timeout=5).text
    assert f'iota_dead_lettered_total{{family="mbus"}} {len(letters)}' in metrics, metrics


def test_bus_master_to_agent(agent_factory: AgentFactory, broker_process: FlexmeterProcess, mqtt_url: str,
                             tenant: dict[str, str], tmp_path: Path) -> None:
    """Field computer to context broker: `flexmeter gateway mbus` reads a two-telegram heat meter from the
    simulated bus and publishes on Mosquitto; `flexmeter agent mbus` turns it into the entity."""
    import subprocess
    import sys
    from decimal import Decimal

    from flexmeter.iot_agents.mbus.encode import encode_value
    from flexmeter.simulator.mbus_slave import MbusSlaveSimulator, SimMeter

    ngsi = broker_process.url
    agent = agent_factory(ngsi, "mbus", mqtt_url=mqtt_url)
    key = f"k{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key, "resource": "/iot/mbus"}],
              [{"device_id": HEAT_ID, "protocol": "mbus", "entity_type": "SmartMeteringObservation"}])
    sim = MbusSlaveSimulator([SimMeter(5, "12345678", telegrams=[
        encode_value("energy", Decimal(42_000_000), "Wh", 3),
        encode_value("flow_temperature", Decimal("65.5"), "°C", -1)])]).start()
    try:
        done = subprocess.run([sys.executable, "-m", "flexmeter", "gateway", "mbus", "--tcp", sim.address,
                               "--addresses", "5", "--apikey", key, "--gateway-id", "field1", "--mqtt-url", mqtt_url,
                               "--buffer", str(tmp_path / "uplink.db"), "--timeout", "0.1", "--once", "--json"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["published"] == 1
    finally:
        sim.stop()
    heat = wait_for(lambda: (e := get_entity(ngsi, tenant, f"SmartMeteringObservation:{HEAT_ID}"))
                    and "forwardTemperature" in e and e)
    assert heat["totalConsumption"]["value"] == 42000 and heat["forwardTemperature"]["value"] == 65.5
    assert heat["concentrator"]["value"] == "field1" and heat["meterType"]["value"] == "Heat"
