"""Silent meters: a meter not heard for ``silence_factor`` x its interval raises an Anomaly (and clears it).

The interval is device configuration: ``internal_attributes`` ``{"interval": 300}`` (seconds, or an ISO 8601
duration ``PT5M``) and optionally ``{"silence_factor": 3}``, on the device or, as a default, on its service
group. Only devices with ``protocol: mbus`` and an interval are watched. The watchdog does no I/O of its
own: it turns each silent meter into a reading the agent's pipeline maps (to the ``Anomaly:<id>:silence``
entity, through the family's table) like any reading, so anomalies go through the outbox too.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flexmeter.iot_agents.core.registry import internal_config

Json = dict[str, Any]
DEFAULT_FACTOR = 3.0
_NUM = r"(\d+(?:\.\d+)?)"
_ISO_DURATION = re.compile(rf"^P(?:{_NUM}D)?(?:T(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?$")


def parse_interval(value: Any) -> float | None:
    """Seconds from a number, a numeric string or an ISO 8601 duration (``PT5M``); None if absent/invalid."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    text = str(value).strip().upper()
    try:
        seconds = float(text)
        return seconds if seconds > 0 else None
    except ValueError:
        pass
    match = _ISO_DURATION.match(text)
    if not match or text in ("P", "PT"):
        return None
    d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
    total = d * 86400 + h * 3600 + m * 60 + s
    return total if total > 0 else None


@dataclass(frozen=True)
class Watched:
    device_id: str
    apikey: str | None
    interval: float
    factor: float


@dataclass(frozen=True)
class SilenceEvent:
    device_id: str
    apikey: str | None
    last_heard: float | None
    interval: float
    factor: float
    detected: float
    resolved: bool = False

    def as_dict(self) -> Json:
        return {"device_id": self.device_id, "last_heard": self.last_heard, "interval": self.interval,
                "factor": self.factor, "detected": self.detected, "resolved": self.resolved}

    def payload(self) -> bytes:
        return json.dumps(self.as_dict()).encode()


def watched_devices(devices: Iterable[tuple[Json, Json | None]], protocol: str = "mbus") -> list[Watched]:
    out: list[Watched] = []
    for device, group in devices:
        if str(device.get("protocol") or "") != protocol:
            continue
        own = internal_config(device.get("internal_attributes"))
        shared = internal_config((group or {}).get("internal_attributes"))
        interval = parse_interval(own.get("interval", shared.get("interval")))
        if interval is None:
            continue
        factor = parse_interval(own.get("silence_factor", shared.get("silence_factor"))) or DEFAULT_FACTOR
        apikey = device.get("apikey") or (group or {}).get("apikey")
        out.append(Watched(str(device["device_id"]), str(apikey) if apikey else None, interval, factor))
    return out


class SilenceWatch:
    """Last-heard times and the silent set; thread-safe (decode and the watchdog thread both use it)."""

    def __init__(self, started: float | None = None) -> None:
        self.started = time.time() if started is None else started
        self._heard: dict[str, float] = {}
        self._silent: dict[str, Watched] = {}
        self._lock = threading.Lock()

    def heard(self, device_id: str, at: float) -> bool:
        """Record a telegram; True if the meter was silent (the caller clears the anomaly)."""
        with self._lock:
            if at > self._heard.get(device_id, 0.0):
                self._heard[device_id] = at
            return self._silent.pop(device_id, None) is not None

    def due(self, watched: Iterable[Watched], now: float) -> list[SilenceEvent]:
        """The meters that just became silent (each reported once until heard again)."""
        events: list[SilenceEvent] = []
        with self._lock:
            for w in watched:
                if w.device_id in self._silent:
                    continue
                last = self._heard.get(w.device_id)
                since = last if last is not None else self.started
                if now - since > w.factor * w.interval:
                    self._silent[w.device_id] = w
                    events.append(SilenceEvent(w.device_id, w.apikey, last, w.interval, w.factor, now))
        return events

    def is_silent(self, device_id: str) -> bool:
        with self._lock:
            return device_id in self._silent


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def silence_values(event: Json, detector: str) -> Json:
    """The object_id -> value of a silence reading (mapped to the Anomaly entity by the family's table)."""
    device_id = str(event["device_id"])
    detected = float(event["detected"])
    last = event.get("last_heard")
    interval = float(event["interval"])
    factor = float(event["factor"])
    if event.get("resolved"):
        return {"silence.status": "resolved", "silence.dateDetected": iso(detected)}
    heard = f"last heard {iso(float(last))}" if last is not None else "not heard since the agent started"
    return {
        "silence.anomalousProperty": "TimeInstant",
        "silence.anomalyType": "silence",
        "silence.dateDetected": iso(detected),
        "silence.detectedBy": detector,
        "silence.description": f"meter {device_id} silent for more than {factor:g} x {interval:g} s: {heard}",
        "silence.refDevice": device_id,
        "silence.thresholdBreach": {"interval": interval, "factor": factor,
                                    "lastHeard": iso(float(last)) if last is not None else None},
        "silence.status": "active",
    }
