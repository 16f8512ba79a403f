"""Transport and application layer: CI dispatch, TPL headers (none/short/long), ELL, AFL, security modes,
the fixed data structure, application errors. Fills a ``Telegram`` in place.
"""

from __future__ import annotations

from typing import Any

from . import security
from .errors import HeaderError, UnsupportedCiError, UnsupportedSecurityError
from .records import T_BCD, T_UINT, Record, RecordSpec, _bcd, parse_records
from .tables import FIXED_UNITS
from .telegram import Telegram, bcd_id, manufacturer_code

# CI → (header kind, records follow) for the TPL CIs we decode.
_LONG = frozenset((0x72, 0x53, 0x5B, 0x75, 0x7C, 0x7E, 0x6B, 0x6F, 0x8B))   # long header
_SHORT = frozenset((0x7A, 0x5A, 0x74, 0x7D, 0x7F, 0x6A, 0x6E, 0x8A))        # short header
_NONE = frozenset((0x78, 0x51, 0x70, 0x71, 0x69))                           # no header
_APPLICATION_ERROR = frozenset((0x70, 0x6E, 0x6F))
_ALARM = frozenset((0x71, 0x74, 0x75))


def parse_apl(buf: bytes, pos: int, end: int, tel: Telegram, key: bytes | None,
              m_field: bytes | None, a_field: bytes | None) -> None:
    """Decode from the CI field at ``buf[pos]`` to ``end`` (offsets in errors are indices in ``buf``)."""
    if pos >= end:
        raise HeaderError("no CI field", pos, "tpl.ci_missing")
    ci = buf[pos]
    tel.ci = ci
    if 0x8C <= ci <= 0x8F:
        _parse_ell(buf, pos, end, tel, key, m_field, a_field)
        return
    if ci == 0x90:
        _parse_afl(buf, pos, end, tel, key, m_field, a_field)
        return
    afl_ctx: dict[str, Any] | None = None
    _parse_tpl(buf, pos, end, tel, key, m_field, a_field, afl_ctx)


def _parse_tpl(buf: bytes, pos: int, end: int, tel: Telegram, key: bytes | None,
               m_field: bytes | None, a_field: bytes | None, afl_ctx: dict[str, Any] | None) -> None:
    ci = buf[pos]
    tel.ci = ci
    p = pos + 1
    if ci in _LONG:
        if p + 12 > end:
            raise HeaderError(f"long TPL header needs 12 bytes, {end - p} left", p, "tpl.long_header")
        tel.id = bcd_id(buf[p:p + 4])
        tel.manufacturer = manufacturer_code(buf[p + 4] | (buf[p + 5] << 8))
        tel.version = buf[p + 6]
        tel.medium = buf[p + 7]
        m_field, a_field = buf[p + 4:p + 6], buf[p:p + 4] + buf[p + 6:p + 8]
        p += 8
        tel.access_number, tel.status = buf[p], buf[p + 1]
        cfg = buf[p + 2] | (buf[p + 3] << 8)
        p += 4
    elif ci in _SHORT:
        if p + 4 > end:
            raise HeaderError(f"short TPL header needs 4 bytes, {end - p} left", p, "tpl.short_header")
        tel.access_number, tel.status = buf[p], buf[p + 1]
        cfg = buf[p + 2] | (buf[p + 3] << 8)
        p += 4
    elif ci in _NONE:
        cfg = 0
        if ci in _APPLICATION_ERROR:
            tel.application_error = buf[p] if p < end else 0
            return
        if ci in _ALARM:
            tel.status = buf[p] if p < end else None
            return
    elif ci == 0x79:  # compact frame: format signature + full-frame CRC, values without DIF/VIF
        if p + 4 > end:
            raise HeaderError("compact frame needs its format signature and CRC", p, "tpl.compact")
        tel.signature = buf[p] | (buf[p + 1] << 8)
        tel.payload = bytes(buf[p + 4:end])
        return
    elif ci == 0x73 or ci == 0x77:
        _parse_fixed(buf, p, end, tel)
        return
    elif 0xA0 <= ci <= 0xB7:
        tel.payload = bytes(buf[p:end])  # manufacturer-specific CI: application data not standardised
        return
    else:
        raise UnsupportedCiError(f"CI 0x{ci:02X} carries no application data this decoder knows", pos)
    if ci in _APPLICATION_ERROR:
        tel.config = cfg
        tel.application_error = buf[p] if p < end else 0
        return
    tel.config = cfg
    mode = (cfg >> 8) & 0x1F
    if tel.kind == "mbus" and mode not in (0, 5, 7):
        # wired frames before EN 13757-3:2013 carry a "signature" here, not a security configuration
        tel.signature = cfg
        mode = 0
    tel.security_mode = mode
    if mode == 0:
        tel.records = parse_records(buf, p, end)
        _note_more(tel)
        return
    if mode == 5:
        blocks = (cfg >> 4) & 0x0F
        n = 16 * blocks if blocks else end - p
        if p + n > end:
            raise HeaderError(f"config word announces {blocks} encrypted blocks, {end - p} bytes left", p,
                              "tpl.encrypted_blocks")
        if key is None:
            tel.encrypted = True
            tel.payload = bytes(buf[p:end])
            return
        if m_field is None or a_field is None or tel.access_number is None:
            raise HeaderError("mode 5 needs the M and A fields for its IV", p, "tpl.mode5_iv")
        iv = security.mode5_iv(m_field, a_field, tel.access_number)
        plain = security.decrypt_mode5(key, iv, bytes(buf[p:p + n]), p)
        data = plain + bytes(buf[p + n:end])
        tel.records = parse_records(data, 0, len(data), p)
        _note_more(tel)
        return
    if mode == 7:
        if p >= end:
            raise HeaderError("mode 7 needs its configuration field extension", p, "tpl.cfe")
        p += 1  # configuration field extension (KDF selection, key id)
        blocks = (cfg >> 4) & 0x0F
        n = 16 * blocks if blocks else end - p
        if p + n > end:
            raise HeaderError(f"config word announces {blocks} encrypted blocks, {end - p} bytes left", p,
                              "tpl.encrypted_blocks")
        if key is None:
            tel.encrypted = True
            tel.payload = bytes(buf[p:end])
            return
        if afl_ctx is None or "counter" not in afl_ctx:
            raise HeaderError("mode 7 needs an AFL with message counter", p, "tpl.mode7_afl")
        meter_id = (a_field or b"\x00" * 4)[:4]
        if afl_ctx.get("mac") is not None:
            security.verify_afl_mac(key, afl_ctx["counter"], meter_id, afl_ctx["mac_prefix"] + bytes(buf[pos:end]),
                                    afl_ctx["mac"], afl_ctx["mac_offset"])
        plain = security.decrypt_mode7(key, afl_ctx["counter"], meter_id, bytes(buf[p:p + n]), p)
        data = plain + bytes(buf[p + n:end])
        tel.records = parse_records(data, 0, len(data), p)
        _note_more(tel)
        return
    raise UnsupportedSecurityError(f"security mode {mode} is not supported", pos + 1)


def _note_more(tel: Telegram) -> None:
    if tel.records and tel.records[-1].spec.function == "more_records_follow":
        tel.more_records_follow = True


def _parse_ell(buf: bytes, pos: int, end: int, tel: Telegram, key: bytes | None,
               m_field: bytes | None, a_field: bytes | None) -> None:
    ci = buf[pos]
    size = {0x8C: 2, 0x8D: 8, 0x8E: 10, 0x8F: 16}[ci]
    p = pos + 1
    if p + size > end:
        raise HeaderError(f"ELL header needs {size} bytes, {end - p} left", p, "tpl.ell")
    cc, acc = buf[p], buf[p + 1]
    tel.ell = {"ci": ci, "cc": cc, "acc": acc}
    tel.access_number = acc
    q = p + 2
    if ci in (0x8E, 0x8F):
        m_field, a_field = buf[q:q + 2], buf[q + 2:q + 8]
        tel.ell["m"] = m_field[0] | (m_field[1] << 8)
        q += 8
    if ci in (0x8D, 0x8F):
        sn = bytes(buf[q:q + 4])
        sn_value = int.from_bytes(sn, "little")
        enc = sn_value >> 29
        tel.ell["sn"] = sn_value
        tel.ell["encryption"] = enc  # 0 none, 1 AES-128-CTR
        q += 4
        if enc == 0:
            payload = security.check_ell_payload(bytes(buf[q:end]), q, False)
        elif enc == 1:
            if key is None:
                tel.encrypted = True
                tel.payload = bytes(buf[q:end])
                return
            if m_field is None or a_field is None:
                raise HeaderError("ELL AES-CTR needs the M and A fields", q, "tpl.ell_iv")
            ctr = security.ell_counter_block(m_field, a_field, cc, sn)
            payload = security.check_ell_payload(security.ell_crypt(key, ctr, bytes(buf[q:end])), q, True)
        else:
            raise UnsupportedSecurityError(f"ELL encryption {enc} is not supported", q - 4, "security.ell")
        if not payload:
            return
        parse_apl(payload, 0, len(payload), tel, key, m_field, a_field)
        return
    if q < end:
        parse_apl(buf, q, end, tel, key, m_field, a_field)


def _parse_afl(buf: bytes, pos: int, end: int, tel: Telegram, key: bytes | None,
               m_field: bytes | None, a_field: bytes | None) -> None:
    p = pos + 1
    if p + 3 > end:
        raise HeaderError("AFL header truncated", p, "tpl.afl")
    afll = buf[p]
    q = p + 1
    if q + afll > end or afll < 2:
        raise HeaderError(f"AFL length {afll} runs past the telegram", p, "tpl.afl")
    fcl = buf[q] | (buf[q + 1] << 8)
    r = q + 2
    ctx: dict[str, Any] = {"fcl": fcl}
    mac_prefix = b""
    limit = q + afll
    mcl = 0
    # FCL presence bits: MCLP 0x2000, MLP 0x1000, MCRP 0x0800, MACP 0x0400, KIP 0x0200 (EN 13757-7 / OMS)
    if fcl & 0x2000:
        mcl = buf[r]
        ctx["mcl"] = mcl
        mac_prefix += bytes((mcl,))
        r += 1
    if fcl & 0x0200:
        if r + 2 > limit:
            raise HeaderError("AFL key information truncated", r, "tpl.afl")
        ctx["ki"] = buf[r] | (buf[r + 1] << 8)
        r += 2
    if fcl & 0x0800:
        if r + 4 > limit:
            raise HeaderError("AFL message counter truncated", r, "tpl.afl")
        ctx["counter"] = int.from_bytes(buf[r:r + 4], "little")
        mac_prefix += bytes(buf[r:r + 4])
        r += 4
    if fcl & 0x0400:
        mac_len = _AT_MAC_LENGTH.get(mcl & 0x0F, 0)
        if not mac_len or r + mac_len > limit:
            raise HeaderError(f"AFL MAC with authentication type {mcl & 0x0F} not usable", r, "tpl.afl_mac")
        ctx["mac"] = bytes(buf[r:r + mac_len])
        ctx["mac_offset"] = r
        r += mac_len
    if fcl & 0x1000:
        if r + 2 > limit:
            raise HeaderError("AFL message length truncated", r, "tpl.afl")
        mac_prefix += bytes(buf[r:r + 2])
        r += 2
    if r > q + afll:
        raise HeaderError("AFL fields run past its length", r, "tpl.afl")
    ctx["mac_prefix"] = mac_prefix
    tel.afl = {k: v for k, v in ctx.items() if k in ("fcl", "mcl", "ki", "counter")}
    nxt = q + afll
    if nxt >= end:
        raise HeaderError("AFL without a following TPL", nxt, "tpl.afl")
    _parse_tpl(buf, nxt, end, tel, key, m_field, a_field, ctx)


# AFL authentication type (MCL bits 0-3) → MAC length in bytes (AES-CMAC truncated)
_AT_MAC_LENGTH = {3: 2, 4: 4, 5: 8, 6: 12, 7: 16}

_FIXED_SPECS: dict[tuple[int, int, int, bool], RecordSpec] = {}


def _fixed_spec(unit_code: int, storage: int, idx: int, bcd: bool) -> RecordSpec:
    k = (unit_code, storage, idx, bcd)
    spec = _FIXED_SPECS.get(k)
    if spec is None:
        from .records import _scale_conv
        quantity, unit, exp, mult = FIXED_UNITS[unit_code]
        spec = RecordSpec(bytes((unit_code,)))
        spec.dif, spec.vif = b"", bytes((unit_code,))
        spec.dtype, spec.length = (T_BCD if bcd else T_UINT), 4
        spec.function = "instantaneous"
        spec.storage, spec.tariff, spec.subunit, spec.dife_count = storage, 0, 0, 0
        spec.quantity, spec.unit, spec.exp, spec.mult = quantity, unit, exp, mult
        spec.conv = _scale_conv(exp, mult)
        spec.flags = ("fixed_structure",) + (("reserved_unit",) if quantity == "reserved" else ())
        _FIXED_SPECS[k] = spec
    return spec


def _parse_fixed(buf: bytes, p: int, end: int, tel: Telegram) -> None:
    """Fixed data structure (CI 0x73/0x77): id, access, status, medium/units, two 4-byte counters."""
    if p + 16 > end:
        raise HeaderError(f"fixed data structure needs 16 bytes, {end - p} left", p, "tpl.fixed")
    tel.id = bcd_id(buf[p:p + 4])
    tel.access_number, tel.status = buf[p + 4], buf[p + 5]
    b0, b1 = buf[p + 6], buf[p + 7]
    tel.medium = (b0 >> 6) | ((b1 >> 6) << 2)
    unit1, unit2 = b0 & 0x3F, b1 & 0x3F
    binary = bool(tel.status & 0x80)
    historic = 1 if tel.status & 0x40 else 0
    out = []
    for idx, unit_code, off in ((0, unit1, p + 8), (1, unit2, p + 12)):
        storage = historic
        if idx == 1 and unit_code == 0x3E:  # "same unit as counter 1, but historic"
            unit_code, storage = unit1, 1
        data = buf[off:off + 4]
        raw = int.from_bytes(data, "little") if binary else _bcd(data)
        out.append(Record(_fixed_spec(unit_code, storage, idx, not binary), raw, off))
    tel.records = out
