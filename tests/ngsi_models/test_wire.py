"""Wire models: Orion API manual payloads round-trip exactly; invalid payloads fail with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from flexmeter.ngsi_models import (
    Attribute,
    BatchOperation,
    BatchQuery,
    Entity,
    ErrorBody,
    InvalidIdentifierError,
    KeyValuesNotification,
    Metadata,
    Notification,
    Registration,
    Subscription,
)
from flexmeter.ngsi_models.subscription import EntitySelector, HttpEndpoint, NotificationSpec, Subject

# Payloads from Orion's API manual (doc/manuals/orion-api.md), as printed there.
MANUAL_SUBSCRIPTION_LISTED = """{
  "id": "62aa3d3ac734067e6f0d0871",
  "description": "One subscription to rule them all",
  "subject": {
    "entities": [{"id": "Bcn_Welt", "type": "Room"}],
    "condition": {"attrs": ["temperature "], "expression": {"q": "temperature>40"}}
  },
  "notification": {
    "httpCustom": {"url": "http://localhost:1234", "headers": {"X-MyHeader": "foo"},
                   "qs": {"authToken": "bar"}},
    "attrsFormat": "keyValues",
    "attrs": ["temperature", "humidity"],
    "timesSent": 12,
    "lastNotification": "2015-10-05T16:00:00.00Z",
    "lastFailure": "2015-10-06T16:00:00.00Z"
  },
  "expires": "2025-04-05T14:00:00.00Z",
  "status": "failed",
  "throttling": 5
}"""

MANUAL_SUBSCRIPTION_CREATE = """{
  "description": "One subscription to rule them all",
  "subject": {
    "entities": [{"idPattern": ".*", "type": "Room"}],
    "condition": {"attrs": ["temperature"], "expression": {"q": "temperature>40"}}
  },
  "notification": {"http": {"url": "http://localhost:1234"}, "attrs": ["temperature", "humidity"]},
  "expires": "2025-04-05T14:00:00.00Z",
  "throttling": 5
}"""

MANUAL_CUSTOM_NOTIFICATION = """{
  "subject": {"entities": [{"id": "DC_S1-D41", "type": "Room"}]},
  "notification": {"httpCustom": {
    "url": "http://foo.com/entity/${id}", "headers": {"Content-Type": "text/plain"}, "method": "PUT",
    "qs": {"type": "${type}"}, "payload": "The temperature is ${temperature} degrees"}}
}"""

# Orion's MQTT notifications manual (and 3.3.0+: user/passwd), plus the newer subject/notification fields.
MQTT_SUBSCRIPTION = """{
  "description": "ACMeasurement to the time series over MQTT",
  "subject": {
    "entities": [{"idPattern": ".*", "type": "ACMeasurement"}],
    "condition": {"attrs": ["TimeInstant"], "alterationTypes": ["entityCreate", "entityChange"],
                  "notifyOnMetadataChange": false}
  },
  "notification": {
    "mqtt": {"url": "mqtt://localhost:1883", "topic": "sub1", "qos": 1, "retain": false, "user": "u",
             "passwd": "p"},
    "attrsFormat": "normalized", "metadata": ["unitCode", "TimeInstant"], "onlyChangedAttrs": false,
    "covered": false, "maxFailsLimit": 10, "failsCounter": 0, "lastSuccessCode": 200
  },
  "status": "active", "throttling": 0
}"""

CUSTOM_JSON_AND_NGSI = """{
  "subject": {"entities": [{"id": "urn:ngsi-ld:Device:e350-4711", "type": "Device"}],
              "condition": {"attrs": ["breaker"]}},
  "notification": {
    "httpCustom": {"url": "http://localhost:4041/cmd", "method": "POST", "timeout": 2000,
                   "json": {"device": "${id}", "cmd": "${breaker}", "values": [1, "${x}", null]}},
    "exceptAttrs": ["location"]
  }
}"""

MQTT_CUSTOM_NGSI = """{
  "subject": {"entities": [{"idPattern": ".*", "typePattern": "^(ACMeasurement|ThreePhaseAcMeasurement)$"}]},
  "notification": {"mqttCustom": {"url": "mqtt://localhost:1883", "topic": "/flexmeter/${type}", "qos": 2,
                                  "ngsi": {"id": "${id}-copy", "source": {"type": "Text", "value": "orion"}}}}
}"""

MANUAL_REGISTRATION_LISTED = """{
  "id": "62aa3d3ac734067e6f0d0871",
  "description": "Example Context Source",
  "dataProvided": {"entities": [{"id": "Bcn_Welt", "type": "Room"}], "attrs": ["temperature"]},
  "provider": {"http": {"url": "http://contextsource.example.org"}, "supportedForwardingMode": "all"},
  "expires": "2017-10-31T12:00:00",
  "status": "active",
  "forwardingInformation": {"timesSent": 12, "lastForwarding": "2017-10-06T16:00:00.00Z",
                            "lastSuccess": "2017-10-06T16:00:00.00Z",
                            "lastFailure": "2017-10-05T16:00:00.00Z"}
}"""

MANUAL_REGISTRATION_CREATE = """{
  "description": "Relative Humidity Context Source",
  "dataProvided": {"entities": [{"id": "room2", "type": "Room"}], "attrs": ["relativeHumidity"]},
  "provider": {"http": {"url": "http://localhost:1234"}}
}"""

MANUAL_BATCH_UPDATE = """{
  "actionType": "append",
  "entities": [
    {"type": "Room", "id": "Bcn-Welt", "temperature": {"value": 21.7}, "humidity": {"value": 60}},
    {"type": "Room", "id": "Mad_Aud", "temperature": {"value": 22.9}, "humidity": {"value": 85}}
  ]
}"""

MANUAL_BATCH_QUERY = """{
  "entities": [{"idPattern": ".*", "type": "Room"}, {"id": "Car", "type": "P-9873-K"}],
  "attrs": ["temperature", "humidity"],
  "expression": {"q": "temperature>20"},
  "metadata": ["accuracy", "timestamp"]
}"""

MANUAL_NOTIFICATION_NORMALIZED = """{
  "subscriptionId": "12345",
  "data": [
    {"id": "Room1", "type": "Room", "temperature": {"value": 23, "type": "Number", "metadata": {}},
     "humidity": {"value": 70, "type": "percentage", "metadata": {}}},
    {"id": "Room2", "type": "Room", "temperature": {"value": 24, "type": "Number", "metadata": {}}}
  ]
}"""

MANUAL_NOTIFY_OP = """{
  "subscriptionId": "5aeb0ee97d4ef10a12a0262f",
  "data": [{"type": "Room", "id": "DC_S1-D41", "temperature": {"value": 35.6, "type": "Number"}},
           {"type": "Room", "id": "Boe-Idearium", "temperature": {"value": 22.5, "type": "Number"}}]
}"""

MANUAL_NOTIFICATION_KEY_VALUES = """{
  "subscriptionId": "12345",
  "data": [{"id": "Room1", "type": "Room", "temperature": 23, "humidity": 70},
           {"id": "Room2", "type": "Room", "temperature": 24}]
}"""

MANUAL_NOTIFICATION_VALUES = """{"subscriptionId": "12345", "data": [[23, 70], [24]]}"""

MANUAL_ENTITIES_WITH_METADATA = """[
  {"id": "Room1", "type": "Room",
   "temperature": {"value": 23, "type": "Number",
                   "metadata": {"accuracy": {"value": 0.8, "type": "Number"},
                                "dateCreated": {"value": "2019-09-23T03:12:47.213Z", "type": "DateTime"}}},
   "location": {"value": {"type": "Point", "coordinates": [2.186447514, 41.3763726]}, "type": "geo:json"},
   "pressure": {"value": null, "type": "None", "metadata": {}},
   "timestamp": {"value": "2017-06-17T07:21:24.238Z", "type": "DateTime"}}
]"""

ROUND_TRIPS = [
    (Subscription, MANUAL_SUBSCRIPTION_LISTED),
    (Subscription, MANUAL_SUBSCRIPTION_CREATE),
    (Subscription, MANUAL_CUSTOM_NOTIFICATION),
    (Subscription, MQTT_SUBSCRIPTION),
    (Subscription, CUSTOM_JSON_AND_NGSI),
    (Subscription, MQTT_CUSTOM_NGSI),
    (Registration, MANUAL_REGISTRATION_LISTED),
    (Registration, MANUAL_REGISTRATION_CREATE),
    (BatchOperation, MANUAL_BATCH_UPDATE),
    (BatchQuery, MANUAL_BATCH_QUERY),
    (Notification, MANUAL_NOTIFICATION_NORMALIZED),
    (Notification, MANUAL_NOTIFY_OP),
    (KeyValuesNotification, MANUAL_NOTIFICATION_KEY_VALUES),
    (KeyValuesNotification, MANUAL_NOTIFICATION_VALUES),
]


@pytest.mark.parametrize(("model", "payload"), ROUND_TRIPS)
def test_manual_payloads_round_trip_exactly(model: Any, payload: str) -> None:
    data = json.loads(payload)
    parsed = model.model_validate(data)
    dumped = parsed.model_dump(exclude_none=True, by_alias=True)
    assert dumped == data
    assert parsed.to_json() == data
    assert model.model_validate_json(payload).to_json() == data


def test_entities_round_trip_with_metadata_and_nulls() -> None:
    for item in json.loads(MANUAL_ENTITIES_WITH_METADATA):
        entity = Entity.model_validate(item)
        assert entity.to_json() == item
        # keys come out in Orion's own rendering order: id, type, then type/value/metadata per attribute
        assert list(entity.to_json()["temperature"]) == ["type", "value", "metadata"]
        assert entity.attributes["temperature"].metadata is not None
        assert entity.attributes["temperature"].metadata["accuracy"].value == 0.8


def test_explicit_null_and_absent_value_stay_distinct() -> None:
    with_null = {"id": "R", "t": {"value": None}, "m": {"type": "Number", "metadata": {"x": {"value": None}}}}
    assert Entity.model_validate(with_null).to_json() == with_null
    without = {"id": "R", "t": {}, "m": {"type": "Number"}}
    assert Entity.model_validate(without).to_json() == without
    custom = {"url": "http://x", "payload": None}
    sub = {"subject": {"entities": [{"id": "R"}]}, "notification": {"httpCustom": custom}}
    assert Subscription.model_validate(sub).to_json() == sub


def test_built_in_python_names_render_as_orion_json() -> None:
    sub = Subscription(
        description="ACMeasurement history",
        subject=Subject(entities=[EntitySelector(id_pattern=".*", type="ACMeasurement")]),
        notification=NotificationSpec(
            http=HttpEndpoint(url="http://localhost:8668/v2/notify"),
            attrs_format="normalized",
            metadata=["unitCode"],
        ),
        expires=datetime(2030, 1, 1, tzinfo=UTC),
        throttling=0,
    )
    assert sub.to_json() == {
        "description": "ACMeasurement history",
        "subject": {"entities": [{"idPattern": ".*", "type": "ACMeasurement"}]},
        "notification": {
            "http": {"url": "http://localhost:8668/v2/notify"},
            "attrsFormat": "normalized",
            "metadata": ["unitCode"],
        },
        "expires": "2030-01-01T00:00:00.000Z",
        "throttling": 0,
    }
    assert sub.expires_at() == datetime(2030, 1, 1, tzinfo=UTC)
    assert Registration.model_validate(json.loads(MANUAL_REGISTRATION_LISTED)).expires_at() == datetime(
        2017, 10, 31, 12, tzinfo=UTC
    )


BASE_SUB: dict[str, Any] = {
    "subject": {"entities": [{"idPattern": ".*"}]},
    "notification": {"http": {"url": "http://localhost:1234"}},
}


def _patched(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(BASE_SUB))
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (("notification", "mqtt"), {"url": "mqtt://h:1883", "topic": "t"}, "exactly one of http"),
        (("notification", "http"), _DELETE, "exactly one of http"),
        (("subject", "entities"), [{"id": "a", "idPattern": ".*"}], "exactly one of id and idPattern"),
        (("subject", "entities"), [{"type": "Room"}], "exactly one of id and idPattern"),
        (("subject", "entities"), [{"id": "a", "type": "T", "typePattern": "T.*"}], "typePattern"),
        (("subject", "entities"), [], "at least 1"),
        (("notification", "attrs"), ["a"], None),
        (("notification", "attrsFormat"), "xml", "attrsFormat"),
        (("throttling",), -1, "greater than or equal"),
        (("expires",), "next tuesday", "ISO 8601"),
        (("status",), "paused", "status"),
        (("notifcation",), {}, "Extra inputs"),
        (("subject", "condition"), {"alterationTypes": ["entityRename"]}, "alterationTypes"),
    ],
)
def test_invalid_subscriptions_are_refused_with_a_reason(path: tuple[str, ...], value: Any, reason: str | None) -> None:
    data = _patched(path, value)
    if reason is None:  # a valid variant, as a control
        Subscription.model_validate(data)
        data["notification"]["exceptAttrs"] = ["b"]
        reason = "attrs and exceptAttrs"
    with pytest.raises(ValidationError, match=reason):
        Subscription.model_validate(data)


def test_invalid_endpoints_are_refused() -> None:
    mqtt = {"url": "mqtt://h:1883", "topic": "t", "qos": 3}
    with pytest.raises(ValidationError, match="qos"):
        Subscription.model_validate(_patched(("notification",), {"mqtt": mqtt}))
    custom = {"url": "http://x", "payload": "a", "json": {"a": 1}}
    with pytest.raises(ValidationError, match="mutually exclusive"):
        Subscription.model_validate(_patched(("notification",), {"httpCustom": custom}))
    with pytest.raises(ValidationError, match="method"):
        Subscription.model_validate(_patched(("notification",), {"httpCustom": {"url": "http://x", "method": "GOT"}}))


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "Room 1"},
        {"id": "Room/1"},
        {"id": ""},
        {"id": "R", "type": "Ro#om"},
        {"id": "R", "a b": {"value": 1}},
        {"id": "R", "t": 5},
        {"id": "R", "t": {"value": 1, "typo": 2}},
        {"id": "R", "t": {"type": "Num ber"}},
        {"id": "R", "t": {"metadata": {"bad name": {"value": 1}}}},
        {"type": "Room"},
    ],
)
def test_invalid_entities_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Entity.model_validate(bad)


def test_batch_operation_action_types() -> None:
    for action in ("append", "appendStrict", "update", "delete", "replace"):
        BatchOperation.model_validate({"actionType": action, "entities": [{"id": "R"}]})
    with pytest.raises(ValidationError, match="actionType"):
        BatchOperation.model_validate({"actionType": "APPEND", "entities": []})


def test_key_values_conversions_follow_orions_default_types() -> None:
    kv = {
        "id": "R",
        "type": "Room",
        "t": 23.5,
        "n": 2,
        "s": "x",
        "b": True,
        "o": {"a": 1},
        "l": [1],
        "z": None,
    }
    entity = Entity.from_key_values(kv, types={"s": "DateTime"})
    types = {name: attr.type for name, attr in entity.attributes.items()}
    assert types == {
        "t": "Number",
        "n": "Number",
        "s": "DateTime",
        "b": "Boolean",
        "o": "StructuredValue",
        "l": "StructuredValue",
        "z": "None",
    }
    assert entity.to_key_values() == kv
    assert Attribute(value=True).effective_type() == "Boolean"


def test_notification_gives_typed_entities() -> None:
    notification = Notification.model_validate_json(MANUAL_NOTIFICATION_NORMALIZED)
    first = notification.entities()[0]
    assert first.id == "Room1"
    attribute = first.attribute("humidity")
    assert attribute is not None and attribute.type == "percentage" and attribute.value == 70
    assert first.attribute("absent") is None


def test_set_attribute_checks_names() -> None:
    assert Entity.of("R", "Room", t=Attribute(value=1)).to_json() == {
        "id": "R",
        "type": "Room",
        "t": {"value": 1},
    }
    entity = Entity(id="R", type="Room")
    entity.set_attribute(
        "temperature",
        Attribute(type="Number", value=1, metadata={"unitCode": Metadata(type="Text", value="CEL")}),
    )
    assert entity.to_json() == {
        "id": "R",
        "type": "Room",
        "temperature": {
            "type": "Number",
            "value": 1,
            "metadata": {"unitCode": {"type": "Text", "value": "CEL"}},
        },
    }
    for name in ("id", "dateModified", "a&b"):
        with pytest.raises(InvalidIdentifierError):
            entity.set_attribute(name, Attribute(value=1))


def test_error_body() -> None:
    body = {"error": "NotFound", "description": "The requested entity has not been found. Check type and id"}
    assert ErrorBody.model_validate(body).model_dump(exclude_none=True) == body
