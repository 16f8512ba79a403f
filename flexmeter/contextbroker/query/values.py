"""Literal parsing shared by ``q``/``mq`` and geo (numbers and ISO 8601 dates as Orion reads them).

Orion stores ``DateTime`` values as numbers (POSIX seconds), so a date in a query compares as a number;
these helpers turn both the query literals and the stored ``DateTime`` strings into floats.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

# Attribute/metadata types whose ISO 8601 string values Orion keeps (and compares) as dates.
DATE_TYPES = frozenset({"DateTime", "ISO8601"})

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_number(text: str) -> float | None:
    """A decimal number (optionally signed, with exponent), or None; ``inf``/``nan``/hex are not numbers."""
    if _NUMBER.fullmatch(text) is None:
        return None
    value = float(text)
    return value


@lru_cache(maxsize=8192)
def parse_date(text: str) -> float | None:
    """An ISO 8601 date or date-time as POSIX seconds (UTC when no zone is given), or None."""
    m = _DATE.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        tz = UTC
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            tz = timezone(sign * offset)
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=tz
        )
    except ValueError:
        return None
    result = moment.timestamp()
    if frac:
        result += float("0." + frac)
    return result
