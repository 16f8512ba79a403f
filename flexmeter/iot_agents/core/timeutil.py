"""The meter's own time as an aware UTC instant: ISO strings, epoch seconds/ms, naive meter-local times."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flexmeter.iot_agents.core.errors import BadTimestamp


@lru_cache(maxsize=256)
def zone(name: str | None) -> tzinfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def to_utc(value: datetime | str | float | int | None, timezone: str | None, device_id: str,
           default: datetime) -> datetime:
    """``value`` as aware UTC; naive times are meter-local in ``timezone``; None gives ``default``.

    Numbers are epoch seconds, or milliseconds when larger than 1e11 (no meter reads in year 5138).
    """
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise BadTimestamp(value, device_id)
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z") or text.endswith("z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise BadTimestamp(value, device_id) from None
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise BadTimestamp(value, device_id)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone(timezone))
    return parsed.astimezone(UTC)


def iso(instant: datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, as Orion writes DateTime values."""
    seconds, millis = divmod(round(instant.timestamp() * 1000), 1000)
    return f"{_iso_second(seconds)}{millis:03d}Z"


@lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.`` of an epoch second: formatted once for the thousands of readings in it."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
