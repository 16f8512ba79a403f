"""Values by OBIS code from a push body (the A-XDR element of a DATA-NOTIFICATION or a register read).

Every number becomes an exact ``Decimal`` = raw x 10^scaler with the unit symbol of the COSEM unit code
(after the scaler: a raw 75 with scaler -1 and unit 33 is ``Decimal('7.5')`` A). Octet strings become text
when they are printable ASCII (meter ids, list versions), a date-time when they hold a 12-byte COSEM
date-time under a clock OBIS (``x-x:1.0.0.x``), hex otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from operator import mul
from typing import Any

from . import axdr
from .axdr import (
    ARRAY,
    DATE,
    DATE_TIME,
    FLOAT32,
    FLOAT64,
    NULL,
    OCTET_STRING,
    STRUCTURE,
    TIME,
    UTF8_STRING,
    VISIBLE_STRING,
    Data,
)
from .cosem_time import CosemDateTime
from .errors import InvalidValueError, ProfileError
from .obis import _OBIS_CACHE, UNITS, obis_from_bytes, obis_to_bytes
from .profiles import ListProfile, ProfileRegistry, default_registry

_INTS = frozenset({5, 6, 13, 15, 16, 17, 18, 20, 21, 22})
_LIST_VERSION_CDE = ":0.2.129."


@dataclass(slots=True)
class ObisValue:
    """One value: ``value`` is Decimal (numbers, after scaler), str, datetime, bool, None or a JSON tree."""

    obis: str
    value: Any
    unit: str | None = None
    scaler: int = 0
    raw: Any = None
    cosem_datetime: CosemDateTime | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"obis": self.obis, "value": json_value(self.value), "unit": self.unit,
                               "scaler": self.scaler}
        if self.cosem_datetime is not None:
            out["cosem_datetime"] = self.cosem_datetime.to_json()
        return out


@dataclass(slots=True)
class PushValues:
    layout: str
    profile: str | None = None
    manufacturer: str | None = None
    list_version: str | None = None
    values: dict[str, ObisValue] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"layout": self.layout, "profile": self.profile, "manufacturer": self.manufacturer,
                "list_version": self.list_version,
                "values": {k: v.to_json() for k, v in self.values.items()}}


def json_value(value: Any) -> Any:
    """Exact JSON: integral Decimals as int, others as a number when 15 digits keep them exact."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _text_or_hex(raw: bytes) -> str:
    if raw and raw.isascii():
        text = raw.decode("ascii")
        if text.isprintable():
            return text
    return raw.hex()


_DEC_POW = {s: Decimal(1).scaleb(s) for s in range(-128, 1)}


def _number(raw: int, scaler: int) -> Decimal:
    if scaler == 0:
        return Decimal(raw)
    if scaler > 0:
        return Decimal(raw * 10 ** scaler)
    factor = _DEC_POW.get(scaler)
    return Decimal(raw) * factor if factor is not None else Decimal(raw).scaleb(scaler)


def convert(obis: str, node: Data, scaler: int = 0, unit: str | None = None) -> ObisValue:
    """One element under ``obis`` with its scaler/unit applied."""
    tag, raw = node
    if tag in _INTS:
        return ObisValue(obis, _number(raw, scaler), unit, scaler, raw)
    if tag == OCTET_STRING:
        if len(raw) == 12 and ":1.0.0." in obis:
            cdt = CosemDateTime.decode(raw)
            return ObisValue(obis, cdt.to_datetime(), None, 0, raw, cdt)
        return ObisValue(obis, _text_or_hex(raw), None, 0, raw)
    if tag in (VISIBLE_STRING, UTF8_STRING):
        return ObisValue(obis, raw, None, 0, raw)
    if tag in (FLOAT32, FLOAT64):
        dec = axdr.float_to_decimal(tag, raw)
        return ObisValue(obis, dec.scaleb(scaler) if scaler else dec, unit, scaler, raw)
    if tag == DATE_TIME:
        return ObisValue(obis, raw.to_datetime(), None, 0, raw, raw)
    if tag in (DATE, TIME):
        return ObisValue(obis, raw.to_json(), None, 0, raw)
    if tag in (ARRAY, STRUCTURE, axdr.COMPACT_ARRAY):
        return ObisValue(obis, axdr.to_json(node), None, 0, raw)
    if tag == axdr.BIT_STRING:
        return ObisValue(obis, str(raw), None, 0, raw)
    return ObisValue(obis, raw, None, 0, raw)  # boolean, null-data, dont-care


def _is_obis(node: Data) -> bool:
    return node[0] == OCTET_STRING and len(node[1]) == 6


def _string(node: Data) -> str | None:
    tag, raw = node
    if tag in (VISIBLE_STRING, UTF8_STRING):
        return str(raw)
    if tag == OCTET_STRING and len(raw) != 6:
        return _text_or_hex(raw)
    return None


def _scaled(profile: ListProfile | None, obis: str) -> tuple[int, str | None]:
    if profile is not None:
        found = profile.units.get(obis)
        if found is not None:
            return found
    return 0, None


def layout_of(body: Data) -> str:
    tag, items = body
    if (tag != ARRAY and tag != STRUCTURE) or not items:
        return "single"
    for t, v in items:
        if t != STRUCTURE or len(v) < 2 or v[0][0] != OCTET_STRING or len(v[0][1]) != 6:
            break
    else:
        return "self_describing"
    return flat_layout(items) if tag == STRUCTURE else "positional"


def flat_layout(items: list[Data]) -> str:
    """``interleaved`` or ``positional``, for a structure that is not a self-describing list."""
    start = 1 if _string(items[0]) is not None else 0
    n = len(items) - start
    if n and not n % 2:
        seen = False
        for i in range(start, len(items), 2):
            t, v = items[i]
            if t == OCTET_STRING and len(v) == 6:
                seen = True
            elif not (t == NULL and items[i + 1][0] == NULL):
                break
        else:
            if seen:
                return "interleaved"
    return "positional"


# -- exact scaling, precomputed per scaler and per list profile ----------------------------------------
# ``Decimal(1).scaleb(s) * raw`` is ``Decimal(raw) * 10^s`` exactly (ints have at most 20 digits) and is
# one C call; the plans below resolve the scaler, unit and that multiplication once per profile rather
# than once per value.
Make = Callable[[int], Decimal]


def _positive(multiplier: int) -> Make:
    return lambda raw: Decimal(raw * multiplier)


def _maker(scaler: int) -> Make:
    """The function giving ``_number(raw, scaler)``."""
    if scaler == 0:
        return Decimal
    if scaler > 0:
        return _positive(10 ** scaler)
    factor = _DEC_POW.get(scaler)
    if factor is not None:
        return partial(mul, factor)
    return partial(_number, scaler=scaler)


MAKERS: dict[int, Make] = {s: _maker(s) for s in range(-128, 128)}
"""The makers for every scaler a COSEM scaler_unit (an integer) can carry."""

Entry = tuple[int, str | None, Make]
_NO_ENTRY: Entry = (0, None, Decimal)
_PLANS: dict[int, tuple[ListProfile, dict[str, Entry]]] = {}
_POSITIONS: dict[tuple[int, int, bool], tuple[ListProfile, tuple[tuple[str, Entry], ...]]] = {}


def units_plan(profile: ListProfile) -> dict[str, Entry]:
    """OBIS → (scaler, unit, maker) for a profile (cached; profiles are immutable)."""
    found = _PLANS.get(id(profile))
    if found is None or found[0] is not profile:
        plan = {obis: (scaler, unit, MAKERS.get(scaler) or _maker(scaler))
                for obis, (scaler, unit) in profile.units.items()}
        if len(_PLANS) >= 1024:
            _PLANS.clear()
        found = _PLANS[id(profile)] = (profile, plan)
    return found[1]


RawEntry = tuple[str, int, str | None, Make]
_RAW_PLANS: dict[int, tuple[ListProfile, dict[bytes, RawEntry]]] = {}


def raw_plan(profile: ListProfile) -> dict[bytes, RawEntry]:
    """OBIS bytes → (OBIS text, scaler, unit, maker): the interleaved lists' one lookup per value. Only
    profile keys that are the canonical text of 6 bytes can match (as with the text lookup)."""
    found = _RAW_PLANS.get(id(profile))
    if found is None or found[0] is not profile:
        plan: dict[bytes, RawEntry] = {}
        for obis, (scaler, unit, make) in units_plan(profile).items():
            try:
                raw = obis_to_bytes(obis)
            except InvalidValueError:
                continue
            if obis_from_bytes(raw) == obis:
                plan[raw] = (obis, scaler, unit, make)
        if len(_RAW_PLANS) >= 1024:
            _RAW_PLANS.clear()
        found = _RAW_PLANS[id(profile)] = (profile, plan)
    return found[1]


def _positions(profile: ListProfile, count: int, versioned: bool) -> tuple[tuple[str, Entry], ...] | None:
    key = (id(profile), count, versioned)
    found = _POSITIONS.get(key)
    if found is None or found[0] is not profile:
        codes = (profile.positional if versioned else profile.positional_unversioned).get(count)
        if codes is None:
            return None
        plan = units_plan(profile)
        if len(_POSITIONS) >= 1024:
            _POSITIONS.clear()
        found = _POSITIONS[key] = (profile, tuple((obis, plan.get(obis, _NO_ENTRY)) for obis in codes))
    return found[1]


def finish_self_describing(result: PushValues, deferred: list[tuple[str, Data]], reg: ProfileRegistry) -> None:
    """The profile of a self-describing list, and the values that waited for its scalers."""
    profile = reg.by_version(result.list_version) or reg.by_layout("self_describing")
    if profile is not None:
        result.profile = profile.name
        result.manufacturer = profile.manufacturer
    if deferred:
        plan_get = units_plan(profile).get if profile is not None else _NO_PLAN.get
        values = result.values
        for obis, node in deferred:
            scaler, unit, _ = plan_get(obis, _NO_ENTRY)
            values[obis] = convert(obis, node, scaler, unit)


def push_values(body: Data, registry: ProfileRegistry | None = None) -> PushValues:
    """Values by OBIS for a push body, using the list profiles of ``registry`` (package data by default)."""
    reg = registry or default_registry()
    layout = layout_of(body)
    items = body[1] if layout != "single" else [body]
    result = PushValues(layout)
    values = result.values
    if layout == "self_describing":
        # One pass: elements carrying their scaler_unit are final at once; the others wait for the profile
        # (their slot is reserved so the values keep the frame's order).
        deferred: list[tuple[str, Data]] = []
        cached = _OBIS_CACHE.get
        units = UNITS
        makers = MAKERS
        ints = _INTS
        for _, fields in items:
            raw_obis = fields[0][1]
            obis = cached(raw_obis) or obis_from_bytes(raw_obis)
            tag, raw = node = fields[1]
            if len(fields) >= 3:
                su_tag, su = fields[2]
                if su_tag == STRUCTURE and len(su) == 2 and su[0][0] in ints and su[1][0] in ints:
                    scaler = su[0][1]
                    unit = units.get(su[1][1])
                    if tag in ints:
                        make = makers.get(scaler) or _maker(scaler)
                        values[obis] = ObisValue(obis, make(raw), unit, scaler, raw)
                    else:
                        values[obis] = convert(obis, node, scaler, unit)
                    continue
            if _LIST_VERSION_CDE in obis and result.list_version is None:
                result.list_version = _string(node)
            values[obis] = None  # type: ignore[assignment]
            deferred.append((obis, node))
        finish_self_describing(result, deferred, reg)
        return result
    return list_values(layout, items, reg)


def flat_values(items: list[Data], reg: ProfileRegistry) -> PushValues:
    """Values of a non-empty structure that is not a self-describing list: :func:`layout_of`'s interleaved
    test made while the pairs are converted (one loop), else the positional list."""
    first = _string(items[0])
    start = 0 if first is None else 1
    n = len(items) - start
    if n and not n % 2:
        found = _interleaved(items, start, first, reg)
        if found is not None:
            return found
    return list_values("positional", items, reg)


def _interleaved(items: list[Data], start: int, first: str | None, reg: ProfileRegistry) -> PushValues | None:
    """``[version,] OBIS, value, …`` values, or ``None`` when a key is neither an OBIS code nor a null/null
    pair or no key is an OBIS code (then the list is positional)."""
    result = PushValues("interleaved")
    values = result.values
    if first is not None:
        result.list_version = first
    else:  # the version may be the first pair's value (x-x:0.2.129.255), as Kaifa sends it
        obis0 = obis_from_bytes(items[0][1]) if items[0][0] == OCTET_STRING else ""
        if _LIST_VERSION_CDE in obis0:
            result.list_version = _string(items[1])
    profile = reg.by_version(result.list_version) or reg.by_layout("interleaved")
    raw_get = raw_plan(profile).get if profile is not None else _NO_RAW_PLAN.get
    cached = _OBIS_CACHE.get
    ints = _INTS
    seen = False
    for (key_tag, raw_obis), node in zip(items[start::2], items[start + 1::2], strict=True):
        if key_tag != OCTET_STRING or len(raw_obis) != 6:
            if key_tag == NULL and node[0] == NULL:
                continue
            return None
        seen = True
        entry = raw_get(raw_obis)
        if entry is None:
            obis = cached(raw_obis) or obis_from_bytes(raw_obis)
            scaler, unit, make = _NO_ENTRY
        else:
            obis, scaler, unit, make = entry
        tag, raw = node
        if tag in ints:
            values[obis] = ObisValue(obis, make(raw), unit, scaler, raw)
        elif tag == VISIBLE_STRING:
            values[obis] = ObisValue(obis, raw, None, 0, raw)
        else:
            values[obis] = convert(obis, node, scaler, unit)
    if not seen:
        return None
    if profile is not None:
        result.profile = profile.name
        result.manufacturer = profile.manufacturer
    return result


def list_values(layout: str, items: list[Data], reg: ProfileRegistry) -> PushValues:
    """Values of an ``interleaved``, ``positional`` or ``single`` list (scalers from the profile)."""
    result = PushValues(layout)
    values = result.values
    profile: ListProfile | None
    if layout == "interleaved":
        first = _string(items[0])
        found = _interleaved(items, 0 if first is None else 1, first, reg)
        if found is not None:  # (always, as layout_of checked the keys)
            return found
        layout = result.layout = "positional"
    if layout == "positional":
        count = len(items)
        version = _string(items[0])
        profile = reg.by_version(version)
        positions = None
        if profile is not None:
            result.list_version = version
            positions = _positions(profile, count, True)
            if positions is None:
                raise ProfileError(f"list profile {profile.name!r} has no {version} list of {count} elements",
                                   None, f"known lengths: {sorted(profile.positional)}")
        elif all(t in _INTS for t, _ in items):
            # No list version: only an all-numeric list of a known length selects a profile (Kaifa list 1).
            profile = reg.unversioned(count)
            if profile is not None:
                positions = _positions(profile, count, False)
        if positions is not None:
            ints = _INTS
            for (obis, (scaler, unit, make)), node in zip(positions, items, strict=True):
                tag, raw = node
                if tag in ints:
                    values[obis] = ObisValue(obis, make(raw), unit, scaler, raw)
                elif tag == VISIBLE_STRING:
                    values[obis] = ObisValue(obis, raw, None, 0, raw)
                else:
                    values[obis] = convert(obis, node, scaler, unit)
    else:
        profile = None
    if profile is not None:
        result.profile = profile.name
        result.manufacturer = profile.manufacturer
    return result


_NO_PLAN: dict[str, Entry] = {}
_NO_RAW_PLAN: dict[bytes, RawEntry] = {}
