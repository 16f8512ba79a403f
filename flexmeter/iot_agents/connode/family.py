"""The Connode family (Malmö): gateway JSON over MQTT -> E350 / Echelon / district-heat readings.

The payload format is docs/connode-payload.schema.json; where the decoder looks for each field is a
*profile* (data), overridable per service group, and the attribute mapping is per-model data
(:mod:`flexmeter.iot_agents.connode.mappings`) overridable by provisioning.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from flexmeter.iot_agents.connode.mappings import DEFAULT_PROFILE, ENTITY_TYPES, TABLES
from flexmeter.iot_agents.core.errors import DecodeError
from flexmeter.iot_agents.core.family import (
    CommandReply,
    Decoded,
    Family,
    Message,
    OutgoingCommand,
    Reading,
    Route,
    decode_each,
)
from flexmeter.iot_agents.core.json_family import command_replies, parse_json

Json = dict[str, Any]

BREAKER_ACTIONS = ("connect", "disconnect", "status")

CONNODE_ROUTES: tuple[Route, ...] = (
    Route("mqtt", "connode/{apikey}/{gateway}/up"),
    Route("mqtt", "connode/{apikey}/{device_id}/cmdexe", "cmdexe"),
    Route("amqp", "connode/{apikey}/{gateway}/up"),
    Route("http", "/connode/up", "measure", {"k": "apikey", "g": "gateway"}),
    Route("coap", "connode/{apikey}/{gateway}/up"),  # POST coap://host/connode/<apikey>/<gateway>/up (6LoWPAN mesh)
)


def _path(document: Any, path: str) -> Any:
    """A dotted path into nested objects; ``""``/``"."`` is the document itself; missing gives None."""
    if path in ("", "."):
        return document
    current = document
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def profile_of(config: Any) -> Json:
    override = config.get("connode_profile") if isinstance(config, dict) else None
    profile = dict(DEFAULT_PROFILE)
    if isinstance(override, dict):
        profile.update(override)
    return profile


def decode_gateway(payload: Any, profile: Json) -> list[Decoded]:
    """The gateway document -> readings and command replies (pure). A bad message of the batch becomes a
    :class:`Rejected` item (the others go on); a bad document, or every message bad, raises DecodeError with
    the path."""
    if not isinstance(payload, dict):
        raise DecodeError(f"a Connode payload is a JSON object, not {type(payload).__name__}")
    messages = _path(payload, str(profile["messages"]))
    if messages is None:
        messages = [payload]  # a gateway sending one message per publication
    if not isinstance(messages, list):
        raise DecodeError(f"'{profile['messages']}' must be an array of messages")

    def one(index: int, message: Any) -> list[Decoded]:
        return [_decode_message(index, message, profile)]

    # a gateway batches many meters: a bad message is dead-lettered alone, the others go on
    return decode_each(messages, one, lambda _index, message: _message_json(message), label="message")


def _message_json(message: Any) -> str:
    """One message of the gateway document, as its dead letter keeps it."""
    return json.dumps(message, separators=(",", ":"), default=str)


def _decode_message(index: int, message: Any, profile: Json) -> Decoded:
    where = f"{profile['messages']}[{index}]"
    if not isinstance(message, dict):
        raise DecodeError(f"{where} is not an object")
    device = _path(message, str(profile["device"]))
    if not isinstance(device, str | int) or device == "":
        raise DecodeError(f"{where}.{profile['device']} (the meter id) is missing")
    device_id = str(device)
    kind = str(_path(message, str(profile["kind"])) or "reading")
    model = _path(message, str(profile["model"]))
    values: Json = {}
    for values_path in profile["values"] if isinstance(profile["values"], list) else [profile["values"]]:
        part = _path(message, str(values_path))
        if part is None:
            continue
        if not isinstance(part, dict):
            raise DecodeError(f"{where}.{values_path} must be an object of key -> value")
        values.update(part)
    if kind == "cmdexe":
        return _reply(device_id, values, where)
    if kind == "reading" and not values:
        raise DecodeError(f"{where}: a reading without values")
    prefixed: Json = {"messageType": kind}
    for key, value in values.items():
        prefixed[key if kind == "reading" else f"{kind}.{key}"] = value
    if kind == "lastGasp" and "lastGasp.reason" not in prefixed:
        prefixed["lastGasp.reason"] = "power outage"
    return Reading(device_id, prefixed, observed_at=_path(message, str(profile["time"])),
                   model=str(model).upper() if model else None, raw=partial(_message_json, message))


def _reply(device_id: str, values: Json, where: str) -> CommandReply:
    command = values.get("command")
    status = str(values.get("status", "OK")).upper()
    if not isinstance(command, str) or not command:
        raise DecodeError(f"{where}: a cmdexe message needs values.command")
    if status not in ("OK", "ERROR"):
        raise DecodeError(f"{where}: values.status must be OK or ERROR, not {status!r}")
    return CommandReply(device_id, command, "OK" if status == "OK" else "ERROR", values.get("info"))


class ConnodeFamily(Family):
    name = "connode"
    protocol = "connode"
    routes = CONNODE_ROUTES
    default_entity_type = "Device"
    uses_group_config = True

    def decode(self, message: Message) -> list[Decoded]:
        payload = parse_json(message)
        if message.route.kind == "cmdexe":
            if not message.device_id:
                raise DecodeError("no device id in the topic")
            return command_replies(message.device_id, payload)
        return decode_gateway(payload, profile_of(message.config))

    def default_attributes(self, model: str | None) -> list[Json]:
        return TABLES.get((model or "").upper(), [])

    def entity_type(self, model: str | None) -> str:
        return ENTITY_TYPES.get((model or "").upper(), self.default_entity_type)

    def encode_command(self, apikey: str, device_id: str, command: str, value: Any) -> OutgoingCommand:
        """The E350 breaker: ``{"device", "command": "breaker", "action": connect|disconnect|status}``."""
        body: Json = {"device": device_id, "command": command}
        if command == "breaker":
            action = str(value).strip().lower()
            if action not in BREAKER_ACTIONS:
                raise ValueError(f"breaker action must be one of {', '.join(BREAKER_ACTIONS)}, not {value!r}")
            body["action"] = action
        else:
            body["value"] = value
        return OutgoingCommand(f"connode/{apikey}/{device_id}/cmd", json.dumps(body).encode())
