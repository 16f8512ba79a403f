"""One gateway: read the configured meters every interval, buffer the uplink, forward it when MQTT is up."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flexmeter.iot_agents.mbus.uplink import UplinkFrame, build_json_uplink

from .buffer import UplinkBuffer
from .errors import GatewayError, NoAnswerError, TransportClosedError
from .master import MbusMaster
from .publisher import MqttUplink

log = logging.getLogger(__name__)


def uplink_topic(apikey: str, concentrator: str) -> str:
    return f"mbus/{apikey}/{concentrator}/up"


@dataclass
class CycleResult:
    frames: int = 0
    meters_read: int = 0
    failures: dict[str, str] = field(default_factory=dict)


class GatewayRunner:
    def __init__(self, master: MbusMaster, buffer: UplinkBuffer, uplink: MqttUplink | None, *, apikey: str,
                 concentrator: str, meters: Sequence[int | str], interval: float = 300.0) -> None:
        self.master = master
        self.buffer = buffer
        self.uplink = uplink
        self.topic = uplink_topic(apikey, concentrator)
        self.concentrator = concentrator
        self.meters = list(meters)
        self.interval = interval
        self.cycles = 0

    def cycle(self) -> CycleResult:
        """Read every meter once; all frames of the cycle go into one buffered uplink message."""
        result = CycleResult()
        frames: list[UplinkFrame] = []
        for meter in self.meters:
            try:
                telegrams = self.master.read(meter)
            except NoAnswerError as exc:
                result.failures[str(meter)] = str(exc)
                log.warning("meter %s: %s", meter, exc)
                continue
            except TransportClosedError as exc:
                result.failures[str(meter)] = str(exc)
                log.warning("bus transport: %s (retrying next cycle)", exc)
                break
            except GatewayError as exc:
                result.failures[str(meter)] = str(exc)
                continue
            received = datetime.now(UTC)
            frames.extend(UplinkFrame("mbus", t, received) for t in telegrams)
            result.meters_read += 1
        if frames:
            self.buffer.put(self.topic, build_json_uplink(frames, self.concentrator))
        result.frames = len(frames)
        self.cycles += 1
        self.flush()
        return result

    def flush(self) -> int:
        return self.uplink.flush() if self.uplink is not None else 0

    def run(self, stop: threading.Event) -> None:
        next_cycle = time.monotonic()
        while not stop.is_set():
            if time.monotonic() >= next_cycle:
                next_cycle = max(next_cycle + self.interval, time.monotonic())  # a slow bus skips, never bunches
                self.cycle()
            elif self.buffer.depth():
                self.flush()
            stop.wait(min(1.0, max(0.0, next_cycle - time.monotonic())))
