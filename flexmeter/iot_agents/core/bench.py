"""`flexmeter bench agent`: readings/s from MQTT publish (the real Mosquitto) to entities in the broker.

Starts an embedded context broker and a `flexmeter agent json` as child processes, provisions the devices,
publishes one reading per message at a fixed rate (QoS 1), and measures:
* delivered: entity updates the broker accepted (the agent's ``iota_forwarded_total``), and the last value
  of every device read back from the broker; lost = published - delivered;
* latency: the agent's reception -> the broker's 2xx for the update (the agent's
  ``iota_delivery_latency_seconds``), and publish time (in the reading) -> the broker's notification of the
  entity to a local receiver (which adds the broker's notifier backlog);
* the sustained rate: delivered readings / (last delivery - first publish).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from flask import Flask, Response, request

from flexmeter.config import get_settings
from flexmeter.iot_agents.core.mqttlink import MqttEndpoint
from flexmeter.iot_agents.core.rawmqtt import RawPublisher
from flexmeter.serving import BackgroundServer

READY = re.compile(r"ready on (http://\S+)")


class _Child:
    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "flexmeter", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", "FLEXMETER_LOG_LEVEL": "WARNING",
                                          **(env or {})})
        self.url = ""
        deadline = time.time() + 60
        assert self.proc.stdout is not None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"flexmeter {' '.join(args)} exited before it was ready")
            match = READY.search(line)
            if match:
                self.url = match.group(1)
                break
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _metric(north: str, name: str) -> float:
    total = 0.0
    for line in requests.get(f"{north}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.split()[-1])
    return total


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def run_bench(*, duration: float, rate: int, devices: int, mqtt_url: str, per_message: int = 1) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="flexmeter-bench-agent-"))
    endpoint = MqttEndpoint.from_settings(mqtt_url, get_settings())  # the agent child reads the same settings
    latencies: list[float] = []
    lat_lock = threading.Lock()
    sink_app = Flask("bench-sink")

    @sink_app.post("/notify")
    def notified() -> Response:
        now = time.time()
        body = request.get_json(force=True)
        with lat_lock:
            for entity in body.get("data", []):
                sent = entity.get("ts", {}).get("value")
                if isinstance(sent, int | float):
                    latencies.append(now - sent / 1000.0)
        return Response(status=204)

    sink = BackgroundServer(sink_app, threads=4).start()
    broker = _Child(["broker", "--port", "0", "--db", str(work / "broker.db")])
    agent = _Child(["agent", "json", "--north-port", "0", "--south-port", "0", "--ngsi-url", broker.url,
                    "--mqtt-url", endpoint.url_without_password, "--amqp-url", "none",
                    "--data-dir", str(work / "agent")],  # the password through the environment, not argv
                   env={"FLEXMETER_MQTT_PASSWORD": endpoint.password} if endpoint.password is not None else None)
    service = f"bench{uuid.uuid4().hex[:8]}"
    headers = {"Fiware-Service": service, "Fiware-ServicePath": "/bench"}
    apikey = f"bench{uuid.uuid4().hex[:8]}"
    try:
        requests.post(f"{agent.url}/iot/services", headers=headers, timeout=10, json={"services": [
            {"apikey": apikey, "entity_type": "BenchMeter", "autoprovision": False, "attributes": [
                {"object_id": "e", "name": "energy", "type": "Number",
                 "metadata": {"unitCode": {"type": "Text", "value": "KWH"}}},
                {"object_id": "ts", "name": "ts", "type": "Number"}]}]}).raise_for_status()
        requests.post(f"{agent.url}/iot/devices", headers=headers, timeout=30, json={
            "devices": [{"device_id": f"m{i}"} for i in range(devices)]}).raise_for_status()
        requests.post(f"{broker.url}/v2/subscriptions", headers=headers, timeout=10, json={
            "subject": {"entities": [{"idPattern": ".*", "type": "BenchMeter"}], "condition": {"attrs": ["ts"]}},
            "notification": {"http": {"url": f"{sink.url}/notify"}, "attrs": ["ts"]}}).raise_for_status()

        deadline = time.time() + 30
        while not requests.get(f"{agent.url}/health", timeout=5).json().get("mqtt") and time.time() < deadline:
            time.sleep(0.1)
        publisher = RawPublisher.from_url(endpoint, f"bench-{uuid.uuid4().hex[:8]}")
        topics = [f"/json/{apikey}/m{i}/attrs" for i in range(devices)]
        last_value: dict[int, int] = {}
        published = 0
        messages = 0
        start = time.time()
        tick = 0.01
        while True:
            elapsed = time.time() - start
            if elapsed >= duration:
                break
            due = int(min(elapsed + tick, duration) * rate)
            batch = []
            now_ms = int(time.time() * 1000)
            while published < due:
                device = messages % devices
                readings = [b'{"e":%d,"ts":%d}' % (published + k, now_ms) for k in range(per_message)]
                payload = b"[" + b",".join(readings) + b"]" if per_message > 1 else readings[0]
                batch.append((topics[device], payload))
                published += per_message
                last_value[device] = published - 1
                messages += 1
            publisher.publish_many(batch)
            time.sleep(max(0.0, start + (due / rate) - time.time()))
        publish_end = time.time()
        publisher.wait_acked(messages)
        publisher.close()

        deadline = time.time() + 60
        delivered = 0.0
        last_change = time.time()
        while time.time() < deadline:
            now_delivered = _metric(agent.url, "iota_forwarded_total")
            if now_delivered != delivered:
                delivered, last_change = now_delivered, time.time()
            if delivered >= published or time.time() - last_change > 10:
                break
            time.sleep(0.05)
        end = last_change
        dead = _metric(agent.url, "iota_dead_lettered_total")
        quantiles = {line.split('quantile="')[1].split('"')[0]: float(line.split()[-1])
                     for line in requests.get(f"{agent.url}/metrics", timeout=10).text.splitlines()
                     if line.startswith("iota_delivery_latency_seconds{")}
        retried = _metric(agent.url, "iota_retried_total")

        # Read every device back: the newest value must be the last one published to it.
        stale = 0
        entities: list[dict[str, Any]] = []
        offset = 0
        while True:
            params: dict[str, str | int] = {"type": "BenchMeter", "attrs": "energy", "limit": 1000,
                                            "offset": offset, "options": "keyValues"}
            page = requests.get(f"{broker.url}/v2/entities", headers=headers, timeout=30, params=params).json()
            entities.extend(page)
            offset += len(page)
            if len(page) < 1000:
                break
        by_id = {e["id"]: e.get("energy") for e in entities}
        for device, value in last_value.items():
            if by_id.get(f"BenchMeter:m{device}") != value:
                stale += 1
        time.sleep(1.0)  # let the last notifications arrive
        with lat_lock:
            sample = list(latencies)
        lost = int(published - min(delivered, published))
        return {
            "readings_per_s": round(delivered / max(end - start, 1e-9), 1),
            "published": published,
            "publish_rate_per_s": round(published / max(publish_end - start, 1e-9), 1),
            "delivered": int(delivered),
            "lost": lost,
            "devices_with_stale_value": stale,
            "dead_lettered": int(dead),
            "retried": int(retried),
            "latency_p50_ms": round(quantiles.get("0.5", float("nan")) * 1000, 1),
            "latency_p99_ms": round(quantiles.get("0.99", float("nan")) * 1000, 1),
            "notification_latency_p50_ms": round(_percentile(sample, 0.5) * 1000, 1),
            "notification_latency_p99_ms": round(_percentile(sample, 0.99) * 1000, 1),
            "notification_latency_mean_ms": round(statistics.fmean(sample) * 1000, 1) if sample else None,
            "notifications": len(sample),
            "conditions": {
                "duration_s": duration, "target_rate_per_s": rate, "devices": devices,
                "readings_per_message": per_message, "messages": messages, "mqtt": endpoint.display, "qos": 1,
                "broker": "embedded (flexmeter broker)",
                "agent": "flexmeter agent json (SQLite outbox, synchronous=NORMAL)",
                "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
                "latency": "agent reception (MQTT) -> entity update accepted by the broker (2xx)",
                "notification_latency": "reading's publish time -> the broker's notification received "
                                        "(includes the broker's notifier backlog)",
            },
        }
    finally:
        agent.stop()
        broker.stop()
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)
