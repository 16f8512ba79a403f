"""Period arithmetic: 15-min slots on the UTC grid, local hours, days and months in the pilot's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

SLOT = 900.0
RESOLUTIONS = ("PT15M", "PT1H", "P1D", "P1M")


def slot_start(t: float) -> float:
    return float(int(t // SLOT) * SLOT)


def slots_between(t0: float, t1: float) -> list[float]:
    """Starts of the 15-min slots overlapping [t0, t1]."""
    first, last = slot_start(t0), slot_start(t1)
    count = int((last - first) / SLOT)
    return [first + i * SLOT for i in range(count + 1)]


@lru_cache(maxsize=16)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local(t: float, tz: str) -> datetime:
    return datetime.fromtimestamp(t, zone(tz))


def period_of(t: float, resolution: str, tz: str) -> tuple[float, float]:
    """The [start, end) of the period of ``resolution`` containing ``t`` (local calendar for P1D/P1M)."""
    if resolution == "PT15M":
        start = slot_start(t)
        return start, start + SLOT
    moment = local(t, tz)
    if resolution == "PT1H":
        begin = moment.replace(minute=0, second=0, microsecond=0)
        return begin.timestamp(), begin.timestamp() + 3600.0
    if resolution == "P1D":
        return day_bounds(moment.date(), tz)
    begin_date = moment.date().replace(day=1)
    next_month = (begin_date + timedelta(days=32)).replace(day=1)
    return day_bounds(begin_date, tz)[0], day_bounds(next_month, tz)[0]


@lru_cache(maxsize=4096)  # the jobs ask for the same few days of thousands of meters on every pass
def day_bounds(day: date, tz: str) -> tuple[float, float]:
    begin = datetime(day.year, day.month, day.day, tzinfo=zone(tz))
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=zone(tz))
    return begin.timestamp(), end.timestamp()


@lru_cache(maxsize=4096)  # called with period starts, shared by every meter
def local_date(t: float, tz: str) -> date:
    return local(t, tz).date()


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def iso(t: float) -> str:
    moment = utc(t)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
