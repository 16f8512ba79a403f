"""The concentrator uplink format (docs/mbus-agent.md): what gateways send to the M-Bus agent, parsed and built.

Two forms, both pure here:

* JSON (``application/json``): ``{"concentrator": "c1", "received": "2026-11-27T10:00:00Z",
  "frames": [{"hex": "68...16", "kind": "mbus", "rssi": -71, "received": "..."}, ...]}``. A frame may
  also be a bare hex string, or carry ``"b64"`` instead of ``"hex"``; ``kind`` defaults to ``mbus`` for
  frames starting with ``68``/``E5``/``10`` and ``wmbus`` otherwise; a frame's ``received`` overrides
  the message's.
* raw binary (``application/octet-stream``, or the ``.../raw/<kind>`` topic): the frame bytes as
  received. Wired frames are self-delimiting, so several concatenated RSP_UD frames are split; a
  wireless payload is one telegram.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from flexmeter.iot_agents.core.errors import DecodeError

Kind = Literal["mbus", "wmbus"]
KINDS: tuple[str, ...] = ("mbus", "wmbus")


@dataclass(frozen=True)
class UplinkFrame:
    """One frame as the concentrator heard it."""

    kind: Kind
    data: bytes
    received: datetime | None = None
    rssi: int | float | None = None
    concentrator: str | None = None


def _parse_time(value: Any, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise DecodeError(f"{where}: 'received' must be an ISO 8601 time or epoch seconds, not {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    if not isinstance(value, str):
        raise DecodeError(f"{where}: 'received' must be an ISO 8601 time or epoch seconds, not {value!r}")
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise DecodeError(f"{where}: 'received' {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise DecodeError(f"{where}: 'received' {value!r} has no UTC offset (a concentrator's clock is absolute)")
    return parsed.astimezone(UTC)


def _guess_kind(data: bytes) -> Kind:
    return "mbus" if data[:1] in (b"\x68", b"\xe5", b"\x10") else "wmbus"


def _frame_bytes(entry: Any, where: str) -> bytes:
    if isinstance(entry, str):
        text, encoding = entry, "hex"
    elif isinstance(entry, dict) and isinstance(entry.get("hex"), str):
        text, encoding = entry["hex"], "hex"
    elif isinstance(entry, dict) and isinstance(entry.get("b64"), str):
        text, encoding = entry["b64"], "b64"
    else:
        raise DecodeError(f"{where}: a frame is a hex string or an object with 'hex' (or 'b64')")
    try:
        data = bytes.fromhex("".join(text.split())) if encoding == "hex" else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise DecodeError(f"{where}: not valid {encoding}: {exc}") from None
    if not data:
        raise DecodeError(f"{where}: empty frame")
    return data


def parse_json_uplink(payload: bytes, gateway: str | None = None) -> list[UplinkFrame]:
    """The JSON form -> frames (raises DecodeError naming the field)."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"uplink is not JSON: {exc}") from None
    if isinstance(doc, list):
        doc = {"frames": doc}
    if not isinstance(doc, dict):
        raise DecodeError(f"uplink must be a JSON object, not {type(doc).__name__}")
    frames = doc.get("frames")
    if frames is None and ("hex" in doc or "b64" in doc):
        frames = [doc]
    if not isinstance(frames, list) or not frames:
        raise DecodeError("uplink: 'frames' must be a non-empty array")
    concentrator = doc.get("concentrator", gateway)
    received = _parse_time(doc.get("received"), "uplink")
    out: list[UplinkFrame] = []
    for index, entry in enumerate(frames):
        where = f"frames[{index}]"
        data = _frame_bytes(entry, where)
        kind: Any = entry.get("kind") if isinstance(entry, dict) else None
        if kind is None:
            kind = _guess_kind(data)
        if kind not in KINDS:
            raise DecodeError(f"{where}: kind must be 'mbus' or 'wmbus', not {kind!r}")
        rssi = entry.get("rssi") if isinstance(entry, dict) else None
        if rssi is not None and (isinstance(rssi, bool) or not isinstance(rssi, int | float)):
            raise DecodeError(f"{where}: rssi must be a number (dBm)")
        at = _parse_time(entry.get("received"), where) if isinstance(entry, dict) else None
        out.append(UplinkFrame(kind, data, at or received, rssi,
                               str(concentrator) if concentrator is not None else None))
    return out


def split_wired(data: bytes) -> list[bytes]:
    """Concatenated wired frames (long ``68 L L 68 ... 16``, short ``10 .. 16``, ACK ``E5``) -> frames.

    Only the framing is used here; a broken frame is returned as the rest of the buffer so that the
    decoder reports what is wrong with it.
    """
    frames: list[bytes] = []
    pos = 0
    while pos < len(data):
        start = data[pos]
        if start == 0x68 and pos + 3 < len(data) and data[pos + 1] == data[pos + 2] and data[pos + 3] == 0x68:
            end = pos + data[pos + 1] + 6
        elif start == 0x10:
            end = pos + 5
        elif start == 0xE5:
            end = pos + 1
        else:
            end = len(data)
        if end > len(data):
            end = len(data)
        frames.append(data[pos:end])
        pos = end
    return frames


def parse_raw_uplink(payload: bytes, kind: str | None, gateway: str | None = None) -> list[UplinkFrame]:
    if not payload:
        raise DecodeError("empty raw uplink")
    chosen: Any = kind or _guess_kind(payload)
    if chosen not in KINDS:
        raise DecodeError(f"raw uplink kind must be 'mbus' or 'wmbus', not {chosen!r}")
    parts = split_wired(payload) if chosen == "mbus" else [payload]
    return [UplinkFrame(chosen, part, None, None, gateway) for part in parts]


def build_json_uplink(frames: Sequence[UplinkFrame], concentrator: str, received: datetime | None = None) -> bytes:
    """The JSON form, as the bus master publishes it (each frame keeps its own receive time)."""
    body: dict[str, Any] = {"concentrator": concentrator}
    if received is not None:
        body["received"] = received.astimezone(UTC).isoformat().replace("+00:00", "Z")
    items: list[dict[str, Any]] = []
    for frame in frames:
        item: dict[str, Any] = {"hex": frame.data.hex().upper(), "kind": frame.kind}
        if frame.rssi is not None:
            item["rssi"] = frame.rssi
        if frame.received is not None:
            item["received"] = frame.received.astimezone(UTC).isoformat().replace("+00:00", "Z")
        items.append(item)
    body["frames"] = items
    return json.dumps(body, separators=(",", ":")).encode()
