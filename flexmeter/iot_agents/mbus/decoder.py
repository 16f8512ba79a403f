"""Public entry points: ``decode_mbus`` (wired frames) and ``decode_wmbus`` (wireless telegrams).

Pure functions: bytes (or a hex string) in, a ``Telegram`` out, or a ``DecodeError`` naming offset and rule.
"""

from __future__ import annotations

from .errors import DecodeError, FrameError
from .link import normalise_wmbus, split_wired
from .telegram import Telegram, bcd_id, manufacturer_code
from .transport import parse_apl


def parse_hex(text: str) -> bytes:
    """Hex with or without spaces, colons or a 0x prefix."""
    t = text.strip()
    if t.startswith(("0x", "0X")):
        t = t[2:]
    t = t.replace(" ", "").replace(":", "").replace("\n", "").replace("\r", "").replace("\t", "")
    try:
        return bytes.fromhex(t)
    except ValueError as exc:
        raise FrameError(f"not hexadecimal: {exc}", 0, "input.hex") from None


def _as_bytes(data: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(data, str):
        return parse_hex(data)
    return bytes(data)


def decode_mbus(data: bytes | bytearray | memoryview | str, key: bytes | None = None) -> Telegram:
    """Decode one wired M-Bus frame (ACK, short, control or long; RSP_UD and friends)."""
    buf = _as_bytes(data)
    kind, start, end = split_wired(buf)
    tel = Telegram("mbus", kind)
    if kind == "ack":
        return tel
    tel.c_field = buf[start]
    tel.address = buf[start + 1]
    if kind == "short":
        return tel
    _apl(buf, start + 2, end, tel, key, None, None)
    return tel


def _apl(buf: bytes, pos: int, end: int, tel: Telegram, key: bytes | None, m: bytes | None,
         a: bytes | None) -> None:
    try:
        parse_apl(buf, pos, end, tel, key, m, a)
    except DecodeError as exc:
        if exc.partial_records is not None:
            tel.records = exc.partial_records
        exc.telegram = tel
        raise


def decode_wmbus(data: bytes | bytearray | memoryview | str, key: bytes | None = None,
                 frame_format: str = "auto") -> Telegram:
    """Decode one wireless M-Bus telegram (with format A/B CRCs or without; ``frame_format`` forces one).

    Without a key, an encrypted telegram comes back with its header, ``encrypted=True`` and the still
    encrypted ``payload``; with a wrong key it raises ``WrongKeyError`` (or ``MacError``).
    """
    raw = _as_bytes(data)
    buf, fmt = normalise_wmbus(raw, frame_format)
    tel = Telegram("wmbus", "wmbus")
    tel.frame_format = fmt
    tel.c_field = buf[1]
    m = buf[2] | (buf[3] << 8)
    tel.link_manufacturer = tel.manufacturer = manufacturer_code(m)
    tel.link_id = tel.id = bcd_id(buf[4:8])
    tel.link_version = tel.version = buf[8]
    tel.link_medium = tel.medium = buf[9]
    _apl(buf, 10, len(buf), tel, key, buf[2:4], buf[4:10])
    return tel


__all__ = ["DecodeError", "decode_mbus", "decode_wmbus", "parse_hex"]
