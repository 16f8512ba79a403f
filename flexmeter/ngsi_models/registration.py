"""NGSI-v2 context-provider registrations (Orion API manual, "Registration Operations")."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from flexmeter.ngsi_models.base import WireModel, parse_datetime
from flexmeter.ngsi_models.subscription import EntitySelector, Expression, HttpEndpoint, _iso

ForwardingMode = Literal["none", "query", "update", "all"]
RegistrationStatus = Literal["active", "inactive", "expired", "failed"]


class Provider(WireModel):
    http: HttpEndpoint
    supported_forwarding_mode: ForwardingMode | None = None
    legacy_forwarding: bool | None = None


class DataProvided(WireModel):
    entities: list[EntitySelector] = Field(min_length=1)
    attrs: list[str] | None = None
    expression: Expression | None = None


class ForwardingInformation(WireModel):
    """Read-only counters Orion adds on GET."""

    times_sent: int | None = None
    last_forwarding: str | None = None
    last_failure: str | None = None
    last_success: str | None = None

    @field_validator("last_forwarding", "last_failure", "last_success", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        return _iso(value)


class Registration(WireModel):
    id: str | None = None
    description: str | None = None
    provider: Provider
    data_provided: DataProvided
    status: RegistrationStatus | None = None
    expires: str | None = None
    forwarding_information: ForwardingInformation | None = None

    @field_validator("expires", mode="before")
    @classmethod
    def _expires(cls, value: Any) -> Any:
        return _iso(value)

    def expires_at(self) -> datetime | None:
        return None if self.expires is None else parse_datetime(self.expires)
