"""Transport wrappers around xDLMS APDUs: DLMS/UDP (IEC 62056-47, as over G3-PLC/IPv6), HDLC
(IEC 62056-46: flags, frame format with segmentation bit and length, addresses, control, HCS/FCS) and the
LLC header (E6 E6 00 to the server, E6 E7 00 from it).

HDLC frames in DLMS carry no byte stuffing: the 11-bit length field delimits them. Segmented
information fields are joined by :class:`HdlcReassembler`, which the caller owns (one per link).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from .errors import ChecksumError, FramingError, LengthError, TruncatedError

FLAG = 0x7E
LLC_REQUEST = b"\xe6\xe6\x00"
LLC_RESPONSE = b"\xe6\xe7\x00"
WRAPPER_VERSION = 0x0001
_WRAPPER = struct.Struct(">HHHH")


# -- DLMS/UDP (and TCP) wrapper ------------------------------------------------------------------------
@dataclass(slots=True)
class WrapperHeader:
    version: int
    source_wport: int
    destination_wport: int
    length: int

    def to_json(self) -> dict[str, Any]:
        return {"layer": "dlms-wrapper", "version": self.version, "source_wport": self.source_wport,
                "destination_wport": self.destination_wport, "length": self.length}


def looks_wrapped(buf: bytes) -> bool:
    return len(buf) >= 8 and buf[0] == 0 and buf[1] == 1 and int.from_bytes(buf[6:8], "big") == len(buf) - 8


def unwrap_udp(buf: bytes) -> tuple[WrapperHeader, bytes]:
    """The wrapper header and the APDU it carries (exactly ``length`` bytes)."""
    if len(buf) < 8:
        raise TruncatedError("DLMS wrapper header (8 bytes)", len(buf))
    version, source, destination, length = _WRAPPER.unpack_from(buf)
    if version != WRAPPER_VERSION:
        raise FramingError("DLMS wrapper version 0x0001", 0, f"{version:#06x}")
    if length != len(buf) - 8:
        raise LengthError("DLMS wrapper length", 6, f"declared {length}, {len(buf) - 8} bytes follow")
    return WrapperHeader(version, source, destination, length), buf[8:]


def wrap_udp(apdu: bytes, source_wport: int = 1, destination_wport: int = 1) -> bytes:
    return (WRAPPER_VERSION.to_bytes(2, "big") + source_wport.to_bytes(2, "big")
            + destination_wport.to_bytes(2, "big") + len(apdu).to_bytes(2, "big") + apdu)


# -- HDLC ---------------------------------------------------------------------------------------------
def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_FCS_TABLE = _crc_table()


def fcs16(data: bytes) -> int:
    """CRC-16/X-25 (the HDLC HCS/FCS), sent least significant byte first."""
    crc = 0xFFFF
    table = _FCS_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


@dataclass(slots=True)
class HdlcFrame:
    segmented: bool
    destination: tuple[int, int | None]
    source: tuple[int, int | None]
    control: int
    info: bytes
    length: int

    @property
    def frame_kind(self) -> str:
        c = self.control
        if not c & 0x01:
            return "I"
        if c & 0x03 == 0x01:
            return {0x01: "RR", 0x05: "RNR"}.get(c & 0x0F, "S")
        names = {0x03: "UI", 0x83: "SNRM", 0x43: "DISC", 0x63: "UA", 0x0F: "DM", 0x87: "FRMR"}
        return names.get(c & 0xEF, "U")

    def to_json(self) -> dict[str, Any]:
        return {"layer": "hdlc", "frame": self.frame_kind, "control": self.control,
                "segmented": self.segmented, "destination": list(self.destination),
                "source": list(self.source), "length": self.length}


def _address(buf: bytes, pos: int, end: int, what: str) -> tuple[tuple[int, int | None], int]:
    start = pos
    while pos < end and not buf[pos] & 1:
        pos += 1
        if pos - start >= 4:
            raise FramingError(f"HDLC {what} address longer than 4 bytes", start)
    if pos >= end:
        raise TruncatedError(f"HDLC {what} address", start)
    raw = buf[start:pos + 1]
    size = len(raw)
    if size == 1:
        return (raw[0] >> 1, None), pos + 1
    if size == 2:
        return (raw[0] >> 1, raw[1] >> 1), pos + 1
    if size == 4:
        return (((raw[0] >> 1) << 7) | (raw[1] >> 1), ((raw[2] >> 1) << 7) | (raw[3] >> 1)), pos + 1
    raise FramingError(f"HDLC {what} address is 1, 2 or 4 bytes", start, str(size))


def decode_hdlc_frame(buf: bytes) -> HdlcFrame:
    """One ``7E … 7E`` frame (format type 3), checksums verified."""
    if len(buf) < 9:
        raise TruncatedError("HDLC frame (at least 9 bytes)", len(buf))
    if buf[0] != FLAG:
        raise FramingError("HDLC opening flag 0x7E", 0, f"{buf[0]:#04x}")
    if buf[1] >> 4 != 0xA:
        raise FramingError("HDLC frame format type 3 (0xA)", 1, f"{buf[1]:#04x}")
    length = ((buf[1] & 0x07) << 8) | buf[2]
    if length + 2 != len(buf):
        raise LengthError("HDLC frame length field", 1, f"declared {length}, frame has {len(buf) - 2}")
    if buf[-1] != FLAG:
        raise FramingError("HDLC closing flag 0x7E", len(buf) - 1, f"{buf[-1]:#04x}")
    end = len(buf) - 3  # position of the FCS
    dest, pos = _address(buf, 3, end, "destination")
    src, pos = _address(buf, pos, end, "source")
    if pos >= end:
        raise TruncatedError("HDLC control field", pos)
    control = buf[pos]
    pos += 1
    fcs = int.from_bytes(buf[end:end + 2], "little")
    if fcs16(buf[1:end]) != fcs:
        raise ChecksumError("HDLC FCS", end, f"frame {fcs:#06x}, computed {fcs16(buf[1:end]):#06x}")
    if pos == end:
        info = b""
    else:
        if pos + 2 > end:
            raise TruncatedError("HDLC HCS", pos)
        hcs = int.from_bytes(buf[pos:pos + 2], "little")
        if fcs16(buf[1:pos]) != hcs:
            raise ChecksumError("HDLC HCS", pos, f"frame {hcs:#06x}, computed {fcs16(buf[1:pos]):#06x}")
        info = buf[pos + 2:end]
    return HdlcFrame(bool(buf[1] & 0x08), dest, src, control, info, length)


def split_hdlc_stream(buf: bytes) -> list[bytes]:
    """Cut a byte stream into ``7E … 7E`` frames by their length fields (flags may be shared)."""
    frames = []
    pos = 0
    n = len(buf)
    while pos < n:
        if buf[pos] != FLAG:
            raise FramingError("HDLC opening flag 0x7E", pos, f"{buf[pos]:#04x}")
        if pos + 1 == n or buf[pos + 1] == FLAG:  # inter-frame fill or trailing flag
            pos += 1
            continue
        if pos + 3 > n:
            raise TruncatedError("HDLC frame format field", pos)
        length = ((buf[pos + 1] & 0x07) << 8) | buf[pos + 2]
        stop = pos + length + 2
        if stop > n:
            raise TruncatedError(f"HDLC frame of {length} bytes", pos)
        if buf[stop - 1] != FLAG:
            raise FramingError("HDLC closing flag 0x7E", stop - 1, f"{buf[stop - 1]:#04x}")
        frames.append(buf[pos:stop])
        pos = stop if stop < n and buf[stop] == FLAG else stop - 1
        if pos == stop - 1 and stop == n:
            break
    return frames


@dataclass
class HdlcReassembler:
    """Joins the information fields of segmented frames (S bit set on all but the last)."""

    _parts: dict[tuple[Any, Any], list[bytes]] = field(default_factory=dict)

    def feed(self, frame: HdlcFrame) -> bytes | None:
        """The whole information field once the last segment arrives, else ``None``."""
        key = (frame.destination, frame.source)
        parts = self._parts.setdefault(key, [])
        parts.append(frame.info)
        if frame.segmented:
            return None
        del self._parts[key]
        return b"".join(parts)


def strip_llc(info: bytes) -> tuple[bytes | None, bytes]:
    """(LLC header or None, APDU): the header is E6 E6 00 or E6 E7 00 when present."""
    if len(info) >= 3 and info[0] == 0xE6 and info[1] in (0xE6, 0xE7) and info[2] == 0x00:
        return info[:3], info[3:]
    return None, info


def encode_hdlc_frame(info: bytes, destination: int = 0x10, source: int = 0x01, control: int = 0x13,
                      segmented: bool = False) -> bytes:
    """One frame with 1-byte addresses (values < 128), HCS when there is an information field."""
    header_len = 2 + 1 + 1 + 1  # format, dest, src, control
    length = header_len + (2 + len(info) if info else 0) + 2
    if length > 0x7FF:
        raise ValueError("HDLC information field too long for one frame")
    fmt = bytes((0xA0 | (0x08 if segmented else 0) | (length >> 8), length & 0xFF))
    head = fmt + bytes(((destination << 1) | 1, (source << 1) | 1, control))
    body = head
    if info:
        body += fcs16(head).to_bytes(2, "little") + info
    return bytes((FLAG,)) + body + fcs16(body).to_bytes(2, "little") + bytes((FLAG,))


def segment_hdlc(info: bytes, max_info: int = 128, **kwargs: Any) -> list[bytes]:
    """Frames carrying ``info`` in segments of ``max_info`` bytes (S bit on all but the last)."""
    chunks = [info[i:i + max_info] for i in range(0, len(info), max_info)] or [b""]
    last = len(chunks) - 1
    return [encode_hdlc_frame(chunk, segmented=i < last, **kwargs) for i, chunk in enumerate(chunks)]
