"""CPU and memory of the embedded processes, read from /proc (Linux), sampled during the workload.

CPU share is the process's user+system ticks over wall time: 100 % = one core busy. The machine's
share is the sum over the stack divided by the number of cores.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (None when it is gone or /proc is missing)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15 of stat)


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * PAGE
    except OSError:
        return None


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = float(sum(values[:8]))
    return total - idle, total


@dataclass
class ProcessUsage:
    name: str
    cpu_percent: float
    """mean over the window, 100 = one core"""
    rss_mb_peak: float
    rss_mb_end: float


@dataclass
class ResourceSampler:
    """Samples the given processes every ``interval`` s between ``start()`` and ``stop()``."""

    pids: dict[str, int]
    interval: float = 1.0
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    """(elapsed s, {name: cpu % since the previous sample})"""
    _rss_peak: dict[str, int] = field(default_factory=dict)
    _rss_end: dict[str, int] = field(default_factory=dict)
    _start_cpu: dict[str, float] = field(default_factory=dict)
    _end_cpu: dict[str, float] = field(default_factory=dict)
    _start: float = 0.0
    _end: float = 0.0
    _machine_start: tuple[float, float] = (0.0, 0.0)
    _machine_end: tuple[float, float] = (0.0, 0.0)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _read_cpu(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            value = cpu_seconds(pid)
            if value is not None:
                out[name] = value
        return out

    def _read_rss(self) -> None:
        for name, pid in self.pids.items():
            rss = rss_bytes(pid)
            if rss is not None:
                self._rss_end[name] = rss
                self._rss_peak[name] = max(rss, self._rss_peak.get(name, 0))

    def start(self) -> ResourceSampler:
        self._start = time.monotonic()
        self._start_cpu = self._read_cpu()
        self._machine_start = machine_busy()
        self._read_rss()
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        previous, previous_t = dict(self._start_cpu), self._start
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            cpu = self._read_cpu()
            self._read_rss()
            span = max(now - previous_t, 1e-6)
            self.samples.append((now - self._start, {
                name: round(100 * (cpu[name] - previous.get(name, cpu[name])) / span, 1) for name in cpu}))
            previous, previous_t = cpu, now

    def stop(self) -> None:
        self._end = time.monotonic()
        self._end_cpu = self._read_cpu()
        self._machine_end = machine_busy()
        self._read_rss()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def usage(self) -> list[ProcessUsage]:
        span = max(self._end - self._start, 1e-6)
        out = []
        for name in self.pids:
            if name not in self._start_cpu or name not in self._end_cpu:
                continue
            out.append(ProcessUsage(
                name=name, cpu_percent=round(100 * (self._end_cpu[name] - self._start_cpu[name]) / span, 1),
                rss_mb_peak=round(self._rss_peak.get(name, 0) / 1e6, 1),
                rss_mb_end=round(self._rss_end.get(name, 0) / 1e6, 1)))
        return out

    def machine_percent(self) -> float:
        """Busy share of the whole machine (every process, everybody's) over the window, 100 = all cores."""
        busy = self._machine_end[0] - self._machine_start[0]
        total = self._machine_end[1] - self._machine_start[1]
        return round(100 * busy / total, 1) if total > 0 else float("nan")
