"""OBIS codes (IEC 62056-6-1) and the COSEM unit table (Blue Book 4.3.2, ``unit`` enum).

An OBIS code is written ``A-B:C.D.E.F`` everywhere in flexmeter (``1-0:1.8.0.255``); readouts that omit
groups (``1-0:1.8.0``, ``1.8.0``) are normalised with the IEC 62056-21 defaults (F = 255, A/B unknown).
"""

from __future__ import annotations

import re

from .errors import InvalidValueError

UNITS: dict[int, str] = {
    1: "a", 2: "mo", 3: "wk", 4: "d", 5: "h", 6: "min", 7: "s", 8: "°", 9: "°C", 10: "currency",
    11: "m", 12: "m/s", 13: "m³", 14: "m³", 15: "m³/h", 16: "m³/h", 17: "m³/d", 18: "m³/d", 19: "l",
    20: "kg", 21: "N", 22: "Nm", 23: "Pa", 24: "bar", 25: "J", 26: "J/h", 27: "W", 28: "VA", 29: "var",
    30: "Wh", 31: "VAh", 32: "varh", 33: "A", 34: "C", 35: "V", 36: "V/m", 37: "F", 38: "Ω",
    39: "Ωm²/m", 40: "Wb", 41: "T", 42: "A/m", 43: "H", 44: "Hz", 45: "1/(Wh)", 46: "1/(varh)",
    47: "1/(VAh)", 48: "V²h", 49: "A²h", 50: "kg/s", 51: "S", 52: "K", 53: "1/(V²h)", 54: "1/(A²h)",
    55: "1/m³", 56: "%", 57: "Ah", 60: "Wh/m³", 61: "J/m³", 62: "Mol %", 63: "g/m³", 64: "Pa s",
    65: "J/kg", 66: "g/cm²", 67: "atm", 70: "dBm", 71: "dBµV", 72: "dB", 254: "other", 255: "count",
}
"""COSEM unit code → symbol. 255 is "no unit, unitless count"; 253 (reserved) and unknown codes → None."""

UNIT_CODES: dict[str, int] = {}
for _code, _symbol in UNITS.items():
    UNIT_CODES.setdefault(_symbol, _code)


def unit_symbol(code: int) -> str | None:
    return UNITS.get(code)


_OBIS_CACHE: dict[bytes, str] = {}


def obis_from_bytes(raw: bytes, offset: int | None = None) -> str:
    """``bytes.fromhex('0100010800ff')`` → ``'1-0:1.8.0.255'``."""
    text = _OBIS_CACHE.get(raw)
    if text is not None:
        return text
    if len(raw) != 6:
        raise InvalidValueError("OBIS code is 6 bytes", offset, raw.hex())
    a, b, c, d, e, f = raw
    text = f"{a}-{b}:{c}.{d}.{e}.{f}"
    if len(_OBIS_CACHE) < 65536:
        _OBIS_CACHE[bytes(raw)] = text
    return text


_OBIS_TEXT = re.compile(r"^(?:(\d{1,3})-(\d{1,3}):)?(\d{1,3}|[A-Z])\.(\d{1,3})(?:\.(\d{1,3}))?"
                        r"(?:[.*&](\d{1,3}))?$")


def parse_obis(text: str) -> str:
    """A written OBIS code in canonical ``A-B:C.D.E.F`` form (missing A/B → ``x``, missing E → 0,
    missing F → 255); letters in group C (``C.1.0`` style service codes) are kept as written."""
    m = _OBIS_TEXT.match(text.strip())
    if m is None:
        raise InvalidValueError("OBIS code text", None, text)
    a, b, c, d, e, f = m.groups()
    for group in (a, b, c, d, e, f):
        if group is not None and group.isdigit() and int(group) > 255:
            raise InvalidValueError("OBIS group above 255", None, text)
    prefix = f"{a}-{b}:" if a is not None else "x-x:"
    return f"{prefix}{c}.{d}.{e or 0}.{f or 255}"


def obis_to_bytes(text: str) -> bytes:
    canonical = parse_obis(text)
    parts = re.split(r"[-:.]", canonical)
    if not all(p.isdigit() for p in parts):
        raise InvalidValueError("OBIS code has no byte form", None, text)
    return bytes(int(p) for p in parts)


def obis_cde(obis: str) -> str:
    """The ``C.D.E`` groups: the quantity, whatever the medium/channel (A/B) and billing period (F)."""
    return obis.split(":", 1)[-1].rsplit(".", 1)[0]
