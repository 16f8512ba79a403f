"""``decode_dlms``: any DLMS input a head end gets, layer by layer, to the tree and the values by OBIS.

Accepted inputs (detected in this order): one or more HDLC frames (``7E … 7E``, segments joined), a
DLMS/UDP-wrapped APDU (``00 01 …``), an LLC-prefixed APDU (``E6 E7 00 …``), a ciphered APDU (0xDB/0xDC,
glo-/ded-), a plain APDU, or a bare A-XDR push body (the ``notification_body`` of HAN captures).

The result is what an agent needs: ``apdu`` (typed), ``body`` (the A-XDR tree), ``date_time`` (the
notification's), ``push`` (values by OBIS with unit after scaler) and the layers it went through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import apdu as apdu_mod
from .apdu import Apdu, EventNotification, decode_apdu
from .axdr import OCTET_STRING, Data, decode_data, decode_data_exact, to_json
from .cosem_time import CosemDateTime
from .errors import DecodeError, FramingError, TruncatedError
from .onepass import one_pass_push
from .profiles import ProfileRegistry, default_registry
from .push import ObisValue, PushValues, convert, push_values
from .security import CIPHERED_TAGS, CipheredApdu, ReplayGuard, parse_ciphered, unprotect
from .shapes import learn
from .wrappers import (
    FLAG,
    HdlcReassembler,
    decode_hdlc_frame,
    split_hdlc_stream,
    strip_llc,
    unwrap_udp,
)

_APDU_TAGS = frozenset({apdu_mod.DATA_NOTIFICATION, apdu_mod.GET_REQUEST, apdu_mod.EVENT_NOTIFICATION,
                        apdu_mod.GET_RESPONSE, apdu_mod.SET_RESPONSE, apdu_mod.ACTION_RESPONSE,
                        apdu_mod.EXCEPTION_RESPONSE})


@dataclass(frozen=True, slots=True)
class Keys:
    """Suite 0 keys (16 bytes each); ``system_title`` is the peer's, needed for glo-/ded- APDUs only."""

    encryption_key: bytes | None = None
    authentication_key: bytes | None = None
    system_title: bytes | None = None


_NO_KEYS = Keys()
_LLC_LAYERS = {b"\xe6\xe6\x00": {"layer": "llc", "header": "e6e600"},
               b"\xe6\xe7\x00": {"layer": "llc", "header": "e6e700"}}
_BODY_LAYER = {"layer": "push-body"}


@dataclass(slots=True)
class DlmsMessage:
    frames: list[Any] = field(default_factory=list)  # layer objects (to_json()) or constant dicts
    security: CipheredApdu | None = None
    apdu: Apdu | None = None
    body: Data | None = None
    date_time: CosemDateTime | None = None
    push: PushValues | None = None

    @property
    def layers(self) -> list[dict[str, Any]]:
        """The layers met, outermost first, as JSON dicts."""
        out = []
        for layer in self.frames:
            if isinstance(layer, dict):
                out.append(dict(layer))
            elif isinstance(layer, CipheredApdu):
                out.append({"layer": "ciphered", **layer.to_json()})
            else:
                out.append(layer.to_json())
        return out

    @property
    def values(self) -> dict[str, ObisValue]:
        return {} if self.push is None else self.push.values

    @property
    def timestamp(self) -> datetime | None:
        """The notification's date-time, else the pushed clock (``x-x:1.0.0.255``) value."""
        if self.date_time is not None:
            found = self.date_time.to_datetime()
            if found is not None:
                return found
        for obis, value in self.values.items():
            if ":1.0.0." in obis and isinstance(value.value, datetime):
                return value.value
        return None

    def to_json(self) -> dict[str, Any]:
        ts = self.timestamp
        return {
            "protocol": "dlms",
            "layers": self.layers,
            "security": None if self.security is None else self.security.to_json(),
            "apdu": None if self.apdu is None else self.apdu.to_json(),
            "date_time": None if self.date_time is None else self.date_time.to_json(),
            "timestamp": None if ts is None else ts.isoformat(),
            "tree": None if self.body is None else to_json(self.body),
            "push": None if self.push is None else self.push.to_json(),
            "records": [] if self.push is None else [v.to_json() for v in self.push.values.values()],
        }


def decode_dlms(data: bytes, keys: Keys | None = None, guard: ReplayGuard | None = None,
                registry: ProfileRegistry | None = None) -> DlmsMessage:
    """Decode one DLMS message; raises only :class:`DecodeError` (and its subclasses)."""
    buf = data if type(data) is bytes else bytes(data)
    if not buf:
        raise TruncatedError("empty input", 0)
    frames: list[Any] = []
    msg = DlmsMessage(frames)
    first = buf[0]
    if first == 0 and len(buf) >= 8 and buf[1] == 1 and (buf[6] << 8 | buf[7]) == len(buf) - 8:
        header, buf = unwrap_udp(buf)  # the DLMS/UDP wrapper (see wrappers.looks_wrapped)
        frames.append(header)
    elif first == FLAG and buf[-1] == FLAG and len(buf) >= 9:
        reassembler = HdlcReassembler()
        info = None
        hdlc = split_hdlc_stream(buf)
        for i, raw in enumerate(hdlc):
            frame = decode_hdlc_frame(raw)
            frames.append(frame)
            info = reassembler.feed(frame)
            if info is not None and i != len(hdlc) - 1:
                raise FramingError("HDLC frames after the last segment", None, f"frame {i + 1}")
        if info is None:
            raise TruncatedError("HDLC segmented message without its last segment", len(buf))
        buf = info
    if buf and buf[0] == 0xE6:
        llc, buf = strip_llc(buf)
        if llc is not None:
            frames.append(_LLC_LAYERS[llc])
    if buf and buf[0] in CIPHERED_TAGS:
        k = keys or _NO_KEYS
        security = msg.security = parse_ciphered(buf)
        buf = unprotect(security, k.encryption_key, k.authentication_key, k.system_title, guard)
        frames.append(security)
    return _decode_plain(buf, msg, registry)


def decode_apdu_values(buf: bytes, registry: ProfileRegistry | None = None) -> DlmsMessage:
    """A plaintext APDU or bare push body, without transport layers (the benchmark's unit of work)."""
    return _decode_plain(buf, DlmsMessage(), registry)


def _push_body(buf: bytes, pos: int, reg: ProfileRegistry) -> tuple[Data, PushValues] | None:
    """The tree and values of the push body filling ``buf[pos:]``: a compiled shape when one matches, else
    the one-pass path (``None`` when neither applies; the caller then takes the general path)."""
    size = len(buf) - pos
    if size >= 2 and buf[pos] == OCTET_STRING and buf[pos + 1] == size - 2 and size < 0x82:
        return (OCTET_STRING, buf[pos + 2:]), PushValues("single")  # one octet string (a ciphered push's body)
    shapes = reg.shapes.get(size)
    if shapes is not None:
        for run in shapes:
            found = run(buf, pos)
            if found is not None:
                return found
    found = one_pass_push(buf, pos, reg)
    if found is not None:
        learn(buf, pos, found[0], found[1], reg)
    return found


def _decode_plain(buf: bytes, msg: DlmsMessage, registry: ProfileRegistry | None) -> DlmsMessage:
    if not buf:
        raise TruncatedError("APDU", 0)
    first = buf[0]
    if first == apdu_mod.DATA_NOTIFICATION:
        header = apdu_mod.data_notification_header(buf)
        reg = registry or default_registry()
        pos = header[3]
        found = _push_body(buf, pos, reg)
        if found is None:
            body, end = decode_data(buf, pos)
            apdu_mod.check_end(buf, end, "data-notification body")
            push = push_values(body, reg)
            learn(buf, pos, body, push, reg)
        else:
            body, push = found
        msg.apdu = apdu_mod.data_notification(header, body)
        msg.body = body
        msg.date_time = header[1]
        msg.push = push
        return msg
    if first in _APDU_TAGS:
        msg.apdu = decode_apdu(buf)
        if isinstance(msg.apdu, EventNotification):
            msg.body = msg.apdu.value
            msg.date_time = msg.apdu.time
            msg.push = PushValues("event", values={msg.apdu.instance: convert(msg.apdu.instance, msg.body)})
        elif isinstance(msg.apdu, apdu_mod.GetResponse) and msg.apdu.results and msg.apdu.results[0].data:
            msg.body = msg.apdu.results[0].data
        return msg
    reg = registry or default_registry()
    found = _push_body(buf, 0, reg)
    if found is not None:
        msg.body, msg.push = found
        msg.frames.append(_BODY_LAYER)
        return msg
    try:
        msg.body = decode_data_exact(buf)
    except DecodeError:
        if first in (0x01, 0x02):
            raise
        raise FramingError("not an xDLMS APDU nor an A-XDR push body", 0,
                           f"first byte {first:#04x}") from None
    msg.frames.append(_BODY_LAYER)
    msg.push = push_values(msg.body, reg)
    learn(buf, 0, msg.body, msg.push, reg)
    return msg
