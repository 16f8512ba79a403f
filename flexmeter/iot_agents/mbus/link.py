"""Link layers: wired M-Bus frames (EN 13757-2) and wireless M-Bus telegrams (EN 13757-4), both ways."""

from __future__ import annotations

from .crc import crc16_en13757
from .errors import ChecksumError, CrcError, FrameError, LengthError


def split_wired(data: bytes) -> tuple[str, int, int]:
    """Check a wired frame; return (kind, start, end) of the C..data part (kind: ack/short/control/long)."""
    n = len(data)
    if n == 0:
        raise FrameError("empty frame", 0, "link.empty")
    start = data[0]
    if start == 0xE5:
        if n != 1:
            raise LengthError(f"ACK (E5) is one byte, got {n}", 1, "link.length")
        return "ack", 1, 1
    if start == 0x10:
        if n != 5:
            raise LengthError(f"short frame is 5 bytes, got {n}", min(n, 5), "link.length")
        if data[4] != 0x16:
            raise FrameError("short frame does not end with 16", 4, "link.stop")
        if (data[1] + data[2]) & 0xFF != data[3]:
            raise ChecksumError(f"checksum {data[3]:02X} != {(data[1] + data[2]) & 0xFF:02X}", 3)
        return "short", 1, 3
    if start != 0x68:
        raise FrameError(f"unknown start byte {start:02X}", 0, "link.start")
    if n < 6:
        raise LengthError(f"long frame header needs 4 bytes, frame has {n}", n, "link.length")
    ln = data[1]
    if data[2] != ln:
        raise LengthError(f"L fields differ ({ln:02X} != {data[2]:02X})", 2, "link.length")
    if data[3] != 0x68:
        raise FrameError("second start byte is not 68", 3, "link.start")
    if ln < 3:
        raise LengthError(f"L-field {ln} below the minimum 3", 1, "link.length")
    if n != ln + 6:
        raise LengthError(f"L-field says {ln + 6} bytes, frame has {n}", min(n, ln + 6), "link.length")
    if data[n - 1] != 0x16:
        raise FrameError("frame does not end with 16", n - 1, "link.stop")
    cs = sum(data[4:n - 2]) & 0xFF
    if cs != data[n - 2]:
        raise ChecksumError(f"checksum {data[n - 2]:02X} != {cs:02X}", n - 2)
    return ("control" if ln == 3 else "long"), 4, n - 2


def build_long_frame(c_field: int, address: int, ci: int, data: bytes) -> bytes:
    """A wired long frame ``68 L L 68 C A CI data CS 16``."""
    body = bytes((c_field, address, ci)) + bytes(data)
    if len(body) > 255:
        raise ValueError("long frame body exceeds 255 bytes")
    return bytes((0x68, len(body), len(body), 0x68)) + body + bytes((sum(body) & 0xFF, 0x16))


def build_short_frame(c_field: int, address: int) -> bytes:
    return bytes((0x10, c_field, address, (c_field + address) & 0xFF, 0x16))


# --- wireless ---------------------------------------------------------------------------------------------
def _format_a_length(ln: int) -> int:
    """Total bytes of a format A telegram with CRCs, for L-field ``ln``."""
    rest = ln - 9
    blocks = 1 + (rest + 15) // 16 if rest > 0 else 1
    return 1 + ln + 2 * blocks


def strip_format_a(data: bytes) -> bytes:
    ln = data[0]
    out = bytearray()
    pos = 0
    block = 10
    remaining = ln + 1  # bytes of L..end without CRC
    while remaining > 0:
        size = min(block, remaining)
        chunk = data[pos:pos + size]
        crc_at = pos + size
        if crc_at + 2 > len(data):
            raise LengthError("telegram ends inside a format A block", len(data), "link.length")
        crc = (data[crc_at] << 8) | data[crc_at + 1]
        if crc16_en13757(chunk) != crc:
            raise CrcError(f"format A block CRC fails at byte {crc_at}", crc_at, "link.crc_a")
        out += chunk
        pos = crc_at + 2
        remaining -= size
        block = 16
    return bytes(out)


def strip_format_b(data: bytes) -> bytes:
    ln = data[0]
    if ln + 1 != len(data):
        raise LengthError(f"format B L-field says {ln + 1} bytes, telegram has {len(data)}", 0, "link.length")
    if ln < 12:
        raise LengthError("format B telegram too short", 0, "link.length")
    end2 = min(ln + 1, 127) - 2
    crc = (data[end2] << 8) | data[end2 + 1]
    if crc16_en13757(data[:end2]) != crc:
        raise CrcError("format B block 2 CRC fails", end2, "link.crc_b")
    out = bytearray(data[:end2])
    if ln + 1 > 127:
        if ln + 1 < 130:
            raise LengthError("format B block 3 shorter than its CRC", 127, "link.length")
        crc = (data[ln - 1] << 8) | data[ln]
        if crc16_en13757(data[127:ln - 1]) != crc:
            raise CrcError("format B block 3 CRC fails", ln - 1, "link.crc_b")
        out += data[127:ln - 1]
    out[0] = len(out) - 1
    return bytes(out)


def normalise_wmbus(data: bytes, frame_format: str = "auto") -> tuple[bytes, str]:
    """Return the telegram without CRCs (L fixed to the stripped length) and the format found."""
    if len(data) < 11:
        raise LengthError(f"wM-Bus telegram needs at least 11 bytes, got {len(data)}", len(data), "link.length")
    ln = data[0]
    if frame_format == "A" or (frame_format == "auto" and len(data) == _format_a_length(ln) and ln + 1 != len(data)):
        if len(data) < _format_a_length(ln):
            raise LengthError(f"format A L-field needs {_format_a_length(ln)} bytes, got {len(data)}", len(data),
                              "link.length")
        return strip_format_a(data[:_format_a_length(ln)]), "A"
    if frame_format == "B":
        return strip_format_b(data), "B"
    if frame_format == "auto" and ln + 3 == len(data) and crc16_en13757(data[:10]) == ((data[10] << 8) | data[11]):
        # some receivers keep the CRC of block 1 only (the link header) and drop the others
        return bytes(data[:10]) + bytes(data[12:]), "A-block1"
    if ln + 1 != len(data):
        raise LengthError(f"L-field {ln} fits neither {len(data)} bytes without CRCs nor format A", 0,
                          "link.length")
    if frame_format == "auto" and ln >= 12:
        end2 = min(ln + 1, 127) - 2
        if crc16_en13757(data[:end2]) == ((data[end2] << 8) | data[end2 + 1]):
            try:
                return strip_format_b(data), "B"
            except CrcError:
                pass
    return bytes(data), "none"


def add_format_a(telegram: bytes) -> bytes:
    """Insert format A block CRCs into a telegram given without them (L-field = len - 1)."""
    out = bytearray()
    pos, block = 0, 10
    while pos < len(telegram):
        chunk = telegram[pos:pos + block]
        crc = crc16_en13757(chunk)
        out += chunk + bytes((crc >> 8, crc & 0xFF))
        pos += block
        block = 16
    return bytes(out)


def add_format_b(telegram: bytes) -> bytes:
    """Format B: L counts the CRCs; one CRC after byte 126 (block 1+2) and one at the end (block 3)."""
    body = bytearray(telegram)
    n = len(body) - 1  # bytes after L without CRCs
    single = n + 1 <= 125
    total = n + (2 if single else 4)
    if total > 255:
        raise ValueError("telegram too long for format B")
    body[0] = total
    if single:
        crc = crc16_en13757(body)
        return bytes(body) + bytes((crc >> 8, crc & 0xFF))
    first = body[:125]
    crc1 = crc16_en13757(first)
    rest = body[125:]
    crc2 = crc16_en13757(rest)
    return bytes(first) + bytes((crc1 >> 8, crc1 & 0xFF)) + bytes(rest) + bytes((crc2 >> 8, crc2 & 0xFF))
