"""`flexmeter bench e2e --workload pilots`: a few seconds of the pilots' mix (M-Bus concentrator uplinks, wM-Bus,
DLMS over MQTT, Midori over AMQP, Connode) through the real stack; every hop counts every reading."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.xdist_group("shared-brokers")  # the agent listens to every apikey on Mosquitto


def test_bench_e2e_pilots_counts_every_reading_of_every_family(mqtt_url: str, amqp_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flexmeter", "bench", "e2e", "--workload", "pilots", "--scale", "0.05", "--json",
         "--duration", "5", "--mqtt-url", mqtt_url, "--amqp-url", amqp_url, "--settle-timeout", "30",
         "--receiver", "all"],
        capture_output=True, text=True, timeout=240, env={**os.environ, "FLEXMETER_LOG_LEVEL": "WARNING"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)  # one JSON object, nothing else on stdout
    sent = result["sent"]
    assert sent > 100
    families = result["conditions"]["readings_by_family"]
    # 5 s of the pilots: the ENNOVA hub (every 60 s, at its offset) has not spoken yet; every other family has
    assert {"mbus", "wmbus", "dlms", "connode", "midori"} <= set(families) and sum(families.values()) == sent
    counts = {hop["hop"]: hop["count"] for hop in result["hops"]}
    assert counts.pop("agent_decoded") >= sent  # every family, and other tests' traffic on the shared Mosquitto
    assert counts == {"sent": sent, "agent_forwarded": sent, "broker": sent, "timeseries": sent,
                      "service": sent}, result["hops"]
    assert result["lost"] == 0 and result["loss_ok"] is True
    # the time series hop counts distinct (meter, second) rows, and the total agrees: nothing stored twice here
    assert result["timeseries_distinct_rows"] == sent and result["timeseries_rows"] >= sent
    assert result["latency"]["broker"]["samples"] == sent
    assert result["latency"]["service"]["samples"] == sent
    assert result["latency"]["timeseries"]["samples"] > 0
    assert {p["name"] for p in result["resources"]["processes"]} == {"broker", "timeseries", "agent", "service"}
    assert result["conditions"]["meters_by_role"]["heat_mbus"] == 250
