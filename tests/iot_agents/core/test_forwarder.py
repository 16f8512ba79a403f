"""The forwarder against a real embedded broker: batches in flight at once never reorder an entity's updates."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import requests

from flexmeter.iot_agents.core.forwarder import Forwarder, entity_key
from flexmeter.iot_agents.core.metrics import AgentMetrics
from flexmeter.iot_agents.core.outbox import NewRow, Outbox, OutboxRow
from tests.support.processes import FlexmeterProcess


def _entity(entity_id: str, value: int) -> str:
    return json.dumps({"id": entity_id, "type": "Meter", "reading": {"type": "Number", "value": value}},
                      separators=(",", ":"))


def test_entity_key_slices_the_id_and_falls_back_to_parsing() -> None:
    row = OutboxRow(1, "city", "/north", '{"id":"urn:ngsi-ld:Meter:1","type":"Meter"}', "json", 0.0)
    assert entity_key(row) == ("city", "/north", "urn:ngsi-ld:Meter:1")
    reordered = row._replace(entity='{"type":"Meter","id":"M2"}')
    assert entity_key(reordered) == ("city", "/north", "M2")


def test_updates_of_one_entity_land_in_order_with_two_batches_in_flight(
        tmp_path: Path, broker_process: FlexmeterProcess) -> None:
    service = f"fwd{uuid.uuid4().hex[:8]}"
    outbox = Outbox(tmp_path / "outbox.db")
    # Entity "hot" appears in every group of 3 rows: with batches of 4, every batch after the first is cut
    # before a "hot" row still in flight, or waits for it; the last value must win.
    rows: list[NewRow] = []
    for i in range(300):
        rows.append(NewRow(service, "/", _entity("hot", i), "json", time.time()))
        rows.append(NewRow(service, "/", _entity(f"cold{i % 7}", i), "json", time.time()))
        rows.append(NewRow(service, "/", _entity(f"other{i}", i), "json", time.time()))
    outbox.put(rows)
    metrics = AgentMetrics()
    forwarder = Forwarder(outbox, broker_process.url, metrics, max_entities=4, linger=0, max_in_flight=2)
    try:
        forwarder.drain()
        assert outbox.depth() == 0
        headers = {"Fiware-Service": service}
        for entity_id, expected in [("hot", 299), *((f"cold{k}", max(i for i in range(300) if i % 7 == k))
                                                    for k in range(7))]:
            response = requests.get(f"{broker_process.url}/v2/entities/{entity_id}/attrs/reading/value",
                                    headers=headers, timeout=10)
            assert response.status_code == 200 and response.json() == expected, entity_id
        count = requests.get(f"{broker_process.url}/v2/entities", params={"options": "count", "limit": "1"},
                             headers=headers, timeout=10).headers["Fiware-Total-Count"]
        assert int(count) == 1 + 7 + 300
    finally:
        forwarder.stop()
        outbox.close()
