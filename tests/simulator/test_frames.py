"""Every emitted frame decodes with the project's own decoders and agent families, with the right keys only;
the physics the frames carry is consistent (heat = flow x dT x c, energy = power x time, balances)."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing

from flexmeter.iot_agents.connode.family import ConnodeFamily
from flexmeter.iot_agents.core.family import Message, Reading
from flexmeter.iot_agents.dlms.decoder import Keys, decode_dlms
from flexmeter.iot_agents.dlms.errors import DecodeError as DlmsDecodeError
from flexmeter.iot_agents.dlms.family import DLMS_ROUTES, DlmsFamily
from flexmeter.iot_agents.mbus import decode_mbus, decode_wmbus
from flexmeter.iot_agents.mbus.errors import DecodeError as MbusDecodeError
from flexmeter.iot_agents.mbus.family import MBUS_ROUTES, MbusFamily
from flexmeter.iot_agents.mbus.uplink import parse_json_uplink
from flexmeter.iot_agents.midori.ennova import EnnovaFamily
from flexmeter.iot_agents.midori.family import MidoriFamily
from flexmeter.simulator.fleet import SimMeter, mbus_device_id
from flexmeter.simulator.frames import iso
from flexmeter.simulator.generate import generated_fleet
from flexmeter.simulator.model import Simulation
from flexmeter.simulator.physics import APPLIANCES

from .conftest import START, Run, run_simulation

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _records(tel: Any) -> dict[str, Any]:
    return {r.spec.quantity: r.value for r in tel.records}


def _by_serial(run: Run) -> dict[str | None, SimMeter]:
    return {m.serial: m for m in run.fleet.meters if m.serial}


def _frames(run: Run, kind: str) -> list[tuple[Any, int]]:
    out = []
    for e in run.of(kind):
        for frame in parse_json_uplink(e.payload):
            assert frame.kind == kind and frame.concentrator
            assert frame.received is not None
            out.append((frame, int(frame.received.timestamp())))
    return out


def test_heat_frames_decode_and_heat_is_flow_times_delta_t(small_run: Run) -> None:
    by_serial = _by_serial(small_run)
    series: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for frame, at in _frames(small_run, "mbus"):
        tel = decode_mbus(frame.data)
        meter = by_serial[tel.id]
        assert meter.role == "heat_mbus" and tel.manufacturer == "KAM" and tel.medium == 0x04
        rec = _records(tel)
        delta = rec["flow_temperature"] - rec["return_temperature"]
        assert rec["temperature_difference"] == delta
        flow_lph = rec["volume_flow"] * 1000
        assert abs(rec["power"] - flow_lph * delta * Decimal("1.163")) <= Decimal("0.5")
        assert 1 <= delta <= 40 and 50 <= rec["flow_temperature"] <= 110
        series[meter.id].append((at, rec))
    assert len(series) == 50
    replaced = {i["target"] for i in small_run.injected("replacement")}
    checked = 0
    for meter_id, readings in series.items():
        for (t0, r0), (t1, r1) in itertools.pairwise(readings):
            if meter_id in replaced and r1["energy"] < r0["energy"]:
                continue
            expected = r0["power"] * (t1 - t0) / 3600  # the operating point holds until the next reading
            assert abs(r1["energy"] - r0["energy"] - expected) <= Decimal(1), (meter_id, t0)
            assert abs(r1["volume"] - r0["volume"] - r0["volume_flow"] * (t1 - t0) / 3600) <= Decimal("0.001")
            checked += 1
    assert checked >= 90


def test_water_telegrams_need_the_meter_key(small_run: Run) -> None:
    by_serial = _by_serial(small_run)
    frames = _frames(small_run, "wmbus")
    assert len(frames) == 150
    for frame, _ in frames:
        locked = decode_wmbus(frame.data)
        meter = by_serial[locked.id]
        assert locked.encrypted and not locked.records
        tel = decode_wmbus(frame.data, meter.keys["aes"])
        assert set(_records(tel)) == {"volume", "volume_flow"}
    wrong = bytes(16)
    with pytest.raises(MbusDecodeError):
        decode_wmbus(frames[0][0].data, wrong)


def test_mbus_uplinks_are_accepted_by_the_mbus_family(small_run: Run) -> None:
    secrets = {mbus_device_id(m): {"aes_key": m.keys["aes"].hex()} for m in small_run.fleet.by_role("water_wmbus")}
    family = MbusFamily()
    lookup = lambda device_id: secrets.get(device_id, {})  # noqa: E731
    readings: list[Reading] = []
    for e in small_run.of("mbus") + small_run.of("wmbus"):
        _, apikey, gateway, _ = e.channel.split("/")
        decoded = family.decode(Message(MBUS_ROUTES[0], e.payload, {"apikey": apikey, "gateway": gateway},
                                        "application/json", secrets=lookup))
        readings.extend(r for r in decoded if isinstance(r, Reading))
    ids = {mbus_device_id(m) for m in small_run.fleet.meters if m.role in ("heat_mbus", "water_wmbus")}
    assert {r.device_id for r in readings} == ids
    assert len(readings) == 300


def _dlms_keys(meter: SimMeter) -> Keys:
    return Keys(meter.keys["guek"], meter.keys["gak"], meter.system_title)


def test_dlms_pushes_decrypt_with_their_keys_only(small_run: Run) -> None:
    pushes = small_run.of("dlms")
    for e in pushes[:400]:
        meter = small_run.fleet.by_device(e.channel.rsplit("/", 1)[1])
        msg = decode_dlms(e.payload, _dlms_keys(meter))
        assert msg.security is not None and msg.security.system_title == meter.system_title
        values = {v.obis: v.value for v in msg.values.values()}
        assert values["1-0:1.8.0.255"] >= 0 and values["1-0:32.7.0.255"] > 200
        if meter.role == "substation_dlms":
            assert values["1-0:1.7.0.255"] == sum(values[f"1-0:{c}.7.0.255"] for c in (21, 41, 61))
    meter = small_run.fleet.by_device(pushes[0].channel.rsplit("/", 1)[1])
    with pytest.raises(DlmsDecodeError):
        decode_dlms(pushes[0].payload, Keys(bytes(16), meter.keys["gak"], meter.system_title))
    tampered = bytearray(pushes[0].payload)
    tampered[-20] ^= 1
    with pytest.raises(DlmsDecodeError):
        decode_dlms(bytes(tampered), _dlms_keys(meter))


def test_dlms_pushes_are_accepted_by_the_dlms_family(small_run: Run) -> None:
    family = DlmsFamily()
    keys = {m.device_id: {"guek": m.keys["guek"].hex(), "gak": m.keys["gak"].hex()}
            for m in small_run.fleet.meters if m.role in ("elec_dlms", "substation_dlms")}
    count, models = 0, set()
    for e in small_run.of("dlms"):
        _, apikey, gateway, _, meter = e.channel.split("/")
        params = {"apikey": apikey, "gateway": gateway, "meter": meter}
        for reading in family.decode(Message(DLMS_ROUTES[1], e.payload, params, e.content_type,
                                             secrets=lambda d: keys.get(d, {}))):
            assert isinstance(reading, Reading) and reading.device_id == meter
            assert reading.observed_at is not None
            models.add(reading.model)
            count += 1
    assert count == small_run.truth["sent"]["readings"]["dlms"]
    assert models == {"SINGLE_PHASE", "SUBSTATION"}


def test_substation_registers_match_the_ground_truth() -> None:
    """The 1 Hz substation meter's import register, read from its pushes at two window starts, advances by
    the ground truth's delivered energy of that window (customers + losses)."""
    fleet = generated_fleet(["turin"], 0.01, 3).only(lambda m: m.role in ("elec_dlms", "substation_dlms"))
    run = run_simulation(fleet, seed=3, duration=1801)
    meter = fleet.by_role("substation_dlms")[0]
    registers = {}
    for e in run.of("dlms"):
        if e.channel.endswith("/" + meter.device_id) and e.at % 900 == 0:
            values = {v.obis: v.value for v in decode_dlms(e.payload, _dlms_keys(meter)).values.values()}
            registers[e.at] = values["1-0:1.8.0.255"]
    assert sorted(registers) == [START, START + 900, START + 1800]
    for window in run.truth["substations"][meter.substation]["windows"][:2]:
        advanced = registers[window["epoch"] + 900] - registers[window["epoch"]]
        assert abs(advanced - Decimal(window["delivered_import_J"]) / 3600) <= 1
        assert window["customers_import_J"] > 0 and window["losses_J"] > 0


def test_energy_balance_is_exact_and_losses_are_the_injected_rate(small_run: Run) -> None:
    rates = {i["target"]: i["params"]["rate_bp"] for i in small_run.injected("losses")}
    assert small_run.truth["substations"]["SS-MA-02"]["windows"][0]["customers_export_J"] > 0  # PV at noon
    assert set(rates) == set(small_run.truth["substations"]) == {"SS-TO-001", "SS-MA-01", "SS-MA-02"}
    for sid, sub in small_run.truth["substations"].items():
        assert sub["windows"], sid
        for w in sub["windows"]:
            customers = w["customers_import_J"] - w["customers_export_J"]
            delivered = w["delivered_import_J"] - w["delivered_export_J"]
            assert delivered == customers + w["losses_J"]
            assert w["losses_J"] > 0
            assert w["loss_pct"] == round(100 * w["losses_J"] / (w["delivered_import_J"] + w["customers_export_J"]), 4)
            if not w["customers_export_J"]:  # no PV in the window: the losses are the injected share of the input
                assert abs(w["loss_pct"] - rates[sid] / 100) < 0.02


def _schema(name: str) -> jsonschema.Validator:
    schema = json.loads((DOCS / name).read_text())
    # docs/ennova.schema.json refers to "midori.schema.json" (resolved next to its own $id), while the Midori
    # schema's $id says midori-message.schema.json: register it under the name the reference uses
    midori = referencing.Resource.from_contents(json.loads((DOCS / "midori.schema.json").read_text()))
    registry = referencing.Registry().with_resource("https://flexmeter.example/schemas/midori.schema.json", midori)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def test_connode_documents_follow_the_schema_and_decode(small_run: Run) -> None:
    validator = _schema("connode-payload.schema.json")
    family = ConnodeFamily()
    route = family.routes[0]
    models, count = set(), 0
    for e in small_run.of("connode"):
        document = json.loads(e.payload)
        validator.validate(document)
        _, apikey, gateway, _ = e.channel.split("/")
        decoded = family.decode(Message(route, e.payload, {"apikey": apikey, "gateway": gateway}, e.content_type))
        assert len(decoded) == len(document["messages"]) == e.readings
        models |= {m["model"] for m in document["messages"]}
        count += len(decoded)
    assert models == {"E350", "ECHELON", "DH"}
    assert count == small_run.truth["sent"]["readings"]["connode"]


def test_midori_and_ennova_follow_their_schemas_and_decode(small_run: Run) -> None:
    midori_schema, ennova_schema = _schema("midori.schema.json"), _schema("ennova.schema.json")
    midori, ennova = MidoriFamily(), EnnovaFamily()
    for e in small_run.of("midori"):
        midori_schema.validate(json.loads(e.payload))
        assert len(midori.decode(Message(midori.routes[0], e.payload, {}, e.content_type))) == 1
    for e in small_run.of("ennova"):
        ennova_schema.validate(json.loads(e.payload))
        assert len(ennova.decode(Message(ennova.routes[0], e.payload, {"apikey": "k"}, e.content_type))) == 4


def test_midori_batches_carry_consecutive_samples() -> None:
    fleet = generated_fleet(["turin"], 0.02, 1).only(lambda m: m.role == "nialm")
    sim = Simulation(fleet, 1, START, 60, midori_batch=5)
    messages = [e for t in range(START, START + 60) for e in sim.step(t)]
    assert len(messages) == 2 * 12 and all(e.readings == 5 for e in messages)
    first = json.loads(messages[0].payload)
    assert [s["ts"] for s in first["samples"]] == [iso(START + i) for i in range(5)]


def _messages(run: Run, device: str) -> list[dict[str, Any]]:
    return [m for e in run.of("connode") for m in json.loads(e.payload)["messages"] if m["device"] == device]


def test_outage_silences_the_building_and_malmo_meters_send_a_last_gasp(small_run: Run) -> None:
    for outage in small_run.injected("outage"):
        start, end = outage["start"], outage["end"]
        for meter_id in outage["params"]["meters"]:
            meter = small_run.fleet.get(meter_id)
            if meter.role == "elec_dlms":
                pushes = [e for e in small_run.of("dlms") if e.channel.endswith("/" + meter.device_id)]
                times = [e.at for e in pushes]
                # one last push as the supply collapses (0 V, no power), then silence until it is back
                assert [t for t in times if start <= t < end] == [start]
                gasp = next(e for e in pushes if e.at == start)
                values = {v.obis: v.value for v in decode_dlms(gasp.payload, _dlms_keys(meter)).values.values()}
                assert values["1-0:32.7.0.255"] == 0 and values["1-0:1.7.0.255"] == 0
                assert values["1-0:1.8.0.255"] > 0
                assert [t for t in times if t >= end]
            else:
                messages = _messages(small_run, meter_id)
                gasps = [m for m in messages if m["type"] == "lastGasp"]
                assert [g["time"] for g in gasps] == [iso(start)]
                during = [m for m in messages if m["type"] == "reading" and iso(start) <= m["time"] < iso(end)]
                assert not during


def test_leak_raises_the_meters_flow(small_run: Run) -> None:
    (leak,) = small_run.injected("leak")
    meter = small_run.fleet.get(leak["target"])
    flows = []
    for frame, at in _frames(small_run, "wmbus"):
        if frame.data[4:8] != bytes.fromhex(meter.serial or "")[::-1]:
            continue
        tel = decode_wmbus(frame.data, meter.keys["aes"])
        if tel.id == meter.serial and at > leak["start"] + 300:
            flows.append(_records(tel)["volume_flow"] * 1000)
    assert flows and min(flows) >= leak["params"]["flow_lph"] - 1


def test_replacement_restarts_the_register(small_run: Run) -> None:
    replaced = {r["meter"]: r for r in small_run.truth["replacements"]}
    assert {i["target"] for i in small_run.injected("replacement")} == set(replaced)
    heat = next(r for r in replaced.values() if r["quantity"] == "energy_Wh")
    meter = small_run.fleet.get(heat["meter"])
    energies = [(at, _records(decode_mbus(f.data))["energy"]) for f, at in _frames(small_run, "mbus")
                if decode_mbus(f.data).id == meter.serial]
    before = [e for at, e in energies if at < heat["epoch"]]
    after = [e for at, e in energies if at >= heat["epoch"]]
    assert before and after and after[0] == 0
    assert before[-1] < heat["old_register"] < before[-1] + 200_000  # + what it counted since its last frame


def test_low_delta_t_is_injected(small_run: Run) -> None:
    (low,) = small_run.injected("low_delta_t")
    meter = small_run.fleet.get(low["target"])
    deltas = [(at, _records(decode_mbus(f.data))["temperature_difference"]) for f, at in _frames(small_run, "mbus")
              if decode_mbus(f.data).id == meter.serial]
    assert all(d < 8 for at, d in deltas if at >= low["start"])
    assert all(d >= 20 for at, d in deltas if at < low["start"])


def test_nialm_samples_step_by_the_switched_appliance() -> None:
    fleet = generated_fleet(["turin"], 0.05, 2).only(lambda m: m.role == "nialm")
    run = run_simulation(fleet, seed=2, duration=2 * 3600)
    power: dict[tuple[str, int], int] = {}
    for e in run.of("midori"):
        doc = json.loads(e.payload)
        power[(doc["sensor"], e.at)] = doc["samples"][0]["activePower"]
    events = run.truth["nialm"]["events"]
    assert len(events) >= 15
    names = {a.name for a in APPLIANCES}
    simultaneous: dict[tuple[str, int], int] = defaultdict(int)
    for ev in events:
        simultaneous[(ev["sensor"], ev["epoch"])] += 1
    for ev in events:
        assert ev["appliance"] in names
        if simultaneous[(ev["sensor"], ev["epoch"])] == 1:
            step = power[(ev["sensor"], ev["epoch"])] - power[(ev["sensor"], ev["epoch"] - 1)]
            assert step == ev["dP_W"]
    energy: Mapping[str, Mapping[str, float]] = run.truth["nialm"]["energy_Wh"]
    assert sum(sum(v.values()) for v in energy.values()) > 0
