"""The Midori and ENNOVA formats: the JSON Schemas in docs/ and their examples, decoding, the mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from flexmeter.iot_agents.core.errors import DecodeError
from flexmeter.iot_agents.core.family import Message, Reading, Rejected, load_family
from flexmeter.iot_agents.core.mapping import DeviceView, Mapper
from flexmeter.iot_agents.midori.family import MidoriFamily
from flexmeter.ngsi_models.models.electricity import AC_MEASUREMENT

DOCS = Path(__file__).resolve().parents[3] / "docs"
SCHEMA = json.loads((DOCS / "midori.schema.json").read_text())
RECEIVED = datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)


def decode(document: Any, apikey: str | None = None) -> list[Any]:
    family = MidoriFamily()
    params = {"apikey": apikey} if apikey else {}
    return family.decode(Message(family.routes[0], json.dumps(document).encode(), params))


def test_schema_is_valid_and_its_examples_decode() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    for example in SCHEMA["examples"]:
        jsonschema.Draft202012Validator(SCHEMA).validate(example)
        assert decode(example)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate({"sensor": "x", "samples": [{"voltage": 230}]})


def test_each_sample_is_a_reading_with_its_own_time_and_maps_to_ac_measurement() -> None:
    example = SCHEMA["examples"][0]
    readings = decode(example)
    assert len(readings) == len(example["samples"]) and all(isinstance(r, Reading) for r in readings)
    assert [r.observed_at for r in readings] == [s["ts"] for s in example["samples"]]
    assert readings[0].apikey == "midori"  # the default group when neither message nor routing key names one
    family = load_family("midori")
    view = DeviceView({"device_id": readings[0].device_id, "service": "iren", "service_path": "/turin"}, None)
    (update,) = Mapper().map(readings[0], view, family, RECEIVED)
    attrs = update.attrs
    assert update.entity_id == f"ACMeasurement:{readings[0].device_id}"
    sample = example["samples"][0]
    assert attrs["totalActivePower"]["value"] == sample["activePower"]
    assert attrs["totalReactivePower"]["value"] == sample["reactivePower"]
    assert attrs["phaseVoltage"]["value"] == {"L": sample["voltage"]}
    assert attrs["current"]["value"] == {"L": sample["current"]}
    assert attrs["phaseType"]["value"] == "singlePhase"
    rows = {row.attribute: row.unit for row in AC_MEASUREMENT.rows}
    for name, attr in attrs.items():
        unit = attr.get("metadata", {}).get("unitCode", {}).get("value")
        if unit:
            assert rows[name] == unit, name


@pytest.mark.parametrize(("document", "message"), [
    ({"samples": [{"ts": 1, "voltage": 1}]}, "sensor"),
    ({"sensor": "a b", "ts": 1, "voltage": 1}, "must not contain"),
    ({"sensor": "s", "samples": [{"voltage": 230}]}, r"samples\[0\]\.ts"),
    ({"sensor": "s", "samples": [{"ts": 1, "voltage": "230"}]}, "must be a number"),
    ({"sensor": "s", "samples": [{"ts": 1, "voltage": True}]}, "must be a number"),
    ({"sensor": "s", "samples": [{"ts": 1, "temperature": 20}]}, "not a known quantity"),
    ({"sensor": "s", "samples": []}, "non-empty"),
])
def test_bad_messages_say_what_is_wrong(document: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(document)


def test_a_bad_sample_is_rejected_alone() -> None:
    decoded = decode({"sensor": "MID-1", "samples": [{"ts": 1, "activePower": 1.5}, {"ts": 2, "voltage": "x"},
                                                     {"ts": 3, "activePower": 2.5}]})
    assert [d.values for d in decoded if isinstance(d, Reading)] == [{"activePower": 1.5}, {"activePower": 2.5}]
    (rejected,) = [d for d in decoded if isinstance(d, Rejected)]
    assert rejected.context == {"sample": 1}
    assert "samples[1]" in rejected.reason and "must be a number" in rejected.reason


def test_flat_single_sample_and_apikey_precedence() -> None:
    (reading,) = decode({"sensor": "MID-1", "apikey": "grp", "ts": 1795773600, "activePower": 12.5}, "routing")
    assert reading.apikey == "grp" and reading.values == {"activePower": 12.5}
    (reading,) = decode({"sensor": "MID-1", "ts": 1795773600, "activePower": 12.5}, "routing")
    assert reading.apikey == "routing"


def test_numbers_beyond_a_double_are_refused_not_rounded() -> None:
    family = MidoriFamily()
    text = b'{"sensor": "s", "ts": 1, "activeEnergyImport": 123456789.123456789}'
    with pytest.raises(DecodeError, match="significant digits"):
        family.decode(Message(family.routes[0], text, {}))
