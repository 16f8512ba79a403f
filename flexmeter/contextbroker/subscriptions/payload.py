"""Notification messages for one subscription and some changes: bodies, headers and custom templates.

Pure (no I/O): the workers call :func:`build_messages` and hand the result to a sender. Orion's rules:

- ``http``/``mqtt``: one message ``{"subscriptionId", "data": [...]}`` (``data`` holds one entity, or up
  to ``--notify-batch`` entities); ``simplifiedNormalized``/``simplifiedKeyValues`` send the bare entity.
- ``httpCustom``/``mqttCustom``: one message per entity; ``${id}``, ``${type}``, ``${service}``,
  ``${servicePath}``, ``${authToken}`` and ``${attr}`` macros in url, headers, qs, topic, payload and json
  (a json string that is exactly one macro becomes the attribute's JSON value).
- builtin metadata ``previousValue`` and ``actionType``, and the ``alterationType`` builtin attribute,
  only when the subscription names them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson

from flexmeter.contextbroker.model import EntityChange, StoredEntity, StoredMetadata
from flexmeter.contextbroker.render import render_entity

_MACRO = re.compile(r"\$\{([^}]*)\}")
# Orion decodes these in custom payloads, as they are forbidden characters in its API
_FORBIDDEN_DECODE = {"%3C": "<", "%3E": ">", "%22": '"', "%27": "'", "%3D": "=", "%3B": ";", "%28": "(",
                     "%29": ")"}
_FORBIDDEN_RE = re.compile("|".join(re.escape(k) for k in _FORBIDDEN_DECODE), re.IGNORECASE)
_NOT_HEADERS = {"fiware-correlator", "ngsiv2-attrsformat"}


@dataclass
class HttpMessage:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    timeout: float | None = None


@dataclass
class MqttMessage:
    url: str
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    user: str | None = None
    passwd: str | None = None


Message = HttpMessage | MqttMessage


@dataclass
class NotifyContext:
    """What a template may refer to besides the entity."""

    subscription_id: str
    service: str
    correlator: str
    auth_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _macro_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _macro_values(entity: StoredEntity, rendered_attrs: Mapping[str, Any], ctx: NotifyContext,
                  service_path: str) -> dict[str, Any]:
    values: dict[str, Any] = dict(rendered_attrs)
    values.update({"id": entity["id"], "type": entity["type"], "service": ctx.service,
                   "servicePath": service_path, "authToken": ctx.auth_token})
    return values


def expand(template: str, values: Mapping[str, Any]) -> str:
    """``${name}`` replaced by the value's text ("" when missing), as Orion's custom notifications do."""

    def _one(match: re.Match[str]) -> str:
        name = match.group(1)
        return _macro_text(values[name]) if name in values else ""

    return _MACRO.sub(_one, template)


def _expand_json(template: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(template, str):
        whole = _MACRO.fullmatch(template)
        if whole is not None:
            return values.get(whole.group(1))
        return expand(template, values)
    if isinstance(template, list):
        return [_expand_json(item, values) for item in template]
    if isinstance(template, dict):
        return {key: _expand_json(item, values) for key, item in template.items()}
    return template


def _extra_metadata(change: EntityChange, names: list[str],
                    wanted: set[str]) -> dict[str, dict[str, StoredMetadata]]:
    """``previousValue``/``actionType`` per attribute, for the metadata the subscription asked for."""
    extra: dict[str, dict[str, StoredMetadata]] = {}
    if not wanted:
        return extra
    previous = change.previous["attrs"] if change.previous else {}
    for name in names:
        md: dict[str, StoredMetadata] = {}
        if "previousValue" in wanted and name in previous and change.alteration != "entityCreate" \
                and (name in change.updated_attrs or change.alteration == "entityDelete"):
            md["previousValue"] = {"type": previous[name]["type"], "value": previous[name]["value"]}
        if "actionType" in wanted:
            if change.alteration == "entityDelete" or name in change.deleted_attrs:
                md["actionType"] = {"type": "Text", "value": "delete"}
            elif change.alteration == "entityCreate" or (
                    name in change.updated_attrs and name not in previous):
                md["actionType"] = {"type": "Text", "value": "append"}
            elif name in change.updated_attrs:
                md["actionType"] = {"type": "Text", "value": "update"}
        if md:
            extra[name] = md
    return extra


def _selection(notification: Mapping[str, Any],
               change: EntityChange) -> tuple[list[str] | None, list[str] | None]:
    """(attrs, exceptAttrs) for this change, with ``onlyChangedAttrs`` applied."""
    attrs: list[str] | None = list(notification.get("attrs") or []) or None
    except_attrs: list[str] | None = list(notification.get("exceptAttrs") or []) or None
    if notification.get("onlyChangedAttrs") and change.alteration in ("entityUpdate", "entityChange"):
        touched = change.updated_attrs | change.deleted_attrs
        if attrs:
            attrs = [a for a in attrs if a in touched or a == "alterationType"]
        else:
            attrs = [a for a in change.entity["attrs"] if a in touched]
        if except_attrs:
            attrs = [a for a in attrs if a not in except_attrs]
            except_attrs = None
        if not attrs:
            attrs = ["__none__"]  # nothing changed among the selected attributes: id and type only
    return attrs, except_attrs


def render_change(notification: Mapping[str, Any], change: EntityChange, mode: str) -> Any:
    """One entity of a notification, rendered in ``mode`` (normalized/keyValues/values)."""
    attrs, except_attrs = _selection(notification, change)
    metadata: list[str] | None = notification.get("metadata") or None
    wanted = {m for m in (metadata or ()) if m in ("previousValue", "actionType")}
    user_metadata = [m for m in metadata if m not in wanted] if metadata else None
    if metadata and not user_metadata:
        user_metadata = ["__none__"]  # only builtin metadata asked for: no user metadata
    entity = change.entity
    names = attrs if attrs else list(entity["attrs"])
    extra = _extra_metadata(change, names, wanted)
    rendered = render_entity(entity, mode=mode, attrs=attrs, except_attrs=except_attrs,  # type: ignore[arg-type]
                             metadata=user_metadata, extra_metadata=extra)
    if attrs and "alterationType" in attrs and "alterationType" not in entity["attrs"]:
        if mode == "values" and isinstance(rendered, list):
            rendered.append(change.alteration)
        elif mode == "keyValues" and isinstance(rendered, dict):
            rendered["alterationType"] = change.alteration
        elif isinstance(rendered, dict):
            rendered["alterationType"] = {"type": "Text", "value": change.alteration, "metadata": {}}
    if notification.get("covered") and attrs and "*" not in attrs and isinstance(rendered, dict):
        # covered: every listed attribute is rendered, null when the entity lacks it (Orion 3.x)
        null: Any = None if mode == "keyValues" else {"type": "None", "value": None, "metadata": {}}
        covered: dict[str, Any] = {"id": rendered["id"], "type": rendered["type"]}
        for name in attrs:
            if name != "__none__":
                covered[name] = rendered.get(name, null)
        rendered = covered
    return rendered


def _base_headers(ctx: NotifyContext, service_path: str, attrs_format: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Fiware-Correlator": ctx.correlator,
               "Ngsiv2-AttrsFormat": attrs_format, "Fiware-ServicePath": service_path}
    if ctx.service:
        headers["Fiware-Service"] = ctx.service
    return headers


def _service_path(changes: list[EntityChange]) -> str:
    paths: list[str] = []
    for change in changes:
        if change.service_path not in paths:
            paths.append(change.service_path)
    return ",".join(paths)


def _dumps(body: Any) -> bytes:
    try:
        return orjson.dumps(body)  # several times faster; same JSON for what the broker stores
    except (orjson.JSONEncodeError, TypeError):  # integers beyond 64 bits: the stdlib encoder
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _key_values(change: EntityChange, notification: Mapping[str, Any]) -> dict[str, Any]:
    rendered = render_change(notification, change, "keyValues")
    assert isinstance(rendered, dict)
    return {k: v for k, v in rendered.items() if k not in ("id", "type")}


RenderCache = dict[tuple[Any, ...], bytes]


def _render_key(notification: Mapping[str, Any], mode: str) -> tuple[Any, ...]:
    return (mode, tuple(notification.get("attrs") or ()), tuple(notification.get("exceptAttrs") or ()),
            tuple(notification.get("metadata") or ()) if "metadata" in notification else None,
            bool(notification.get("onlyChangedAttrs")))


def _rendered_json(notification: Mapping[str, Any], changes: list[EntityChange], mode: str, as_list: bool,
                   cache: RenderCache | None) -> bytes:
    """The JSON of the rendered entities (a list, or one entity), shared between subscriptions that
    render alike through ``cache`` (valid while the changes are alive: it is keyed by their ids)."""
    key = (tuple(id(c) for c in changes), as_list, *_render_key(notification, mode))
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    rendered = [render_change(notification, c, mode) for c in changes]
    out = _dumps(rendered if as_list else rendered[0])
    if cache is not None:
        cache[key] = out
    return out


def build_messages(subscription_id: str, notification: Mapping[str, Any], changes: list[EntityChange],
                   ctx: NotifyContext, cache: RenderCache | None = None) -> list[Message]:
    """The messages notifying ``changes`` (in order) for one subscription."""
    fmt = notification.get("attrsFormat", "normalized")
    if "http" in notification or "mqtt" in notification:
        groups: list[tuple[list[EntityChange], bytes]]
        if fmt in ("simplifiedNormalized", "simplifiedKeyValues"):
            mode = "normalized" if fmt == "simplifiedNormalized" else "keyValues"
            groups = [([c], _rendered_json(notification, [c], mode, False, cache)) for c in changes]
        else:
            mode = fmt if fmt in ("keyValues", "values") else "normalized"
            data = _rendered_json(notification, changes, mode, True, cache)
            groups = [(changes, b'{"subscriptionId":' + _dumps(subscription_id) + b',"data":' + data + b"}")]
        out: list[Message] = []
        for group, body in groups:
            if "http" in notification:
                http = notification["http"]
                timeout = http.get("timeout")
                out.append(HttpMessage("POST", http["url"], _base_headers(ctx, _service_path(group), fmt),
                                       body, timeout / 1000 if timeout else None))
            else:
                mqtt = notification["mqtt"]
                out.append(MqttMessage(mqtt["url"], mqtt["topic"], body, mqtt.get("qos", 0),
                                       mqtt.get("retain", False), mqtt.get("user"), mqtt.get("passwd")))
        return out
    return [_custom_message(notification, change, ctx) for change in changes]


def _custom_body(custom: Mapping[str, Any], notification: Mapping[str, Any], change: EntityChange,
                 ctx: NotifyContext, values: Mapping[str, Any]) -> tuple[bytes | None, str | None, str]:
    """(body, default content type, Ngsiv2-AttrsFormat) of a custom notification."""
    fmt = notification.get("attrsFormat", "normalized")
    if "payload" in custom:
        if custom["payload"] is None:
            return None, None, "custom"
        text = expand(custom["payload"], values)
        text = _FORBIDDEN_RE.sub(lambda m: _FORBIDDEN_DECODE[m.group(0).upper()], text)
        return text.encode("utf-8"), "text/plain", "custom"
    if "json" in custom:
        return _dumps(_expand_json(custom["json"], values)), "application/json", "custom"
    if fmt in ("simplifiedNormalized", "simplifiedKeyValues"):
        body: Any = render_change(notification, change, "normalized" if fmt == "simplifiedNormalized"
                                  else "keyValues")
    else:
        mode = fmt if fmt in ("keyValues", "values") else "normalized"
        body = {"subscriptionId": ctx.subscription_id, "data": [render_change(notification, change, mode)]}
    return _dumps(body), "application/json", fmt


def _custom_message(notification: Mapping[str, Any], change: EntityChange, ctx: NotifyContext) -> Message:
    values = _macro_values(change.entity, _key_values(change, notification), ctx, change.service_path)
    if "mqttCustom" in notification:
        custom = notification["mqttCustom"]
        body, _, _ = _custom_body(custom, notification, change, ctx, values)
        return MqttMessage(custom["url"], expand(custom["topic"], values), body or b"", custom.get("qos", 0),
                           custom.get("retain", False), custom.get("user"), custom.get("passwd"))
    custom = notification["httpCustom"]
    body, content_type, fmt = _custom_body(custom, notification, change, ctx, values)
    headers = _base_headers(ctx, change.service_path, fmt)
    if content_type is None:
        headers.pop("Content-Type")
    else:
        headers["Content-Type"] = content_type
    for name, value in (custom.get("headers") or {}).items():
        name = expand(name, values)
        if name.lower() in _NOT_HEADERS:
            continue
        value = expand(value, values)
        for existing in [h for h in headers if h.lower() == name.lower()]:
            del headers[existing]
        if value != "":  # an empty value removes the header, as in Orion
            headers[name] = value
    url = expand(custom["url"], values)
    qs = {expand(k, values): expand(v, values) for k, v in (custom.get("qs") or {}).items()}
    qs = {k: v for k, v in qs.items() if v != ""}
    if qs:
        parts = urlsplit(url)
        query = parts.query + ("&" if parts.query else "") + urlencode(qs)
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    timeout = custom.get("timeout")
    return HttpMessage(custom.get("method", "POST"), url, headers, body, timeout / 1000 if timeout else None)
