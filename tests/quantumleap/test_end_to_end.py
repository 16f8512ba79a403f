"""Broker -> subscription -> time series -> query, with the embedded broker and ``flexmeter timeseries``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flexmeter.ngsi.client import NgsiClient
from flexmeter.ngsi.headers import FiwareHeaders
from flexmeter.ngsi.quantumleap import QuantumLeapClient
from tests.quantumleap.conftest import start_timeseries
from tests.support.processes import FlexmeterProcess


def eventually(probe: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_broker_subscription_feeds_the_time_series(broker_process: FlexmeterProcess, tmp_path: Path) -> None:
    timeseries = start_timeseries("sqlite", tmp_path, None)
    headers = FiwareHeaders(service="e2e" + uuid.uuid4().hex[:8], service_path="/turin/dh")
    try:
        with NgsiClient(broker_process.url, headers) as ngsi, QuantumLeapClient(timeseries.url, headers) as ql:
            ngsi.create_subscription({
                "description": "every heat meter to the time series",
                "subject": {"entities": [{"idPattern": ".*", "type": "SmartMeteringObservation"}]},
                "notification": {"http": {"url": f"{timeseries.url}/v2/notify"},
                                 "attrs": ["value", "TimeInstant"]},
            })
            for minute in range(3):
                ngsi.batch_update([
                    {"id": f"urn:ngsi-ld:SmartMeteringObservation:heat{n}", "type": "SmartMeteringObservation",
                     "value": {"type": "Number", "value": 100 + n * 10 + minute},
                     "TimeInstant": {"type": "DateTime", "value": f"2024-02-01T08:0{minute}:00Z"}}
                    for n in range(2)
                ])
                eventually(lambda m=minute: len(
                    (ql.find_entity_attr("urn:ngsi-ld:SmartMeteringObservation:heat1", "value") or {})
                    .get("values", [])) > m, timeout=20)
            series = ql.entity_attr("urn:ngsi-ld:SmartMeteringObservation:heat1", "value")
            assert series["entityType"] == "SmartMeteringObservation"
            assert series["values"] == [110.0, 111.0, 112.0]
            assert series["index"] == [f"2024-02-01T08:0{m}:00.000+00:00" for m in range(3)]
            hourly = ql.type_attr("SmartMeteringObservation", "value", aggr_method="sum", aggr_period="hour")
            assert [(e["entityId"][-5:], e["values"]) for e in hourly["entities"]] == [
                ("heat0", [303.0]), ("heat1", [333.0])]
            wider = ql.entity_type("SmartMeteringObservation", headers=headers.with_path("/turin"))
            assert len(wider["entities"]) == 2, "the notified service path is kept and matched hierarchically"
    finally:
        timeseries.stop(timeout=5)
