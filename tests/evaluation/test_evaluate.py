"""`flexmeter evaluate` on a tiny workload against the embedded stack renders both reports."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from flexmeter.evaluation.report import SECTIONS
from tests.support.services import require_service


def test_evaluate_writes_markdown_and_html_reports(mqtt_url: str, tmp_path: Path) -> None:
    from flexmeter.iot_agents.core.mqtt import host_port

    require_service("mosquitto", *host_port(mqtt_url))
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "flexmeter", "evaluate", "--out", str(out), "--duration", "2", "--rate", "50",
         "--areas", "IoT Agent north API", "--mqtt-url", mqtt_url],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "100%" in proc.stderr  # the progress bar is on stderr
    markdown = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for section in SECTIONS:
        assert f"## {section}" in markdown
        assert f">{section}</h2>" in html
    assert "| IoT Agent north API | 13 | 0 | 0 | 0 | 100 % |" in markdown
    assert "zero loss" in markdown
    svgs = html.count("<svg ")
    assert svgs == 4  # conformance, throughput, latency, CPU
    for chunk in html.split("<svg ")[1:]:
        ET.fromstring("<svg " + chunk.split("</svg>")[0] + "</svg>")  # each plot is well-formed SVG
    data = json.loads((out / "report.json").read_text())
    assert data["workload"]["sent"] == 100 and data["workload"]["lost"] == 0
    assert [a["area"] for a in data["conformance"]] == ["IoT Agent north API"]
