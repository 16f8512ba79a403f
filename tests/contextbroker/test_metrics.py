"""``GET /metrics`` of the embedded broker: Prometheus text with requests and committed changes."""

from __future__ import annotations

import re

from tests.contextbroker.conftest import Ngsi


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_embedded_metrics_count_requests_and_changes(module_broker_url: str) -> None:
    ngsi = Ngsi(module_broker_url, "metrics")
    before = ngsi.session.get(module_broker_url + "/metrics", timeout=5).text
    ngsi.create({"id": "M1", "type": "T", "a": {"value": 1}})
    ngsi.patch("/v2/entities/M1/attrs", {"a": {"value": 2}})
    ngsi.get("/v2/nothing")
    response = ngsi.session.get(module_broker_url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    after = response.text
    assert re.search(r"^# TYPE flexmeter_broker_requests_total counter$", after, re.M)
    assert (
        metric(after, "flexmeter_broker_entity_changes_total", alteration="entityCreate")
        - metric(before, "flexmeter_broker_entity_changes_total", alteration="entityCreate")
        == 1
    )
    assert (
        metric(after, "flexmeter_broker_entity_changes_total", alteration="entityChange")
        - metric(before, "flexmeter_broker_entity_changes_total", alteration="entityChange")
        == 1
    )
    assert metric(after, "flexmeter_broker_requests_total", method="GET", status="400") >= 1
    assert "flexmeter_broker_notification_queue_depth" in after
