"""CRC-16 of EN 13757-4 (polynomial 0x3D65, initial 0, final complement), table-driven."""

from __future__ import annotations


def _table() -> list[int]:
    out = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x3D65) if crc & 0x8000 else (crc << 1)
        out.append(crc & 0xFFFF)
    return out


_TABLE = _table()


def crc16_en13757(data: bytes | bytearray, start: int = 0, end: int | None = None) -> int:
    crc = 0
    t = _TABLE
    for b in memoryview(data)[start:end] if end is not None or start else data:
        crc = ((crc << 8) & 0xFFFF) ^ t[(crc >> 8) ^ b]
    return crc ^ 0xFFFF
