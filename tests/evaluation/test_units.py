"""Pure parts of the evaluation: percentiles, curve latencies, metrics parsing, JUnit, SVG, the workload's
documents (decoded by the real Connode decoder)."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from flexmeter.evaluation.conformance import parse_junit
from flexmeter.evaluation.hops import metric_sum
from flexmeter.evaluation.latency import curve_latencies, percentile, summary_ms
from flexmeter.evaluation.svg import bar_chart, cdf, line_chart, nice_ticks
from flexmeter.evaluation.workload import Fleet, Sent, gateway_document, run_workload
from flexmeter.iot_agents.connode.family import DEFAULT_PROFILE, decode_gateway


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    assert math.isnan(percentile([], 0.5))
    assert summary_ms([0.1, 0.2, 0.3])["p50_ms"] == 200.0


def test_curve_latencies_follow_emission_order() -> None:
    emitted = [1000, 1000, 2000, 3000]  # ms
    # counter sampled at t=1.5 s (0), 2.5 s (2), 3.5 s (4): arrival = midpoint between the sample that
    # counted it and the previous one, or its emission when that is later (never before it was emitted)
    curve = [(1.5, 0.0), (2.5, 2.0), (3.5, 4.0)]
    assert curve_latencies(emitted, curve) == pytest.approx([1.0, 1.0, 1.0, 0.25])


def test_metric_sum_filters_labels() -> None:
    text = ('# TYPE iota_decoded_total counter\niota_decoded_total{family="connode"} 12\n'
            'iota_decoded_total{family="json"} 5\niota_decoded_total_other 99\n'
            'flexmeter_service_entities_total{outcome="new"} 7\n')
    assert metric_sum(text, "iota_decoded_total") == 17
    assert metric_sum(text, "iota_decoded_total", family="connode") == 12
    assert metric_sum(text, "flexmeter_service_entities_total", outcome="duplicate") == 0


def test_parse_junit_attributes_cases_to_areas(tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.contextbroker.test_errors" name="test_a" time="0.1"/>'
        '<testcase classname="tests.contextbroker.test_errors" name="test_b" time="0.1">'
        '<failure message="assert 400 == 404">trace</failure></testcase>'
        '<testcase classname="tests.quantumleap.test_contract.TestX" name="test_c" time="0.1">'
        '<skipped message="embedded only"/></testcase>'
        '<testcase classname="tests.other" name="test_d"/>'
        '</testsuite></testsuites>')
    files = {"tests/contextbroker/test_errors.py": "errors", "tests/quantumleap/test_contract.py": "ql"}
    results = parse_junit(junit, files)
    assert [(r.area, r.name, r.outcome) for r in results] == [
        ("errors", "test_a", "passed"), ("errors", "test_b", "failed"), ("ql", "test_c", "skipped")]
    assert results[1].message == "assert 400 == 404"


def test_svg_charts_are_valid_xml() -> None:
    assert nice_ticks(0, 97) == [0, 20, 40, 60, 80, 100]
    chart = line_chart({"a": [(0, 0), (1, 10)], "b": [(0, 5), (1, 7)], "empty": []}, title="T <x>",
                       x_label="s", y_label="n")
    root = ET.fromstring(chart)
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 2
    bars = ET.fromstring(bar_chart([("ok", 100.0), ("bad", 50.0), ("none", math.nan)], title="pass"))
    assert len([r for r in bars.iter("{http://www.w3.org/2000/svg}rect") if r.get("class") == "bar"]) == 3
    assert ET.fromstring(line_chart({}, title="nothing", x_label="", y_label="")) is not None
    assert cdf([3.0, 1.0, 2.0]) == [(1.0, pytest.approx(100 / 3)), (2.0, pytest.approx(200 / 3)), (3.0, 100.0)]


def test_gateway_documents_decode_with_the_connode_decoder() -> None:
    payload = gateway_document("GW-1", 7, 1_700_000_000_123, [("E350-a", 1_700_000_000_123, 0),
                                                               ("E350-b", 1_700_000_000_123, 5)])
    readings = decode_gateway(json.loads(payload), dict(DEFAULT_PROFILE))
    assert [r.device_id for r in readings] == ["E350-a", "E350-b"]  # type: ignore[union-attr]
    assert readings[0].observed_at == 1_700_000_000_123  # type: ignore[union-attr]
    assert readings[1].values["1.8.0"] == 1000.05  # type: ignore[union-attr]


class _Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def publish_many(self, messages: list[tuple[str, bytes]]) -> None:
        self.messages.extend(messages)

    def wait_acked(self, count: int, timeout: float = 60.0) -> bool:
        return count == len(self.messages)

    def close(self) -> None:
        return None


def test_workload_paces_and_spreads_readings_over_meters() -> None:
    fleet = Fleet(50, per_gateway=20)
    recorder = _Recorder()
    sent: Sent = run_workload(recorder, fleet, "k1", rate=200, duration=0.5)  # type: ignore[arg-type]
    assert sent.count == 100
    assert sent.per_device == [2] * 50
    assert 0.35 < sent.ended - sent.started < 1.5
    readings = [m for _, payload in recorder.messages for m in json.loads(payload)["messages"]]
    assert len(readings) == 100
    assert {topic.split("/")[2] for topic, _ in recorder.messages} <= {f"GW-{fleet.tag}-{g:04d}" for g in range(3)}
    times = {(r["device"], r["time"]) for r in readings}
    assert len(times) == 100  # one meter never sends twice in the same millisecond
    assert sorted(sent.times_ms) == sent.times_ms
