"""Counters and gauges rendered in Prometheus text format, for every component's ``GET /metrics``.

DESIGN.md §5: every hop counts what it accepted, forwarded, rejected and retried. Kept tiny and
dependency-free; thread-safe because waitress and the notifier workers update it concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

LabelKey = tuple[tuple[str, str], ...]


def _key(labels: dict[str, str] | None) -> LabelKey:
    return tuple(sorted((labels or {}).items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metric:
    def __init__(self, name: str, help_text: str, kind: str) -> None:
        self.name = name
        self.help = help_text
        self.kind = kind
        self._values: dict[LabelKey, float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = _key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self._values[_key(labels)] = value

    def get(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(_key(labels), 0.0)

    def total(self) -> float:
        with self._lock:
            return sum(self._values.values())

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        with self._lock:
            items = sorted(self._values.items())
        if not items:
            items = [((), 0.0)]
        for key, value in items:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
            suffix = f"{{{label_text}}}" if label_text else ""
            number = int(value) if float(value).is_integer() else value
            lines.append(f"{self.name}{suffix} {number}")
        return lines


class Registry:
    """One per process; components register their metrics at import or construction."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._collectors: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def _get(self, name: str, help_text: str, kind: str) -> Metric:
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = self._metrics[name] = Metric(name, help_text, kind)
            return metric

    def counter(self, name: str, help_text: str) -> Metric:
        return self._get(name, help_text, "counter")

    def gauge(self, name: str, help_text: str) -> Metric:
        return self._get(name, help_text, "gauge")

    def on_collect(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` before each render, to refresh gauges such as queue depths."""
        self._collectors.append(callback)

    def render(self) -> str:
        for callback in list(self._collectors):
            callback()
        with self._lock:
            metrics = sorted(self._metrics.values(), key=lambda m: m.name)
        return "\n".join(line for m in metrics for line in m.render()) + "\n"


PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
