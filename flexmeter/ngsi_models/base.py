"""The base of the wire models: camelCase on the wire, snake_case in Python, unknown keys refused.

Unknown keys are refused on purpose: a typo in a subscription under ``orion_config/`` must fail when it
is loaded, not silently subscribe to nothing. Every field of Orion's current API is modelled.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SerializationInfo, SerializerFunctionWrapHandler, model_serializer
from pydantic.alias_generators import to_camel

from flexmeter.ngsi_models.errors import InvalidValueError


class WireModel(BaseModel):
    """camelCase aliases, population by either name, explicit ``null`` kept for ``_nullable`` fields."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid")

    #: Python names of fields whose explicit ``null`` is meaningful and must survive ``exclude_none``.
    _nullable: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _keep_explicit_nulls(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in self._nullable:
            if name in self.model_fields_set and getattr(self, name) is None:
                key = (type(self).model_fields[name].alias or name) if info.by_alias else name
                if key not in data:
                    data[key] = None
        return data

    def to_json(self) -> dict[str, Any]:
        """The JSON Orion takes or returns for this object."""
        data: dict[str, Any] = self.model_dump(exclude_none=True, by_alias=True)
        return data


def parse_datetime(text: str) -> datetime:
    """Parse an ISO 8601 date-time as Orion writes it (``Z``, fractions of any length); naive means UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidValueError(f"not an ISO 8601 date-time: {text!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@lru_cache(maxsize=4096)
def format_datetime(value: datetime) -> str:
    """Orion's own rendering: UTC, milliseconds, ``Z`` (e.g. ``2024-01-01T00:00:00.000Z``)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValueError(f"naive datetime {value.isoformat()}: give it a time zone (meter-local times too)")
    utc = value.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
        f".{utc.microsecond // 1000:03d}Z"
    )
