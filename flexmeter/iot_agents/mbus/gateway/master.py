"""The EN 13757-2 link layer as a master: SND_NKE, SND_UD selection by secondary address, REQ_UD2 with the
frame count bit, retries, multi-telegram readouts, and the primary and secondary scans.

Timing (EN 13757-2 at 300-9600 baud): a character is 11 bits (start, 8 data, even parity, stop), so at
2400 baud one byte takes 11/2400 s = 4.58 ms; a slave must start answering within 330 bit times + 50 ms
(187.5 ms at 2400 baud) and the whole frame then takes its length in characters. A TCP converter adds its
network latency (``extra``).

FCB: after SND_NKE (or a selection) the slave expects FCB = 1 with FCV set; the master toggles FCB after each
*successful* exchange and repeats the *same* FCB on a retry, so a slave whose answer was lost repeats that
answer instead of moving on to the next telegram.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from flexmeter.iot_agents.mbus.errors import DecodeError as MbusDecodeError
from flexmeter.iot_agents.mbus.link import build_long_frame, build_short_frame, split_wired

from .errors import BadAnswerError, NoAnswerError
from .transport import Transport

log = logging.getLogger(__name__)

ACK = 0xE5
SND_NKE = 0x40
REQ_UD2 = 0x5B          # FCV set, FCB clear; | 0x20 for FCB set
FCB_BIT = 0x20
SND_UD = 0x53
CI_SELECT = 0x52
ADDRESS_SELECTED = 0xFD  # the slave selected by secondary address
ADDRESS_BROADCAST = 0xFF
MAX_PRIMARY = 250
MAX_TELEGRAMS = 16

ProbeResult = Literal["none", "single", "collision"]


@dataclass
class BusTiming:
    """Per-bus timing. ``extra`` is added to every wait (TCP converters, slow level converters)."""

    baudrate: int = 2400
    extra: float = 0.0
    response_timeout_override: float | None = None

    @property
    def bit_time(self) -> float:
        return 1.0 / self.baudrate

    @property
    def char_time(self) -> float:
        """One 11-bit character (start + 8 data + even parity + stop)."""
        return 11 * self.bit_time

    @property
    def response_timeout(self) -> float:
        """Until the first byte of an answer: 330 bit times + 50 ms (EN 13757-2), plus ``extra``."""
        if self.response_timeout_override is not None:
            return self.response_timeout_override
        return 330 * self.bit_time + 0.050 + self.extra

    @property
    def inter_char_timeout(self) -> float:
        """Silence inside a frame after which the frame is taken as broken (generous: converters buffer)."""
        return max(20 * self.char_time, 0.05) + self.extra

    def frame_time(self, length: int) -> float:
        return length * self.char_time

    def describe(self) -> dict[str, float]:
        return {"baudrate": self.baudrate, "char_time_s": round(self.char_time, 6),
                "response_timeout_s": round(self.response_timeout, 6),
                "inter_char_timeout_s": round(self.inter_char_timeout, 6)}


def parse_secondary(text: str) -> bytes:
    """``ID[MAN[VER[MED]]]`` as 8-16 hex characters (``F`` = wildcard nibble) -> the 8 selection bytes."""
    cleaned = text.strip().upper()
    if len(cleaned) < 8 or len(cleaned) > 16 or any(c not in "0123456789ABCDEF" for c in cleaned):
        raise ValueError(f"secondary address {text!r}: 8 to 16 hex digits (ID, manufacturer, version, medium)")
    cleaned = cleaned.ljust(16, "F")
    ident = bytes.fromhex(cleaned[:8])[::-1]
    man = int(cleaned[8:12], 16).to_bytes(2, "little")
    return ident + man + bytes.fromhex(cleaned[12:16])


def secondary_of(frame: bytes) -> str:
    """The secondary address (ID, manufacturer, version, medium; 16 hex digits) of an RSP_UD with CI 72."""
    if len(frame) < 19 or frame[0] != 0x68:
        raise ValueError("not a long frame with a long header")
    header = frame[7:15]
    return (f"{header[3::-1].hex().upper()}{int.from_bytes(header[4:6], 'little'):04X}"
            f"{header[6]:02X}{header[7]:02X}")


def more_follow(frame: bytes) -> bool:
    """True when the RSP_UD says more telegrams follow (DIF 0x1F)."""
    from flexmeter.iot_agents.mbus import decode_mbus

    try:
        return decode_mbus(frame).more_records_follow
    except MbusDecodeError:
        return False


class MbusMaster:
    def __init__(self, transport: Transport, timing: BusTiming | None = None, retries: int = 2,
                 on_retry: Callable[[str], None] | None = None) -> None:
        self.transport = transport
        self.timing = timing or BusTiming()
        self.retries = retries
        self.on_retry = on_retry or (lambda what: None)
        self.retried = 0

    # -- receive ----------------------------------------------------------------------------------------
    def _receive(self) -> bytes | None:
        """One answer: None on silence; raises BadAnswerError on anything that is not a valid frame."""
        t = self.timing
        first = self.transport.read(1, t.response_timeout)
        if not first:
            return None
        if first[0] == ACK:
            return first
        if first[0] == 0x68:
            head = first + self.transport.read(3, t.inter_char_timeout + t.frame_time(3))
            if len(head) == 4 and head[1] == head[2] and head[3] == 0x68:
                rest = self.transport.read(head[1] + 2, t.inter_char_timeout + t.frame_time(head[1] + 2))
                frame = head + rest
                try:
                    split_wired(frame)
                except MbusDecodeError as exc:
                    self.transport.drain()
                    raise BadAnswerError(f"bad frame ({exc.rule}): {frame.hex().upper()}") from None
                return frame
            garbage = head
        elif first[0] == 0x10:
            frame = first + self.transport.read(4, t.inter_char_timeout + t.frame_time(4))
            try:
                split_wired(frame)
            except MbusDecodeError as exc:
                raise BadAnswerError(f"bad short frame ({exc.rule}): {frame.hex().upper()}") from None
            return frame
        else:
            garbage = first
        garbage += self.transport.read(300, t.inter_char_timeout)
        self.transport.drain()
        raise BadAnswerError(f"not a frame: {garbage[:32].hex().upper()}")

    def _exchange(self, request: bytes, what: str, retries: int | None = None) -> bytes:
        """Send ``request`` (the very same bytes on every retry) until a valid answer arrives."""
        attempts = 1 + (self.retries if retries is None else retries)
        last = "no answer"
        for attempt in range(attempts):
            if attempt:
                self.retried += 1
                self.on_retry(what)
                log.debug("retry %d of %s", attempt, what)
            self.transport.drain()
            self.transport.write(request)
            try:
                answer = self._receive()
            except BadAnswerError as exc:
                last = str(exc)
                continue
            if answer is not None:
                return answer
        raise NoAnswerError(f"{what}: {last} after {attempts} attempt(s)")

    # -- link services ------------------------------------------------------------------------------------
    def send_nke(self, address: int, retries: int | None = None) -> bool:
        """SND_NKE (link reset); True when the slave acknowledged with E5."""
        try:
            answer = self._exchange(build_short_frame(SND_NKE, address), f"SND_NKE to {address}", retries)
        except NoAnswerError:
            return False
        return answer == bytes((ACK,))

    def select(self, secondary: str, retries: int | None = None) -> ProbeResult:
        """SND_UD to 0xFD with CI 52: select the slave(s) matching ``secondary`` (F nibbles are wildcards)."""
        request = build_long_frame(SND_UD, ADDRESS_SELECTED, CI_SELECT, parse_secondary(secondary))
        attempts = 1 + (self.retries if retries is None else retries)
        for _ in range(attempts):
            self.transport.drain()
            self.transport.write(request)
            try:
                answer = self._receive()
            except BadAnswerError:
                return "collision"
            if answer == bytes((ACK,)):
                return "single"
            if answer is not None:
                return "collision"
        return "none"

    def request(self, address: int, fcb: bool, retries: int | None = None) -> bytes:
        """REQ_UD2 -> RSP_UD; a retry repeats the same FCB."""
        c_field = REQ_UD2 | (FCB_BIT if fcb else 0)
        answer = self._exchange(build_short_frame(c_field, address), f"REQ_UD2 to {address}", retries)
        if answer[0] != 0x68:
            raise NoAnswerError(f"REQ_UD2 to {address}: answered {answer.hex().upper()}, not an RSP_UD")
        return answer

    def read(self, meter: int | str, max_telegrams: int = MAX_TELEGRAMS) -> list[bytes]:
        """All telegrams of one meter (primary address, or secondary address string)."""
        if isinstance(meter, str):
            self._deselect()
            if self.select(meter) != "single":
                raise NoAnswerError(f"meter {meter}: not selected (no answer, or several meters match)")
            address = ADDRESS_SELECTED
        else:
            if not 0 <= meter <= MAX_PRIMARY:
                raise ValueError(f"primary address {meter} is not in 0..{MAX_PRIMARY}")
            address = meter
            if not self.send_nke(address):
                raise NoAnswerError(f"meter {meter}: no E5 to SND_NKE")
        frames: list[bytes] = []
        fcb = True
        for _ in range(max_telegrams):
            frame = self.request(address, fcb)
            frames.append(frame)
            fcb = not fcb
            if not more_follow(frame):
                break
        return frames

    def _deselect(self) -> None:
        """SND_NKE to 0xFD deselects whatever is selected; nobody answers it, so no retries."""
        self.transport.drain()
        self.transport.write(build_short_frame(SND_NKE, ADDRESS_SELECTED))
        self.transport.read(1, self.timing.char_time * 2 + self.timing.extra / 4)
        self.transport.drain()

    # -- scans --------------------------------------------------------------------------------------------
    def scan_primary(self, addresses: Iterable[int] = range(0, MAX_PRIMARY + 1), retries: int = 0) -> list[int]:
        """Primary addresses that acknowledge SND_NKE."""
        return [a for a in addresses if self.send_nke(a, retries=retries)]

    def scan_secondary(self, mask: str = "FFFFFFFFFFFFFFFF") -> list[str]:
        """Wildcard search on the 8 ID digits from the first ``F`` of ``mask`` (``1234FFFF`` searches the meters
        whose ID starts with 1234); each meter found is read once to learn its full address."""
        full = mask.upper().ljust(16, "F")
        parse_secondary(full)
        start = full.find("F")
        if not 0 <= start < 8:
            return [full] if self.select(full) == "single" else []
        found: list[str] = []
        for address in self._search(full, start):
            if address not in found:
                found.append(address)
        return found

    def _search(self, mask: str, position: int) -> Iterator[str]:
        for digit in "0123456789":
            probe = mask[:position] + digit + mask[position + 1:]
            self._deselect()
            result = self.select(probe, retries=0)
            if result == "none":
                continue
            if result == "single":
                try:
                    frame = self.request(ADDRESS_SELECTED, True, retries=0)
                    yield secondary_of(frame)
                    continue
                except (NoAnswerError, ValueError):
                    pass  # several meters answered at once: look closer
            if position < 7:
                yield from self._search(probe, position + 1)
            else:
                log.warning("secondary scan: meters collide on %s (same ID, other manufacturer/version/medium)",
                            probe)

    def close(self) -> None:
        self.transport.close()
