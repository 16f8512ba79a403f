"""Data records (EN 13757-3 §6): DIF/DIFE/VIF/VIFE parsing, values exact and scaled to SI.

Speed comes from a cache: the header bytes of a record (DIF..last VIFE) fully determine its meaning, so
each distinct header is interpreted once into a shared ``RecordSpec`` and every later record with the same
header costs a dict lookup. A ``Record`` holds its spec, its raw value (int, str for BCD with error nibbles
or LVAR text, float for REAL32, bytes for manufacturer data) and its offset; the scaled ``value``
(Decimal/int/date) is computed from them on access, exactly.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from decimal import Context, Decimal
from typing import Any

from . import dates
from .errors import DataFieldError, DecodeError, TooManyExtensionsError, TruncatedRecordError
from .tables import FUNCTIONS, VIF_FB, VIF_FD, VIF_PRIMARY, VIFE_COMBINABLE, Vif

# data types (dtype)
T_NONE, T_INT, T_UINT, T_BCD, T_REAL, T_LVAR, T_MFR = 0, 1, 2, 3, 4, 5, 6
# DIF data field → (dtype, length)
_DATA_FIELD: tuple[tuple[int, int], ...] = (
    (T_NONE, 0), (T_INT, 1), (T_INT, 2), (T_INT, 3), (T_INT, 4), (T_REAL, 4), (T_INT, 6), (T_INT, 8),
    (T_NONE, 0), (T_BCD, 1), (T_BCD, 2), (T_BCD, 3), (T_BCD, 4), (T_LVAR, -1), (T_BCD, 6), (T_MFR, -2),
)
_DATE_BY_LEN = {2: ("G", dates.type_g), 4: ("F", dates.type_f), 6: ("I", dates.type_i), 3: ("J", dates.type_j)}
_UNSIGNED_QUANTITIES = frozenset({
    "fabrication_number", "enhanced_identification", "bus_address", "error_flags", "error_mask",
    "digital_input", "digital_output", "access_number", "medium", "manufacturer", "model_version",
    "hardware_version", "firmware_version", "software_version", "customer_location", "customer", "password",
    "special_supplier_information", "reset_counter", "cumulation_counter", "parameter_set_id",
})
_MAX_EXT = 10


def real32_decimal(value: float) -> Decimal:
    """The shortest decimal that round-trips through IEEE-754 binary32 (what the meter meant)."""
    if value != value or value in (float("inf"), float("-inf")):
        return Decimal(repr(value).replace("inf", "Infinity").replace("nan", "NaN"))
    packed = struct.pack("<f", value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack("<f", float(text)) == packed:
            return Decimal(text)
    return Decimal(repr(value))


class RecordSpec:
    """Everything a record header (DIF..VIFE bytes) says, interpreted once."""

    __slots__ = (
        "conv",
        "date_kind",
        "dif",
        "dife_count",
        "dtype",
        "exp",
        "flags",
        "function",
        "header",
        "length",
        "mult",
        "qualifiers",
        "quantity",
        "storage",
        "subunit",
        "tariff",
        "text_unit",
        "unit",
        "vif",
    )

    dif: bytes
    vif: bytes
    dtype: int
    length: int
    function: str
    storage: int
    tariff: int
    subunit: int
    quantity: str
    unit: str
    exp: int
    mult: int
    dife_count: int

    def __init__(self, header: bytes) -> None:
        self.header = header
        self.flags: tuple[str, ...] = ()
        self.qualifiers: tuple[str, ...] = ()
        self.date_kind = ""
        self.text_unit: str | None = None
        self.conv: Callable[[Any], Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if k not in ("conv",)}


# Wide enough for every M-Bus integer (LVAR up to 64 bytes: 155 digits) times any scale: never rounds.
_EXACT = Context(prec=200)


def _scale_conv(exp: int, mult: int) -> Callable[[Any], Any] | None:
    if exp == 0 and mult == 1:
        return None
    if exp >= 0:
        factor = mult * 10 ** exp

        def conv_int(raw: Any) -> Any:
            if type(raw) is int:
                return raw * factor
            if type(raw) is float:
                return real32_decimal(raw) * factor
            return raw
        return conv_int

    scale = Decimal(mult).scaleb(exp, _EXACT)
    multiply = _EXACT.multiply

    def conv_dec(raw: Any) -> Any:
        if type(raw) is int:
            return multiply(raw, scale)
        if type(raw) is float:
            d = real32_decimal(raw)
            return multiply(d, scale) if d.is_finite() else d
        return raw
    return conv_dec


def _real_only(raw: Any) -> Any:
    return real32_decimal(raw) if type(raw) is float else raw


def build_spec(header: bytes, vif_at: int, text: str | None) -> RecordSpec:
    """Interpret one record header. ``vif_at`` is the index of the VIF; ``text`` the plain-text unit, if any."""
    spec = RecordSpec(header)
    dif = header[0]
    spec.dtype, spec.length = _DATA_FIELD[dif & 0x0F]
    spec.function = FUNCTIONS[(dif >> 4) & 3]
    storage, tariff, subunit = (dif >> 6) & 1, 0, 0
    for k in range(vif_at - 1):
        dife = header[1 + k]
        storage |= (dife & 0x0F) << (1 + 4 * k)
        tariff |= ((dife >> 4) & 3) << (2 * k)
        subunit |= ((dife >> 6) & 1) << k
    spec.storage, spec.tariff, spec.subunit, spec.dife_count = storage, tariff, subunit, vif_at - 1
    spec.dif = header[:vif_at]
    spec.vif = header[vif_at:]
    flags: list[str] = []
    quals: list[str] = []
    vif = header[vif_at]
    code = vif & 0x7F
    pos = vif_at + 1
    entry: Vif
    mfr = False
    if code == 0x7B or code == 0x7D:
        if vif & 0x80:
            ext = header[pos]
            pos += 1
            entry = (VIF_FB if code == 0x7B else VIF_FD)[ext & 0x7F]
            more = bool(ext & 0x80)
        else:
            entry = Vif("reserved", "", kind="reserved")
            more = False
    elif code == 0x7C:
        entry = Vif("plain_text", text or "", kind="plain")
        more = bool(vif & 0x80)
        pos = len(header) - _count_trailing_vifes(header, vif_at) if more else len(header)
    else:
        entry = VIF_PRIMARY[code]
        more = bool(vif & 0x80)
        if code == 0x7F:
            mfr = True
    if code == 0x7C:
        spec.text_unit = text
    quantity, unit, exp, mult = entry.quantity, entry.unit, entry.exp, entry.mult
    if entry.kind == "reserved":
        flags.append("reserved_vif")
    if entry.kind == "mfr":
        flags.append("manufacturer_vif")
    is_date = entry.kind in ("date", "datetime")
    rssi = quantity == "reception_level"
    while more and pos < len(header):
        b = header[pos]
        pos += 1
        more = bool(b & 0x80)
        c = b & 0x7F
        if mfr:
            flags.append("manufacturer_vife") if "manufacturer_vife" not in flags else None
            continue
        ve = VIFE_COMBINABLE.get(c)
        if ve is None:
            flags.append("unknown_vife")
            quals.append(f"vife_{c:02x}")
            continue
        name, kind, arg = ve
        quals.append(name)
        if kind == "mul":
            exp += int(arg)  # type: ignore[call-overload]
        elif kind == "per":
            unit = f"{unit or '1'}/{arg}"
        elif kind == "times":
            unit = f"{unit}·{arg}" if unit else str(arg)
        elif kind == "date":
            is_date = True
        elif kind == "duration":
            unit, exp, mult = "s", 0, (1, 60, 3600, 86400)[int(arg)]  # type: ignore[call-overload]
        elif kind == "count":
            unit, exp, mult = "", 0, 1
        elif kind == "add":
            flags.append("additive_correction")
        elif kind == "error":
            flags.append("record_error")
        elif kind == "mfr":
            mfr = True
            flags.append("manufacturer_vife")
    spec.quantity, spec.unit, spec.exp, spec.mult = quantity, unit, exp, mult
    if is_date and spec.dtype == T_INT and spec.length in _DATE_BY_LEN:
        spec.date_kind, spec.conv = _DATE_BY_LEN[spec.length]
        spec.dtype = T_UINT
        spec.unit = ""
    elif is_date:
        flags.append("date_coding_mismatch")
        spec.conv = _real_only
    elif rssi:
        spec.conv = _rssi
    else:
        if spec.dtype == T_INT and quantity in _UNSIGNED_QUANTITIES:
            spec.dtype = T_UINT
        spec.conv = _scale_conv(exp, mult) or (_real_only if spec.dtype == T_REAL else None)
    spec.flags = tuple(flags)
    spec.qualifiers = tuple(quals)
    return spec


def _rssi(raw: Any) -> Any:
    # Reception level (VIF FD 71) as sent by OMS/WEPTECH radio devices: 2 x value - 130 dBm.
    return 2 * raw - 130 if type(raw) is int else raw


def _count_trailing_vifes(header: bytes, vif_at: int) -> int:
    length = header[vif_at + 1]
    return len(header) - (vif_at + 2 + length)


_SPECIAL: dict[int, str] = {0x0F: "manufacturer_specific", 0x1F: "more_records_follow"}


def _special_spec(dif: int) -> RecordSpec:
    spec = RecordSpec(bytes((dif,)))
    spec.dif, spec.vif = bytes((dif,)), b""
    spec.dtype, spec.length = T_MFR, -2
    spec.function = _SPECIAL[dif]
    spec.storage = spec.tariff = spec.subunit = spec.dife_count = 0
    spec.quantity, spec.unit, spec.exp, spec.mult = "manufacturer_data", "", 0, 1
    spec.conv = _hex
    return spec


def _hex(raw: Any) -> Any:
    return raw.hex().upper() if isinstance(raw, (bytes, bytearray)) else raw


_SPECS: dict[bytes, RecordSpec] = {0x0F.to_bytes(1, "big"): _special_spec(0x0F),
                                   0x1F.to_bytes(1, "big"): _special_spec(0x1F)}
_CACHE_MAX = 50_000


class Record(tuple[Any, ...]):
    """One decoded data record: (spec, raw, offset). ``value`` is exact: int, Decimal, date/time or str.

    A tuple subclass so that building one costs a single C call on the hot path.
    """

    __slots__ = ()

    def __new__(cls, spec: RecordSpec, raw: Any, offset: int) -> Record:
        return tuple.__new__(cls, (spec, raw, offset))

    @property
    def spec(self) -> RecordSpec:
        return self[0]

    @property
    def raw(self) -> Any:
        return self[1]

    @property
    def offset(self) -> int:
        return self[2]

    @property
    def value(self) -> Any:
        conv = self[0].conv
        return self[1] if conv is None else conv(self[1])

    @property
    def unit(self) -> str:
        return self.spec.unit

    @property
    def quantity(self) -> str:
        return self.spec.quantity

    @property
    def function(self) -> str:
        return self.spec.function

    @property
    def storage(self) -> int:
        return self.spec.storage

    @property
    def tariff(self) -> int:
        return self.spec.tariff

    @property
    def subunit(self) -> int:
        return self.spec.subunit

    @property
    def dif(self) -> bytes:
        return self.spec.dif

    @property
    def vif(self) -> bytes:
        return self.spec.vif

    @property
    def qualifiers(self) -> tuple[str, ...]:
        """Names of the combinable VIFEs (e.g. ``per_hour``, ``lower_limit``, ``multiplier_1e3``)."""
        return self[0].qualifiers

    @property
    def flags(self) -> tuple[str, ...]:
        s = self.spec
        extra: tuple[str, ...] = ()
        if s.dtype == T_BCD and type(self.raw) is str:
            extra = ("bcd_error",)
        elif s.date_kind and type(self.raw) is int:
            if dates.invalid_bit(s.date_kind, self.raw):
                extra = ("date_invalid",)
            if dates.summer_time_bit(s.date_kind, self.raw):
                extra += ("summer_time",)
        return s.flags + extra

    def to_json(self) -> dict[str, Any]:
        s = self.spec
        v = self.value
        if hasattr(v, "isoformat"):
            v = v.isoformat()
        return {
            "value": v,
            "unit": s.unit, "quantity": s.quantity, "function": s.function, "storage": s.storage,
            "tariff": s.tariff, "subunit": s.subunit, "dif": s.dif.hex().upper(), "vif": s.vif.hex().upper(),
            "qualifiers": list(s.qualifiers), "flags": list(self.flags), "offset": self.offset,
            **({"date_type": s.date_kind} if s.date_kind else {}),
        }

    def __repr__(self) -> str:
        s = self.spec
        return (f"Record({s.quantity}={self.value!r} {s.unit} {s.function} storage={s.storage} "
                f"tariff={s.tariff} subunit={s.subunit})")


def _bcd(data: bytes) -> int | str:
    h = data[::-1].hex()
    if h.isdigit():
        return int(h)
    if h[0] == "f" and h[1:].isdigit():
        return -int(h[1:]) if len(h) > 1 else 0
    return h.upper()


def parse_records(buf: bytes, start: int, end: int, base: int = 0) -> list[Record]:
    """Parse the data records of ``buf[start:end]``; offsets reported are ``base`` + index in ``buf``.

    On a bad record the ``DecodeError`` raised carries the records before it in ``partial_records``.
    """
    key = (start, end, buf[start:start + 2])
    lay = _LAYOUTS.get(key) if LAYOUT_CACHE else None
    if lay and lay.check(buf) == lay.expected:
        new = tuple.__new__
        rec = Record
        return [new(rec, (spec, v if conv is None else conv(v), base + off))
                for (spec, conv, off), v in zip(lay.items, lay.unpack(buf, start), strict=True)]
    out: list[Record] = []
    try:
        _parse(buf, start, end, base, out)
    except DecodeError as exc:
        exc.partial_records = out
        raise
    if LAYOUT_CACHE and lay is None and out and type(buf) is bytes and len(_LAYOUTS) < _CACHE_MAX:
        # False remembers "no fixed layout here" (LVAR, trailing fillers) so it is not tried again
        _LAYOUTS[key] = _layout(buf, start, end, base, out) or False
    return out


#: Layout cache: meters repeat one record layout reading after reading. After a full table-driven parse
#: of a data area, its layout (every structural byte: DIF..VIFE, LVAR, fillers; every value's position) is
#: kept under (start, end, first two bytes). The next data area with that key is checked byte for byte on
#: all structural positions with one C call, and its values are read with one ``struct`` unpack. Results
#: are identical to the full parse (tested); set ``LAYOUT_CACHE = False`` to measure without it.
LAYOUT_CACHE = True
_LAYOUTS: dict[tuple[int, int, bytes], Any] = {}  # _Layout, or False: none
_INT_FMT = {(1, True): "b", (2, True): "h", (4, True): "i", (8, True): "q",
            (1, False): "B", (2, False): "H", (4, False): "I", (8, False): "Q"}


def _signed_le(b: bytes) -> int:
    return int.from_bytes(b, "little", signed=True)


def _unsigned_le(b: bytes) -> int:
    return int.from_bytes(b, "little")


def _bcd_bytes(b: bytes) -> int | str:
    h = b[::-1].hex()
    return int(h) if h.isdigit() else _bcd_text(h)


class _Layout:
    __slots__ = ("check", "expected", "items", "unpack")

    def __init__(self, positions: list[int], expected: tuple[int, ...], fmt: str,
                 items: list[tuple[RecordSpec, Any, int]]) -> None:
        import operator
        getter = operator.itemgetter(*positions)
        self.check = getter
        self.expected = expected
        self.unpack = struct.Struct(fmt).unpack_from
        self.items = items


def _layout(buf: bytes, start: int, end: int, base: int, records: list[Record]) -> _Layout | None:
    positions: list[int] = []
    fmt = ["<"]
    items: list[tuple[RecordSpec, Any, int]] = []
    p = start
    for r in records:
        spec, off = r[0], r[2] - base
        if off > p:  # fillers (2F) / global readout bytes before this record are structure too
            positions.extend(range(p, off))
            fmt.append(f"{off - p}x")
            p = off
        hl = len(spec.header)
        positions.extend(range(p, p + hl))
        fmt.append(f"{hl}x")
        p += hl
        dtype = spec.dtype
        if dtype == T_MFR:
            n = end - p
            fmt.append(f"{n}s")
            items.append((spec, None, off))
            p = end
            continue
        if dtype == T_NONE:
            items.append((spec, _none, off))
            fmt.append("0s")
            continue
        if dtype == T_LVAR:
            return None  # variable length: not worth a layout
        n = spec.length
        if dtype == T_REAL:
            fmt.append("f")
            items.append((spec, None, off))
        elif dtype == T_BCD:
            fmt.append(f"{n}s")
            items.append((spec, _bcd_bytes, off))
        else:
            signed = dtype == T_INT
            code = _INT_FMT.get((n, signed))
            if code is None:
                fmt.append(f"{n}s")
                items.append((spec, _signed_le if signed else _unsigned_le, off))
            else:
                fmt.append(code)
                items.append((spec, None, off))
        p += n
    if p != end or len(positions) < 2:
        return None
    expected = tuple(buf[q] for q in positions)
    return _Layout(positions, expected, "".join(fmt), items)


def _none(_: Any) -> None:
    return None


def _parse(buf: bytes, start: int, end: int, base: int, out: list[Record]) -> list[Record]:
    append = out.append
    specs = _SPECS
    new = tuple.__new__
    rec = Record
    from_bytes = int.from_bytes
    i = start
    while i < end:
        dif = buf[i]
        j = i + 1
        if (dif & 0x0F) == 0x0F:  # special functions: the whole byte is the code, never with DIFEs
            if dif == 0x2F:  # idle filler
                i = j
                continue
            if dif == 0x0F or dif == 0x1F:
                append(new(rec, (specs[buf[i:j]], buf[j:end], base + i)))
                return out
            if dif == 0x7F:  # global readout request: no data
                i = j
                continue
            raise DataFieldError(f"reserved special function DIF 0x{dif:02X}", base + i, "record.dif_reserved")
        if dif & 0x80:
            n = 0
            while True:
                if j >= end:
                    raise TruncatedRecordError("frame ends inside the DIFE chain", base + j, "record.dife")
                n += 1
                if n > _MAX_EXT:
                    raise TooManyExtensionsError("more than 10 DIFEs", base + j, "record.dife_count")
                if buf[j] < 0x80:
                    j += 1
                    break
                j += 1
        if j >= end:
            raise TruncatedRecordError("frame ends before the VIF", base + j, "record.vif")
        vif = buf[j]
        j += 1
        if vif == 0x7C or vif == 0xFC:
            j = _skip_plain_text(buf, j, end, base)
        if vif & 0x80:
            n = 0
            while True:
                if j >= end:
                    raise TruncatedRecordError("frame ends inside the VIFE chain", base + j, "record.vife")
                n += 1
                if n > _MAX_EXT:
                    raise TooManyExtensionsError("more than 10 VIFEs", base + j, "record.vife_count")
                if buf[j] < 0x80:
                    j += 1
                    break
                j += 1
        header = buf[i:j]
        spec = specs.get(header)
        if spec is None:
            spec = _new_spec(header)
        dtype = spec.dtype
        if dtype == T_INT:
            k = j + spec.length
            if k > end:
                raise TruncatedRecordError(f"data needs {spec.length} bytes, {end - j} left", base + j,
                                           "record.data")
            append(new(rec, (spec, from_bytes(buf[j:k], "little", signed=True), base + i)))
        elif dtype == T_BCD:
            k = j + spec.length
            if k > end:
                raise TruncatedRecordError(f"data needs {spec.length} bytes, {end - j} left", base + j,
                                           "record.data")
            h = buf[j:k][::-1].hex()
            append(new(rec, (spec, int(h) if h.isdigit() else _bcd_text(h), base + i)))
        elif dtype == T_UINT:
            k = j + spec.length
            if k > end:
                raise TruncatedRecordError(f"data needs {spec.length} bytes, {end - j} left", base + j,
                                           "record.data")
            append(new(rec, (spec, from_bytes(buf[j:k], "little"), base + i)))
        elif dtype == T_NONE:
            k = j
            append(new(rec, (spec, None, base + i)))
        elif dtype == T_REAL:
            k = j + 4
            if k > end:
                raise TruncatedRecordError(f"data needs 4 bytes, {end - j} left", base + j, "record.data")
            append(new(rec, (spec, _unpack_f(buf, j)[0], base + i)))
        else:  # T_LVAR
            k, raw = _lvar(buf, j, end, base)
            append(new(rec, (spec, raw, base + i)))
        i = k
    return out


_unpack_f = struct.Struct("<f").unpack_from


def _skip_plain_text(buf: bytes, j: int, end: int, base: int) -> int:
    if j >= end:
        raise TruncatedRecordError("frame ends before the plain-text VIF length", base + j, "record.plain_vif")
    ln = buf[j]
    if j + 1 + ln > end:
        raise TruncatedRecordError(f"plain-text VIF of {ln} characters runs past the frame", base + j,
                                   "record.plain_vif")
    return j + 1 + ln


def _new_spec(header: bytes) -> RecordSpec:
    vif_at = 1
    if header[0] & 0x80:
        while header[vif_at] & 0x80:
            vif_at += 1
        vif_at += 1
    text = None
    if header[vif_at] & 0x7F == 0x7C:
        ln = header[vif_at + 1]
        text = _text(header[vif_at + 2:vif_at + 2 + ln])
    spec = build_spec(header, vif_at, text)
    if len(_SPECS) < _CACHE_MAX:
        _SPECS[header] = spec
    return spec


def _bcd_text(h: str) -> int | str:
    if h[0] == "f" and h[1:].isdigit():
        return -int(h[1:]) if len(h) > 1 else 0
    return h.upper()


def _lvar(buf: bytes, j: int, end: int, base: int) -> tuple[int, Any]:
    if j >= end:
        raise TruncatedRecordError("frame ends before the LVAR byte", base + j, "record.lvar")
    lvar = buf[j]
    j += 1
    if lvar < 0xC0:
        k, kind = j + lvar, 0
    elif lvar < 0xCA or 0xD0 <= lvar < 0xDA:
        k, kind = j + (lvar & 0x0F), 1
    elif 0xE0 <= lvar < 0xF0:
        k, kind = j + lvar - 0xE0, 2
    elif 0xF0 <= lvar < 0xF5:
        k, kind = j + 4 * (lvar - 0xEC), 2
    elif lvar == 0xF5 or lvar == 0xF6:
        k, kind = j + (48 if lvar == 0xF5 else 64), 2
    else:
        raise DataFieldError(f"reserved LVAR 0x{lvar:02X}", base + j - 1, "record.lvar_reserved")
    if k > end:
        raise TruncatedRecordError(f"LVAR data needs {k - j} bytes, {end - j} left", base + j, "record.data")
    data = buf[j:k]
    raw: Any
    if kind == 0:
        raw = _text(data)
    elif kind == 1:
        v = _bcd(data) if data else 0
        raw = -v if lvar >= 0xD0 and type(v) is int else v
    else:
        raw = int.from_bytes(data, "little")
    return k, raw


def _text(data: bytes) -> str:
    """M-Bus strings are sent last character first."""
    rev = bytes(data[::-1])
    try:
        return rev.decode("utf-8")
    except UnicodeDecodeError:
        return rev.decode("latin-1")
