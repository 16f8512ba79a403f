"""COSEM date, time and date-time (Blue Book 4.1.6.1), with every special value kept, never guessed.

A field holding a special value stays visible as such (``None`` for "not specified", the named markers for
DST begin/end and last days of the month), and :meth:`CosemDateTime.to_datetime` only builds a Python
``datetime`` when the value names one instant of the calendar.

Deviation sign convention: the Blue Book defines ``deviation`` as the minutes *from local time to UTC*
(UTC = local + deviation), so Central European Time is sent as -60 (``FF C4``) and becomes a UTC offset
of ``+01:00``. Some meters send the opposite sign; ``to_datetime(deviation_is_offset=True)`` reads them.
``0x8000`` means "deviation not specified": the datetime is then naive (local time of unknown zone).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from .errors import InvalidValueError, LengthError

NOT_SPECIFIED = 0xFF
DST_END = 0xFD  # month: daylight_savings_end
DST_BEGIN = 0xFE  # month: daylight_savings_begin
SECOND_LAST_DAY = 0xFD  # day of month
LAST_DAY = 0xFE  # day of month
DEVIATION_NOT_SPECIFIED = -0x8000

# Clock status bits (Blue Book 4.1.6.1).
STATUS_INVALID = 0x01
STATUS_DOUBTFUL = 0x02
STATUS_DIFFERENT_CLOCK_BASE = 0x04
STATUS_INVALID_CLOCK_STATUS = 0x08
STATUS_DAYLIGHT_SAVING_ACTIVE = 0x80

_STATUS_NAMES = ((STATUS_INVALID, "invalid"), (STATUS_DOUBTFUL, "doubtful"),
                 (STATUS_DIFFERENT_CLOCK_BASE, "different_clock_base"),
                 (STATUS_INVALID_CLOCK_STATUS, "invalid_clock_status"),
                 (STATUS_DAYLIGHT_SAVING_ACTIVE, "daylight_saving_active"))

_DATE = struct.Struct(">HBBB")
_DATETIME = struct.Struct(">HBBBBBBBhB")

_ZONES: dict[int, timezone] = {}
_MONTH_NAMES = {DST_END: "dst_end", DST_BEGIN: "dst_begin"}
_DAY_NAMES = {SECOND_LAST_DAY: "second_last_day", LAST_DAY: "last_day"}


def _check(value: int, low: int, high: int, specials: tuple[int, ...], name: str, offset: int) -> None:
    if not (low <= value <= high or value in specials):
        raise InvalidValueError(f"COSEM {name} out of range", offset, f"{value:#x}")


@dataclass(slots=True)
class CosemDate:
    """5-byte COSEM date. ``year``/``day_of_week`` ``None`` = not specified; ``month``/``day`` keep the
    raw byte (0xFF not specified, 0xFD/0xFE the DST and last-day markers)."""

    year: int | None
    month: int
    day: int
    day_of_week: int | None

    @classmethod
    def decode(cls, raw: bytes, offset: int = 0) -> CosemDate:
        if len(raw) != 5:
            raise LengthError("COSEM date is 5 bytes", offset, f"got {len(raw)}")
        year, month, day, dow = _DATE.unpack(raw)
        _check(month, 1, 12, (DST_END, DST_BEGIN, NOT_SPECIFIED), "month", offset + 2)
        _check(day, 1, 31, (SECOND_LAST_DAY, LAST_DAY, NOT_SPECIFIED), "day of month", offset + 3)
        _check(dow, 1, 7, (NOT_SPECIFIED,), "day of week", offset + 4)
        return cls(None if year == 0xFFFF else year, month, day, None if dow == NOT_SPECIFIED else dow)

    def encode(self) -> bytes:
        return _DATE.pack(0xFFFF if self.year is None else self.year, self.month, self.day,
                          NOT_SPECIFIED if self.day_of_week is None else self.day_of_week)

    def to_date(self) -> date | None:
        """The calendar date, or ``None`` when a field is unspecified or a marker (DST, last day)."""
        if self.year is None or not 1 <= self.month <= 12 or not 1 <= self.day <= 31:
            return None
        try:
            return date(self.year, self.month, self.day)
        except ValueError:
            return None

    def to_json(self) -> dict[str, Any]:
        return {"year": self.year, "month": _MONTH_NAMES.get(self.month, None if self.month == 0xFF
                                                             else self.month),
                "day": _DAY_NAMES.get(self.day, None if self.day == 0xFF else self.day),
                "day_of_week": self.day_of_week,
                "date": None if (d := self.to_date()) is None else d.isoformat()}


@dataclass(slots=True)
class CosemTime:
    """4-byte COSEM time; a field is ``None`` when not specified (0xFF)."""

    hour: int | None
    minute: int | None
    second: int | None
    hundredths: int | None

    @classmethod
    def decode(cls, raw: bytes, offset: int = 0) -> CosemTime:
        if len(raw) != 4:
            raise LengthError("COSEM time is 4 bytes", offset, f"got {len(raw)}")
        h, m, s, hs = raw
        _check(h, 0, 23, (NOT_SPECIFIED,), "hour", offset)
        _check(m, 0, 59, (NOT_SPECIFIED,), "minute", offset + 1)
        _check(s, 0, 59, (NOT_SPECIFIED,), "second", offset + 2)
        _check(hs, 0, 99, (NOT_SPECIFIED,), "hundredths", offset + 3)
        return cls(*(None if v == NOT_SPECIFIED else v for v in (h, m, s, hs)))

    def encode(self) -> bytes:
        return bytes(NOT_SPECIFIED if v is None else v
                     for v in (self.hour, self.minute, self.second, self.hundredths))

    def to_time(self) -> time | None:
        if self.hour is None or self.minute is None:
            return None
        return time(self.hour, self.minute, self.second or 0, (self.hundredths or 0) * 10_000)

    def to_json(self) -> dict[str, Any]:
        return {"hour": self.hour, "minute": self.minute, "second": self.second,
                "hundredths": self.hundredths,
                "time": None if (t := self.to_time()) is None else t.isoformat()}


@dataclass(slots=True)
class CosemDateTime:
    """12-byte COSEM date-time: date, time, deviation (minutes, ``None`` = 0x8000) and clock status
    (``None`` = 0xFF, not specified)."""

    date: CosemDate
    time: CosemTime
    deviation: int | None
    clock_status: int | None

    @classmethod
    def decode(cls, raw: bytes, offset: int = 0) -> CosemDateTime:
        if len(raw) != 12:
            raise LengthError("COSEM date-time is 12 bytes", offset, f"got {len(raw)}")
        year, month, day, dow, h, m, s, hs, deviation, status = _DATETIME.unpack(raw)
        if (1 <= month <= 12 and 1 <= day <= 31 and 1 <= dow <= 7 and h <= 23 and m <= 59 and s <= 59
                and (hs <= 99 or hs == NOT_SPECIFIED)):  # fast path: a concrete date and time
            d = CosemDate(None if year == 0xFFFF else year, month, day, dow)
            t = CosemTime(h, m, s, None if hs == NOT_SPECIFIED else hs)
        else:
            d = CosemDate.decode(raw[:5], offset)
            t = CosemTime.decode(raw[5:9], offset + 5)
        if deviation == DEVIATION_NOT_SPECIFIED:
            dev: int | None = None
        elif -720 <= deviation <= 720:
            dev = deviation
        else:
            raise InvalidValueError("COSEM deviation out of -720..720", offset + 9, str(deviation))
        return cls(d, t, dev, None if status == NOT_SPECIFIED else status)

    @classmethod
    def from_datetime(cls, value: datetime, clock_status: int | None = 0) -> CosemDateTime:
        """The wire form of a Python datetime (aware → deviation per the Blue Book sign)."""
        offset = value.utcoffset()
        dev = None if offset is None else -int(offset.total_seconds() // 60)
        return cls(CosemDate(value.year, value.month, value.day, value.isoweekday()),
                   CosemTime(value.hour, value.minute, value.second, value.microsecond // 10_000),
                   dev, clock_status)

    def encode(self) -> bytes:
        dev = DEVIATION_NOT_SPECIFIED if self.deviation is None else self.deviation
        status = NOT_SPECIFIED if self.clock_status is None else self.clock_status
        return self.date.encode() + self.time.encode() + dev.to_bytes(2, "big", signed=True) + bytes([status])

    @property
    def status_flags(self) -> list[str]:
        if self.clock_status is None:
            return []
        return [name for bit, name in _STATUS_NAMES if self.clock_status & bit]

    def to_datetime(self, deviation_is_offset: bool = False) -> datetime | None:
        """The instant, aware when the deviation is given, naive when not; ``None`` when the date or time
        is not fully specified (a schedule pattern rather than an instant)."""
        dd, tt = self.date, self.time
        if (dd.year is None or not 1 <= dd.month <= 12 or not 1 <= dd.day <= 31 or tt.hour is None
                or tt.minute is None or tt.second is None):
            return None
        if self.deviation is None:
            tz = None
        else:
            minutes = self.deviation if deviation_is_offset else -self.deviation
            tz = _ZONES.get(minutes)
            if tz is None:
                tz = _ZONES[minutes] = timezone(timedelta(minutes=minutes))
        try:
            return datetime(dd.year, dd.month, dd.day, tt.hour, tt.minute, tt.second,
                            (tt.hundredths or 0) * 10_000, tz)
        except ValueError:  # e.g. 30 February: not an instant
            return None

    def to_json(self) -> dict[str, Any]:
        dt = self.to_datetime()
        return {"datetime": None if dt is None else dt.isoformat(), "date": self.date.to_json(),
                "time": self.time.to_json(), "deviation": self.deviation,
                "clock_status": self.clock_status, "status_flags": self.status_flags}
