"""Frames and helpers shared by the M-Bus agent tests (built with the project's own encoder)."""

from __future__ import annotations

import datetime as dt
import os
import queue
import re
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

from flexmeter.iot_agents.mbus.dates import encode_f
from flexmeter.iot_agents.mbus.encode import build_rsp_ud, build_wmbus, encode_record, encode_value

AES_KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
HEAT_ID = "123456782C2D1B04"      # KAM, version 0x1B, medium 04 (heat, outlet)
WATER_ID = "8765432115930107"     # ELS, version 1, medium 07 (water)


def heat_frame(access: int = 7, energy_kwh: int = 12345, when: dt.datetime | None = None, address: int = 5,
               meter_id: str = "12345678") -> bytes:
    when = when or dt.datetime(2026, 11, 27, 10, 15)
    records = (encode_value("energy", Decimal(energy_kwh * 1000), "Wh", 3)
               + encode_value("volume", Decimal("123.45"), "m³", -2)
               + encode_value("power", Decimal(5000), "W", 0)
               + encode_value("volume_flow", Decimal("1.234"), "m³/h", -3)
               + encode_value("flow_temperature", Decimal("70.1"), "°C", -1)
               + encode_value("return_temperature", Decimal("40.5"), "°C", -1)
               + encode_value("temperature_difference", Decimal("29.6"), "K", -1)
               + encode_record(b"\x6d", encode_f(when), data_field=0x04)
               + encode_value("energy", Decimal(10000000), "Wh", 3, storage=1))
    return build_rsp_ud(address=address, meter_id=meter_id, manufacturer="KAM", version=0x1B, medium=0x04,
                        access_number=access, status=0, records=records)


def water_telegram(access: int = 3, litres: int = 12345, key: bytes | None = AES_KEY) -> bytes:
    records = encode_value("volume", Decimal(litres) / 1000, "m³", -3)
    return build_wmbus(meter_id="87654321", manufacturer="ELS", version=1, medium=7, access_number=access,
                       status=0, records=records, key=key)


class ModuleProcess:
    """``python -m MODULE ARGS`` as a child process, ready when it prints ``ready on URL``."""

    READY = re.compile(r"ready on (http://\S+)")

    def __init__(self, module: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.cmd = [sys.executable, "-m", module, *args]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.output: list[str] = []
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> ModuleProcess:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=self.env, cwd=Path(__file__).resolve().parents[3])
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        while True:
            line = lines.get(timeout=timeout)
            if line is None:
                raise RuntimeError(f"{self.cmd} exited before ready:\n{self.log()}")
            match = self.READY.search(line)
            if match:
                self.url = match.group(1)
                return self

    def log(self) -> str:
        return "".join(self.output)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
