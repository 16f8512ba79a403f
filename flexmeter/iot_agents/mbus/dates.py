"""EN 13757-3 annex A date/time types G (date), F (date+time), I (date+time+seconds) and J (time).

A valid, concrete value becomes ``datetime.date``/``datetime.datetime``/``datetime.time`` (local meter time,
naive). A value with an "every" marker (day 0, month 15, year 127, hour 31, minute 63) or an impossible one
(month 0) becomes a string ``YYYY-MM-DD[THH:MM[:SS]]`` with ``*`` for the "every" fields, and the invalid
(IV) bit is reported as a flag by the record, never hidden. Day 31 is a real day.
"""

from __future__ import annotations

import datetime as dt

DateValue = dt.date | dt.datetime | dt.time | str


def _year(low3: int, high4: int, hundred: int = 0) -> int:
    y = low3 | (high4 << 3)
    if y == 127:
        return -1
    if hundred:
        return 1900 + 100 * hundred + y
    return 2000 + y if y < 81 else 1900 + y


def _fmt(y: int, mo: int, d: int) -> str:
    ys = "*" if y < 0 else f"{y:04d}"
    ms = "*" if mo == 15 else f"{mo:02d}"
    # day 0 means "every day" only in an otherwise meaningful date; an all-zero date is "not set"
    ds = "*" if d == 0 and (1 <= mo <= 12 or mo == 15) else f"{d:02d}"
    return f"{ys}-{ms}-{ds}"


def _date(y: int, mo: int, d: int) -> dt.date | None:
    if y < 0 or d == 0 or not 1 <= mo <= 12:
        return None
    try:
        return dt.date(y, mo, d)
    except ValueError:
        return None


def type_g(raw: int) -> DateValue:
    """16-bit date (type G)."""
    b0, b1 = raw & 0xFF, (raw >> 8) & 0xFF
    y, mo, d = _year(b0 >> 5, b1 >> 4), b1 & 0x0F, b0 & 0x1F
    return _date(y, mo, d) or _fmt(y, mo, d)


def type_f(raw: int) -> DateValue:
    """32-bit date and time to the minute (type F)."""
    b0, b1, b2, b3 = raw & 0xFF, (raw >> 8) & 0xFF, (raw >> 16) & 0xFF, (raw >> 24) & 0xFF
    mi, h = b0 & 0x3F, b1 & 0x1F
    y, mo, d = _year(b2 >> 5, b3 >> 4, (b1 >> 5) & 0x03), b3 & 0x0F, b2 & 0x1F
    day = _date(y, mo, d)
    if day is not None and h < 24 and mi < 60:
        return dt.datetime(day.year, day.month, day.day, h, mi)
    hs = "*" if h == 31 else f"{h:02d}"
    ms = "*" if mi == 63 else f"{mi:02d}"
    return f"{_fmt(y, mo, d)}T{hs}:{ms}"


def type_i(raw: int) -> DateValue:
    """48-bit date and time to the second (type I)."""
    b = raw.to_bytes(6, "little")
    s, mi, h = b[0] & 0x3F, b[1] & 0x3F, b[2] & 0x1F
    y, mo, d = _year(b[3] >> 5, b[4] >> 4), b[4] & 0x0F, b[3] & 0x1F
    day = _date(y, mo, d)
    if day is not None and h < 24 and mi < 60 and s < 60:
        return dt.datetime(day.year, day.month, day.day, h, mi, s)
    hs = "*" if h == 31 else f"{h:02d}"
    ms = "*" if mi == 63 else f"{mi:02d}"
    ss = "*" if s == 63 else f"{s:02d}"
    return f"{_fmt(y, mo, d)}T{hs}:{ms}:{ss}"


def type_j(raw: int) -> DateValue:
    """24-bit time of day (type J)."""
    s, mi, h = raw & 0x3F, (raw >> 8) & 0x3F, (raw >> 16) & 0x1F
    if h < 24 and mi < 60 and s < 60:
        return dt.time(h, mi, s)
    return f"{h:02d}:{mi:02d}:{s:02d}"


def invalid_bit(kind: str, raw: int) -> bool:
    """The IV (time invalid) bit of types F and I."""
    if kind == "F":
        return bool(raw & 0x80)
    if kind == "I":
        return bool(raw & 0x8000)
    return False


def summer_time_bit(kind: str, raw: int) -> bool:
    if kind == "F":
        return bool(raw & 0x8000)
    if kind == "I":
        return bool(raw & 0x4000)
    return False


def encode_g(value: dt.date) -> int:
    y = value.year % 100
    return value.day | ((y & 0x07) << 5) | (value.month << 8) | ((y >> 3) << 12)


def encode_f(value: dt.datetime) -> int:
    y = value.year % 100
    hundred = (value.year - 1900) // 100 if value.year >= 2081 or value.year < 2000 else 0
    b0 = value.minute
    b1 = value.hour | (hundred << 5)
    b2 = value.day | ((y & 0x07) << 5)
    b3 = value.month | ((y >> 3) << 4)
    return b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)
