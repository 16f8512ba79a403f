"""``flexmeter bench broker``: update and notification throughput and latency of the embedded broker.

Starts its own broker process (free port, temporary database) and a receiver process (see
:mod:`bench_receiver`: asyncio by default, ``--receiver waitress`` to compare), then
measures, each for ``duration`` seconds: single-entity PATCH/s; entities/s through ``/v2/op/update`` in
batches of 100 with 0, 1 and 1,000 matching subscriptions, with the notifications delivered/s (and that
every notification arrived, or how many were dropped); and the update→notification latency (p50/p99) at
a paced 1,000 entity updates/s. Client, broker and receiver share the machine: the conditions are printed.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from flexmeter.config import get_settings

BATCH = 100
ENTITIES = 1000
ENTITY_TYPE = "BenchMeter"
_READY = re.compile(r"ready on (http://\S+)")


def _start_process(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m flexmeter...`` style ``args``; (process, URL from its ready line)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FLEXMETER_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 30
    while True:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        if line is None:
            raise RuntimeError(f"{args[2:4]} exited before it was ready")
        match = _READY.search(line)
        if match:
            return proc, match.group(1)


def _stop_process(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


class _Receiver:
    """The notification sink, its own process (:mod:`bench_receiver`): counts and measures latency."""

    def __init__(self, server: str = "asyncio") -> None:
        self.proc, self.url = _start_process(
            [sys.executable, "-m", "flexmeter.contextbroker.bench_receiver", server])
        self._control = _Client(self.url)

    def _call(self, method: str, path: str) -> Any:
        status, body = self._control.call(method, path, None)
        if status != 200:
            raise RuntimeError(f"receiver answered {status} on {path}")
        return json.loads(body)

    def counts(self) -> tuple[int, int]:
        stats = self._call("GET", "/_stats")
        return int(stats["notifications"]), int(stats["entities"])

    def start_latencies(self) -> None:
        self._call("POST", "/_latency/start")

    def take_latencies(self) -> list[float]:
        return [float(v) for v in self._call("POST", "/_latency/take")]

    def wait_entities(self, target: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.counts()[1]
            if got >= target:
                return got
            time.sleep(0.05)
        return self.counts()[1]

    def stop(self) -> None:
        self._control.close()
        _stop_process(self.proc)


class _Broker:
    def __init__(self, db: Path, notify_batch: int | None) -> None:
        args = [sys.executable, "-m", "flexmeter", "broker", "--port", "0", "--db", str(db)]
        if notify_batch:
            args += ["--notify-batch", str(notify_batch)]
        self.proc, self.url = _start_process(args)

    def metrics(self) -> dict[str, float]:
        text = requests.get(self.url + "/metrics", timeout=10).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name = line.split("{", 1)[0].split(" ", 1)[0]
                out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        return out

    def cpu_seconds(self) -> float | None:
        """User + system CPU the broker process has used (Linux ``/proc``; None elsewhere)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        _stop_process(self.proc)


def _cpu_figure(name: str, broker: _Broker, cpu_before: float | None, units: int, what: str) -> dict[str, Any]:
    """The broker's CPU per unit of work: unlike the rates, barely affected by the machine's other load."""
    cpu_after = broker.cpu_seconds()
    if cpu_before is None or cpu_after is None or not units:
        return {}
    return {name: {"value": round((cpu_after - cpu_before) / units * 1e6, 1), "unit": f"us broker CPU per {what}"}}


def _entities(start: int, count: int, ts: float | None = None) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + count):
        entity: dict[str, Any] = {"id": f"M{i % ENTITIES}", "type": ENTITY_TYPE,
                                  "power": {"type": "Number", "value": i}}
        if ts is not None:
            entity["ts"] = {"type": "Number", "value": ts}
        out.append(entity)
    return out


class _Client:
    """A keep-alive HTTP/1.1 client far lighter than requests, so the client steals less CPU."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)

    def call(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        if body is None:
            self.conn.request(method, path)
        else:
            data = json.dumps(body).encode()
            self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()


def _run_threads(threads: int, duration: float, base_url: str,
                 work: Callable[[_Client, int], int]) -> tuple[int, float]:
    """Run ``work(client, n)`` in a loop on ``threads`` threads for ``duration``; (units done, seconds)."""
    done = [0] * threads
    stop = time.monotonic() + duration

    def loop(index: int) -> None:
        client = _Client(base_url)
        n = 0
        while time.monotonic() < stop:
            done[index] += work(client, n)
            n += 1
        client.close()

    started = time.monotonic()
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done), time.monotonic() - started


def _batch_work(offset: int = 0) -> Callable[[_Client, int], int]:
    def work(client: _Client, n: int) -> int:
        body = {"actionType": "append", "entities": _entities(offset + n * BATCH, BATCH, time.time())}
        status, text = client.call("POST", "/v2/op/update", body)
        if status != 204:
            raise RuntimeError(f"batch update answered {status}: {text[:200]!r}")
        return BATCH
    return work


def _subscribe(url: str, receiver_url: str, count: int) -> None:
    session = requests.Session()
    payload = {"subject": {"entities": [{"idPattern": ".*", "type": ENTITY_TYPE}]},
               "notification": {"http": {"url": receiver_url + "/notify"}, "attrs": ["ts", "power"],
                                "attrsFormat": "keyValues"}}
    for _ in range(count):
        r = session.post(url + "/v2/subscriptions", json=payload, timeout=30)
        if r.status_code != 201:
            raise RuntimeError(f"subscription answered {r.status_code}: {r.text[:200]}")
    session.close()


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def run_bench(duration: float = 3.0, *, client_threads: int = 4, notify_batch: int = 100,
              receiver_server: str = "asyncio",
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """All figures, as a JSON-ready dict."""
    say = progress or (lambda text: None)
    receiver = _Receiver(receiver_server)
    figures: dict[str, Any] = {}
    conditions = {
        "cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
        "duration_s_per_figure": duration, "batch_size": BATCH, "distinct_entities": ENTITIES,
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "client_threads": client_threads,
        "notify_workers": get_settings().notify_workers,
        "notify_pipeline": get_settings().notify_pipeline,
        "receiver": f"{receiver_server} (own process; counts notifications, parses each body with orjson,"
                    " answers 204)",
        "note": "client (one process, its threads), broker and receiver are three processes on the same"
                " machine, shared with other work (see the load average)",
    }
    try:
        with tempfile.TemporaryDirectory(prefix="flexmeter-bench-") as tmp:
            # -- Orion semantics (one notification per entity) ---------------------------------
            broker = _Broker(Path(tmp) / "orion.db", None)
            try:
                session = requests.Session()
                for start in range(0, ENTITIES, BATCH):
                    session.post(broker.url + "/v2/op/update", timeout=60,
                                 json={"actionType": "append", "entities": _entities(start, BATCH)}
                                 ).raise_for_status()
                body = {"power": {"type": "Number", "value": 0}}

                def patch(client: _Client, n: int) -> int:
                    body["power"]["value"] = n
                    status, text = client.call("PATCH", f"/v2/entities/M{n % ENTITIES}/attrs", body)
                    if status != 204:
                        raise RuntimeError(f"PATCH answered {status}: {text[:200]!r}")
                    return 1

                say("single-entity PATCH/s")
                cpu = broker.cpu_seconds()
                done, secs = _run_threads(client_threads, duration, broker.url, patch)
                figures["patch_per_s"] = {"value": round(done / secs, 1), "unit": "requests/s"}
                figures.update(_cpu_figure("patch_cpu", broker, cpu, done, "PATCH"))

                say("batch updates, 0 subscriptions")
                cpu = broker.cpu_seconds()
                done, secs = _run_threads(client_threads, duration, broker.url, _batch_work())
                figures["batch_entities_per_s_0_subs"] = {"value": round(done / secs, 1),
                                                          "unit": "entities/s"}
                figures.update(_cpu_figure("batch_cpu_0_subs", broker, cpu, done, "entity updated"))

                _subscribe(broker.url, receiver.url, 1)
                figures.update(_measure_notified(broker, receiver, duration, client_threads, 1,
                                                 "1_sub", say))

                say("latency at 1,000 updates/s")
                figures.update(_latency(broker, receiver, duration))
            finally:
                broker.stop()
            # -- with --notify-batch: one notification carries a batch's entities -----------
            broker = _Broker(Path(tmp) / "batched.db", notify_batch)
            try:
                session = requests.Session()
                for start in range(0, ENTITIES, BATCH):
                    session.post(broker.url + "/v2/op/update", timeout=60,
                                 json={"actionType": "append", "entities": _entities(start, BATCH)}
                                 ).raise_for_status()
                _subscribe(broker.url, receiver.url, 1)
                figures.update(_measure_notified(broker, receiver, duration, client_threads, 1,
                                                 f"1_sub_notify_batch_{notify_batch}", say))
                say(f"latency at 1,000 updates/s, notify-batch {notify_batch}")
                figures.update(_latency(broker, receiver, duration, suffix=f"_notify_batch_{notify_batch}"))
                _subscribe(broker.url, receiver.url, 999)
                figures.update(_measure_notified(broker, receiver, duration, client_threads, 1000,
                                                 f"1000_subs_notify_batch_{notify_batch}", say))
            finally:
                broker.stop()
            # -- 1,000 subscriptions with Orion semantics ----------------------------------------
            broker = _Broker(Path(tmp) / "many.db", None)
            try:
                _subscribe(broker.url, receiver.url, 1000)
                figures.update(_measure_notified(broker, receiver, duration, client_threads, 1000,
                                                 "1000_subs", say))
            finally:
                broker.stop()
    finally:
        receiver.stop()
    conditions["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    return {"benchmark": "broker", "conditions": conditions, "figures": figures}


def _measure_notified(broker: _Broker, receiver: _Receiver, duration: float, threads: int, subs: int,
                      label: str, say: Callable[[str], None]) -> dict[str, Any]:
    say(f"batch updates, {label}")
    before_n, before_e = receiver.counts()
    m0 = broker.metrics()
    cpu = broker.cpu_seconds()
    started = time.monotonic()
    updates, secs = _run_threads(threads, duration, broker.url, _batch_work())
    expected = updates * subs
    drain_timeout = max(30.0, duration * 10)
    # wait until the receiver got everything, or the broker says the rest was dropped/failed
    deadline = time.monotonic() + drain_timeout
    while time.monotonic() < deadline:
        m = broker.metrics()
        lost = (m.get("flexmeter_broker_notifications_dropped_total", 0) - m0.get(
            "flexmeter_broker_notifications_dropped_total", 0)) + (m.get(
                "flexmeter_broker_notifications_failed_total", 0) - m0.get(
                "flexmeter_broker_notifications_failed_total", 0))
        got = receiver.counts()[1] - before_e
        if got >= expected or (m.get("flexmeter_broker_notification_queue_depth", 0) == 0 and got > 0
                               and lost > 0):
            break
        time.sleep(0.1)
    all_done = time.monotonic() - started
    after_n, after_e = receiver.counts()
    m1 = broker.metrics()
    dropped = m1.get("flexmeter_broker_notifications_dropped_total", 0) - m0.get(
        "flexmeter_broker_notifications_dropped_total", 0)
    failed = m1.get("flexmeter_broker_notifications_failed_total", 0) - m0.get(
        "flexmeter_broker_notifications_failed_total", 0)
    delivered_entities = after_e - before_e
    return {
        **_cpu_figure(f"batch_cpu_{label}", broker, cpu, updates,
                      "entity updated, its notifications included (until all delivered)"),
        f"batch_entities_per_s_{label}": {"value": round(updates / secs, 1), "unit": "entities/s"},
        f"notifications_per_s_{label}": {"value": round((after_n - before_n) / all_done, 1),
                                         "unit": "notifications/s (until all delivered)"},
        f"notified_entities_per_s_{label}": {"value": round(delivered_entities / all_done, 1),
                                             "unit": "entities/s (until all delivered)"},
        f"delivery_{label}": {"value": {"expected_entity_notifications": expected,
                                        "delivered": delivered_entities, "dropped_notifications": dropped,
                                        "failed_notifications": failed,
                                        "all_delivered": delivered_entities >= expected},
                              "unit": "counts"},
    }


def _latency(broker: _Broker, receiver: _Receiver, duration: float, rate: int = 1000,
             per_request: int = 20, suffix: str = "") -> dict[str, Any]:
    """Paced ``rate`` entity updates/s (batches of ``per_request`` every ``per_request/rate`` s)."""
    receiver.start_latencies()
    _, before_e = receiver.counts()
    client = _Client(broker.url)
    interval = per_request / rate
    start = time.monotonic()
    sent = 0
    n = 0
    while time.monotonic() - start < duration:
        due = start + n * interval
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        body = {"actionType": "append", "entities": _entities(n * per_request, per_request, time.time())}
        status, text = client.call("POST", "/v2/op/update", body)
        if status != 204:
            raise RuntimeError(f"batch update answered {status}: {text[:200]!r}")
        sent += per_request
        n += 1
    achieved = sent / (time.monotonic() - start)
    client.close()
    receiver.wait_entities(before_e + sent, 30)
    lat = receiver.take_latencies()
    return {
        f"paced_rate{suffix}": {"value": round(achieved, 1),
                                "unit": f"entity updates/s (target {rate}, {per_request} a request)"},
        f"latency_p50_ms{suffix}": {"value": round(_percentile(lat, 50) * 1000, 1), "unit": "ms"},
        f"latency_p99_ms{suffix}": {"value": round(_percentile(lat, 99) * 1000, 1), "unit": "ms"},
        f"latency_samples{suffix}": {"value": len(lat), "unit": "notified entities"},
    }


def format_text(result: dict[str, Any]) -> str:
    lines = ["flexmeter bench broker", "conditions:"]
    lines += [f"  {k}: {v}" for k, v in result["conditions"].items()]
    lines.append("figures:")
    for name, fig in result["figures"].items():
        lines.append(f"  {name}: {fig['value']} {fig['unit']}")
    return "\n".join(lines)
