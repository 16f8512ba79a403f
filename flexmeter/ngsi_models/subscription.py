"""NGSI-v2 subscriptions and the notifications they produce (Orion API manual, "Subscriptions").

Covers every field of Orion 3.x/4.x: ``subject`` (entities, condition with attrs, expression,
alterationTypes, notifyOnMetadataChange), ``notification`` (http, httpCustom, mqtt, mqttCustom,
attrs/exceptAttrs, attrsFormat, metadata, onlyChangedAttrs, covered, maxFailsLimit and the read-only
counters), ``expires``, ``status`` and ``throttling``. Date-times stay the strings Orion wrote, so a
round trip is exact; ``expires`` also accepts a ``datetime`` and renders it Orion's way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from flexmeter.ngsi_models.base import WireModel, format_datetime, parse_datetime
from flexmeter.ngsi_models.entity import Attribute, Entity, Json

AttrsFormat = Literal["normalized", "keyValues", "values", "simplifiedNormalized", "simplifiedKeyValues", "legacy"]
SubscriptionStatus = Literal["active", "inactive", "failed", "expired", "oneshot"]
AlterationType = Literal["entityCreate", "entityUpdate", "entityChange", "entityDelete"]
HttpMethod = Literal["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT"]


def _iso(value: Any) -> Any:
    """Accept a ``datetime`` for a date-time field and render it as Orion does; check strings parse."""
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, str):
        parse_datetime(value)
    return value


class EntitySelector(WireModel):
    """``{id | idPattern, type | typePattern}``: which entities a subscription/registration/query covers."""

    id: str | None = None
    id_pattern: str | None = None
    type: str | None = None
    type_pattern: str | None = None

    @model_validator(mode="after")
    def _exclusive(self) -> Self:
        if (self.id is None) == (self.id_pattern is None):
            raise ValueError("give exactly one of id and idPattern")
        if self.type is not None and self.type_pattern is not None:
            raise ValueError("type and typePattern cannot be used together")
        return self


class Expression(WireModel):
    """A filter: ``q``, ``mq`` (Simple Query Language), geo-query (``georel``, ``geometry``, ``coords``)."""

    q: str | None = None
    mq: str | None = None
    georel: str | None = None
    geometry: str | None = None
    coords: str | None = None


class Condition(WireModel):
    attrs: list[str] | None = None
    expression: Expression | None = None
    alteration_types: list[AlterationType] | None = None
    notify_on_metadata_change: bool | None = None


class Subject(WireModel):
    entities: list[EntitySelector] = Field(min_length=1)
    condition: Condition | None = None


class HttpEndpoint(WireModel):
    """``notification.http``: the default NGSI payload POSTed to ``url``; ``timeout`` in ms."""

    url: str
    timeout: int | None = None


class NgsiPatch(WireModel):
    """``httpCustom.ngsi`` / ``mqttCustom.ngsi``: an NGSI patch applied to the notified entity."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Attribute] = Field(init=False)

    id: str | None = None
    type: str | None = None


class HttpCustomEndpoint(WireModel):
    """``notification.httpCustom``: templated url/headers/qs/method and payload (text, JSON or NGSI patch)."""

    _nullable: ClassVar[tuple[str, ...]] = ("payload",)

    url: str
    headers: dict[str, str] | None = None
    qs: dict[str, str] | None = None
    method: HttpMethod | None = None
    payload: str | None = None
    json_: dict[str, Any] | list[Any] | None = Field(default=None, alias="json")
    ngsi: NgsiPatch | None = None
    timeout: int | None = None

    @model_validator(mode="after")
    def _one_payload(self) -> Self:
        given = [n for n in ("payload", "json_", "ngsi") if n in self.model_fields_set]
        if len(given) > 1:
            raise ValueError("payload, json and ngsi are mutually exclusive")
        return self


class MqttEndpoint(WireModel):
    """``notification.mqtt``: broker ``url`` (``mqtt://host:port``), ``topic``, QoS, retain, credentials."""

    url: str
    topic: str
    qos: Literal[0, 1, 2] | None = None
    retain: bool | None = None
    user: str | None = None
    passwd: str | None = None


class MqttCustomEndpoint(MqttEndpoint):
    """``notification.mqttCustom``: as ``mqtt`` plus a templated payload (text, JSON or NGSI patch)."""

    _nullable: ClassVar[tuple[str, ...]] = ("payload",)

    payload: str | None = None
    json_: dict[str, Any] | list[Any] | None = Field(default=None, alias="json")
    ngsi: NgsiPatch | None = None


class NotificationSpec(WireModel):
    """``subscription.notification``: where and how to notify, plus the counters Orion reports on GET."""

    attrs: list[str] | None = None
    except_attrs: list[str] | None = None
    http: HttpEndpoint | None = None
    http_custom: HttpCustomEndpoint | None = None
    mqtt: MqttEndpoint | None = None
    mqtt_custom: MqttCustomEndpoint | None = None
    attrs_format: AttrsFormat | None = None
    metadata: list[str] | None = None
    only_changed_attrs: bool | None = None
    covered: bool | None = None
    max_fails_limit: int | None = None
    # read-only, present in GET responses
    times_sent: int | None = None
    last_notification: str | None = None
    last_failure: str | None = None
    last_failure_reason: str | None = None
    last_success: str | None = None
    last_success_code: int | None = None
    fails_counter: int | None = None

    @field_validator("last_notification", "last_failure", "last_success", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        return _iso(value)

    @model_validator(mode="after")
    def _one_endpoint(self) -> Self:
        endpoints = [e for e in (self.http, self.http_custom, self.mqtt, self.mqtt_custom) if e is not None]
        if len(endpoints) != 1:
            raise ValueError("give exactly one of http, httpCustom, mqtt and mqttCustom")
        if self.attrs is not None and self.except_attrs is not None:
            raise ValueError("attrs and exceptAttrs cannot be used together")
        return self


class Subscription(WireModel):
    """A subscription as ``POST /v2/subscriptions`` takes it and ``GET`` returns it (``id`` only then)."""

    id: str | None = None
    description: str | None = None
    subject: Subject
    notification: NotificationSpec
    expires: str | None = None
    status: SubscriptionStatus | None = None
    throttling: int | float | None = Field(default=None, ge=0)

    @field_validator("expires", mode="before")
    @classmethod
    def _expires(cls, value: Any) -> Any:
        return _iso(value)

    def expires_at(self) -> datetime | None:
        return None if self.expires is None else parse_datetime(self.expires)


class Notification(WireModel):
    """A notification in ``normalized`` format (also the body of ``POST /v2/op/notify``)."""

    subscription_id: str
    data: list[Entity]

    def entities(self) -> list[Entity]:
        return self.data


class KeyValuesNotification(WireModel):
    """A ``keyValues``/``simplifiedKeyValues`` notification: plain dicts (lists for ``values``)."""

    subscription_id: str
    data: list[Json] | list[list[Any]]
