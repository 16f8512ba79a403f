"""Decoder throughput over the libmbus corpus (one process, one core)."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from flexmeter.config import get_settings

from .decoder import decode_mbus, parse_hex
from .errors import DecodeError


def default_corpus() -> Path:
    return get_settings().corpus_dir / "libmbus"


def load_frames(corpus: str | None) -> list[bytes]:
    base = Path(corpus) if corpus else default_corpus()
    files = sorted((base / "test-frames").glob("*.hex"))
    if not files:
        raise SystemExit(f"no frames under {base}/test-frames")
    return [parse_hex(f.read_text()) for f in files]


def _rate(frames: list[bytes], duration: float, materialise: bool) -> tuple[float, float, float]:
    """(frames per CPU-second, records per CPU-second, frames per wall-second) for ``duration`` wall seconds.

    CPU time of this (single-threaded) process is "one core"; the wall figure is lower when other
    processes share the cores.
    """
    n = recs = 0
    start = time.perf_counter()
    cpu0 = time.process_time()
    deadline = start + duration
    while True:
        for f in frames:
            t = decode_mbus(f)
            recs += len(t.records)
            if materialise:
                for r in t.records:
                    r.value  # noqa: B018
        n += len(frames)
        now = time.perf_counter()
        if now >= deadline:
            break
    cpu = max(time.process_time() - cpu0, 1e-9)
    return n / cpu, recs / cpu, n / (now - start)


def run_bench(duration: float, corpus: str | None = None, fuzz: int = 0) -> dict[str, Any]:
    frames = load_frames(corpus)
    ok = 0
    for f in frames:
        try:
            decode_mbus(f)
            ok += 1
        except DecodeError:
            pass
    from . import records
    records.LAYOUT_CACHE = False
    _rate(frames, min(0.5, duration), False)  # warm the record-header spec cache
    cold, _, cold_wall = _rate(frames, duration, False)
    records.LAYOUT_CACHE = True
    _rate(frames, min(0.5, duration), False)  # learn the layouts
    fps, rps, fps_wall = _rate(frames, duration, False)
    fps_v, _, _ = _rate(frames, duration, True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result: dict[str, Any] = {
        "benchmark": "decode mbus",
        "figures": {
            "frames_per_s": {"value": round(fps), "unit": "frames/s (per CPU-second)"},
            "records_per_s": {"value": round(rps), "unit": "records/s (per CPU-second)"},
            "frames_per_s_wall": {"value": round(fps_wall), "unit": "frames/s (wall clock)"},
            "frames_per_s_with_values": {"value": round(fps_v), "unit": "frames/s (per CPU-second)"},
            "frames_per_s_no_layout_cache": {"value": round(cold), "unit": "frames/s (per CPU-second)"},
            "frames_per_s_no_layout_cache_wall": {"value": round(cold_wall), "unit": "frames/s (wall clock)"},
        },
        "conditions": {
            "corpus": "libmbus test-frames", "frames": len(frames), "frames_decoded": ok,
            "duration_s_per_figure": duration, "processes": 1, "threads": 1,
            "python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "load_average_1min": load,
            "note": ("frames_per_s decodes every record (header, storage/tariff/subunit, unit, raw value) "
                     "with the layout cache warm (each corpus frame seen before, as a meter's next "
                     "reading is); _no_layout_cache is the full table-driven parse of every record; "
                     "_with_values also builds every scaled Decimal/date value"),
        },
    }
    if fuzz:
        from .fuzz import run_fuzz
        result["fuzz"] = run_fuzz(fuzz, seed=1)
    return result


def format_text(result: dict[str, Any]) -> str:
    lines = [f"{result['benchmark']}:"]
    for name, fig in result["figures"].items():
        lines.append(f"  {name}: {fig['value']} {fig['unit']}")
    lines.append("conditions: " + ", ".join(f"{k}={v}" for k, v in result["conditions"].items()))
    if "fuzz" in result:
        lines.append("fuzz: " + ", ".join(f"{k}={v}" for k, v in result["fuzz"].items()))
    return "\n".join(lines)
