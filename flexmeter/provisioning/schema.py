"""The inventory: tenants, service paths, service groups, meters, static entities and subscriptions.

Pydantic models with ``extra="forbid"`` (a misspelt key is an error, not silently ignored). Cross
references (a meter's group, building, feeder, substation; a feeder's substation ...) are checked by
:func:`flexmeter.provisioning.inventory.check_references`, which knows every item's line.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from flexmeter.ngsi_models import GeoPoint
from flexmeter.ngsi_models.models.device import CONTROLLED_PROPERTIES, METER_PROTOCOLS, METER_TYPES

_LOCAL_ID = re.compile(r"^[A-Za-z0-9_\-.:]{1,200}$")
_SERVICE_PATH = re.compile(r"^/$|^(/[A-Za-z0-9_]{1,50}){1,10}$")
_SUBSCRIPTION_PATH = re.compile(r"^/$|^(/[A-Za-z0-9_]{1,50}){1,10}(/#)?$|^/#$")
_APIKEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
SERVICE_NAME = re.compile(r"^[a-z0-9_]{1,50}$")
_SECRET_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$")


def _check(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return AfterValidator(check)


LocalId = Annotated[str, _check(_LOCAL_ID, "id (letters, digits, - _ . : only, at most 200)")]
ServicePath = Annotated[str, _check(_SERVICE_PATH, "service path (/a/b, up to 10 levels of [A-Za-z0-9_])")]
SubscriptionPath = Annotated[str, _check(_SUBSCRIPTION_PATH, "subscription service path (/a/b or /a/#)")]
ApiKey = Annotated[str, _check(_APIKEY, "apikey ([A-Za-z0-9_-], at most 64)")]
TenantName = Annotated[str, _check(SERVICE_NAME, "Fiware-Service (lowercase letters, digits, _)")]
SecretRef = Annotated[str, _check(_SECRET_REF, "key reference: env:VARIABLE or file:PATH (never the key itself)")]
MeterType = Literal["electricity", "heat", "water", "gas"]
MeterProtocol = Literal["mbus", "wmbus", "dlms", "iec62056-21", "connode", "midori", "ennova", "json"]
Transport = Literal["MQTT", "HTTP", "AMQP"]

assert set(MeterType.__args__) == set(METER_TYPES)  # type: ignore[attr-defined]
assert set(MeterProtocol.__args__) == set(METER_PROTOCOLS)  # type: ignore[attr-defined]


def _timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Rome)") from None
    return value


TimeZone = Annotated[str | None, AfterValidator(_timezone)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    #: ``file:line`` of the item, for messages (set after validation)
    _origin: str = PrivateAttr(default="")


class Location(Model):
    """A WGS84 point, named fields so that the latitude/longitude order is never in doubt."""

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)

    def point(self) -> GeoPoint:
        return GeoPoint(self.longitude, self.latitude)


class Group(Model):
    """A service group: one apikey, one service path, one protocol family of the IoT Agent."""

    apikey: ApiKey
    service_path: ServicePath | None = None
    protocol: MeterProtocol
    transport: Transport = "MQTT"
    resource: str = ""
    entity_type: str | None = None
    autoprovision: bool = False
    timezone: TimeZone = None
    explicit_attrs: bool | None = None
    attributes: list[dict[str, Any]] = Field(default_factory=list)
    commands: list[dict[str, Any]] = Field(default_factory=list)
    static_attributes: list[dict[str, Any]] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict, description="the group's internal_attributes")
    description: str | None = None


class Meter(Model):
    """One physical meter: an IoT Agent device plus its ``Device`` entity."""

    id: LocalId
    group: ApiKey
    type: MeterType
    #: the id the agent knows the meter by, when the protocol fixes it (M-Bus: the 16-hex-digit secondary
    #: address; DLMS: the system title in hex); entities are still named after ``id``
    device_id: LocalId | None = None
    protocol: MeterProtocol | None = None
    model: str | None = None
    phases: Literal[1, 3] | None = None
    entity_type: str | None = None
    name: str | None = None
    description: str | None = None
    serial: str | None = None
    manufacturer: str | None = None
    firmware: str | None = None
    address: dict[str, str | int] = Field(default_factory=dict)
    keys: dict[str, SecretRef] = Field(default_factory=dict)
    timezone: TimeZone = None
    location: Location | None = None
    building: LocalId | None = None
    feeder: LocalId | None = None
    substation: LocalId | None = None
    installed: datetime | None = None
    controlled_property: list[str] | None = None
    commands: list[str] = Field(default_factory=list)
    attributes: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("installed", mode="before")
    @classmethod
    def _installed(cls, value: Any) -> Any:
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        return value

    @field_validator("installed")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give the time zone (2024-05-01T08:00:00+02:00) or a date")
        return value

    @field_validator("controlled_property")
    @classmethod
    def _properties(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if item not in CONTROLLED_PROPERTIES:
                raise ValueError(f"{item!r} is not one of {list(CONTROLLED_PROPERTIES)}")
        return value

    @field_validator("keys")
    @classmethod
    def _key_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.match(r"^[A-Za-z][A-Za-z0-9_]{0,40}$", name):
                raise ValueError(f"key name {name!r}: letters, digits and _ only")
        return value


class Place(Model):
    id: LocalId
    service_path: ServicePath | None = None
    name: str | None = None
    description: str | None = None
    address: dict[str, str] | None = None
    location: Location | None = None


class Substation(Place):
    primary_voltage: Decimal | None = Field(default=None, description="kV")
    secondary_voltage: Decimal | None = Field(default=None, description="V")
    rated_power: Decimal | None = Field(default=None, description="kVA")
    transformer_count: int | None = None
    devices: list[LocalId] = Field(default_factory=list)


class Feeder(Place):
    substation: LocalId
    rated_current: Decimal | None = Field(default=None, description="A")
    devices: list[LocalId] = Field(default_factory=list)


class Building(Place):
    category: str | None = None
    feeder: LocalId | None = None
    substation: LocalId | None = None
    contracted_heat_power: Decimal | None = Field(default=None, description="kW")
    customers_count: int | None = None


class SubscriptionEntry(Model):
    """A subscription from ``orion_config/`` (``file``, may be a glob) or inline (``subscription``)."""

    file: str | None = None
    subscription: dict[str, Any] | None = None
    service_path: SubscriptionPath = "/"
    vars: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> SubscriptionEntry:
        if (self.file is None) == (self.subscription is None):
            raise ValueError("give exactly one of file and subscription")
        return self


class MeterFile(Model):
    """A CSV of meters: one row per meter, columns named as the meter fields (``address.primary``,
    ``keys.aes_key``, ``location.latitude`` for nested ones); ``defaults`` fill empty cells."""

    file: str
    defaults: dict[str, Any] = Field(default_factory=dict)


class Tenant(Model):
    service: TenantName | None = None
    service_paths: list[ServicePath] = Field(default_factory=list)
    default_service_path: ServicePath | None = None
    timezone: TimeZone = None
    groups: list[Group] = Field(default_factory=list)
    substations: list[Substation] = Field(default_factory=list)
    feeders: list[Feeder] = Field(default_factory=list)
    buildings: list[Building] = Field(default_factory=list)
    meters: list[Meter] = Field(default_factory=list)
    meter_files: list[MeterFile] = Field(default_factory=list)
    subscriptions: list[SubscriptionEntry] = Field(default_factory=list)


class Inventory(Model):
    version: Literal[1] = 1
    description: str | None = None
    tenants: list[Tenant] = Field(min_length=1)
