"""The M-Bus family (`flexmeter agent mbus`): concentrator uplinks of wired RSP_UD frames and wM-Bus telegrams.

Uplink formats (JSON with hex frames, or raw binary) are in :mod:`.uplink` and docs/mbus-agent.md. Each frame
is decoded by the project's decoder (:func:`decode_mbus`, :func:`decode_wmbus` with the meter's AES key from
the registry's secrets), named by the meter's secondary address, and turned into one reading whose keys are
the record object_ids of :mod:`.mappings` (values converted exactly to the units of the model's table).

Two things need state, both bounded and in memory: the duplicate filter (:mod:`.dedup`: the same telegram
heard twice is dropped and counted) and the last-heard times of the silence watchdog (:mod:`.silence`). The
watchdog runs as a periodic task of the agent's :class:`FamilyContext` (:meth:`MbusFamily.start`), and emits
its Anomaly readings through the context into the core's pipeline. A bad frame of an uplink whose other frames
are good is returned as a :class:`Rejected` item (the core dead-letters it alone, with its bytes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any

from flexmeter.config import get_settings
from flexmeter.iot_agents.core.errors import DecodeError
from flexmeter.iot_agents.core.family import (
    DUPLICATES,
    DUPLICATES_HELP,
    Decoded,
    Family,
    FamilyContext,
    FamilyCounter,
    Message,
    Reading,
    Rejected,
    Route,
)
from flexmeter.iot_agents.mbus import decode_mbus, decode_wmbus
from flexmeter.iot_agents.mbus.dedup import DuplicateFilter
from flexmeter.iot_agents.mbus.errors import DecodeError as MbusDecodeError
from flexmeter.iot_agents.mbus.mappings import MEDIUM_CLASSES, entity_type_for, object_id, table_for
from flexmeter.iot_agents.mbus.silence import SilenceEvent, SilenceWatch, silence_values, watched_devices
from flexmeter.iot_agents.mbus.telegram import Telegram, manufacturer_value
from flexmeter.iot_agents.mbus.uplink import UplinkFrame, parse_json_uplink, parse_raw_uplink
from flexmeter.metrics import Registry as MetricsRegistry

log = logging.getLogger(__name__)
Json = dict[str, Any]

MBUS_ROUTES: tuple[Route, ...] = (
    Route("mqtt", "mbus/{apikey}/{gateway}/up"),
    Route("mqtt", "mbus/{apikey}/{gateway}/raw/{kind}"),
    Route("amqp", "mbus/{apikey}/{gateway}/up"),
    Route("http", "/iot/mbus", query={"k": "apikey", "g": "gateway", "kind": "kind"}),
)

KEY_NAMES = ("aes_key", "wmbus_key", "mbus_key", "key")
DETECTOR = "urn:flexmeter:iot-agent:mbus"

# SI unit of the decoder -> (target UN/CEFACT code -> (multiplier, divisor)): exact where the result is
# (a division by 3.6e6 is exact whenever the joules are a whole number of kWh).
_CONVERSIONS: dict[str, dict[str, tuple[int, int]]] = {
    "Wh": {"WHR": (1, 1), "KWH": (1, 1000), "MWH": (1, 1_000_000), "GV": (36, 10_000_000)},
    "J": {"JOU": (1, 1), "KWH": (1, 3_600_000), "MWH": (1, 3_600_000_000), "GV": (1, 1_000_000_000)},
    "W": {"WTT": (1, 1), "KWT": (1, 1000)},
    "J/h": {"WTT": (1, 3600), "KWT": (1, 3_600_000)},
    "m³": {"MTQ": (1, 1), "LTR": (1000, 1)},
    "m³/h": {"MQH": (1, 1), "E32": (1000, 1)},
    "°C": {"CEL": (1, 1)},
    "K": {"KEL": (1, 1)},
}
SI_CODES: dict[str, str] = {"Wh": "WHR", "J": "JOU", "W": "WTT", "m³": "MTQ", "m³/h": "MQH", "°C": "CEL",
                            "K": "KEL", "bar": "BAR", "s": "SEC", "kg": "KGM", "V": "VLT", "A": "AMP",
                            "%": "P1", "Hz": "HTZ", "dBm": "DBM"}
_SKIPPED_FUNCTIONS = {"manufacturer_specific", "more_records_follow"}
_QUALIFIER_SUFFIX = {"accumulation_negative_only": "backward", "accumulation_positive_only": ""}


def secondary_address(tel: Telegram) -> str:
    """ID (8 BCD digits) + manufacturer (4 hex) + version + medium: libmbus's 16-hex-digit secondary address.

    A field the frame does not carry (the EN 1434-3 fixed structure has no manufacturer and version) is
    ``F`` filled, as the wildcard of a selection.
    """
    if tel.id is None:
        raise DecodeError("the frame carries no meter identity (no long header, not a wM-Bus telegram)")
    man = "FFFF" if tel.manufacturer is None else f"{manufacturer_value(tel.manufacturer):04X}"
    version = "FF" if tel.version is None else f"{tel.version:02X}"
    medium = "FF" if tel.medium is None else f"{tel.medium:02X}"
    return f"{tel.id}{man}{version}{medium}"


def _link_address(tel: Telegram) -> str | None:
    if tel.link_id is None or tel.link_manufacturer is None:
        return None
    return (f"{tel.link_id}{manufacturer_value(tel.link_manufacturer):04X}"
            f"{(tel.link_version or 0):02X}{(tel.link_medium or 0):02X}")


def _json_number(value: Decimal) -> int | float:
    if value == value.to_integral_value():
        return int(value)
    return float(value)


_ORION_FORBIDDEN = str.maketrans("", "", "<>\"'=;()")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _json_number(value)
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, str):  # plain-text records: Orion refuses these characters in values
        return value.translate(_ORION_FORBIDDEN)
    return value


def _convert(value: Any, unit: str, target: str | None) -> tuple[Any, str | None] | None:
    """``value`` in ``unit`` -> (value in ``target``, target code); None if it cannot be converted."""
    if not isinstance(value, int | Decimal) or isinstance(value, bool):
        return _plain(value), None
    if target is None:
        return _plain(value), SI_CODES.get(unit)
    factor = _CONVERSIONS.get(unit, {}).get(target)
    if factor is None:
        return None
    try:
        converted = Decimal(value) * factor[0] / factor[1]
    except (InvalidOperation, DivisionByZero):
        return None
    return _json_number(converted.normalize()), target


def _alarm(status: int | None) -> int | None:
    """EN 13757-3 status byte: application error/alarm (bits 0-1 = 2 or 3), power low, permanent/temporary error."""
    if status is None:
        return None
    return 1 if (status & 0x03) >= 2 or status & 0x1C else 0


@dataclass(frozen=True)
class DecodedFrame:
    frame: UplinkFrame
    telegram: Telegram
    device_id: str


class MbusFamily(Family):
    name = "mbus"
    protocol = "mbus"
    routes = MBUS_ROUTES
    default_entity_type = "Device"
    uses_secrets = True

    def __init__(self, *, duplicate_window: float | None = None, check_every: float | None = None) -> None:
        settings = get_settings()
        self.duplicates = DuplicateFilter(duplicate_window if duplicate_window is not None
                                          else settings.mbus_duplicate_window)
        self.silence = SilenceWatch()
        self.check_every = check_every if check_every is not None else settings.mbus_silence_check
        self._dropped = FamilyCounter(MetricsRegistry().counter(DUPLICATES, DUPLICATES_HELP), self.name)
        self._context: FamilyContext | None = None

    # -- the seam -----------------------------------------------------------------------------------------
    def default_attributes(self, model: str | None) -> list[Json]:
        return table_for(model)

    def entity_type(self, model: str | None) -> str:
        return entity_type_for(model)

    def decode(self, message: Message) -> list[Decoded]:
        frames = self._frames(message)
        lookup = message.secrets or (lambda _device_id: {})
        decoded: list[DecodedFrame] = []
        failed: list[tuple[int, UplinkFrame, DecodeError]] = []
        for index, frame in enumerate(frames):
            try:
                decoded.append(self._decode_frame(frame, index, len(frames), lookup))
            except DecodeError as exc:
                failed.append((index, frame, exc))
        if failed and not decoded:  # the whole message goes to the dead letters (the core's path)
            if len(failed) == 1:
                raise failed[0][2]
            others = ", ".join(str(index + 1) for index, _, _ in failed[1:])
            raise DecodeError(f"{failed[0][2].message} (and frame(s) {others} of {len(frames)} are bad too)")
        # The good frames go on; each bad one is a dead letter of its own (the core's per-item path). Frames
        # are marked as seen only now: a message that goes to the dead letters whole must not have marked
        # its frames (a replay of the dead letter would be dropped as a duplicate).
        readings: list[Decoded] = [
            Rejected.of(error, frame.data, frame=index, kind=frame.kind, concentrator=frame.concentrator)
            for index, frame, error in failed]
        for item in decoded:
            at = item.frame.received.timestamp() if item.frame.received else time.time()
            meter_time = self._meter_time(item.telegram)
            key = (item.device_id, item.telegram.access_number,
                   meter_time.isoformat() if meter_time is not None else None)
            if self.duplicates.seen(key, at):
                self._dropped.inc()
                log.debug("duplicate telegram dropped: meter %s access %s", item.device_id,
                          item.telegram.access_number)
                continue
            readings.append(self._reading(item, meter_time))
            if self.silence.heard(item.device_id, at):
                readings.append(self._resolved(item.device_id, message.apikey, at))
        return readings

    # -- frames -------------------------------------------------------------------------------------------
    def _frames(self, message: Message) -> list[UplinkFrame]:
        gateway = message.params.get("gateway")
        kind = message.params.get("kind")
        content_type = (message.content_type or "").split(";")[0].strip().lower()
        if kind is not None or content_type == "application/octet-stream":
            return parse_raw_uplink(message.payload, kind, gateway)
        if message.payload[:1] in (b"{", b"[") or content_type == "application/json":
            return parse_json_uplink(message.payload, gateway)
        text = message.payload.strip()
        try:  # a bare hex string
            data = bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return parse_raw_uplink(message.payload, None, gateway)
        return parse_raw_uplink(data, None, gateway)

    def _decode_frame(self, frame: UplinkFrame, index: int, count: int,
                      secrets: Callable[[str], Mapping[str, str]]) -> DecodedFrame:
        where = f"frame {index + 1} of {count} ({frame.kind}, {frame.data[:12].hex().upper()}...)"
        try:
            tel = decode_mbus(frame.data) if frame.kind == "mbus" else decode_wmbus(frame.data)
            if tel.encrypted:
                device_id = secondary_address(tel)
                key = self._key(secrets, device_id, _link_address(tel))
                if key is None:
                    scheme = "ELL AES-CTR" if tel.ell is not None else f"security mode {tel.security_mode}"
                    raise DecodeError(f"{where}: meter {device_id} sends encrypted data ({scheme}) and no AES key "
                                      f"is provisioned for it (internal_attributes aes_key)")
                tel = decode_mbus(frame.data, key=key) if frame.kind == "mbus" else decode_wmbus(frame.data, key=key)
        except MbusDecodeError as exc:
            raise DecodeError(f"{where}: {type(exc).__name__} at byte {exc.offset} ({exc.rule}): {exc}") from exc
        if tel.ci is None:
            raise DecodeError(f"{where}: not a data frame (an ACK or a short/control frame carries no readings)")
        if tel.application_error is not None and not tel.records:
            raise DecodeError(f"{where}: the meter at primary address {tel.address} reports application error "
                              f"{tel.application_error} ({tel.header().get('application_error_name')})")
        if not tel.records and tel.access_number is None:
            raise DecodeError(f"{where}: CI {tel.ci:02X} (manufacturer-specific or no data): no standard records")
        if tel.id is None and tel.kind == "mbus" and tel.address is not None and frame.concentrator:
            # a wired meter without a long header is known only by its primary address on that bus
            return DecodedFrame(frame, tel, f"{frame.concentrator}-p{tel.address}")
        return DecodedFrame(frame, tel, secondary_address(tel))

    @staticmethod
    def _key(secrets: Callable[[str], Mapping[str, str]], *device_ids: str | None) -> bytes | None:
        for device_id in device_ids:
            if not device_id:
                continue
            found = secrets(device_id)
            for name in KEY_NAMES:
                value = found.get(name)
                if value:
                    try:
                        key = bytes.fromhex(str(value).replace(" ", ""))
                    except ValueError:
                        raise DecodeError(f"the AES key provisioned for meter {device_id} is not hex") from None
                    if len(key) != 16:
                        raise DecodeError(f"the AES key provisioned for meter {device_id} is not 16 bytes")
                    return key
        return None

    @staticmethod
    def _meter_time(tel: Telegram) -> datetime | None:
        for record in tel.records:
            if (record.quantity == "datetime" and record.storage == 0 and record.tariff == 0
                    and record.subunit == 0 and isinstance(record.value, datetime)
                    and "date_invalid" not in record.flags):
                return record.value
        return None

    @staticmethod
    def model_of(tel: Telegram) -> str:
        cls = MEDIUM_CLASSES.get(tel.medium if tel.medium is not None else -1, "generic")
        if tel.manufacturer is None:
            return cls
        return f"{cls}:{tel.manufacturer}" if tel.version is None else f"{cls}:{tel.manufacturer}:{tel.version}"

    def _reading(self, item: DecodedFrame, meter_time: datetime | None) -> Reading:
        tel = item.telegram
        model = self.model_of(tel)
        targets: dict[str, str | None] = {}
        for entry in table_for(model):
            if entry.get("object_id"):
                code = (entry.get("metadata") or {}).get("unitCode", {}).get("value")
                targets.setdefault(str(entry["object_id"]), code)
        values: Json = {}
        units: dict[str, str] = {}
        for record in tel.records:
            quantity = record.quantity
            if not quantity or record.function in _SKIPPED_FUNCTIONS or "record_error" in record.flags:
                continue
            if quantity == "datetime" and record.storage == 0 and meter_time is not None:
                continue  # the observation time itself
            key = object_id(quantity, record.function, record.storage, record.tariff, record.subunit)
            for qualifier in record.qualifiers:
                suffix = _QUALIFIER_SUFFIX.get(qualifier, qualifier)
                if suffix:
                    key += "." + suffix
            converted = _convert(record.value, record.unit, targets.get(key))
            if converted is None:  # a unit the table cannot take: keep it, under a name saying the unit
                key = f"{key}.{SI_CODES.get(record.unit, record.unit)}"
                converted = _convert(record.value, record.unit, None)
                assert converted is not None
            if key in values:
                continue  # first record of a kind wins
            values[key] = converted[0]
            if converted[1]:
                units[key] = converted[1]
        values["meterStatus"] = tel.status
        values["accessNumber"] = tel.access_number
        alarm = _alarm(tel.status)
        if alarm is not None:
            values["alarm"] = alarm
        if item.frame.rssi is not None:
            values["rssi"] = item.frame.rssi
        if item.frame.concentrator:
            values["concentrator"] = item.frame.concentrator
        observed: datetime | None = meter_time if meter_time is not None else item.frame.received
        return Reading(item.device_id, {k: v for k, v in values.items() if v is not None}, observed_at=observed,
                       units=units, model=model, raw=item.frame.data.hex().upper())

    # -- silence --------------------------------------------------------------------------------------------
    @staticmethod
    def _event_reading(event: SilenceEvent) -> Reading:
        """The reading the family's table maps to the ``Anomaly:<id>:silence`` entity."""
        return Reading(event.device_id, silence_values(event.as_dict(), DETECTOR), observed_at=event.detected,
                       apikey=event.apikey)

    def _resolved(self, device_id: str, apikey: str | None, at: float) -> Reading:
        return self._event_reading(SilenceEvent(device_id, apikey, at, 0, 0, at, resolved=True))

    def check_silence(self, devices: Iterable[tuple[Json, Json | None]], now: float | None = None) -> list[Reading]:
        """The Anomaly readings due now (one per meter that just went silent)."""
        events = self.silence.due(watched_devices(devices, self.protocol), time.time() if now is None else now)
        return [self._event_reading(e) for e in events]

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self, context: FamilyContext) -> None:
        """Count duplicates in the agent's ``/metrics`` and run the silence watchdog (a periodic task of the
        context, stopped by the agent) until :meth:`stop`."""
        counted = self._dropped.get()
        self._dropped = context.counter(DUPLICATES, DUPLICATES_HELP)
        if counted:
            self._dropped.inc(counted)
        self._context = context
        self.silence.started = context.now()
        context.every(self.check_every, self._check, name="mbus-silence")

    def stop(self) -> None:
        self._context = None

    def _check(self) -> None:
        context = self._context
        if context is None:
            return
        for reading in self.check_silence(context.devices(self.protocol), context.now()):
            context.emit([reading])

    @property
    def duplicates_dropped(self) -> int:
        return int(self._dropped.get())
