"""The generic ``json`` family: iotagent-json's topics, routes and payloads, for devices that send JSON.

``{"t": 21.5, "h": 40}`` (or an array of such objects, each with an optional ``TimeInstant``) on
``/json/<apikey>/<device_id>/attrs``, one value on ``.../attrs/<attr>``, command results
``{"<cmd>": result}`` on ``.../cmdexe``; HTTP ``POST /iot/json?k=<apikey>&i=<device_id>``; the same topics
and ``/iot/json?k=&i=`` as CoAP paths (``POST coap://host/json/<apikey>/<device_id>/attrs``).
"""

from __future__ import annotations

import json
from typing import Any

try:  # a C parser for the hot path; the stdlib when it is not installed
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

from flexmeter.iot_agents.core.errors import DecodeError
from flexmeter.iot_agents.core.family import CommandReply, Decoded, Family, Message, Reading, Route

JSON_ROUTES: tuple[Route, ...] = (
    *(
        Route(transport, pattern, kind)  # type: ignore[arg-type]
        for transport in ("mqtt", "amqp", "coap")  # CoAP: POST coap://host/json/<apikey>/<device_id>/attrs
        for pattern, kind in (
            ("/json/{apikey}/{device_id}/attrs", "measure"),
            ("/json/{apikey}/{device_id}/attrs/{attr}", "measure"),
            ("/json/{apikey}/{device_id}/cmdexe", "cmdexe"),
            ("/{apikey}/{device_id}/attrs", "measure"),
            ("/{apikey}/{device_id}/cmdexe", "cmdexe"),
        )
    ),
    Route("http", "/iot/json", "measure", {"k": "apikey", "i": "device_id"}),
    Route("http", "/iot/json/commands", "cmdexe", {"k": "apikey", "i": "device_id"}),
    Route("coap", "/iot/json", "measure", {"k": "apikey", "i": "device_id"}),
    Route("coap", "/iot/json/commands", "cmdexe", {"k": "apikey", "i": "device_id"}),
)


def parse_json(message: Message) -> Any:
    if orjson is not None:
        try:
            return orjson.loads(message.payload)  # fast path; the stdlib explains failures better
        except orjson.JSONDecodeError:
            pass
    text = message.text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
                          f"(char {exc.pos})") from exc


def command_replies(device_id: str, payload: Any) -> list[Decoded]:
    """``{"<cmd>": result}``; a result ``{"status": "ERROR", "info": ...}`` reports a failure."""
    if not isinstance(payload, dict) or not payload:
        raise DecodeError("a command result must be a non-empty JSON object {\"<command>\": result}")
    replies: list[Decoded] = []
    for command, result in payload.items():
        if isinstance(result, dict) and str(result.get("status", "")).upper() in ("OK", "ERROR"):
            ok = str(result["status"]).upper() == "OK"
            replies.append(CommandReply(device_id, command, "OK" if ok else "ERROR", result.get("info")))
        else:
            replies.append(CommandReply(device_id, command, "OK", result))
    return replies


class JsonFamily(Family):
    name = "json"
    protocol = "IoTA-JSON"
    routes = JSON_ROUTES
    default_entity_type = "Thing"

    def protocols(self) -> tuple[str, ...]:
        return ("IoTA-JSON", "json", "")

    def decode(self, message: Message) -> list[Decoded]:
        params = message.params
        device_id = params.get("device_id")
        if not device_id:
            raise DecodeError("no device id in the topic or request")
        if message.route.kind == "cmdexe":
            return command_replies(device_id, parse_json(message))
        attr = params.get("attr")
        if attr:
            try:
                value: Any = json.loads(message.text())
            except json.JSONDecodeError:
                value = message.text()
            return [Reading(device_id, {attr: value})]
        payload = parse_json(message)
        if type(payload) is dict:  # the usual single measure: its dict (fresh from the parser) as the values
            if "TimeInstant" in payload:
                return [Reading(device_id, {k: v for k, v in payload.items() if k != "TimeInstant"},
                                payload["TimeInstant"])]
            return [Reading(device_id, payload)]
        items = payload if isinstance(payload, list) else [payload]
        readings: list[Decoded] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise DecodeError(f"measure {index} is a {type(item).__name__}, not a JSON object")
            values = {k: v for k, v in item.items() if k != "TimeInstant"}
            readings.append(Reading(device_id, values, observed_at=item.get("TimeInstant")))
        return readings
