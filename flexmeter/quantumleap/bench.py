"""``flexmeter bench timeseries``: ingest rates, year-long aggregation and lastN latency, with conditions.

The service runs as its own process (``flexmeter timeseries``), driven over HTTP by client threads in this
process (keep-alive connections), so the figures include HTTP, JSON and the commit of every notification.
The aggregation and lastN data sets are loaded directly through the store's bulk path (big transactions,
COPY on PostgreSQL) to save time; the queries themselves go through the HTTP API.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from flexmeter.quantumleap.model import EntityRow
from flexmeter.quantumleap.store import open_store
from flexmeter.quantumleap.timeindex import format_instant, parse_instant

START = parse_instant("2025-01-01T00:00:00Z")
READY = re.compile(r"ready on (http://\S+)")


class _Server:
    """``flexmeter timeseries`` as a child process."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flexmeter", "timeseries", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "FLEXMETER_LOG_LEVEL": "WARNING"},
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            match = READY.search(line)
            if match:
                self.url = match.group(1)
                break
        else:
            raise RuntimeError("flexmeter timeseries exited before it was ready")
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used (Linux /proc), to tell work from waiting."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class _Client:
    def __init__(self, server: _Server, service: str) -> None:
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        self.headers = {"Content-Type": "application/json", "Fiware-Service": service, "Fiware-ServicePath": "/b"}

    def post(self, path: str, body: bytes) -> int:
        self.conn.request("POST", path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        response.read()
        return response.status

    def get(self, path: str) -> tuple[int, Any]:
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else None)


class _Notifier:
    """A lean keep-alive HTTP/1.1 client for ``POST /v2/notify`` (a prebuilt head, minimal response parse).

    On a 2-core machine the load generator shares the CPUs with the server; http.client costs several
    times the server's per-request work, so the ingest figures would mostly measure the client.
    """

    def __init__(self, server: _Server, service: str) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")
        self.head = (
            f"POST /v2/notify HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nContent-Type: application/json\r\n"
            f"Fiware-Service: {service}\r\nFiware-ServicePath: /b\r\nContent-Length: "
        ).encode()

    def notify(self, body: bytes) -> int:
        self.sock.sendall(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status = int(self.reader.readline().split(b" ", 2)[1])
        length = 0
        while True:
            line = self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            self.reader.read(length)
        return status

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


_ENTITY = (
    '{"id":"%s","type":"BenchMeter","TimeInstant":{"type":"DateTime","value":"%s"},'
    '"activePower":{"type":"Number","value":%r,"metadata":{"unitCode":{"type":"Text","value":"WTT"}}},'
    '"totalActiveEnergyImport":{"type":"Number","value":%r},"voltage":{"type":"Number","value":230.1}}'
)


def _notification(ids: list[str], ms: int, value: float) -> bytes:
    """A normalized notification (built from a template: the client must not be the bottleneck)."""
    instant = format_instant(ms)
    data = ",".join(_ENTITY % (entity_id, instant, value, value * 10) for entity_id in ids)
    return ('{"subscriptionId":"bench","data":[' + data + "]}").encode()


def _ingest(
    server: _Server, service: str, threads: int, per_notification: int, duration: float, prefix: str
) -> dict[str, float]:
    """Notifications from ``threads`` clients for ``duration`` seconds; every one must be answered 200."""
    counts = [0] * threads
    errors = [0] * threads
    stop = time.monotonic() + duration

    def worker(n: int) -> None:
        client = _Notifier(server, service)
        ids = [f"{prefix}{n}-{k}" for k in range(per_notification)]
        i = 0
        try:
            while time.monotonic() < stop:
                ms = START + (i * threads + n) * 1000
                status = client.notify(_notification(ids, ms, float(i % 1000)))
                if status == 200:
                    counts[n] += 1
                else:
                    errors[n] += 1
                i += 1
        finally:
            client.close()

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    cpu = server.cpu_seconds()
    began = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - began
    cpu = server.cpu_seconds() - cpu
    acked = sum(counts)
    client = _Client(server, service)
    status, body = client.get(f"/v2/types/BenchMeter/attrs/activePower?aggrMethod=count&idPattern=^{prefix}")
    stored = sum(e["values"][0] for e in body["entities"]) if status == 200 else 0
    return {
        "notifications": acked,
        "errors": sum(errors),
        "seconds": elapsed,
        "cpu": cpu,
        "rows_acknowledged": acked * per_notification,
        "rows_stored": stored,
    }


def _year_rows(entity_id: str, count: int) -> Iterator[EntityRow]:
    for i in range(count):
        value = float(i % 8640)
        yield EntityRow(
            entity_id,
            "BenchMeter",
            START + i * 10_000,
            "/b",
            {"activePower": ("Number", value), "totalActiveEnergyImport": ("Number", value * 10)},
            {},
        )


def _fleet_rows(meters: int, readings: int) -> Iterator[EntityRow]:
    for r in range(readings):
        for m in range(meters):
            yield EntityRow(
                f"fleet{m:05d}",
                "FleetMeter",
                START + r * 900_000 + m,
                "/b",
                {"activePower": ("Number", float(r + m))},
                {},
            )


def run_bench(
    backend: str,
    *,
    dsn: str,
    duration: float = 10.0,
    year_rows: int = 3_153_600,
    meters: int = 10_000,
    readings: int = 10,
    progress: bool = True,
    threads: int = 8,
) -> dict[str, Any]:
    """Run every figure on one backend and return ``{"conditions": ..., "figures": ...}``."""

    def say(text: str) -> None:
        if progress:
            print(text, file=sys.stderr, flush=True)

    service = "bench" + uuid.uuid4().hex[:8]
    tmp = tempfile.TemporaryDirectory(prefix="fm-bench-ts-")
    db = Path(tmp.name) / "timeseries.db"
    args = ["--threads", str(threads)] + (["--postgres", dsn] if backend == "postgres" else ["--db", str(db)])
    server = _Server(args)
    store = open_store(str(db), dsn if backend == "postgres" else None)
    conditions: dict[str, Any] = {
        "backend": backend,
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "database": (
            f"SQLite {sqlite3.sqlite_version} WAL synchronous=NORMAL" if backend == "sqlite" else _pg_version(store)
        ),
        "server": f"flexmeter timeseries in its own process, waitress {threads} threads",
        "clients": "threads in the bench process, one keep-alive HTTP/1.1 connection each, a lean raw-socket "
        "client for notifications (same 2-core machine)",
        "entity": "BenchMeter with TimeInstant + 3 Number attributes (one with metadata)",
        "ingest_seconds": duration,
        "year_data": f"{year_rows} rows of one meter every 10 s, loaded through the store's bulk path "
        "(not via notifications); the query goes through HTTP",
        "fleet_data": f"{meters} meters x {readings} readings loaded through the bulk path",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    figures: dict[str, Any] = {}
    try:
        say("single-entity notifications ...")
        single = _ingest(server, service, 4, 1, duration, "s")
        figures["single_entity_notifications_per_s"] = {
            "value": round(single["notifications"] / single["seconds"], 1),
            "unit": "notifications/s",
            "target": ">= 1000",
            "errors": single["errors"],
            "lost": single["rows_acknowledged"] - single["rows_stored"],
            "server_cpu_ms_per_notification": round(1000 * single["cpu"] / max(1, single["notifications"]), 3),
        }
        say("100-entity notifications ...")
        batch = _ingest(server, service, 2, 100, duration, "b")
        figures["rows_per_s_100_entities_per_notification"] = {
            "value": round(batch["rows_acknowledged"] / batch["seconds"], 1),
            "unit": "rows/s",
            "target": ">= 20000",
            "errors": batch["errors"],
            "lost": batch["rows_acknowledged"] - batch["rows_stored"],
            "server_cpu_us_per_row": round(1e6 * batch["cpu"] / max(1, batch["rows_acknowledged"]), 1),
        }
        if year_rows <= 0 or meters <= 0:
            return {"benchmark": "timeseries", "conditions": conditions, "figures": figures}
        say(f"loading {year_rows} rows for the year aggregation ...")
        began = time.monotonic()
        store.bulk_load(service, _year_rows("year", year_rows))
        conditions["year_load_seconds"] = round(time.monotonic() - began, 1)
        client = _Client(server, service)
        to_date = format_instant(START + (year_rows - 1) * 10_000)
        path = (
            f"/v2/entities/year/attrs/activePower?type=BenchMeter&aggrMethod=avg&aggrPeriod=hour"
            f"&fromDate={quote(format_instant(START))}&toDate={quote(to_date)}"
        )
        timings, cpus, buckets = [], [], 0
        for _ in range(3):
            cpu = server.cpu_seconds()
            began = time.monotonic()
            status, body = client.get(path)
            timings.append(time.monotonic() - began)
            cpus.append(server.cpu_seconds() - cpu)
            buckets = len(body["values"]) if status == 200 else 0
        figures["hourly_avg_one_year_seconds"] = {
            "value": round(min(timings), 3),
            "unit": "s",
            "target": "<= 1",
            "runs": [round(t, 3) for t in timings],
            "buckets": buckets,
            "server_cpu_seconds": [round(c, 3) for c in cpus],
        }
        say(f"loading {meters} meters for lastN ...")
        store.bulk_load(service, _fleet_rows(meters, readings))
        latencies = []
        for i in range(500):
            entity = f"fleet{(i * 7919) % meters:05d}"
            began = time.monotonic()
            status, _ = client.get(f"/v2/entities/{entity}/attrs/activePower?type=FleetMeter&lastN=1")
            latencies.append((time.monotonic() - began) * 1000)
            if status != 200:
                raise RuntimeError(f"lastN query for {entity} answered {status}")
        latencies.sort()
        figures["last_n_1_latency_ms"] = {
            "value": round(statistics.median(latencies), 2),
            "unit": "ms (median)",
            "p99": round(latencies[int(len(latencies) * 0.99) - 1], 2),
            "queries": len(latencies),
        }
        conditions["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        server.stop()
        if backend == "postgres":
            store.drop_tenant(service)  # type: ignore[attr-defined]
        store.close()
        tmp.cleanup()
    return {"benchmark": "timeseries", "conditions": conditions, "figures": figures}


def _pg_version(store: Any) -> str:
    row = store._read("SHOW server_version", [])
    timescale = "TimescaleDB hypertables" if store.timescale else "plain tables (no TimescaleDB)"
    return f"PostgreSQL {row[0][0]}, {timescale}, psycopg_pool"
