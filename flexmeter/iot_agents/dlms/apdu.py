"""xDLMS APDUs (Green Book 9.5 / IEC 62056-5-3): the ones a head end receives from meters.

Decoded: DATA-NOTIFICATION (0x0F) with its date-time in the three forms meters use (``absent`` = ``00``,
``length`` = ``0C`` + 12 bytes as the standard's A-XDR octet string, ``typed`` = ``09 0C`` + 12 bytes, as
Kaifa sends), EVENT-NOTIFICATION-request (0xC2), GET-response (0xC4: normal, with-datablock, with-list),
SET-response (0xC5, all five), ACTION-response (0xC7, all four), GET-request normal (0xC0) and
EXCEPTION-response (0xD8). Ciphered APDUs are in :mod:`.security`.

Encoded (for the simulator and tests): DATA-NOTIFICATION and GET-request normal.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from .axdr import Data, decode_data, encode_data, read_length, to_json
from .cosem_time import CosemDateTime
from .errors import InvalidValueError, LengthError, TruncatedError, UnknownTagError
from .obis import obis_from_bytes, obis_to_bytes

DATA_NOTIFICATION = 0x0F
GET_REQUEST = 0xC0
EVENT_NOTIFICATION = 0xC2
GET_RESPONSE = 0xC4
SET_RESPONSE = 0xC5
ACTION_RESPONSE = 0xC7
EXCEPTION_RESPONSE = 0xD8

_U32 = struct.Struct(">I")

DATA_ACCESS_RESULTS = {
    0: "success", 1: "hardware-fault", 2: "temporary-failure", 3: "read-write-denied", 4: "object-undefined",
    9: "object-class-inconsistent", 11: "object-unavailable", 12: "type-unmatched",
    13: "scope-of-access-violated", 14: "data-block-unavailable", 15: "long-get-aborted",
    16: "no-long-get-in-progress", 17: "long-set-aborted", 18: "no-long-set-in-progress",
    19: "data-block-number-invalid", 250: "other-reason",
}


def _need(buf: bytes, pos: int, count: int, what: str) -> None:
    if pos + count > len(buf):
        raise TruncatedError(what, pos)


def check_end(buf: bytes, pos: int, what: str) -> None:
    """``pos`` must be the end of ``buf`` (an APDU fills its buffer exactly)."""
    if pos != len(buf):
        raise LengthError(f"trailing bytes after {what}", pos, f"{len(buf) - pos} bytes")


@dataclass(slots=True)
class DataNotification:
    invoke_id: int
    priority_high: bool
    confirmed: bool
    break_on_error: bool
    self_descriptive: bool
    date_time: CosemDateTime | None
    date_time_form: str
    body: Data
    kind: str = "data-notification"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "invoke_id": self.invoke_id, "priority_high": self.priority_high,
                "confirmed": self.confirmed, "date_time_form": self.date_time_form,
                "date_time": None if self.date_time is None else self.date_time.to_json(),
                "body": to_json(self.body)}


@dataclass(slots=True)
class EventNotification:
    time: CosemDateTime | None
    class_id: int
    instance: str
    attribute_id: int
    value: Data
    kind: str = "event-notification"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "time": None if self.time is None else self.time.to_json(),
                "class_id": self.class_id, "instance": self.instance, "attribute_id": self.attribute_id,
                "value": to_json(self.value)}


@dataclass(slots=True)
class DataResult:
    """Get-Data-Result: ``data`` on success, else ``access_result`` (enum, see DATA_ACCESS_RESULTS)."""

    data: Data | None = None
    access_result: int | None = None

    def to_json(self) -> dict[str, Any]:
        if self.access_result is not None:
            return {"access_result": DATA_ACCESS_RESULTS.get(self.access_result, self.access_result)}
        return {"data": None if self.data is None else to_json(self.data)}


@dataclass(slots=True)
class GetResponse:
    variant: str
    invoke_id: int
    results: list[DataResult] = field(default_factory=list)
    last_block: bool | None = None
    block_number: int | None = None
    raw_data: bytes | None = None
    kind: str = "get-response"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "variant": self.variant, "invoke_id": self.invoke_id,
                "results": [r.to_json() for r in self.results], "last_block": self.last_block,
                "block_number": self.block_number,
                "raw_data": None if self.raw_data is None else self.raw_data.hex()}


@dataclass(slots=True)
class SetResponse:
    variant: str
    invoke_id: int
    results: list[int] = field(default_factory=list)
    block_number: int | None = None
    kind: str = "set-response"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "variant": self.variant, "invoke_id": self.invoke_id,
                "results": [DATA_ACCESS_RESULTS.get(r, r) for r in self.results],
                "block_number": self.block_number}


@dataclass(slots=True)
class ActionResult:
    result: int
    return_data: DataResult | None = None


@dataclass(slots=True)
class ActionResponse:
    variant: str
    invoke_id: int
    results: list[ActionResult] = field(default_factory=list)
    last_block: bool | None = None
    block_number: int | None = None
    raw_data: bytes | None = None
    kind: str = "action-response"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "variant": self.variant, "invoke_id": self.invoke_id,
                "results": [{"result": r.result,
                             "return": None if r.return_data is None else r.return_data.to_json()}
                            for r in self.results],
                "last_block": self.last_block, "block_number": self.block_number,
                "raw_data": None if self.raw_data is None else self.raw_data.hex()}


@dataclass(slots=True)
class GetRequest:
    invoke_id: int
    class_id: int
    instance: str
    attribute_id: int
    access_selector: int | None = None
    access_parameters: Data | None = None
    kind: str = "get-request"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "invoke_id": self.invoke_id, "class_id": self.class_id,
                "instance": self.instance, "attribute_id": self.attribute_id,
                "access_selector": self.access_selector,
                "access_parameters": None if self.access_parameters is None
                else to_json(self.access_parameters)}


@dataclass(slots=True)
class ExceptionResponse:
    state_error: int
    service_error: int
    kind: str = "exception-response"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "state_error": self.state_error, "service_error": self.service_error}


Apdu = DataNotification | EventNotification | GetResponse | SetResponse | ActionResponse | GetRequest | \
    ExceptionResponse


def decode_apdu(buf: bytes) -> Apdu:
    """One plaintext xDLMS APDU that fills ``buf`` exactly."""
    if not buf:
        raise TruncatedError("APDU tag", 0)
    tag = buf[0]
    if tag == DATA_NOTIFICATION:
        return decode_data_notification(buf)
    if tag == GET_RESPONSE:
        return _get_response(buf)
    if tag == EVENT_NOTIFICATION:
        return _event_notification(buf)
    if tag == SET_RESPONSE:
        return _set_response(buf)
    if tag == ACTION_RESPONSE:
        return _action_response(buf)
    if tag == GET_REQUEST:
        return _get_request(buf)
    if tag == EXCEPTION_RESPONSE:
        _need(buf, 1, 2, "exception-response")
        check_end(buf, 3, "exception-response")
        return ExceptionResponse(buf[1], buf[2])
    raise UnknownTagError("xDLMS APDU tag", 0, f"{tag:#04x}")


def decode_data_notification(buf: bytes) -> DataNotification:
    header = data_notification_header(buf)
    body, end = decode_data(buf, header[3])
    check_end(buf, end, "data-notification body")
    return data_notification(header, body)


DataNotificationHeader = tuple[int, CosemDateTime | None, str, int]
"""(long-invoke-id-and-priority, date-time, date-time form, position of the body)."""


def data_notification_header(buf: bytes) -> DataNotificationHeader:
    """The DATA-NOTIFICATION fields before the body (the decoder's one-pass path parses the body itself)."""
    if len(buf) < 6:
        raise TruncatedError("data-notification header", len(buf))
    if buf[0] != DATA_NOTIFICATION:
        raise UnknownTagError("data-notification tag 0x0F", 0, f"{buf[0]:#04x}")
    liip = _U32.unpack_from(buf, 1)[0]
    first = buf[5]
    if first == 0x00:
        return liip, None, "absent", 6
    if first == 0x0C:
        _need(buf, 6, 12, "data-notification date-time")
        return liip, CosemDateTime.decode(buf[6:18], 6), "length", 18
    if first == 0x09 and len(buf) > 6 and buf[6] == 0x0C:
        _need(buf, 7, 12, "data-notification date-time")
        return liip, CosemDateTime.decode(buf[7:19], 7), "typed", 19
    raise InvalidValueError("data-notification date-time (00, 0C+12 bytes or 09 0C+12 bytes)", 5,
                            f"{first:#04x}")


def data_notification(header: DataNotificationHeader, body: Data) -> DataNotification:
    liip, date_time, form, _ = header
    return DataNotification(liip & 0xFFFFFF, bool(liip & 0x80000000), bool(liip & 0x40000000),
                            bool(liip & 0x20000000), bool(liip & 0x10000000), date_time, form, body)


def _event_notification(buf: bytes) -> EventNotification:
    _need(buf, 1, 1, "event-notification time flag")
    pos = 1
    time: CosemDateTime | None = None
    if buf[pos] == 0x01:
        length, pos = read_length(buf, pos + 1, len(buf))
        if length != 12:
            raise LengthError("event-notification time is 12 bytes", pos - 1, str(length))
        _need(buf, pos, 12, "event-notification time")
        time, pos = CosemDateTime.decode(buf[pos:pos + 12], pos), pos + 12
    elif buf[pos] == 0x00:
        pos += 1
    else:
        raise InvalidValueError("OPTIONAL flag (00/01)", pos, f"{buf[pos]:#04x}")
    _need(buf, pos, 9, "cosem-attribute-descriptor")
    class_id = int.from_bytes(buf[pos:pos + 2], "big")
    instance = obis_from_bytes(buf[pos + 2:pos + 8], pos + 2)
    attribute = int.from_bytes(buf[pos + 8:pos + 9], "big", signed=True)
    value, end = decode_data(buf, pos + 9)
    check_end(buf, end, "event-notification")
    return EventNotification(time, class_id, instance, attribute, value)


def _data_result(buf: bytes, pos: int) -> tuple[DataResult, int]:
    _need(buf, pos, 1, "Get-Data-Result choice")
    choice = buf[pos]
    if choice == 0x00:
        data, pos = decode_data(buf, pos + 1)
        return DataResult(data=data), pos
    if choice == 0x01:
        _need(buf, pos + 1, 1, "data-access-result")
        return DataResult(access_result=buf[pos + 1]), pos + 2
    raise UnknownTagError("Get-Data-Result choice (00 data / 01 data-access-result)", pos, f"{choice:#04x}")


def _count(buf: bytes, pos: int, minimum: int) -> tuple[int, int]:
    count, new = read_length(buf, pos, len(buf))
    if count * minimum > len(buf) - new:
        raise LengthError("SEQUENCE OF count exceeds the bytes left", pos, str(count))
    return count, new


def _get_response(buf: bytes) -> GetResponse:
    _need(buf, 1, 2, "get-response header")
    variant, invoke = buf[1], buf[2]
    pos = 3
    if variant == 0x01:
        result, pos = _data_result(buf, pos)
        check_end(buf, pos, "get-response-normal")
        return GetResponse("normal", invoke, [result])
    if variant == 0x02:
        _need(buf, pos, 6, "DataBlock-G")
        last = buf[pos] != 0
        number = int.from_bytes(buf[pos + 1:pos + 5], "big")
        pos += 5
        if buf[pos] == 0x00:
            length, pos = read_length(buf, pos + 1, len(buf))
            _need(buf, pos, length, "DataBlock-G raw-data")
            raw = buf[pos:pos + length]
            check_end(buf, pos + length, "get-response-with-datablock")
            return GetResponse("with-datablock", invoke, [], last, number, raw)
        if buf[pos] == 0x01:
            _need(buf, pos + 1, 1, "data-access-result")
            check_end(buf, pos + 2, "get-response-with-datablock")
            return GetResponse("with-datablock", invoke, [DataResult(access_result=buf[pos + 1])], last,
                               number)
        raise UnknownTagError("DataBlock-G result choice", pos, f"{buf[pos]:#04x}")
    if variant == 0x03:
        count, pos = _count(buf, pos, 2)
        results = []
        for _ in range(count):
            result, pos = _data_result(buf, pos)
            results.append(result)
        check_end(buf, pos, "get-response-with-list")
        return GetResponse("with-list", invoke, results)
    raise UnknownTagError("get-response choice", 1, f"{variant:#04x}")


def _set_response(buf: bytes) -> SetResponse:
    _need(buf, 1, 2, "set-response header")
    variant, invoke = buf[1], buf[2]
    pos = 3
    if variant == 0x01:
        _need(buf, pos, 1, "set-response result")
        check_end(buf, pos + 1, "set-response-normal")
        return SetResponse("normal", invoke, [buf[pos]])
    if variant == 0x02:
        _need(buf, pos, 4, "block-number")
        check_end(buf, pos + 4, "set-response-datablock")
        return SetResponse("datablock", invoke, [], int.from_bytes(buf[pos:pos + 4], "big"))
    if variant == 0x03:
        _need(buf, pos, 5, "set-response-last-datablock")
        check_end(buf, pos + 5, "set-response-last-datablock")
        return SetResponse("last-datablock", invoke, [buf[pos]], int.from_bytes(buf[pos + 1:pos + 5], "big"))
    if variant in (0x04, 0x05):
        count, pos = _count(buf, pos, 1)
        _need(buf, pos, count, "set-response results")
        results = list(buf[pos:pos + count])
        pos += count
        block = None
        if variant == 0x04:
            _need(buf, pos, 4, "block-number")
            block = int.from_bytes(buf[pos:pos + 4], "big")
            pos += 4
        check_end(buf, pos, "set-response-with-list")
        return SetResponse("last-datablock-with-list" if variant == 0x04 else "with-list", invoke, results,
                           block)
    raise UnknownTagError("set-response choice", 1, f"{variant:#04x}")


def _action_result(buf: bytes, pos: int) -> tuple[ActionResult, int]:
    _need(buf, pos, 2, "Action-Response-With-Optional-Data")
    result, flag = buf[pos], buf[pos + 1]
    pos += 2
    if flag == 0x00:
        return ActionResult(result), pos
    if flag == 0x01:
        data, pos = _data_result(buf, pos)
        return ActionResult(result, data), pos
    raise InvalidValueError("OPTIONAL flag (00/01)", pos - 1, f"{flag:#04x}")


def _action_response(buf: bytes) -> ActionResponse:
    _need(buf, 1, 2, "action-response header")
    variant, invoke = buf[1], buf[2]
    pos = 3
    if variant == 0x01:
        result, pos = _action_result(buf, pos)
        check_end(buf, pos, "action-response-normal")
        return ActionResponse("normal", invoke, [result])
    if variant == 0x02:
        _need(buf, pos, 5, "DataBlock-SA")
        last = buf[pos] != 0
        number = int.from_bytes(buf[pos + 1:pos + 5], "big")
        length, pos = read_length(buf, pos + 5, len(buf))
        _need(buf, pos, length, "DataBlock-SA raw-data")
        check_end(buf, pos + length, "action-response-with-pblock")
        return ActionResponse("with-pblock", invoke, [], last, number, buf[pos:pos + length])
    if variant == 0x03:
        count, pos = _count(buf, pos, 2)
        results = []
        for _ in range(count):
            result, pos = _action_result(buf, pos)
            results.append(result)
        check_end(buf, pos, "action-response-with-list")
        return ActionResponse("with-list", invoke, results)
    if variant == 0x04:
        _need(buf, pos, 4, "block-number")
        check_end(buf, pos + 4, "action-response-next-pblock")
        return ActionResponse("next-pblock", invoke, [], None, int.from_bytes(buf[pos:pos + 4], "big"))
    raise UnknownTagError("action-response choice", 1, f"{variant:#04x}")


def _get_request(buf: bytes) -> GetRequest:
    _need(buf, 1, 12, "get-request-normal")
    if buf[1] != 0x01:
        raise UnknownTagError("get-request choice (only normal is decoded)", 1, f"{buf[1]:#04x}")
    invoke = buf[2]
    class_id = int.from_bytes(buf[3:5], "big")
    instance = obis_from_bytes(buf[5:11], 5)
    attribute = int.from_bytes(buf[11:12], "big", signed=True)
    pos = 12
    _need(buf, pos, 1, "access-selection flag")
    if buf[pos] == 0x00:
        check_end(buf, pos + 1, "get-request-normal")
        return GetRequest(invoke, class_id, instance, attribute)
    if buf[pos] != 0x01:
        raise InvalidValueError("OPTIONAL flag (00/01)", pos, f"{buf[pos]:#04x}")
    _need(buf, pos + 1, 1, "access-selector")
    selector = buf[pos + 1]
    params, end = decode_data(buf, pos + 2)
    check_end(buf, end, "get-request-normal")
    return GetRequest(invoke, class_id, instance, attribute, selector, params)


# -- encoding -----------------------------------------------------------------------------------------
def build_data_notification(body: Data, invoke_id: int = 1, date_time: CosemDateTime | None = None,
                            form: str = "length", priority_high: bool = False,
                            confirmed: bool = False) -> bytes:
    """A DATA-NOTIFICATION APDU; ``form`` picks the date-time encoding (``length`` per the standard,
    ``typed`` as Kaifa meters send it); without ``date_time`` it is absent (``00``)."""
    liip = (invoke_id & 0xFFFFFF) | (0x80000000 if priority_high else 0) | (0x40000000 if confirmed else 0)
    out = bytearray((DATA_NOTIFICATION,)) + liip.to_bytes(4, "big")
    if date_time is None:
        out.append(0x00)
    elif form == "typed":
        out += b"\x09\x0c" + date_time.encode()
    else:
        out += b"\x0c" + date_time.encode()
    return bytes(out + encode_data(body))


def build_get_request(class_id: int, obis: str, attribute_id: int, invoke_id: int = 0xC1) -> bytes:
    """A GET-request-normal without selective access."""
    return (bytes((GET_REQUEST, 0x01, invoke_id)) + class_id.to_bytes(2, "big") + obis_to_bytes(obis)
            + attribute_id.to_bytes(1, "big", signed=True) + b"\x00")
