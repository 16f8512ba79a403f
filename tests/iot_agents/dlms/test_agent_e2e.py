"""`flexmeter agent dlms` end to end: a GGC-encrypted push over the real Mosquitto -> ACMeasurement with the
meter's values and time; the replayed push dead-lettered; P1 and substation pushes over the south HTTP port
(one agent for all: starting one costs seconds)."""

from __future__ import annotations

import contextlib
import re
import socket
import sqlite3
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

from flexmeter.iot_agents.dlms.iec62056_21 import build_p1_telegram
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
from tests.iot_agents.dlms.test_agent_family import (
    AK,
    EK,
    P1_LINES,
    T0,
    TITLE_HEX,
    ggc,
    push,
    substation_body,
    user_body,
)
from tests.support.processes import FlexmeterProcess

__all__ = ["agent_factory", "tenant"]


def dead_letters(north: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = requests.get(f"{north}/iot/deadletters", headers=headers, timeout=5)
    response.raise_for_status()
    return list(response.json()["deadLetters"])


def test_ggc_push_over_mqtt_lands_at_1hz_a_replay_is_dead_lettered_and_http_readouts_land(
        agent_factory: AgentFactory, module_broker: FlexmeterProcess, mqtt_url: str, tenant: dict[str, str]) -> None:
    ngsi = module_broker.url
    agent = agent_factory(ngsi, "dlms", mqtt_url=mqtt_url)
    key = f"d{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key, "resource": "/iot/dlms"}],
              [{"device_id": TITLE_HEX, "protocol": "dlms", "timezone": "Europe/Rome",
                "internal_attributes": {"dlms_guek": EK.hex(), "dlms_gak": AK.hex()}}])
    topic = f"dlms/{key}/conc-01/push"
    publish_all(mqtt_url, [(topic, ggc(101))])
    entity_id = f"ACMeasurement:{TITLE_HEX}"
    meter = wait_for(lambda: get_entity(ngsi, tenant, entity_id))
    assert meter["type"] == "ACMeasurement"
    assert meter["totalActiveEnergyImport"]["value"] == 12345.678
    assert meter["totalActiveEnergyImport"]["metadata"]["unitCode"]["value"] == "KWH"
    assert meter["totalActivePower"]["value"] == 1500
    assert meter["phaseVoltage"]["value"] == {"L": 230.1}
    assert meter["phaseType"]["value"] == "singlePhase"
    assert meter["TimeInstant"]["value"] == "2026-11-27T09:00:00.000Z"  # 10:00 CET, the meter's own time

    # the same bytes again (a redelivery: dropped, counted), an older push (a replay: one dead letter), then
    # the next second's push: the new reading lands
    older = ggc(100, user_body(power_w=1111), at=T0 - timedelta(seconds=1))
    publish_all(mqtt_url, [(topic, ggc(101)), (topic, older),
                           (topic, ggc(102, user_body(power_w=1777), at=T0 + timedelta(seconds=1)))])
    latest = wait_for(lambda: (e := get_entity(ngsi, tenant, entity_id))
                      and e["TimeInstant"]["value"] == "2026-11-27T09:00:01.000Z" and e)
    assert latest["totalActivePower"]["value"] == 1757
    letters = wait_for(lambda: dead_letters(agent.url, tenant))
    (letter,) = [d for d in letters if d["family"] == "dlms"]
    assert letter["error"] == "REPLAYED_FRAME" and "100 <= 101" in letter["reason"]
    assert letter["raw"] == {"hex": older.hex()} or bytes.fromhex(letter["raw"]["hex"]) == older
    assert 'iota_duplicates_dropped_total{family="dlms"} 1' in requests.get(f"{agent.url}/metrics", timeout=5).text
    assert EK.hex() not in requests.get(f"{agent.url}/iot/devices/{TITLE_HEX}", headers=tenant, timeout=5).text

    http_readout_and_substation_push(agent, ngsi, tenant)


def http_readout_and_substation_push(agent: FlexmeterProcess, ngsi: str, tenant: dict[str, str]) -> None:
    """The same agent's south HTTP port: a P1 telegram, then a substation push as hex text."""
    south = south_url(agent)
    key = f"h{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key, "resource": "/iot/dlms"}])
    telegram = build_p1_telegram("ISK5\\2M550T-1012", P1_LINES)
    response = requests.post(f"{south}/iot/dlms", params={"k": key, "i": "P1-HOUSE-7"}, data=telegram,
                             headers={"Content-Type": "text/plain"}, timeout=10)
    assert response.status_code == 200, response.text
    house = wait_for(lambda: get_entity(ngsi, tenant, "ACMeasurement:P1-HOUSE-7"))
    assert house["totalActiveEnergyImport"]["value"] == 1334.568
    assert house["totalActivePower"]["value"] == 1193
    assert house["TimeInstant"]["value"] == "2026-11-27T09:00:00.000Z"

    # a substation's plain push as hex text: ThreePhaseAcMeasurement, named by its logical device name
    response = requests.post(f"{south}/iot/dlms", params={"k": key}, data=push(substation_body()).hex(),
                             timeout=10)
    assert response.status_code == 200, response.text
    substation = wait_for(lambda: get_entity(ngsi, tenant, "ThreePhaseAcMeasurement:SUB-TO-0042"))
    assert substation["totalActivePower"]["value"] == 117000
    assert substation["phaseVoltage"]["value"] == {"L1": 230.1, "L2": 229.8, "L3": 230.4}

    bad = requests.post(f"{south}/iot/dlms", params={"k": key}, data=telegram[:-3] + b"\r\n", timeout=10)
    assert bad.status_code == 400 and bad.json()["name"] == "WRONG_SYNTAX"
    assert "IEC 62056-21" in bad.json()["message"]


def test_dlms_udp_datagram_lands_in_the_broker_and_a_bad_hex_line_is_rejected_alone(
        agent_factory: AgentFactory, module_broker: FlexmeterProcess, tenant: dict[str, str]) -> None:
    """`flexmeter agent dlms` with FLEXMETER_DLMS_UDP_PORT: the family's lifecycle starts the DLMS/UDP listener;
    a datagram becomes the meter's entity. Then per-item rejection: of two hex lines on HTTP, the bad one is
    dead-lettered alone (its own bytes) and the good one lands."""
    ngsi = module_broker.url
    key = f"u{uuid.uuid4().hex[:8]}"
    agent = agent_factory(ngsi, "dlms", env={"FLEXMETER_DLMS_UDP_PORT": "0", "FLEXMETER_DLMS_UDP_APIKEY": key})
    found = re.search(r"dlms udp on ([0-9.]+):(\d+)", agent.log())
    assert found, agent.log()
    provision(agent.url, tenant, [{"apikey": key, "resource": "/iot/dlms"}],
              [{"device_id": TITLE_HEX, "protocol": "dlms", "timezone": "Europe/Rome",
                "internal_attributes": {"dlms_guek": EK.hex(), "dlms_gak": AK.hex()}}])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(ggc(501), (found.group(1), int(found.group(2))))
    entity_id = f"ACMeasurement:{TITLE_HEX}"
    meter = wait_for(lambda: get_entity(ngsi, tenant, entity_id))
    assert meter["totalActivePower"]["value"] == 1500 and meter["TimeInstant"]["value"] == "2026-11-27T09:00:00.000Z"
    metrics = requests.get(f"{agent.url}/metrics", timeout=5).text
    assert 'iota_received_total{family="dlms"} 1' in metrics, metrics

    good = ggc(502, user_body(power_w=1888), at=T0 + timedelta(seconds=1))
    bad = bytearray(ggc(503, at=T0 + timedelta(seconds=2)))
    bad[-3] ^= 0x01  # a flipped byte in the GCM tag
    body = f"{bytes(bad).hex()}\n{good.hex()}\n"
    response = requests.post(f"{south_url(agent)}/iot/dlms", params={"k": key}, data=body, timeout=10)
    assert response.status_code == 200, response.text
    wait_for(lambda: (e := get_entity(ngsi, tenant, entity_id)) and e["totalActivePower"]["value"] == 1868)
    (letter,) = [d for d in dead_letters(agent.url, tenant) if d["family"] == "dlms"]
    assert letter["error"] == "DLMS_SECURITY_ERROR" and letter["reason"].startswith("push 1 of 2: "), letter
    assert letter["context"]["push"] == 0 and letter["context"]["params"]["apikey"] == key, letter
    assert bytes.fromhex(letter["raw"] if isinstance(letter["raw"], str) else bytes.fromhex(
        letter["raw"]["hex"]).decode()) == bytes(bad)


def test_a_push_replayed_after_an_agent_restart_is_rejected_as_a_replay(
        agent_factory: AgentFactory, module_broker: FlexmeterProcess, tenant: dict[str, str], tmp_path: Path) -> None:
    """The invocation counters outlive the agent process: a push accepted, the agent killed (-9) and started
    again on the same data directory, the same push replayed -> 409 REPLAYED_FRAME and a dead letter with
    that reason and the push's bytes; the next counter is accepted."""
    ngsi = module_broker.url
    data_dir = tmp_path / "restarted-agent"
    key = f"r{uuid.uuid4().hex[:8]}"
    first = agent_factory(ngsi, "dlms", data_dir=data_dir)
    provision(first.url, tenant, [{"apikey": key, "resource": "/iot/dlms"}],
              [{"device_id": TITLE_HEX, "protocol": "dlms", "timezone": "Europe/Rome",
                "internal_attributes": {"dlms_guek": EK.hex(), "dlms_gak": AK.hex()}}])
    accepted = requests.post(f"{south_url(first)}/iot/dlms", params={"k": key}, data=ggc(301).hex(), timeout=10)
    assert accepted.status_code == 200, accepted.text
    first.kill()

    second = agent_factory(ngsi, "dlms", data_dir=data_dir)
    replay = requests.post(f"{south_url(second)}/iot/dlms", params={"k": key}, data=ggc(301).hex(), timeout=10)
    assert replay.status_code == 409, replay.text
    assert replay.json()["name"] == "REPLAYED_FRAME" and "301 <= 301" in replay.json()["message"]
    (letter,) = [d for d in dead_letters(second.url, tenant) if d["family"] == "dlms"]
    assert letter["error"] == "REPLAYED_FRAME" and "invocation counter must increase" in letter["reason"], letter
    assert "301 <= 301" in letter["reason"] and letter["raw"] == ggc(301).hex(), letter  # the body as posted
    later = ggc(302, user_body(power_w=1999), at=T0 + timedelta(seconds=1))
    fresh = requests.post(f"{south_url(second)}/iot/dlms", params={"k": key}, data=later.hex(), timeout=10)
    assert fresh.status_code == 200, fresh.text
    meter = wait_for(lambda: (e := get_entity(ngsi, tenant, f"ACMeasurement:{TITLE_HEX}"))
                     and e["totalActivePower"]["value"] == 1979 and e)
    assert meter["TimeInstant"]["value"] == "2026-11-27T09:00:01.000Z"


def test_a_push_not_stored_before_a_crash_is_accepted_again_and_its_counter_follows_the_meter(
        agent_factory: AgentFactory, module_broker: FlexmeterProcess, tenant: dict[str, str], tmp_path: Path) -> None:
    """The agent decodes a push, then dies (-9) before the outbox commit (another writer holds outbox.db, so
    it stops between the two steps): the concentrator's resend to the restarted agent is stored (200), not
    refused as a replay. Its counter is durable with it: the same push again is a replay, also after the
    meter moved to another service group of the tenant (counters are the system title's, not the apikey's)."""
    ngsi = module_broker.url
    data_dir = tmp_path / "crashed-agent"
    key = f"c{uuid.uuid4().hex[:8]}"
    device = {"device_id": TITLE_HEX, "protocol": "dlms", "timezone": "Europe/Rome", "apikey": key,
              "internal_attributes": {"dlms_guek": EK.hex(), "dlms_gak": AK.hex()}}
    first = agent_factory(ngsi, "dlms", data_dir=data_dir)
    provision(first.url, tenant, [{"apikey": key, "resource": "/iot/dlms"}], [device])
    south = south_url(first)

    def post_unanswered() -> None:
        with contextlib.suppress(requests.RequestException):
            requests.post(f"{south}/iot/dlms", params={"k": key}, data=ggc(601).hex(), timeout=30)

    with contextlib.closing(sqlite3.connect(data_dir / "outbox.db", timeout=30, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")  # the agent's outbox commit now waits
        threading.Thread(target=post_unanswered, daemon=True).start()
        wait_for(lambda: 'iota_decoded_total{family="dlms"} 1' in requests.get(f"{first.url}/metrics",
                                                                                 timeout=5).text)
        first.kill()  # decoded (counter accepted), reading not stored
        writer.execute("ROLLBACK")

    second = agent_factory(ngsi, "dlms", data_dir=data_dir)
    resent = requests.post(f"{south_url(second)}/iot/dlms", params={"k": key}, data=ggc(601).hex(), timeout=10)
    assert resent.status_code == 200, resent.text  # with the counter written before the commit: 409
    meter = wait_for(lambda: get_entity(ngsi, tenant, f"ACMeasurement:{TITLE_HEX}"))
    assert meter["totalActivePower"]["value"] == 1500 and meter["TimeInstant"]["value"] == "2026-11-27T09:00:00.000Z"
    assert dead_letters(second.url, tenant) == []

    # the meter moves to another service group of its tenant: its counter goes with it
    moved = f"m{uuid.uuid4().hex[:8]}"
    deleted = requests.delete(f"{second.url}/iot/devices/{TITLE_HEX}", headers=tenant, timeout=5)
    assert deleted.status_code == 204, deleted.text
    provision(second.url, tenant, [{"apikey": moved, "resource": "/iot/dlms"}], [{**device, "apikey": moved}])
    older = ggc(600, at=T0 - timedelta(seconds=1))
    replay = requests.post(f"{south_url(second)}/iot/dlms", params={"k": moved}, data=older.hex(), timeout=10)
    assert replay.status_code == 409 and "600 <= 601" in replay.json()["message"], replay.text
    later = ggc(602, user_body(power_w=1999), at=T0 + timedelta(seconds=1))
    fresh = requests.post(f"{south_url(second)}/iot/dlms", params={"k": moved}, data=later.hex(), timeout=10)
    assert fresh.status_code == 200, fresh.text
