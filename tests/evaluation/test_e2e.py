"""A short end-to-end run through the real stack (real processes, the machine's Mosquitto): every hop
counts every reading, nothing is lost; `--json` prints one object on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.services import require_service


def test_bench_e2e_counts_every_reading_at_every_hop(mqtt_url: str) -> None:
    from flexmeter.iot_agents.core.mqtt import host_port

    require_service("mosquitto", *host_port(mqtt_url))
    proc = subprocess.run(
        [sys.executable, "-m", "flexmeter", "bench", "e2e", "--json", "--duration", "3", "--rate", "150",
         "--mqtt-url", mqtt_url, "--settle-timeout", "30", "--receiver", "all"],
        capture_output=True, text=True, timeout=180, env={**os.environ, "FLEXMETER_LOG_LEVEL": "WARNING"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)  # one JSON object, nothing else on stdout
    sent = result["sent"]
    assert sent == 450
    counts = {hop["hop"]: hop["count"] for hop in result["hops"]}
    # decoded also counts other tests' Connode traffic on the shared Mosquitto
    assert counts.pop("agent_decoded") >= sent
    assert counts == {"sent": sent, "agent_forwarded": sent, "broker": sent, "timeseries": sent,
                      "service": sent}, result["hops"]
    assert result["lost"] == 0 and result["loss_ok"] is True
    assert result["broker_meters_stale"] == 0
    assert result["broker_entities"] == 150
    latency = result["latency"]
    assert latency["broker"]["samples"] == sent
    assert latency["service"]["samples"] == sent
    assert latency["timeseries"]["samples"] > 0
    for hop in ("broker", "timeseries", "service"):
        assert 0 < latency[hop]["p50_ms"] <= latency[hop]["p95_ms"] <= latency[hop]["p99_ms"]
    names = {p["name"] for p in result["resources"]["processes"]}
    assert names == {"broker", "timeseries", "agent", "service"}
    assert all(p["cpu_percent"] > 0 and p["rss_mb_peak"] > 10 for p in result["resources"]["processes"])
    assert result["conditions"]["meters"] == 150
