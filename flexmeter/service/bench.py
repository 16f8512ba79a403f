"""``flexmeter bench service``: entity updates/s through the real service process, every analytic on.

A mixed pilot (electricity customers under substations with their supply meters, heat and water meters)
reports every 10 s of data time; its readings are pre-built as NGSI-v2 notifications of ``batch``
entities and POSTed by ``clients`` connections to ``flexmeter service``, whose results go to an in-process
NGSI sink (so the figure is the service's, not a broker's). The clock stops when every notification is
accepted, every period computed and the outbox written: the figure includes the analytics.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import requests
from flask import Flask, request

from flexmeter.service.synthetic import SyntheticSubstation, heat_reading, water_reading
from flexmeter.serving import BackgroundServer

Json = dict[str, Any]
TARGET = 5000
START = 1_790_000_100.0
INTERVAL = 10.0


def _sink() -> tuple[BackgroundServer, dict[str, int]]:
    counts = {"requests": 0, "entities": 0}
    lock = threading.Lock()
    app = Flask("bench-sink")

    @app.post("/v2/op/update")
    def update() -> tuple[str, int]:
        body = request.get_json(force=True)
        with lock:
            counts["requests"] += 1
            counts["entities"] += len(body.get("entities", []))
        return "", 204

    return BackgroundServer(app, threads=2).start(), counts


def build_rounds(meters: int, rounds: int) -> tuple[list[Json], list[list[Json]]]:
    """Topology and ``rounds`` readings of every meter (80 % electricity, 10 % heat, 10 % water)."""
    heat_meters = water_meters = max(meters // 10, 1)
    electric = max(meters - heat_meters - water_meters, 2)
    per_substation = 40
    grids = [SyntheticSubstation(name=f"B{i}", meters=min(per_substation, electric - i * per_substation) - 1, seed=i)
             for i in range((electric + per_substation - 1) // per_substation)]
    grids = [g for g in grids if g.meters > 0]
    topology = [e for g in grids for e in g.topology()]
    out: list[list[Json]] = []
    heat_energy = [10_000.0] * heat_meters
    litres = [50_000.0] * water_meters
    for r in range(rounds):
        t = START + r * INTERVAL
        entities = [e for g in grids for e in g.step(t, INTERVAL if r else 0.0)]
        for h in range(heat_meters):
            heat_energy[h] += 40.0 * INTERVAL / 3600.0
            entities.append(heat_reading(f"H{h}", t, 70.0, 45.0 + (h % 3) * 5, heat_energy[h], 40.0))
        for w in range(water_meters):
            litres[w] += 0.3 * INTERVAL / 3.6
            entities.append(water_reading(f"W{w}", t, int(litres[w]), 0.3))
        out.append(entities)
    return topology, out


def _post(url: str, headers: dict[str, str], bodies: Queue[bytes], errors: list[str]) -> None:
    session = requests.Session()
    while True:
        try:
            body = bodies.get_nowait()
        except Empty:
            return
        response = session.post(url, data=body, headers=headers, timeout=120)
        if response.status_code != 200:
            errors.append(f"{response.status_code} {response.text[:200]}")


def run_bench(*, duration: float, meters: int, batch: int, clients: int, progress: bool) -> Json:
    rounds = max(int(duration * TARGET * 1.6 / meters), 20)
    if progress:
        print(f"building {rounds} rounds of {meters} meters ...", file=sys.stderr)
    topology, all_rounds = build_rounds(meters, rounds)
    entities = [e for r in all_rounds for e in r]
    bodies = [json.dumps({"subscriptionId": "bench", "data": entities[i:i + batch]}).encode()
              for i in range(0, len(entities), batch)]
    sink, counts = _sink()
    with tempfile.TemporaryDirectory() as tmp:
        process = subprocess.Popen(
            [sys.executable, "-m", "flexmeter", "service", "--port", "0", "--data-dir", str(Path(tmp) / "svc"),
             "--ngsi-url", sink.url, "--threads", str(max(clients, 2))],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "FLEXMETER_TOKEN": ""})
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            url = line.strip().split("ready on ", 1)[1]
            headers = {"Content-Type": "application/json", "Fiware-Service": "bench", "Fiware-ServicePath": "/b"}
            requests.post(f"{url}/notify", json={"subscriptionId": "bench", "data": topology}, headers=headers,
                          timeout=60).raise_for_status()
            queue: Queue[bytes] = Queue()
            for body in bodies:
                queue.put(body)
            errors: list[str] = []
            if progress:
                print(f"posting {len(entities)} entities in {len(bodies)} notifications ...", file=sys.stderr)
            began = time.perf_counter()
            threads = [threading.Thread(target=_post, args=(f"{url}/notify", headers, queue, errors))
                       for _ in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            accepted = time.perf_counter() - began
            requests.get(f"{url}/v1/overview", headers=headers, timeout=600).raise_for_status()  # settles
            while requests.get(f"{url}/health", timeout=60).json()["outbox"] > 0:
                time.sleep(0.05)
            processed = time.perf_counter() - began
            losses = requests.get(f"{url}/v1/losses", headers=headers, timeout=60).json()["balances"]
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:  # a stop signal swallowed by a busy server loop
                process.kill()
                process.wait(timeout=10)
            sink.stop()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "figures": {
            "entity_updates_per_s": {"value": round(len(entities) / processed), "unit": "entities/s",
                                     "target": f">= {TARGET}"},
            "ingest_entities_per_s": {"value": round(len(entities) / accepted), "unit": "entities/s"},
            "notifications_per_s": {"value": round(len(bodies) / processed, 1), "unit": "notifications/s"},
            "results_written": {"value": counts["entities"], "unit": "entities"},
            "balances_computed": {"value": len(losses), "unit": "EnergyBalance periods"},
            "errors": {"value": len(errors), "unit": "failed notifications"},
        },
        "conditions": {
            "entities": len(entities), "meters": meters, "batch": batch, "clients": clients,
            "data_time_s": rounds * INTERVAL, "reading_interval_s": INTERVAL,
            "analytics": "profiles 15m/1h/1d/1M, energy balance, outages, heat dT/peak, water night/leak/backflow,"
                         " completeness",
            "results_to": "in-process NGSI sink (/v2/op/update)", "cpus": os.cpu_count(),
            "load_average_1m": round(load, 2) if load is not None else None,
        },
    }
