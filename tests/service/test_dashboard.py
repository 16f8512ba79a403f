"""The dashboard in headless Chromium: the page loads the vendored uPlot, calls the REST API and draws
charts with data. The screenshot is kept in artifacts/ (gitignored) for people to look at."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from flexmeter.service.synthetic import demo_pilot
from tests.service.conftest import service_process

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
START = 1_790_000_100.0


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed")
    return found


def run_chromium(binary: str, profile: Path, url: str, *mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--window-size=1400,1500", *mode, url],
        capture_output=True, text=True, timeout=90, check=False)


def test_dashboard_renders_charts_with_data(tmp_path: Path, tenant: str) -> None:
    binary = chromium()
    with service_process(tmp_path, None) as service:
        for batch in demo_pilot(START):
            response = requests.post(f"{service.url}/notify", json={"subscriptionId": "s", "data": batch},
                                     headers={"Fiware-Service": tenant, "Fiware-ServicePath": "/malmo"}, timeout=30)
            assert response.status_code == 200, response.text
        page = f"{service.url}/dashboard?service={tenant}&path=/malmo&refresh=0"
        assert requests.get(f"{service.url}/static/vendor/uplot/uPlot.iife.min.js", timeout=10).status_code == 200
        dom = run_chromium(binary, tmp_path / "profile-dom", page, "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-2000:]
        html = dom.stdout
        points = re.search(r'id="points" data-points="(\d+)"', html)
        charts = re.search(r'id="charts" data-charts="(\d+)"', html)
        assert points and charts, html[-3000:]
        assert int(points.group(1)) > 100
        assert int(charts.group(1)) >= 5  # load, losses, heat, water, profile
        for key in ("load", "losses", "heat", "water", "profile"):
            block = re.search(rf'id="chart-{key}" data-points="(\d+)"', html)
            assert block and int(block.group(1)) > 0, key
        assert html.count("<canvas") >= 5
        assert "powerOutage" in html and "leak" in html  # the active alarms
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "service-dashboard.png"
        taken = run_chromium(binary, tmp_path / "profile-shot", page, f"--screenshot={shot}")
        assert taken.returncode == 0, taken.stderr[-2000:]
        assert shot.stat().st_size > 10_000
