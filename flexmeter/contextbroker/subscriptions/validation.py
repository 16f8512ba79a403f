"""Orion's checks on ``/v2/subscriptions`` payloads, producing the definition the engine stores.

A *definition* is the subscription as the client described it, normalized (defaults filled in, dates as
POSIX seconds) and JSON-serializable, so it can be stored as is and rendered back as Orion does. Every
rejected payload raises :class:`BadRequest` with an Orion-like description (ngsiv2 implementation notes,
"Subscription payload validations").
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from flexmeter.contextbroker.errors import BadRequest, OrionError
from flexmeter.contextbroker.timeutil import posix_from_iso
from flexmeter.contextbroker.validation import check_identifier

ATTRS_FORMATS = ("normalized", "keyValues", "values", "simplifiedNormalized", "simplifiedKeyValues", "legacy")
STATUSES = ("active", "inactive", "oneshot")
ALTERATION_TYPES = ("entityCreate", "entityUpdate", "entityChange", "entityDelete")
DEFAULT_ALTERATION_TYPES = ("entityCreate", "entityChange")
HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT")
CHANNELS = ("http", "httpCustom", "mqtt", "mqttCustom")
DESCRIPTION_MAX = 1024
_EXPRESSION_KEYS = ("q", "mq", "georel", "geometry", "coords")

Definition = dict[str, Any]


def _is_obj(value: Any) -> bool:
    return isinstance(value, dict)


def _string_list(value: Any, what: str, *, non_empty: bool = False) -> list[str]:
    if not isinstance(value, list):
        raise BadRequest(f"{what} is not an array")
    if non_empty and not value:
        raise BadRequest(f"{what} is empty")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise BadRequest(f"{what} element is not a string")
        if item == "":
            raise BadRequest(f"{what} element is empty")
        if item not in out:
            out.append(item)
    return out


def _check_field(value: Any, what: str) -> str:
    return check_identifier(value, what)


def _check_regex(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"Invalid JSON type for {what}")
    if value == "":
        raise BadRequest(f"{what} is empty")
    try:
        re.compile(value)
    except re.error as exc:
        raise BadRequest(f"Invalid regex for {what}") from exc
    return value


def _entities(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise BadRequest("subject entities is not an array")
    if not value:
        raise BadRequest("subject entities is empty")
    out: list[dict[str, str]] = []
    for item in value:
        if not _is_obj(item):
            raise BadRequest("subject entities element is not an object")
        unknown = set(item) - {"id", "idPattern", "type", "typePattern"}
        if unknown:
            raise BadRequest(f"invalid entity field: /{sorted(unknown)[0]}/")
        if "id" in item and "idPattern" in item:
            raise BadRequest("subject entities element has id and idPattern")
        if "type" in item and "typePattern" in item:
            raise BadRequest("subject entities element has type and typePattern")
        selector: dict[str, str] = {}
        if "id" in item:
            selector["id"] = _check_field(item["id"], "entity id")
        elif "idPattern" in item:
            selector["idPattern"] = _check_regex(item["idPattern"], "entity idPattern")
        else:
            raise BadRequest("subject entities element has neither id nor idPattern")
        if "type" in item:
            selector["type"] = _check_field(item["type"], "entity type")
        elif "typePattern" in item:
            selector["typePattern"] = _check_regex(item["typePattern"], "entity typePattern")
        if selector not in out:
            out.append(selector)
    return out


def _expression(value: Any) -> dict[str, str]:
    if not _is_obj(value):
        raise BadRequest("expression is not an object")
    if not value:
        raise BadRequest("expression is empty")
    out: dict[str, str] = {}
    for key, text in value.items():
        if key not in _EXPRESSION_KEYS:
            raise BadRequest(f"invalid expression field: /{key}/")
        if not isinstance(text, str):
            raise BadRequest(f"Invalid JSON type for expression {key}")
        if text == "":
            raise BadRequest(f"expression {key} is empty")
        out[key] = text
    geo = [k for k in ("georel", "geometry", "coords") if k in out]
    if geo and len(geo) != 3:
        raise BadRequest("partial geo expression: geometry, georel and coords have to be provided together")
    compile_expression(out)  # raises BadRequest on a bad q/mq/geo
    return out


def compile_expression(expression: dict[str, str]) -> Any:
    """The query package's Condition for ``expression`` (BadRequest with its description on errors)."""
    from flexmeter.contextbroker.query import parse_condition

    try:
        return parse_condition(q=expression.get("q"), mq=expression.get("mq"),
                               georel=expression.get("georel"), geometry=expression.get("geometry"),
                               coords=expression.get("coords"))
    except OrionError:
        raise
    except Exception as exc:
        raise BadRequest(f"invalid expression: {exc}") from exc


def _condition(value: Any) -> dict[str, Any]:
    if not _is_obj(value):
        raise BadRequest("condition is not an object")
    if not value:
        raise BadRequest("condition is empty")
    out: dict[str, Any] = {"attrs": []}
    for key, item in value.items():
        if key == "attrs":
            out["attrs"] = _string_list(item, "condition attrs")
        elif key == "expression":
            out["expression"] = _expression(item)
        elif key == "alterationTypes":
            types = _string_list(item, "alterationTypes")
            for t in types:
                if t not in ALTERATION_TYPES:
                    raise BadRequest(f"unknown subscription alterationType: {t}")
            out["alterationTypes"] = types
        elif key == "notifyOnMetadataChange":
            if not isinstance(item, bool):
                raise BadRequest("notifyOnMetadataChange is not a bool")
            out["notifyOnMetadataChange"] = item
        else:
            raise BadRequest(f"invalid condition field: /{key}/")
    return out


def _subject(value: Any) -> dict[str, Any]:
    if not _is_obj(value):
        raise BadRequest("subject is not an object")
    if "entities" not in value:
        raise BadRequest("no subject entities specified")
    unknown = set(value) - {"entities", "condition"}
    if unknown:
        raise BadRequest(f"invalid subject field: /{sorted(unknown)[0]}/")
    out: dict[str, Any] = {"entities": _entities(value["entities"])}
    out["condition"] = _condition(value["condition"]) if "condition" in value else {"attrs": []}
    return out


def _url(value: Any, channel: str, schemes: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"Invalid JSON type for {channel} url")
    if value == "":
        raise BadRequest(f"empty {channel} url")
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise BadRequest(f"Invalid URL: {value}" if channel.startswith("http")
                         else f"Invalid MQTT URL: {value}")
    try:
        _ = parts.port
    except ValueError as exc:
        raise BadRequest(f"Invalid URL: {value}") from exc
    return value


def _string_map(value: Any, what: str) -> dict[str, str]:
    if not _is_obj(value):
        raise BadRequest(f"{what} is not an object")
    if not value:
        raise BadRequest(f"{what} is empty")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise BadRequest(f"{what} element is not a string")
        out[key] = item
    return out


def _http(value: Any, custom: bool) -> dict[str, Any]:
    channel = "httpCustom" if custom else "http"
    if not _is_obj(value):
        raise BadRequest(f"{channel} is not an object")
    if "url" not in value:
        raise BadRequest(f"url is missing in {channel}")
    allowed = {"url", "timeout"} | ({"headers", "qs", "method", "payload", "json"} if custom else set())
    unknown = set(value) - allowed
    if unknown:
        raise BadRequest(f"invalid {channel} field: /{sorted(unknown)[0]}/")
    # httpCustom URLs may carry ${...} macros, so they are only checked for a scheme once expanded
    out: dict[str, Any] = {"url": value["url"] if custom and "${" in str(value["url"])
                           else _url(value["url"], channel, ("http", "https"))}
    if custom and not isinstance(out["url"], str):
        raise BadRequest("Invalid JSON type for httpCustom url")
    if "timeout" in value:
        timeout = value["timeout"]
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
            raise BadRequest(f"{channel} timeout must be a non-negative integer (milliseconds)")
        out["timeout"] = value["timeout"]
    if custom:
        if "headers" in value:
            out["headers"] = _string_map(value["headers"], "headers")
        if "qs" in value:
            out["qs"] = _string_map(value["qs"], "qs")
        if "method" in value:
            method = value["method"]
            if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
                raise BadRequest(f"Invalid HTTP method: {method}")
            out["method"] = method.upper()
        if "payload" in value and "json" in value:
            raise BadRequest("payload and json fields cannot be used at the same time")
        if "payload" in value:
            if value["payload"] is not None and not isinstance(value["payload"], str):
                raise BadRequest("Invalid JSON type for httpCustom payload")
            out["payload"] = value["payload"]
        if "json" in value:
            if not isinstance(value["json"], dict | list):
                raise BadRequest("json field must be an object or an array")
            out["json"] = value["json"]
    return out


def _mqtt(value: Any, custom: bool) -> dict[str, Any]:
    channel = "mqttCustom" if custom else "mqtt"
    if not _is_obj(value):
        raise BadRequest(f"{channel} is not an object")
    if "url" not in value:
        raise BadRequest(f"url is missing in {channel}")
    if "topic" not in value:
        raise BadRequest(f"topic is missing in {channel}")
    allowed = {"url", "topic", "qos", "user", "passwd", "retain"} | ({"payload", "json"} if custom else set())
    unknown = set(value) - allowed
    if unknown:
        raise BadRequest(f"invalid {channel} field: /{sorted(unknown)[0]}/")
    out: dict[str, Any] = {"url": _url(value["url"], channel, ("mqtt",))}
    topic = value["topic"]
    if not isinstance(topic, str) or topic == "":
        raise BadRequest(f"{channel} topic must be a non-empty string")
    if "+" in topic or "#" in topic:
        raise BadRequest(f"{channel} topic cannot include MQTT wildcards")
    out["topic"] = topic
    qos = value.get("qos", 0)
    if qos not in (0, 1, 2) or isinstance(qos, bool):
        raise BadRequest(f"{channel} qos field must be an integer in the 0 to 2 range")
    out["qos"] = qos
    if "retain" in value:
        if not isinstance(value["retain"], bool):
            raise BadRequest(f"{channel} retain field must be a boolean")
        out["retain"] = value["retain"]
    if ("user" in value) != ("passwd" in value):
        raise BadRequest(f"{channel} user and passwd must be used together")
    for key in ("user", "passwd"):
        if key in value:
            if not isinstance(value[key], str):
                raise BadRequest(f"{channel} {key} must be a string")
            out[key] = value[key]
    if custom:
        if "payload" in value and "json" in value:
            raise BadRequest("payload and json fields cannot be used at the same time")
        if "payload" in value:
            if value["payload"] is not None and not isinstance(value["payload"], str):
                raise BadRequest("Invalid JSON type for mqttCustom payload")
            out["payload"] = value["payload"]
        if "json" in value:
            if not isinstance(value["json"], dict | list):
                raise BadRequest("json field must be an object or an array")
            out["json"] = value["json"]
    return out


def _notification(value: Any) -> dict[str, Any]:
    if not _is_obj(value):
        raise BadRequest("notification is not an object")
    channels = [c for c in CHANNELS if c in value]
    if not channels:
        raise BadRequest("http, httpCustom, mqtt or mqttCustom is missing")
    if len(channels) > 1:
        raise BadRequest("only one of http, httpCustom, mqtt or mqttCustom is allowed")
    out: dict[str, Any] = {}
    channel = channels[0]
    out[channel] = _http(value[channel], channel == "httpCustom") if channel.startswith("http") \
        else _mqtt(value[channel], channel == "mqttCustom")
    if "attrs" in value and "exceptAttrs" in value:
        raise BadRequest("http notification has attrs and exceptAttrs")
    if "exceptAttrs" in value:
        out["exceptAttrs"] = _string_list(value["exceptAttrs"], "exceptAttrs", non_empty=True)
    else:
        out["attrs"] = _string_list(value.get("attrs", []), "notification attrs")
    attrs_format = value.get("attrsFormat", "normalized")
    if attrs_format not in ATTRS_FORMATS:
        raise BadRequest("invalid attrsFormat, accepted values: legacy, normalized, simplifiedNormalized, "
                         "keyValues, simplifiedKeyValues, values")
    out["attrsFormat"] = attrs_format
    if "metadata" in value:
        out["metadata"] = _string_list(value["metadata"], "metadata")
    only_changed = value.get("onlyChangedAttrs", False)
    if not isinstance(only_changed, bool):
        raise BadRequest("onlyChangedAttrs is not a bool")
    out["onlyChangedAttrs"] = only_changed
    if "covered" in value:
        if not isinstance(value["covered"], bool):
            raise BadRequest("covered is not a bool")
        out["covered"] = value["covered"]
    if "maxFailsLimit" in value:
        limit = value["maxFailsLimit"]
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            raise BadRequest("maxFailsLimit must be a positive integer")
        out["maxFailsLimit"] = limit
    known = {*CHANNELS, "attrs", "exceptAttrs", "attrsFormat", "metadata", "onlyChangedAttrs", "covered",
             "maxFailsLimit",
             # read-only status fields a client may send back from a GET: ignored, as Orion does
             "timesSent", "lastNotification", "lastFailure", "lastFailureReason", "lastSuccess",
             "lastSuccessCode", "failsCounter", "status"}
    unknown = set(value) - known
    if unknown:
        raise BadRequest(f"invalid notification field: /{sorted(unknown)[0]}/")
    return out


def _expires(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest("expires is not a string")
    try:
        return posix_from_iso(value)
    except ValueError as exc:
        raise BadRequest("expires has an invalid format") from exc


def _throttling(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 \
            or (isinstance(value, float) and not value.is_integer()):
        raise BadRequest("throttling must be a non-negative integer")
    return int(value)


def _status(value: Any) -> str:
    if value not in STATUSES:
        raise BadRequest("status is not valid: it has to be either active, inactive or oneshot")
    return str(value)


def _description(value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequest("description is not a string")
    if len(value) > DESCRIPTION_MAX:
        raise BadRequest(f"max description length exceeded ({DESCRIPTION_MAX} characters)")
    return value


_TOP_LEVEL = {"id", "description", "subject", "notification", "expires", "status", "throttling"}


def _check_body(payload: Any) -> dict[str, Any]:
    if not _is_obj(payload):
        raise BadRequest("not a JSON object")
    if not payload:
        raise BadRequest("empty payload")
    unknown = set(payload) - _TOP_LEVEL
    if unknown:
        raise BadRequest(f"invalid subscription field: /{sorted(unknown)[0]}/")
    return payload


def parse_create(payload: Any) -> Definition:
    """The definition of a new subscription from a ``POST /v2/subscriptions`` body."""
    body = _check_body(payload)
    if "id" in body:
        raise BadRequest("subscription id cannot be set on creation")
    if "subject" not in body:
        raise BadRequest("no subject for subscription specified")
    if "notification" not in body:
        raise BadRequest("no notification for subscription specified")
    definition: Definition = {
        "subject": _subject(body["subject"]),
        "notification": _notification(body["notification"]),
        "status": _status(body.get("status", "active")),
        "expires": _expires(body.get("expires")),
        "throttling": _throttling(body.get("throttling")),
    }
    if "description" in body:
        definition["description"] = _description(body["description"])
    return definition


def parse_patch(payload: Any, current: Definition) -> Definition:
    """``current`` with the top-level fields of a ``PATCH /v2/subscriptions/{id}`` body replaced."""
    body = _check_body(payload)
    if "id" in body:
        raise BadRequest("subscription id cannot be modified")
    updated: Definition = dict(current)
    if "subject" in body:
        updated["subject"] = _subject(body["subject"])
    if "notification" in body:
        notification = _notification(body["notification"])
        updated["notification"] = notification
    if "status" in body:
        updated["status"] = _status(body["status"])
    if "expires" in body:
        updated["expires"] = _expires(body["expires"])
    if "throttling" in body:
        updated["throttling"] = _throttling(body["throttling"])
    if "description" in body:
        updated["description"] = _description(body["description"])
    return updated
