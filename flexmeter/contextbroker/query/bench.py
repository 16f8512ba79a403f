"""Micro-benchmark of the query language: compiled-filter evaluations per second, parses per second and
``orderBy`` sort time, on synthetic normalized entities (one process, one thread)."""

from __future__ import annotations

import os
import platform
import random
import time
from collections.abc import Callable
from typing import Any

from flexmeter.contextbroker.model import StoredEntity
from flexmeter.contextbroker.query import parse_geo, parse_mq, parse_order_by, parse_q, sort_entities

EXPRESSIONS: list[tuple[str, str]] = [
    ("q", "temperature>20"),
    ("q", "temperature>20;humidity<80;status==on"),
    ("q", "temperature==15..25"),
    ("q", "status!=off,error"),
    ("q", "brand.model.year>=2020"),
    ("q", "name~=^room-1"),
    ("q", "observed>2024-01-01T00:00:00Z"),
    ("mq", "temperature.accuracy<0.5"),
]
GEO: list[tuple[str, str, str]] = [
    ("near;maxDistance:5000", "point", "45.07,7.68"),
    ("coveredBy", "box", "45.0,7.6;45.1,7.8"),
]


def make_entities(n: int, seed: int = 7) -> list[StoredEntity]:
    rng = random.Random(seed)
    now = time.time()
    out: list[StoredEntity] = []
    for i in range(n):

        def a(value: Any, type_: str, md: dict[str, Any] | None = None) -> Any:
            return {"type": type_, "value": value, "metadata": md or {}, "creDate": now, "modDate": now}

        out.append(
            {
                "id": f"room-{i}",
                "type": "Room",
                "servicePath": "/",
                "creDate": now - i,
                "modDate": now,
                "expDate": None,
                "attrs": {
                    "temperature": a(
                        round(rng.uniform(0, 40), 2),
                        "Number",
                        {"accuracy": {"type": "Number", "value": rng.random()}},
                    ),
                    "humidity": a(rng.randint(0, 100), "Number"),
                    "status": a(rng.choice(["on", "off", "error"]), "Text"),
                    "name": a(f"room-{i}", "Text"),
                    "brand": a({"model": {"year": rng.randint(2010, 2025)}}, "StructuredValue"),
                    "observed": a("2024-05-01T12:00:00.000Z", "DateTime"),
                    "location": a(
                        f"{45 + rng.uniform(-0.1, 0.1):.5f}, {7.68 + rng.uniform(-0.1, 0.1):.5f}", "geo:point"
                    ),
                },
            }
        )
    return out


def _rate(fn: Callable[[], int], duration: float) -> float:
    """Operations per CPU-second of this process (wall time is meaningless on a shared 2-core box)."""
    count, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        count += fn()
        if time.perf_counter() - start >= duration:
            return count / max(time.process_time() - cpu_start, 1e-9)


def run_bench(duration: float = 1.0, entities: int = 10_000) -> dict[str, Any]:
    """Named figures with units, and the conditions."""
    data = make_entities(entities)
    figures: list[dict[str, Any]] = []
    for kind, text in EXPRESSIONS:
        f = parse_q(text) if kind == "q" else parse_mq(text)
        matches = f.matches

        def scan(m: Callable[[StoredEntity], bool] = matches) -> int:
            for e in data:
                m(e)
            return len(data)

        selected = sum(1 for e in data if matches(e))
        figures.append(
            {
                "name": f"{kind}={text}",
                "value": round(_rate(scan, duration)),
                "unit": "evaluations/s",
                "matched": selected,
            }
        )
    for georel, geometry, coords in GEO:
        g = parse_geo(georel, geometry, coords)
        assert g is not None
        gm = g.matches

        def geo_scan(m: Callable[[StoredEntity], bool] = gm) -> int:
            for e in data:
                m(e)
            return len(data)

        figures.append(
            {
                "name": f"georel={georel}&geometry={geometry}",
                "value": round(_rate(geo_scan, duration)),
                "unit": "evaluations/s",
                "matched": sum(1 for e in data if gm(e)),
            }
        )

    def parse_many() -> int:
        for _, text in EXPRESSIONS:
            parse_q(text.replace("temperature.accuracy", "temperature"))
        return len(EXPRESSIONS)

    figures.append({"name": "parse q", "value": round(_rate(parse_many, duration)), "unit": "parses/s"})
    spec = parse_order_by("status,!temperature")
    start = time.process_time()
    sort_entities(data, spec)
    figures.append(
        {
            "name": "orderBy=status,!temperature",
            "value": round((time.process_time() - start) * 1000, 2),
            "unit": f"ms per sort of {entities} entities",
        }
    )
    return {
        "benchmark": "query",
        "conditions": {
            "entities": entities,
            "duration_s_per_figure": duration,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "clock": "CPU time of this process",
            "threads": 1,
        },
        "figures": figures,
    }


def format_text(result: dict[str, Any]) -> str:
    c = result["conditions"]
    lines = [
        f"query benchmark: {c['entities']} entities, {c['duration_s_per_figure']} s per figure, "
        f"Python {c['python']}, {c['cpus']} CPUs, 1 thread, rates per CPU-second"
    ]
    for f in result["figures"]:
        lines.append(f"  {f['name']:<48} {f['value']:>12,} {f['unit']}")
    return "\n".join(lines)
