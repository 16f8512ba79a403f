"""Simulated wired M-Bus slaves behind an M-Bus-over-TCP converter (tests, and the pilots' simulator).

Each :class:`SimMeter` answers as EN 13757-2/-3 says: SND_NKE -> E5 (and a link reset: the next REQ_UD2 with
FCB = 1 starts again at the first telegram), REQ_UD2 -> RSP_UD built with the project's encoder (several
telegrams chained with DIF 0x1F when the meter has more than one), a repeated FCB -> the previous answer
again, SND_UD CI 52 -> selection by secondary address with F-nibble wildcards (E5 from each matching meter;
several answering a REQ_UD2 at once give a garbled frame, as on a real bus). ``drop_next(n)`` swallows the
next n answers (the request *is* processed: the situation where only the FCB tells a retry from a new
request). Every request received is kept in ``requests`` for assertions.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field

from flexmeter.iot_agents.mbus.encode import build_rsp_ud
from flexmeter.iot_agents.mbus.telegram import manufacturer_value

ACK = b"\xe5"


@dataclass
class SimMeter:
    address: int
    meter_id: str
    manufacturer: str = "KAM"
    version: int = 0x1B
    medium: int = 0x04
    telegrams: list[bytes] = field(default_factory=lambda: [b""])
    """Record bytes of each telegram of one readout (DIF 0x1F is appended to all but the last)."""
    access: int = 0
    selected: bool = False
    last_fcb: int = 0
    next_index: int = 0
    last_answer: bytes | None = None
    answers: int = 0

    @property
    def secondary(self) -> str:
        return (f"{self.meter_id.rjust(8, '0')}{manufacturer_value(self.manufacturer):04X}"
                f"{self.version:02X}{self.medium:02X}")

    def matches(self, select: bytes) -> bool:
        mask = (f"{select[3::-1].hex().upper()}{int.from_bytes(select[4:6], 'little'):04X}"
                f"{select[6]:02X}{select[7]:02X}")
        return all(m == "F" or m == s for m, s in zip(mask, self.secondary, strict=True))

    def reset(self) -> None:
        self.last_fcb = 0
        self.next_index = 0
        self.last_answer = None

    def answer(self, fcb: int | None) -> bytes:
        """The RSP_UD for a REQ_UD2 (``fcb`` None when FCV is clear)."""
        if fcb is not None and fcb == self.last_fcb and self.last_answer is not None:
            return self.last_answer  # a repetition: the master did not get our answer
        index = self.next_index
        more = index < len(self.telegrams) - 1
        self.next_index = (index + 1) % len(self.telegrams)
        self.access = (self.access + 1) & 0xFF
        records = self.telegrams[index] + (b"\x1f" if more else b"")
        self.last_answer = build_rsp_ud(address=self.address, meter_id=self.meter_id,
                                        manufacturer=self.manufacturer, version=self.version, medium=self.medium,
                                        access_number=self.access, status=0, records=records)
        if fcb is not None:
            self.last_fcb = fcb
        self.answers += 1
        return self.last_answer


def _garble(frames: list[bytes]) -> bytes:
    """Several slaves sending at once: the bus carries neither frame (bitwise AND of the currents)."""
    out = bytearray(frames[0])
    for other in frames[1:]:
        for i in range(min(len(out), len(other))):
            out[i] &= other[i]
    out[0] = 0x60
    return bytes(out)


class MbusSlaveSimulator:
    """A TCP server speaking M-Bus for its meters (one master connection at a time, as a converter)."""

    def __init__(self, meters: list[SimMeter], host: str = "127.0.0.1", port: int = 0,
                 answer_delay: float = 0.002) -> None:
        self.meters = meters
        self.answer_delay = answer_delay
        self.requests: list[bytes] = []
        self._drop = 0
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((host, port))
        self._server.listen(4)
        self.host, self.port = self._server.getsockname()[:2]
        self._stop = threading.Event()
        self._fds: tuple[int, ...] = ()
        self._thread = threading.Thread(target=self._serve, name="mbus-slave-sim", daemon=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> MbusSlaveSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        try:
            self._server.close()
            for fd in self._fds:
                os.close(fd)
        finally:
            if self._thread.is_alive():
                self._thread.join(timeout=5)

    def serve_pty(self) -> str:
        """Also answer on a pseudo-terminal (a serial line for the master); returns its device path."""
        import tty

        master_fd, slave_fd = os.openpty()
        tty.setraw(master_fd)
        path = os.ttyname(slave_fd)

        def pump() -> None:
            buf = bytearray()
            while not self._stop.is_set():
                try:
                    chunk = os.read(master_fd, 4096)
                except OSError:
                    return
                buf += chunk
                for frame in self._frames(buf):
                    answer = self.handle(frame)
                    if answer:
                        time.sleep(self.answer_delay)
                        os.write(master_fd, answer)

        threading.Thread(target=pump, name="mbus-slave-pty", daemon=True).start()
        self._fds = (master_fd, slave_fd)
        return path

    def drop_next(self, count: int = 1) -> None:
        with self._lock:
            self._drop += count

    # -- server -------------------------------------------------------------------------------------------
    def _serve(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(0.2)
                buf = bytearray()
                while not self._stop.is_set():
                    try:
                        chunk = conn.recv(4096)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not chunk:
                        break
                    buf += chunk
                    for frame in self._frames(buf):
                        answer = self.handle(frame)
                        if answer:
                            time.sleep(self.answer_delay)
                            try:
                                conn.sendall(answer)
                            except OSError:
                                break

    @staticmethod
    def _frames(buf: bytearray) -> list[bytes]:
        frames: list[bytes] = []
        while buf:
            if buf[0] == 0x10:
                if len(buf) < 5:
                    break
                frames.append(bytes(buf[:5]))
                del buf[:5]
            elif buf[0] == 0x68:
                if len(buf) < 4:
                    break
                total = buf[1] + 6
                if len(buf) < total:
                    break
                frames.append(bytes(buf[:total]))
                del buf[:total]
            else:
                del buf[:1]  # noise
        return frames

    def handle(self, frame: bytes) -> bytes | None:
        """The bus's answer to one master frame (None: silence)."""
        with self._lock:
            self.requests.append(frame)
            answer = self._answer(frame)
            if answer is not None and self._drop > 0:
                self._drop -= 1
                return None
            return answer

    def _targets(self, address: int) -> list[SimMeter]:
        if address == 0xFD:
            return [m for m in self.meters if m.selected]
        if address in (0xFE, 0xFF):
            return list(self.meters)
        return [m for m in self.meters if m.address == address]

    def _answer(self, frame: bytes) -> bytes | None:
        if frame[0] == 0x10:
            c_field, address = frame[1], frame[2]
            if (c_field + address) & 0xFF != frame[3] or frame[4] != 0x16:
                return None  # a slave ignores a frame with a bad checksum
            targets = self._targets(address)
            if c_field == 0x40:  # SND_NKE
                for meter in targets:
                    meter.reset()
                    if address == 0xFD:
                        meter.selected = False
                return ACK if targets and address not in (0xFD, 0xFF) else None
            if c_field & 0x4F == 0x4B:  # REQ_UD2 (FCV 0x10, FCB 0x20)
                fcb = (c_field >> 5) & 1 if c_field & 0x10 else None
                answers = [m.answer(fcb) for m in targets]
                if address == 0xFF or not answers:
                    return None
                return answers[0] if len(answers) == 1 else _garble(answers)
            return None
        # long frame: 68 L L 68 C A CI data CS 16
        body = frame[4:-2]
        if sum(body) & 0xFF != frame[-2] or frame[-1] != 0x16 or len(body) < 3:
            return None
        c_field, address, ci = body[0], body[1], body[2]
        if c_field & 0x4F == 0x43 and address == 0xFD and ci == 0x52 and len(body) == 11:
            matched = False
            for meter in self.meters:
                meter.selected = meter.matches(body[3:11])
                if meter.selected:
                    meter.reset()
                    matched = True
            return ACK if matched else None
        targets = self._targets(address)
        return ACK if targets and address != 0xFF else None
