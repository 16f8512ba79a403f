"""The DLMS family (`flexmeter agent dlms`): concentrator pushes and IEC 62056-21 readouts -> readings.

One uplink format on every transport: the body is one DLMS message (raw binary, or its hex text: a
DATA-NOTIFICATION, a general-glo-ciphered push, optionally DLMS/UDP- or HDLC-wrapped), several of them as
hex lines, or an IEC 62056-21 readout (mode C or P1). Keys come from the registry's per-device secrets;
a replay guard rejects replayed invocation counters per (tenant, system title), its counters written in the
outbox transaction of the readings they guarded (counters.py), so neither a restart nor a crash reopens old
pushes or turns a redelivered one into a replay. Each push is its own reading with the meter's own time
(1 Hz stays 1 Hz). See docs/dlms-agent.md.
"""

from __future__ import annotations

import binascii
import logging
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
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
from flexmeter.iot_agents.dlms import errors as dlms_errors
from flexmeter.iot_agents.dlms.counters import LEGACY_FILE, InvocationCounters, read_legacy
from flexmeter.iot_agents.dlms.decoder import DlmsMessage, Keys, decode_dlms
from flexmeter.iot_agents.dlms.iec62056_21 import Readout, decode_readout
from flexmeter.iot_agents.dlms.mappings import (
    ENTITY_TYPES,
    KNOWN_KEYS,
    L2_L3_QUANTITIES,
    MEASURE_CODES,
    SINGLE_PHASE,
    SUBSTATION,
    TABLES,
    THREE_PHASE,
    UNIT_CODES,
)
from flexmeter.iot_agents.dlms.obis import obis_cde
from flexmeter.iot_agents.dlms.push import json_value
from flexmeter.iot_agents.dlms.security import (
    CIPHERED_TAGS,
    SC_AUTHENTICATION,
    CipheredApdu,
    ReplayGuard,
    parse_ciphered,
)
from flexmeter.iot_agents.dlms.wrappers import (
    FLAG,
    HdlcReassembler,
    decode_hdlc_frame,
    split_hdlc_stream,
    strip_llc,
    unwrap_udp,
)
from flexmeter.metrics import Registry as MetricsRegistry

Json = dict[str, Any]
log = logging.getLogger(__name__)

UDP_ROUTE = Route("udp", "dlms/udp")
"""The route of the messages of the DLMS/UDP listener (dlms/udp.py). The core has no UDP server: the family's
``start`` hook runs the listener, which submits each datagram through the agent's context; being one of the
family's ``routes`` makes a datagram durable in the inbox like an MQTT message."""
DLMS_ROUTES: tuple[Route, ...] = (
    Route("mqtt", "dlms/{apikey}/{gateway}/push"),
    Route("mqtt", "dlms/{apikey}/{gateway}/push/{meter}"),
    Route("amqp", "dlms/{apikey}/{gateway}/push"),
    Route("amqp", "dlms/{apikey}/{gateway}/push/{meter}"),
    Route("http", "/iot/dlms", "measure", {"k": "apikey", "g": "gateway", "i": "meter"}),
    UDP_ROUTE,
)

ENCRYPTION_KEY_NAMES = ("dlms_guek", "guek", "dlms_ek", "encryption_key", "dlms_encryption_key")
AUTHENTICATION_KEY_NAMES = ("dlms_gak", "gak", "dlms_ak", "authentication_key", "dlms_authentication_key")
SYSTEM_TITLE_NAMES = ("dlms_system_title", "system_title")
IDENTITY_OBIS = ("0-0:42.0.0.255", "0-0:96.1.0.255", "0-0:96.1.1.255", "x-x:96.1.0.255", "x-x:96.1.1.255",
                 "x-x:C.1.0.255", "x-x:0.0.0.255", "1-0:0.0.0.255", "0-0:96.1.7.255")
"""Where a meter names itself when the topic does not: the COSEM logical device name first, then the
meter serial / equipment identifier (DSMR 0-0:96.1.1), the IEC 62056-21 ``C.1.0`` and ``0.0.0``."""

_HEX = re.compile(rb"^[0-9A-Fa-f\s]+$")


class ReplayedFrame(DecodeError):
    """A ciphered push whose invocation counter is not above the last one accepted for its system title."""

    name, status = "REPLAYED_FRAME", 409


class SecurityFailure(DecodeError):
    """Wrong key, tampered frame, missing key or unsupported security: the push cannot be trusted."""

    name, status = "DLMS_SECURITY_ERROR", 400


def _decode_error(exc: dlms_errors.DecodeError, where: str) -> DecodeError:
    detail = exc.to_dict()
    text = f"{where}{detail.get('error')}: {detail.get('rule')} (offset {detail.get('offset')}" + (
        f", {detail['detail']})" if detail.get("detail") else ")")
    if isinstance(exc, dlms_errors.ReplayError):
        return ReplayedFrame(text)
    if isinstance(exc, dlms_errors.SecurityError):
        return SecurityFailure(text)
    return DecodeError(text)


# -- payload forms ----------------------------------------------------------------------------------------
def is_readout(data: bytes) -> bool:
    return data.lstrip(b"\r\n\x00 \t").startswith(b"/")


def split_payload(data: bytes) -> list[bytes]:
    """The DLMS messages of a body: raw binary (one), or hex text (one per non-empty line)."""
    if not data.strip():
        raise DecodeError("empty payload")
    if _HEX.match(data):
        frames = []
        for number, line in enumerate(data.splitlines(), start=1):
            compact = b"".join(line.split())
            if not compact:
                continue
            try:
                frames.append(binascii.unhexlify(compact))
            except binascii.Error:
                raise DecodeError(f"line {number}: odd number of hex digits ({len(compact)})") from None
        return frames
    return [data]


def peek_security(data: bytes) -> CipheredApdu | None:
    """The ciphered APDU header under the transport wrappers (to find the keys before decrypting)."""
    buf = data
    if len(buf) >= 9 and buf[0] == FLAG and buf[-1] == FLAG:
        reassembler = HdlcReassembler()
        info = None
        for raw in split_hdlc_stream(buf):
            info = reassembler.feed(decode_hdlc_frame(raw))
        if info is None:
            return None
        buf = info
    elif len(buf) >= 8 and buf[0] == 0 and buf[1] == 1 and (buf[6] << 8 | buf[7]) == len(buf) - 8:
        _, buf = unwrap_udp(buf)
    _, buf = strip_llc(buf)
    if buf and buf[0] in CIPHERED_TAGS:
        return parse_ciphered(buf)
    return None


# -- values -----------------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)  # a fleet pushes the same few dozen OBIS codes
def object_id(obis: str) -> str:
    """``C.D.E`` for the current value of an electricity (or unspecified, ``x-x``) quantity on the main
    channel (B 0 or 1); the full ``A-B:C.D.E.F`` code for anything else (abstract objects, M-Bus channels,
    billing periods)."""
    head, _, groups = obis.partition(":")
    a, _, b = head.partition("-")
    if groups.endswith(".255") and (a, b) in (("1", "0"), ("1", "1"), ("x", "x")):
        return obis_cde(obis)
    return obis


def _number(value: Any) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return None


def normalise(key: str, value: Decimal, unit: str | None) -> tuple[Decimal, str | None]:
    """The value in the unit of the mapping tables (kWh, kvarh, kVAh, W, var, VA, V, A, Hz)."""
    if not unit:
        return value, None
    code, factor = _unit_conversion(unit)
    return (value if factor is None else value * factor), code


@lru_cache(maxsize=256)
def _unit_conversion(unit: str) -> tuple[str | None, Decimal | None]:
    """(UN/CEFACT code, factor to the tables' unit, None when kept as is) of a meter's unit text."""
    key = unit.strip().lower()
    found = UNIT_CODES.get(key)
    if found is None:
        return MEASURE_CODES.get(key), None
    return found[0], found[1]


def _plain(value: Decimal) -> int | float | str:
    """An exact JSON number (int, or a float whose shortest repr is the same decimal; else the text)."""
    out: int | float | str = json_value(value)
    return out


def _derive(values: dict[str, Decimal]) -> None:
    for total in ("1.8", "2.8", "3.8", "4.8"):
        if f"{total}.0" in values:
            continue
        tariffs = [v for k, v in values.items() if k.startswith(total + ".") and k != total + ".0"
                   and k.rsplit(".", 1)[1] in "123456789"]
        if tariffs:
            values[f"{total}.0"] = sum(tariffs, Decimal(0))  # DSMR P1 sends only the tariff registers
    if "16.7.0" not in values and "1.7.0" in values:
        values["16.7.0"] = values["1.7.0"] - values.get("2.7.0", Decimal(0))
    if "3-4.7.0" not in values and "3.7.0" in values:
        values["3-4.7.0"] = values["3.7.0"] - values.get("4.7.0", Decimal(0))


def measures(pairs: list[tuple[str, Any, str | None]]) -> tuple[dict[str, Any], dict[str, str]]:
    """(obis, value, unit) triples -> the reading's values (known quantities, normalised) and unitCodes."""
    numbers: dict[str, Decimal] = {}
    units: dict[str, str] = {}
    for obis, raw, unit in pairs:
        number = _number(raw)
        if number is None:
            continue
        key = object_id(obis)
        value, code = normalise(key, number, unit)
        numbers.setdefault(key, value)
        if code:
            units.setdefault(key, code)
    _derive(numbers)
    units.setdefault("16.7.0", units.get("1.7.0", "WTT"))
    units.setdefault("3-4.7.0", units.get("3.7.0", "D44"))
    values = {k: _plain(v) for k, v in numbers.items() if k in KNOWN_KEYS}
    return values, {k: u for k, u in units.items() if k in values}


def readout_measures(readout: Readout) -> tuple[dict[str, Any], dict[str, str]]:
    """A readout's numbers keyed like the Connode tables (``1.7.0``, ``32.7.0``, ``C.7.1``), in the
    meter's own units, with their UN/CEFACT codes (``kW`` -> KWT): what the Connode Echelon table maps."""
    values: dict[str, Any] = {}
    units: dict[str, str] = {}
    for ds in readout.datasets:
        number = _number(ds.value)
        if ds.obis is None or number is None:
            continue
        key = object_id(ds.obis)
        values.setdefault(key, _plain(number))
        code = MEASURE_CODES.get((ds.unit or "").strip().lower())
        if code:
            units.setdefault(key, code)
    return values, units


def default_model(values: Mapping[str, Any]) -> str:
    return SUBSTATION if any(k in L2_L3_QUANTITIES for k in values) else SINGLE_PHASE


def _identity(values: Mapping[str, Any], system_title: bytes | None) -> str | None:
    if system_title is not None:
        return system_title.hex().upper()
    for obis in IDENTITY_OBIS:
        found = values.get(obis)
        if isinstance(found, str) and found.strip():
            return found.strip()
    return None


def _scope(guard: ReplayGuard, title: bytes) -> tuple[str, bytes]:
    """(tenant, system title): the guard's tenant ("" for an apikey no tenant has), as the counters are keyed."""
    return str(getattr(guard, "tenant", "")), bytes(title)


def _hex_secret(secrets: Mapping[str, str], names: tuple[str, ...], what: str) -> bytes | None:
    for name in names:
        value = secrets.get(name)
        if value:
            try:
                return bytes.fromhex(value.replace(" ", ""))
            except ValueError:
                raise SecurityFailure(f"the provisioned {what} ({name}) is not hex") from None
    return None


class DlmsFamily(Family):
    name = "dlms"
    protocol = "dlms"
    routes = DLMS_ROUTES
    default_entity_type = "ACMeasurement"
    uses_secrets = True

    def __init__(self) -> None:
        self.counters = InvocationCounters()
        self._tenant_of: Callable[[str], str | None] | None = None
        self._unattributed: dict[str, ReplayGuard] = {}
        self._lock = threading.Lock()
        self._udp: Any = None
        self._last_push: dict[tuple[str, bytes], tuple[int, bytes]] = {}
        """(tenant, system title) -> (invocation counter, bytes) of its last push accepted by this process (the
        frame itself is kept: a reference costs nothing on the decode path, a hash would)"""
        self._duplicates = FamilyCounter(MetricsRegistry().counter(DUPLICATES, DUPLICATES_HELP), self.name)

    def guard(self, apikey: str | None) -> ReplayGuard:
        """The replay guard of the tenant of the apikey's service group: a meter keeps its counters when it
        moves to another group of its utility (system titles are unique per utility, not worldwide). An
        apikey of no known tenant (no group has it, or no agent around the family) gets a guard of its own,
        in memory only: its messages are dead letters anyway (``DEVICE_GROUP_NOT_FOUND``)."""
        tenant = self._tenant_of(apikey) if apikey and self._tenant_of is not None else None
        if tenant is not None:
            return self.counters.guard(tenant)
        with self._lock:
            found = self._unattributed.get(apikey or "")
            if found is None:
                found = self._unattributed[apikey or ""] = ReplayGuard()
            return found

    def use_outbox(self, join: Callable[[InvocationCounters], None], tenant_of: Callable[[str], str | None],
                   legacy_dir: Path | None = None) -> None:
        """Keep the counters in an outbox (``join`` = ``Outbox.join`` or ``FamilyContext.join_outbox``), by
        the tenant ``tenant_of(apikey)`` names; first migrate an earlier version's ``dlms-counters.db`` in
        ``legacy_dir`` (renamed ``.migrated`` once its counters are in the outbox)."""
        self._tenant_of = tenant_of
        legacy = legacy_dir / LEGACY_FILE if legacy_dir is not None else None
        found: list[tuple[tuple[str, bytes], int]] = []
        orphans = 0
        if legacy is not None and legacy.exists():
            found, orphans = read_legacy(legacy, tenant_of)
            self.counters.merge(found)
        else:
            legacy = None
        join(self.counters)
        if legacy is not None:
            done = legacy.with_name(LEGACY_FILE + ".migrated")
            legacy.replace(done)
            log.info("DLMS invocation counters of %s migrated into the outbox (%d; file kept as %s)", legacy,
                     len(found), done.name)
            if orphans:
                log.warning("%d DLMS invocation counter(s) in %s belong to apikeys no service group has: not "
                            "migrated (the file keeps them)", orphans, done)

    def default_attributes(self, model: str | None) -> list[Json]:
        return TABLES.get((model or "").upper(), [])

    def entity_type(self, model: str | None) -> str:
        return ENTITY_TYPES.get((model or "").upper(), self.default_entity_type)

    def decode(self, message: Message) -> list[Decoded]:
        data = message.payload
        meter = message.params.get("meter") or message.params.get("device_id")
        if is_readout(data):
            return [self._readout(data, meter)]
        frames = split_payload(data)
        lookup = message.secrets or (lambda _device_id: {})
        guard = self.guard(message.apikey)  # its counters become durable with the readings' outbox commit
        if len(frames) == 1:
            reading = self._push(frames[0], meter, guard, lookup, "")
            return [reading] if reading is not None else []
        out: list[Decoded] = []  # hex lines: a bad push is dead-lettered alone, the others go on
        for i, frame in enumerate(frames):
            try:
                reading = self._push(frame, meter, guard, lookup, f"push {i + 1} of {len(frames)}: ")
            except DecodeError as exc:
                out.append(Rejected.of(exc, frame.hex().upper(), push=i))
                continue
            if reading is not None:
                out.append(reading)
        return out

    def _readout(self, data: bytes, meter: str | None) -> Reading:
        try:
            readout = decode_readout(data)
        except dlms_errors.DecodeError as exc:
            raise _decode_error(exc, "IEC 62056-21 readout: ") from exc
        by_obis = {ds.obis: ds.value for ds in readout.datasets if ds.obis is not None}
        device_id = meter or _identity(by_obis, None)
        if not device_id:
            raise DecodeError("IEC 62056-21 readout names no meter (no 96.1.x, C.1.0 or 0.0.0 line) and the "
                              "route gives none")
        values, units = measures([(ds.obis, ds.value, ds.unit) for ds in readout.datasets if ds.obis])
        if not values:
            raise DecodeError(f"IEC 62056-21 readout of {device_id}: no known quantity")
        stamps = [ds.timestamp for ds in readout.datasets
                  if ds.timestamp is not None and ds.obis is not None and ds.obis.endswith(":1.0.0.255")]
        observed: datetime | None = stamps[0] if stamps else None
        model = default_model(values)
        if readout.kind == "p1":  # P1 ports are households': a 3-phase one is no substation
            model = THREE_PHASE if model == SUBSTATION else SINGLE_PHASE
        return Reading(device_id, values, observed_at=observed, units=units, model=model,
                       raw=data.decode("latin-1"))

    def _push(self, frame: bytes, meter: str | None, guard: ReplayGuard,
              lookup: Callable[[str], Mapping[str, str]], where: str) -> Reading | None:
        """The push's reading; None for a copy of the system title's last accepted push (dropped, counted)."""
        try:
            header = peek_security(frame)
        except dlms_errors.DecodeError as exc:
            raise _decode_error(exc, where) from exc
        keys = None
        title = header.system_title if header is not None else None
        if header is not None and header.security_control & 0x30:
            keys = self._keys(header, meter, lookup, where)
            title = title or keys.system_title
        counter = header.invocation_counter if header is not None else None
        try:
            decoded: DlmsMessage = decode_dlms(frame, keys, guard)
        except dlms_errors.ReplayError as exc:
            if title is not None and counter is not None and \
                    self._last_push.get(_scope(guard, title)) == (counter, frame):
                # the same bytes as the last push accepted: a redelivery (MQTT QoS 1 after a lost PUBACK, a
                # concentrator's retry), not an attack: its reading is already in; a replay of an older push,
                # or other bytes under the same counter, stays a REPLAYED_FRAME dead letter
                self._duplicates.inc()
                log.debug("DLMS push of %s delivered again (counter %d): dropped", bytes(title).hex(), counter)
                return None
            raise _decode_error(exc, where) from exc
        except dlms_errors.DecodeError as exc:
            raise _decode_error(exc, where) from exc
        if title is not None and counter is not None and decoded.security is not None \
                and decoded.security.security_control & SC_AUTHENTICATION:  # the guard accepted its counter
            self._last_push[_scope(guard, title)] = (counter, bytes(frame))
        raw_values = {obis: v.value for obis, v in decoded.values.items()}
        device_id = meter or _identity(raw_values, title)
        if not device_id:
            raise DecodeError(f"{where}a plain push without a logical device name (0-0:42.0.0.255) or meter "
                              "id (0-0:96.1.0.255): name the meter in the topic (.../push/<meter>) or query (i=)")
        values, units = measures([(v.obis, v.value, v.unit) for v in decoded.values.values()])
        if not values:
            raise DecodeError(f"{where}push of {device_id}: no known quantity "
                              f"({', '.join(sorted(decoded.values)) or 'no values'})")
        return Reading(device_id, values, observed_at=decoded.timestamp, units=units, model=default_model(values),
                       raw=frame.hex().upper())

    @staticmethod
    def _keys(header: CipheredApdu, meter: str | None, lookup: Callable[[str], Mapping[str, str]],
              where: str) -> Keys:
        title = header.system_title
        candidates = [c for c in (meter, title.hex().upper() if title else None,
                                  title.hex() if title else None) if c]
        secrets: Mapping[str, str] = {}
        for candidate in candidates:
            secrets = lookup(candidate)
            if secrets:
                break
        if not secrets:
            raise SecurityFailure(f"{where}no DLMS keys provisioned for meter "
                                  f"{' / '.join(dict.fromkeys(candidates)) or '(no system title)'}")
        ek = _hex_secret(secrets, ENCRYPTION_KEY_NAMES, "encryption key")
        ak = _hex_secret(secrets, AUTHENTICATION_KEY_NAMES, "authentication key")
        provisioned_title = _hex_secret(secrets, SYSTEM_TITLE_NAMES, "system title")
        if title is None:
            title = provisioned_title
            if title is None and meter and re.fullmatch(r"[0-9A-Fa-f]{16}", meter):
                title = bytes.fromhex(meter)
        if ek is None:
            raise SecurityFailure(f"{where}no encryption key (dlms_guek) provisioned for the meter")
        return Keys(ek, ak if ak is not None else ek, title)

    # -- lifecycle: the invocation counters' store, and the DLMS/UDP listener when FLEXMETER_DLMS_UDP_PORT is set
    def start(self, context: FamilyContext) -> None:
        from flexmeter.iot_agents.dlms.udp import listener_from_env

        def tenant_of(apikey: str) -> str | None:
            found = context.tenant(apikey)
            return found[0] if found is not None else None

        counted = self._duplicates.get()
        self._duplicates = context.counter(DUPLICATES, DUPLICATES_HELP)
        if counted:
            self._duplicates.inc(counted)
        self.use_outbox(context.join_outbox, tenant_of, state_directory(context))
        self._udp = listener_from_env(self, lambda _family, message: context.submit(message))
        if self._udp is not None:
            self._udp.start()

    @property
    def duplicates_dropped(self) -> int:
        return int(self._duplicates.get())

    def stop(self) -> None:
        if self._udp is not None:
            self._udp.stop()
            self._udp = None
        # the counters stay joined to the outbox: what the pipeline still commits carries its counters


def state_directory(context: FamilyContext) -> Path | None:
    """Where an earlier version kept the invocation counters (``dlms-counters.db``, migrated into the outbox
    at start): ``FLEXMETER_DLMS_STATE_DIR``, else the agent's data directory (``FamilyContext.data_dir``)."""
    explicit = get_settings().dlms_state_dir
    if explicit is not None:
        return explicit
    return Path(context.data_dir) if context.data_dir is not None else None
