"""Orion's DateTime text: ``2024-01-01T00:00:00.000Z`` (UTC, milliseconds), to and from POSIX seconds.

One helper for the whole broker, so that stored values, builtin attributes/metadata and subscription
status fields are rendered exactly alike.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ISO_RE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:T(?P<h>\d{2})(?::?(?P<m>\d{2})(?::?(?P<s>\d{2})(?P<frac>[.,]\d+)?)?)?"
    r"(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?)?$"
)


@lru_cache(maxsize=16384)
def iso_from_posix(ts: float) -> str:
    """POSIX seconds → ``YYYY-MM-DDTHH:MM:SS.mmmZ`` as Orion renders dates.

    Cached: every attribute of an update shares its timestamps, and notifications render them again.
    """
    millis = round(ts * 1000)
    moment = _EPOCH + timedelta(milliseconds=millis)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


def posix_from_iso(text: str) -> float:
    """Parse an ISO 8601 date/time as Orion accepts it (date only, offsets, ``Z``); UTC if no zone.

    Raises ValueError when the text is not a date.
    """
    match = _ISO_RE.match(text.strip())
    if match is None:
        raise ValueError(f"not an ISO 8601 date: {text!r}")
    year, month, day = (int(part) for part in match.group("date").split("-"))
    hour = int(match.group("h") or 0)
    minute = int(match.group("m") or 0)
    second = int(match.group("s") or 0)
    frac = match.group("frac")
    micro = round(float("0." + frac[1:]) * 1_000_000) if frac else 0
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)  # raises ValueError if out of range
    tz = match.group("tz")
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        moment -= sign * offset
    return (moment - _EPOCH).total_seconds() + micro / 1_000_000


def normalize_iso(text: str) -> str:
    """An ISO 8601 text in Orion's canonical rendering; raises ValueError when not a date."""
    return iso_from_posix(posix_from_iso(text))
