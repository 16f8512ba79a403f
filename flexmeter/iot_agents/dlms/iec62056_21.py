"""IEC 62056-21 readouts: mode C (``/XXXZ\\W ident``, STX, data block, ``!``, ETX, BCC) and DSMR/P1
telegrams (``/XXXZ ident``, blank line, data lines, ``!`` CRC16), plus the protocol's single messages
(request, identification, acknowledgement/option select, command, data message).

Data sets are ``address(value*unit)(value*unit)…``; several may share a line, and a dataset's value
groups may continue on the next line when it starts with ``(`` (DSMR 2.2/3 gas readings). Numbers become
exact ``Decimal``; identifiers (``x:96.1.x``, ``x:96.13.x``, ``x:42.0.0``) stay text. Timestamps
``YYMMDDhhmmssX`` become datetimes: ``W`` (winter) = UTC+01:00 and ``S`` (summer) = UTC+02:00 — the DSMR
convention (NL/BE/LU meters keep Central European time); no suffix = naive local time.

Checksums: BCC = XOR of the bytes after the first SOH/STX up to and including ETX; P1 CRC = CRC-16/ARC
(poly 0x8005 reflected, init 0) over ``/`` … ``!`` inclusive, written as up to 4 hex digits (some meters
drop leading zeros). DSMR 2.2/3 telegrams end with a bare ``!``: no checksum, ``checksum_valid`` None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import ChecksumError, FramingError, InvalidValueError, TruncatedError
from .obis import parse_obis

SOH, STX, ETX, EOT, ACK, NAK = 0x01, 0x02, 0x03, 0x04, 0x06, 0x15

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_TIMESTAMP = re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})([WS]?)$")
_IDENT = re.compile(r"^/([A-Za-z]{3})(.)(?:\\(.))?(.*)$")
_UNIT_ONLY = re.compile(r"^[A-Za-z][A-Za-z0-9/%*°³²]*$")
_TEXT_CDE = ("96.1.", "96.13.", "42.0.")
WINTER = timezone(timedelta(hours=1))
SUMMER = timezone(timedelta(hours=2))


def bcc(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/ARC as DSMR P1 uses it."""
    crc = 0
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


@dataclass(frozen=True, slots=True)
class Identification:
    manufacturer: str
    baud_char: str
    enhanced_id: str | None
    identification: str
    line: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "manufacturer": self.manufacturer, "baud_char": self.baud_char,
                "enhanced_id": self.enhanced_id, "identification": self.identification}


def parse_identification(line: str, offset: int = 0) -> Identification:
    """``/XXXZ\\Wident`` (W optional): manufacturer, baud character, enhanced id char, identification."""
    m = _IDENT.match(line)
    if m is None:
        raise FramingError("identification line /XXXZ[\\W]ident", offset, line[:40])
    return Identification(m.group(1), m.group(2), m.group(3), m.group(4), line)


@dataclass(slots=True)
class DataSet:
    """One data set: ``address`` as written, canonical ``obis`` (None if not an OBIS code), the value
    groups as written, and the interpreted primary ``value``/``unit`` and ``timestamp``."""

    address: str
    groups: list[tuple[str, str | None]]
    offset: int
    obis: str | None = None
    value: Any = None
    unit: str | None = None
    timestamp: datetime | None = None

    @property
    def raw(self) -> str:
        return self.groups[-1][0] if self.groups else ""

    def to_json(self) -> dict[str, Any]:
        from .push import json_value

        return {"address": self.address, "obis": self.obis, "value": json_value(self.value),
                "unit": self.unit,
                "timestamp": None if self.timestamp is None else self.timestamp.isoformat(),
                "groups": [{"value": v, "unit": u} for v, u in self.groups]}


def parse_timestamp(text: str, offset: int | None = None) -> datetime | None:
    m = _TIMESTAMP.match(text)
    if m is None:
        return None
    yy, mo, dd, hh, mi, ss, season = m.groups()
    try:
        naive = datetime(2000 + int(yy), int(mo), int(dd), int(hh), int(mi), int(ss))
    except ValueError:
        if text[:12] == "000000000000" or text[:6] in ("000101", "700101"):
            return None
        raise InvalidValueError("timestamp YYMMDDhhmmss", offset, text) from None
    if season == "W":
        return naive.replace(tzinfo=WINTER)
    if season == "S":
        return naive.replace(tzinfo=SUMMER)
    return naive


def _number(text: str) -> Decimal | None:
    if _NUMBER.match(text) is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        return None


def _interpret(ds: DataSet) -> None:
    try:
        ds.obis = parse_obis(ds.address) if ds.address else None
    except InvalidValueError:
        ds.obis = None
    groups = ds.groups
    if not groups:
        return
    text_only = ds.obis is not None and any(f":{p}" in ds.obis for p in _TEXT_CDE)
    clock = ds.obis is not None and ds.obis.endswith(":1.0.0.255")
    for i, (value, _unit) in enumerate(groups):
        if ds.timestamp is None and (value.endswith(("W", "S")) or clock or (i == 0 and len(groups) > 1)):
            found = parse_timestamp(value, ds.offset)
            if found is not None:
                ds.timestamp = found
                if len(groups) == 1:
                    ds.value = found
                    return
    if len(groups) >= 3 and _OBIS_LIKE.match(groups[1][0] or ""):
        chosen = groups[0]  # a buffer: (count)(capture OBIS)…: the value is the entry count
    elif (len(groups) >= 2 and groups[-1][1] is None and groups[-2][1] is None
          and _UNIT_ONLY.match(groups[-2][0]) is not None and _number(groups[-1][0]) is not None):
        chosen = (groups[-1][0], groups[-2][0])  # DSMR 2.2/3 gas: …(m3)\r\n(00001.001)
    else:
        with_unit = [g for g in groups if g[1] is not None]
        chosen = with_unit[-1] if with_unit else groups[-1]
    value, unit = chosen
    number = None if text_only else _number(value)
    ds.value = number if number is not None else value
    ds.unit = unit


_OBIS_LIKE = re.compile(r"^\d+-\d+:\d+\.\d+\.\d+")


def parse_data_lines(text: str, start: int = 0, stop: int | None = None) -> list[DataSet]:
    """The data sets in ``text[start:stop]`` (offsets in errors are indexes into ``text``)."""
    end = len(text) if stop is None else stop
    out: list[DataSet] = []
    i = start
    while i < end:
        c = text[i]
        if c in "\r\n":
            i += 1
            continue
        j = text.find("(", i, end)
        line_end = text.find("\n", i, end)
        if j == -1 or (line_end != -1 and line_end < j):
            raise FramingError("data set address(value)", i, text[i:min(end, i + 30)].strip())
        address = text[i:j].strip()
        ds = DataSet(address, [], i)
        i = j
        while i < end and text[i] == "(":
            k = text.find(")", i + 1, end)
            if k == -1:
                raise TruncatedError("data set value ')'", i)
            content = text[i + 1:k]
            if "(" in content or "\n" in content:
                raise FramingError("data set value without '(' or line break", i + 1)
            value, star, unit = content.partition("*")
            ds.groups.append((value, unit if star else None))
            i = k + 1
            if text.startswith("\r\n(", i) and i + 3 <= end:
                i += 2
            elif text.startswith("\n(", i) and i + 2 <= end:
                i += 1
        _interpret(ds)
        out.append(ds)
    return out


@dataclass(slots=True)
class Readout:
    kind: str  # "mode_c" or "p1"
    identification: Identification
    datasets: list[DataSet]
    checksum: int | None
    checksum_valid: bool | None
    end_line: str
    values: dict[str, DataSet] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"protocol": "iec62056-21", "kind": self.kind, "identification": self.identification.to_json(),
                "checksum": self.checksum, "checksum_valid": self.checksum_valid, "end_line": self.end_line,
                "records": [d.to_json() for d in self.datasets],
                "values": {k: d.to_json() for k, d in self.values.items()}}


def _index(datasets: list[DataSet]) -> dict[str, DataSet]:
    return {d.obis: d for d in datasets if d.obis is not None}


def decode_readout(data: bytes, verify: bool = True) -> Readout:
    """A mode C readout (STX … ETX BCC) or a P1 telegram (… ``!CRC``), told apart by the STX."""
    text = data.decode("latin-1")
    slash = text.find("/")
    if slash == -1 or text[:slash].strip("\r\n\x00 "):
        raise FramingError("readout starts with '/'", 0 if slash == -1 else slash)
    eol = text.find("\r\n", slash)
    if eol == -1:
        eol = text.find("\n", slash)
        if eol == -1:
            raise TruncatedError("identification line end CR LF", len(text))
    ident = parse_identification(text[slash:eol], slash)
    stx = text.find("\x02", eol)
    if stx != -1:
        return _mode_c(data, text, ident, eol, stx, verify)
    return _p1(data, text, ident, slash, eol, verify)


def _mode_c(data: bytes, text: str, ident: Identification, eol: int, stx: int, verify: bool) -> Readout:
    if text[eol:stx].strip("\r\n"):
        raise FramingError("only CR LF between identification and STX", stx)
    etx = text.find("\x03", stx)
    if etx == -1:
        raise TruncatedError("ETX", len(text))
    if etx + 1 >= len(data):
        raise TruncatedError("BCC after ETX", etx + 1)
    expected = data[etx + 1]
    computed = bcc(data[stx + 1:etx + 1])
    valid = expected == computed
    if verify and not valid:
        raise ChecksumError("IEC 62056-21 BCC", etx + 1, f"frame {expected:#04x}, computed {computed:#04x}")
    bang = text.rfind("!", stx, etx)
    if bang == -1:
        raise FramingError("end of data block '!'", etx)
    datasets = parse_data_lines(text, stx + 1, bang)
    return Readout("mode_c", ident, datasets, expected, valid, "!", _index(datasets))


def _p1(data: bytes, text: str, ident: Identification, slash: int, eol: int, verify: bool) -> Readout:
    bang = text.find("\n!", eol - 1)
    if bang == -1:
        raise TruncatedError("end line '!'", len(text))
    bang += 1
    line_end = text.find("\n", bang)
    tail = (text[bang + 1:] if line_end == -1 else text[bang + 1:line_end]).rstrip("\r\n")
    checksum = None
    valid = None
    if tail:
        if not re.fullmatch(r"[0-9A-Fa-f]{1,4}", tail):
            raise FramingError("P1 CRC: up to 4 hex digits after '!'", bang + 1, tail[:8])
        checksum = int(tail, 16)
        computed = crc16(data[slash:bang + 1])
        valid = checksum == computed
        if verify and not valid:
            raise ChecksumError("P1 CRC16", bang + 1, f"telegram {checksum:#06x}, computed {computed:#06x}")
    datasets = parse_data_lines(text, eol, bang)
    return Readout("p1", ident, datasets, checksum, valid, "!" + tail, _index(datasets))


# -- single protocol messages (the mode C dialogue) ---------------------------------------------------
@dataclass(slots=True)
class Message:
    kind: str
    fields: dict[str, Any]
    datasets: list[DataSet] = field(default_factory=list)
    bcc_valid: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {"protocol": "iec62056-21", "kind": self.kind, "bcc_valid": self.bcc_valid, **self.fields,
                "records": [d.to_json() for d in self.datasets]}


def _checked_block(data: bytes, start: int, verify: bool) -> tuple[int, bool]:
    etx = data.find(b"\x03", start)
    if etx == -1:
        etx = data.find(b"\x04", start)
        if etx == -1:
            raise TruncatedError("ETX", len(data))
    if etx + 1 >= len(data):
        raise TruncatedError("BCC after ETX", etx + 1)
    if etx + 2 != len(data):
        raise FramingError("nothing after the BCC", etx + 2)
    valid = bcc(data[start:etx + 1]) == data[etx + 1]
    if verify and not valid:
        raise ChecksumError("IEC 62056-21 BCC", etx + 1,
                            f"frame {data[etx + 1]:#04x}, computed {bcc(data[start:etx + 1]):#04x}")
    return etx, valid


def decode_message(data: bytes, verify: bool = True) -> Message:
    """One mode C message: request ``/?addr!``, identification ``/XXXZ…``, ACK/option select, command
    (SOH C D [STX data] ETX BCC), data message (STX data ETX BCC)."""
    if not data:
        raise TruncatedError("IEC 62056-21 message", 0)
    text = data.decode("latin-1")
    first = data[0]
    if text.startswith("/?"):
        bang = text.find("!")
        if bang == -1 or not text.endswith("!\r\n"):
            raise FramingError("request message /?address!CR LF", 0)
        return Message("request", {"device_address": text[2:bang] or None})
    if first == ord("/"):
        if not text.endswith("\r\n"):
            raise TruncatedError("identification CR LF", len(text))
        return Message("identification", parse_identification(text[:-2]).to_json())
    if first == ACK:
        if len(text) != 6 or not text.endswith("\r\n"):
            raise FramingError("ACK V Z Y CR LF", 0)
        return Message("ack_option_select", {"protocol_char": text[1], "baud_char": text[2],
                                             "mode_char": text[3]})
    if first == SOH:
        if len(data) < 5:
            raise TruncatedError("command message", len(data))
        command, command_type = text[1], text[2]
        if not command_type.isdigit():
            raise InvalidValueError("command type digit", 2, command_type)
        etx, valid = _checked_block(data, 1, verify)
        fields: dict[str, Any] = {"command": command, "command_type": int(command_type)}
        datasets: list[DataSet] = []
        if data[3] == STX:
            datasets = parse_data_lines(text, 4, etx)
            if len(datasets) == 1:
                fields.update(address=datasets[0].address or None,
                              value=datasets[0].groups[0][0] if datasets[0].groups else None)
        return Message("command", fields, datasets, valid)
    if first == STX:
        etx, valid = _checked_block(data, 1, verify)
        bang = text.rfind("!", 1, etx)
        body_end = bang if bang != -1 else etx
        datasets = parse_data_lines(text, 1, body_end)
        kind = "readout_data" if bang != -1 else "data"
        return Message(kind, {}, datasets, valid)
    if first == NAK:
        return Message("nak", {})
    raise FramingError("IEC 62056-21 message start (/, ACK, SOH, STX, NAK)", 0, f"{first:#04x}")


# -- building (simulator) -----------------------------------------------------------------------------
def _data_lines(datasets: list[tuple[str, list[tuple[str, str | None]]]]) -> str:
    return "".join(address + "".join(f"({v}*{u})" if u else f"({v})" for v, u in groups) + "\r\n"
                   for address, groups in datasets)


DataLines = list[tuple[str, list[tuple[str, str | None]]]]


def build_mode_c_readout(identification: str, datasets: DataLines) -> bytes:
    """``/ident CR LF STX data ! CR LF ETX BCC`` (``identification`` without the leading ``/``)."""
    block = (_data_lines(datasets) + "!\r\n\x03").encode("latin-1")
    return ("/" + identification + "\r\n").encode("latin-1") + b"\x02" + block + bytes((bcc(block),))


def build_p1_telegram(identification: str, datasets: DataLines) -> bytes:
    """``/ident CR LF CR LF data !CRC CR LF`` with the CRC16 in 4 upper-case hex digits."""
    body = ("/" + identification + "\r\n\r\n" + _data_lines(datasets) + "!").encode("latin-1")
    return body + f"{crc16(body):04X}\r\n".encode("ascii")
