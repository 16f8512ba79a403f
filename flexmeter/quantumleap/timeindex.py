"""Time handling: which instant indexes a notified entity, ISO 8601 in and out, aggregation buckets.

Every instant is kept as integer milliseconds since the epoch (UTC) inside the service, so the stores can
bucket and compare cheaply; every instant answered is ``YYYY-MM-DDTHH:MM:SS.mmm+00:00`` as QuantumLeap does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

TIME_INDEX_HEADER = "Fiware-TimeIndex-Attribute"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PERIODS = ("year", "month", "day", "hour", "minute", "second")
_FIXED_PERIOD_MS = {"day": 86_400_000, "hour": 3_600_000, "minute": 60_000, "second": 1000}


class BadInstant(ValueError):
    """A string that is not an ISO 8601 date-time."""


def parse_instant(value: Any) -> int:
    """ISO 8601 (``Z``, offsets, naive = UTC, date only) to epoch milliseconds; ``BadInstant`` otherwise."""
    if not isinstance(value, str):
        raise BadInstant(f"not an ISO 8601 date-time: {value!r}")
    return _parse_text(value)


@lru_cache(maxsize=8192)
def _parse_text(value: str) -> int:
    """Cached: the entities of one notification (and of consecutive ones) mostly share their instants."""
    text = value.strip()
    if not text:
        raise BadInstant(f"not an ISO 8601 date-time: {value!r}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
        except ValueError as exc:
            raise BadInstant(f"not an ISO 8601 date-time: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    delta = parsed - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def format_instant(ms: int) -> str:
    """Epoch milliseconds to ``2024-01-01T00:00:00.000+00:00``."""
    moment = EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+00:00"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _attr_instant(entity: Mapping[str, Any], name: str) -> int | None:
    attr = entity.get(name)
    if attr is None:
        return None
    value = attr.get("value") if isinstance(attr, dict) else attr
    try:
        return parse_instant(value)
    except BadInstant:
        return None


def _newest_metadata_instant(entity: Mapping[str, Any], name: str) -> int | None:
    newest: int | None = None
    for key, attr in entity.items():
        if key in ("id", "type") or not isinstance(attr, Mapping):
            continue
        metadata = attr.get("metadata")
        if not isinstance(metadata, Mapping) or name not in metadata:
            continue
        item = metadata[name]
        try:
            instant = parse_instant(item.get("value") if isinstance(item, Mapping) else item)
        except BadInstant:
            continue
        if newest is None or instant > newest:
            newest = instant
    return newest


def select_time_index(entity: Mapping[str, Any], custom_attr: str | None = None, default: int | None = None) -> int:
    """The instant a notified entity is stored under, by QuantumLeap's precedence.

    1. the attribute named by the ``Fiware-TimeIndex-Attribute`` header, 2. the ``TimeInstant`` attribute,
    3. the newest ``TimeInstant`` metadata of any attribute, 4. ``timestamp`` (attribute, then newest
    metadata), 5. ``dateModified`` (attribute, then newest metadata), 6. the server's time. A candidate
    that is missing or not a date-time is skipped.
    """
    if custom_attr:
        instant = _attr_instant(entity, custom_attr)
        if instant is not None:
            return instant
    for name in ("TimeInstant", "timestamp", "dateModified"):
        instant = _attr_instant(entity, name)
        if instant is None:
            instant = _newest_metadata_instant(entity, name)
        if instant is not None:
            return instant
    return default if default is not None else now_ms()


def truncate(ms: int, period: str) -> int:
    """Start of the UTC calendar period containing ``ms`` (what ``date_trunc`` gives)."""
    if period in _FIXED_PERIOD_MS:
        size = _FIXED_PERIOD_MS[period]
        return ms - ms % size
    moment = EPOCH + timedelta(milliseconds=ms)
    start = datetime(moment.year, 1 if period == "year" else moment.month, 1, tzinfo=UTC)
    return int((start - EPOCH).total_seconds()) * 1000


def next_start(start_ms: int, period: str) -> int:
    if period in _FIXED_PERIOD_MS:
        return start_ms + _FIXED_PERIOD_MS[period]
    moment = EPOCH + timedelta(milliseconds=start_ms)
    if period == "year":
        following = datetime(moment.year + 1, 1, 1, tzinfo=UTC)
    else:
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        following = datetime(year, month, 1, tzinfo=UTC)
    return int((following - EPOCH).total_seconds()) * 1000


def bucket_count(lo_ms: int, hi_ms: int, period: str) -> int:
    """How many buckets ``[lo, hi]`` spans (exact for fixed periods, an upper bound for month/year)."""
    if period in _FIXED_PERIOD_MS:
        return (truncate(hi_ms, period) - truncate(lo_ms, period)) // _FIXED_PERIOD_MS[period] + 1
    span_days = (hi_ms - lo_ms) // 86_400_000 + 1
    return span_days // 28 + 2 if period == "month" else span_days // 365 + 2


def buckets(lo_ms: int, hi_ms: int, period: str) -> list[tuple[int, int]]:
    """``[start, end)`` of every period bucket between ``lo`` and ``hi`` inclusive."""
    result = []
    start = truncate(lo_ms, period)
    while start <= hi_ms:
        end = next_start(start, period)
        result.append((start, end))
        start = end
    return result
