"""The ENNOVA hub route: the documented batch format, and a batch over the south HTTP port of a real agent."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from referencing import Registry, Resource

from flexmeter.iot_agents.core.errors import DecodeError
from flexmeter.iot_agents.core.family import Message, Reading, Rejected, load_family
from flexmeter.iot_agents.midori.ennova import EnnovaFamily
from tests.iot_agents.core.conftest import (
    AgentFactory,
    agent_factory,
    get_entity,
    provision,
    south_url,
    tenant,
    wait_for,
)
from tests.support.processes import FlexmeterProcess

__all__ = ["agent_factory", "tenant"]

DOCS = Path(__file__).resolve().parents[3] / "docs"
SCHEMA = json.loads((DOCS / "ennova.schema.json").read_text())
MIDORI = json.loads((DOCS / "midori.schema.json").read_text())
EXAMPLE = SCHEMA["examples"][0]


def validator() -> jsonschema.Draft202012Validator:
    registry = Registry().with_resource("https://flexmeter.example/schemas/midori.schema.json",
                                        Resource.from_contents(MIDORI))
    return jsonschema.Draft202012Validator(SCHEMA, registry=registry)


def decode(document: Any) -> list[Any]:
    family = EnnovaFamily()
    return family.decode(Message(family.routes[0], json.dumps(document).encode(), {"apikey": "k"}))


def test_schema_and_example() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator().validate(EXAMPLE)
    with pytest.raises(jsonschema.ValidationError):
        validator().validate({"hub": "h", "devices": [{"id": "d", "samples": [{"voltage": 1}]}]})
    readings = decode(EXAMPLE)
    assert [(r.device_id, r.observed_at) for r in readings] == [
        ("ENN-MTR-0001", "2026-11-27T10:00:00Z"), ("ENN-MTR-0001", "2026-11-27T10:00:01Z"),
        ("ENN-PLUG-0012", 1795773600)]
    assert isinstance(load_family("ennova"), EnnovaFamily)


def test_a_bad_device_entry_is_rejected_alone() -> None:
    good = {"id": "d1", "samples": [{"ts": 1, "voltage": 230}, {"ts": 2, "voltage": 231}]}
    bad = {"id": "d2", "samples": [{"ts": 1, "watts": 1}]}
    decoded = decode({"hub": "h", "devices": [bad, good]})
    readings = [d for d in decoded if isinstance(d, Reading)]
    (rejected,) = [d for d in decoded if isinstance(d, Rejected)]
    assert [r.device_id for r in readings] == ["d1", "d1"]
    assert rejected.context == {"device": 0} and json.loads(str(rejected.raw)) == bad
    assert "devices[0].samples[0].watts" in rejected.reason


@pytest.mark.parametrize(("document", "message"), [
    ({"devices": [{"id": "d", "samples": [{"ts": 1, "voltage": 1}]}]}, "hub"),
    ({"hub": "h", "devices": []}, "non-empty"),
    ({"hub": "h", "devices": [{"samples": [{"ts": 1, "voltage": 1}]}]}, r"devices\[0\]\.id"),
    ({"hub": "h", "devices": [{"id": "d", "samples": [{"ts": 1, "watts": 1}]}]}, r"devices\[0\]\.samples\[0\]\.watts"),
])
def test_bad_batches_name_the_field(document: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(document)


def test_batch_over_http_lands_and_a_bad_batch_is_refused_whole(
        agent_factory: AgentFactory, module_broker: FlexmeterProcess, tenant: dict[str, str]) -> None:
    ngsi = module_broker.url
    agent = agent_factory(ngsi, "ennova")
    south = south_url(agent)
    key = f"e{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key, "resource": "/iot/ennova"}])
    response = requests.post(f"{south}/iot/ennova", params={"k": key}, json=EXAMPLE, timeout=10)
    assert response.status_code == 200, response.text
    meter = wait_for(lambda: (e := get_entity(ngsi, tenant, "ACMeasurement:ENN-MTR-0001"))
                     and e["TimeInstant"]["value"] == "2026-11-27T10:00:01.000Z" and e)
    assert meter["totalActivePower"]["value"] == 547.5
    assert meter["totalActiveEnergyImport"]["value"] == 10234.512  # from the first sample, kept
    assert meter["totalActiveEnergyImport"]["metadata"]["unitCode"]["value"] == "KWH"
    plug = wait_for(lambda: get_entity(ngsi, tenant, "ACMeasurement:ENN-PLUG-0012"))
    assert plug["totalPowerFactor"]["value"] == 0.97 and plug["TimeInstant"]["value"] == "2026-11-27T10:00:00.000Z"

    bad = requests.post(f"{south}/iot/ennova", params={"k": key}, timeout=10,
                        json={"hub": "h", "devices": [{"id": "ENN-X", "samples": [{"ts": 1, "watts": 1}]}]})
    assert bad.status_code == 400 and "watts" in bad.json()["message"]
    assert get_entity(ngsi, tenant, "ACMeasurement:ENN-X") is None
    unknown = requests.post(f"{south}/iot/ennova", params={"k": "nope"}, json=EXAMPLE, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["name"] == "DEVICE_GROUP_NOT_FOUND"
    missing = requests.post(f"{south}/iot/ennova", json=EXAMPLE, timeout=10)
    assert missing.status_code == 400 and missing.json()["name"] == "MANDATORY_PARAMS_NOT_FOUND"
