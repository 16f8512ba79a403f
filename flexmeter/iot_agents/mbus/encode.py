"""The inverse of the decoder, for the simulator and for tests: records, RSP_UD long frames and wM-Bus
telegrams (format A/B CRCs, OMS mode 5 encryption).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from . import security
from .link import add_format_a, add_format_b, build_long_frame
from .tables import FUNCTIONS, VIF_FB, VIF_FD, VIF_PRIMARY
from .telegram import manufacturer_value

_BCD_FIELDS = {0x09: 1, 0x0A: 2, 0x0B: 3, 0x0C: 4, 0x0E: 6}
_INT_FIELDS = {0x01: 1, 0x02: 2, 0x03: 3, 0x04: 4, 0x06: 6, 0x07: 8}


def encode_record(vif: bytes, raw: int, *, data_field: int = 0x04, function: str = "instantaneous",
                  storage: int = 0, tariff: int = 0, subunit: int = 0) -> bytes:
    """One data record: DIF (+DIFEs for storage > 1, tariff, subunit), the VIF bytes, then the raw value."""
    dif = data_field | (FUNCTIONS.index(function) << 4) | ((storage & 1) << 6)
    difes = bytearray()
    st, ta, su = storage >> 1, tariff, subunit
    while st or ta or su:
        difes.append((st & 0x0F) | ((ta & 3) << 4) | ((su & 1) << 6))
        st, ta, su = st >> 4, ta >> 2, su >> 1
    if len(difes) > 10:
        raise ValueError("storage/tariff/subunit need more than 10 DIFEs")
    for k in range(len(difes) - 1):
        difes[k] |= 0x80
    if difes:
        dif |= 0x80
    if data_field in _INT_FIELDS:
        data = raw.to_bytes(_INT_FIELDS[data_field], "little", signed=raw < 0)
    elif data_field in _BCD_FIELDS:
        n = _BCD_FIELDS[data_field]
        digits = f"{abs(raw):0{2 * n}d}"
        if raw < 0:
            digits = "f" + digits[1:]
        if len(digits) != 2 * n:
            raise ValueError(f"{raw} does not fit {2 * n} BCD digits")
        data = bytes.fromhex(digits)[::-1]
    elif data_field == 0x00:
        data = b""
    else:
        raise ValueError(f"data field 0x{data_field:X} not supported by the encoder")
    return bytes((dif,)) + bytes(difes) + bytes(vif) + data


def _vif_index() -> dict[tuple[str, str, int], bytes]:
    index: dict[tuple[str, str, int], bytes] = {}
    for prefix, table in ((b"", VIF_PRIMARY), (b"\xfd", VIF_FD), (b"\xfb", VIF_FB)):
        for code, v in enumerate(table):
            if v.mult == 1 and not v.kind and v.quantity != "reserved":
                vif = prefix + bytes((code,))
                index.setdefault((v.quantity, v.unit, v.exp), vif)
    return index


_VIF_INDEX = _vif_index()


def vif_for(quantity: str, unit: str, exp: int) -> bytes:
    """The VIF bytes meaning ``quantity`` in ``unit`` x 10^exp (e.g. energy, Wh, 3 → 06: kWh)."""
    try:
        return _VIF_INDEX[(quantity, unit, exp)]
    except KeyError:
        raise ValueError(f"no VIF for {quantity} in 10^{exp} {unit}") from None


def encode_value(quantity: str, value: Decimal | int, unit: str, exp: int, **kwargs: Any) -> bytes:
    """A record for an SI value, sent with resolution 10^exp (the value must be a whole multiple of it)."""
    raw = Decimal(value).scaleb(-exp)
    if raw != raw.to_integral_value():
        raise ValueError(f"{value} {unit} is not a whole multiple of 10^{exp}")
    return encode_record(vif_for(quantity, unit, exp), int(raw), **kwargs)


def _a_field(meter_id: str, version: int, medium: int) -> bytes:
    return bytes.fromhex(meter_id.rjust(8, "0"))[::-1] + bytes((version, medium))


def build_rsp_ud(*, address: int, meter_id: str, manufacturer: str, version: int, medium: int,
                 access_number: int, status: int, records: bytes, c_field: int = 0x08) -> bytes:
    """A wired RSP_UD long frame with CI 0x72 (long TPL header, no security)."""
    a = _a_field(meter_id, version, medium)
    m = manufacturer_value(manufacturer).to_bytes(2, "little")
    header = a[:4] + m + a[4:] + bytes((access_number, status, 0, 0))
    return build_long_frame(c_field, address, 0x72, header + bytes(records))


def build_wmbus(*, meter_id: str, manufacturer: str, version: int, medium: int, access_number: int,
                status: int, records: bytes, key: bytes | None = None, c_field: int = 0x44,
                frame_format: str = "A") -> bytes:
    """A wM-Bus SND_NR telegram with a short TPL header (CI 0x7A); OMS mode 5 when ``key`` is given."""
    m = manufacturer_value(manufacturer).to_bytes(2, "little")
    a = _a_field(meter_id, version, medium)
    payload = bytes(records)
    cfg = 0
    if key is not None:
        plain = b"\x2f\x2f" + payload
        if len(plain) % 16:
            plain += b"\x2f" * (16 - len(plain) % 16)
        blocks = len(plain) // 16
        if blocks > 15:
            raise ValueError("mode 5 payload exceeds 15 blocks")
        cfg = 0x0500 | (blocks << 4)
        payload = security.encrypt_mode5(key, security.mode5_iv(m, a, access_number), plain)
    body = bytes((c_field,)) + m + a + bytes((0x7A, access_number, status, cfg & 0xFF, cfg >> 8)) + payload
    telegram = bytes((len(body),)) + body
    if len(body) > 255:
        raise ValueError("telegram too long")
    if frame_format == "A":
        return add_format_a(telegram)
    if frame_format == "B":
        return add_format_b(telegram)
    return telegram


def build_wmbus_mode7(*, meter_id: str, manufacturer: str, version: int, medium: int, access_number: int,
                      status: int, records: bytes, key: bytes, counter: int, c_field: int = 0x44,
                      frame_format: str = "A") -> bytes:
    """A wM-Bus telegram in OMS security mode 7: AFL (MCL, MCR, 8-byte AES-CMAC) + short TPL + AES-CBC."""
    m = manufacturer_value(manufacturer).to_bytes(2, "little")
    a = _a_field(meter_id, version, medium)
    plain = b"\x2f\x2f" + bytes(records)
    if len(plain) % 16:
        plain += b"\x2f" * (16 - len(plain) % 16)
    blocks = len(plain) // 16
    if blocks > 15:
        raise ValueError("mode 7 payload exceeds 15 blocks")
    cfg = 0x0700 | (blocks << 4)
    enc = security.encrypt_mode7(key, counter, a[:4], plain)
    tpl = bytes((0x7A, access_number, status, cfg & 0xFF, cfg >> 8, 0x10)) + enc
    mcl = 0x25  # MCR present in MAC, AT 5 = 8-byte CMAC
    mcr = counter.to_bytes(4, "little")
    mac = security.afl_mac(key, counter, a[:4], bytes((mcl,)) + mcr + tpl, 8)
    fcl = 0x2000 | 0x0800 | 0x0400
    afl_body = fcl.to_bytes(2, "little") + bytes((mcl,)) + mcr + mac
    body = bytes((c_field,)) + m + a + bytes((0x90, len(afl_body))) + afl_body + tpl
    telegram = bytes((len(body),)) + body
    if frame_format == "A":
        return add_format_a(telegram)
    if frame_format == "B":
        return add_format_b(telegram)
    return telegram


def build_wmbus_ell(*, meter_id: str, manufacturer: str, version: int, medium: int, access_number: int,
                    records: bytes, key: bytes, session: int, cc: int = 0x20, c_field: int = 0x44,
                    frame_format: str = "A") -> bytes:
    """A wM-Bus telegram with ELL CI 0x8D, AES-CTR encrypted, carrying a TPL without header (CI 0x78)."""
    from .crc import crc16_en13757
    m = manufacturer_value(manufacturer).to_bytes(2, "little")
    a = _a_field(meter_id, version, medium)
    sn = ((session & 0x1FFFFFFF) | (1 << 29)).to_bytes(4, "little")
    inner = bytes((0x78,)) + bytes(records)
    crc = crc16_en13757(inner)
    plain = bytes((crc & 0xFF, crc >> 8)) + inner
    enc = security.ell_crypt(key, security.ell_counter_block(m, a, cc, sn), plain)
    body = bytes((c_field,)) + m + a + bytes((0x8D, cc, access_number)) + sn + enc
    telegram = bytes((len(body),)) + body
    if frame_format == "A":
        return add_format_a(telegram)
    if frame_format == "B":
        return add_format_b(telegram)
    return telegram
