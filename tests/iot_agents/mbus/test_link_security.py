"""Link layers (wired checksum/lengths, wM-Bus format A/B CRCs) and OMS security, both directions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from flexmeter.iot_agents.mbus import decode_mbus, decode_wmbus
from flexmeter.iot_agents.mbus.crc import crc16_en13757
from flexmeter.iot_agents.mbus.encode import (
    build_rsp_ud,
    build_wmbus,
    build_wmbus_ell,
    build_wmbus_mode7,
    encode_record,
)
from flexmeter.iot_agents.mbus.errors import (
    ChecksumError,
    CrcError,
    DecodeError,
    FrameError,
    IntegrityError,
    LengthError,
    MacError,
    UnsupportedCiError,
    WrongKeyError,
)
from flexmeter.iot_agents.mbus.link import build_short_frame

KEY = bytes(range(1, 17))
RECORDS = (encode_record(b"\x13", 123456) + encode_record(b"\x06", 42, data_field=0x0C, storage=5, tariff=2)
           + encode_record(b"\x6d", 0x151F3732, data_field=0x04))
METER: dict[str, Any] = {"meter_id": "12345678", "manufacturer": "ELS", "version": 51, "medium": 7}


def test_crc_check_value() -> None:
    assert crc16_en13757(b"123456789") == 0xC2B7  # CRC-16/EN-13757 check value


def test_ack_short_and_control_frames() -> None:
    assert decode_mbus("E5").frame_type == "ack"
    short = decode_mbus(build_short_frame(0x5B, 0x01))
    assert (short.frame_type, short.c_field, short.address) == ("short", 0x5B, 0x01)
    assert decode_mbus("68 03 03 68 53 FE 51 A2 16").frame_type == "control"


@pytest.mark.parametrize(("frame", "error"), [
    ("", FrameError), ("E5E5", LengthError), ("10 5B 01 5D 16", ChecksumError), ("10 5B 01 5C 17", FrameError),
    ("68 04 05 68 08 01 72 00 7B 16", LengthError), ("68 04 04 68 08 01 72 00 7C 16", ChecksumError),
    ("68 04 04 68 08 01 72 00 7B 15", FrameError), ("68 04 04 68 08 01 72 00 7B", LengthError),
    ("69 04 04 68 08 01 72 00 7B 16", FrameError), ("68 04 04 68 08 01 55 00 5E 16", UnsupportedCiError),
    ("zz", FrameError),
])
def test_wired_frame_errors(frame: str, error: type[DecodeError]) -> None:
    with pytest.raises(error):
        decode_mbus(frame)


def test_rsp_ud_roundtrip() -> None:
    frame = build_rsp_ud(address=3, access_number=7, status=0, records=RECORDS, **METER)
    tel = decode_mbus(frame)
    assert (tel.address, tel.manufacturer, tel.id, tel.version, tel.medium) == (3, "ELS", "12345678", 51, 7)
    assert [r.value for r in tel.records][:2] == [Decimal("123.456"), 42000]
    assert (tel.records[1].storage, tel.records[1].tariff) == (5, 2)


@pytest.mark.parametrize("fmt", ["A", "B", "none"])
def test_wmbus_formats_roundtrip(fmt: str) -> None:
    long_records = RECORDS * 12  # > 125 bytes: format B needs its third block
    for recs in (RECORDS, long_records):
        data = build_wmbus(access_number=9, status=0, records=recs, frame_format=fmt, **METER)
        tel = decode_wmbus(data)
        assert tel.frame_format == fmt and len(tel.records) == len(recs) // len(RECORDS) * 3


@pytest.mark.parametrize("fmt", ["A", "B"])
def test_wmbus_crc_errors(fmt: str) -> None:
    data = bytearray(build_wmbus(access_number=9, status=0, records=RECORDS * 12, frame_format=fmt, **METER))
    data[20] ^= 0x01
    with pytest.raises(CrcError):
        decode_wmbus(bytes(data), frame_format=fmt)


def test_mode5_roundtrip_and_errors() -> None:
    data = build_wmbus(access_number=9, status=0, records=RECORDS, key=KEY, **METER)
    tel = decode_wmbus(data, key=KEY)
    assert tel.security_mode == 5 and len(tel.records) == 3 and not tel.encrypted
    no_key = decode_wmbus(data)
    assert no_key.encrypted and no_key.records == []
    with pytest.raises(WrongKeyError):
        decode_wmbus(data, key=bytes(16))


def test_mode7_roundtrip_mac_and_key() -> None:
    data = build_wmbus_mode7(access_number=9, status=0, records=RECORDS, key=KEY, counter=1234, **METER)
    tel = decode_wmbus(data, key=KEY)
    assert tel.security_mode == 7 and tel.afl is not None and tel.afl["counter"] == 1234
    assert [r.value for r in tel.records][:2] == [Decimal("123.456"), 42000]
    with pytest.raises(MacError):  # a wrong key fails the MAC first: nothing is decrypted
        decode_wmbus(data, key=bytes(16))
    plain = bytearray(build_wmbus_mode7(access_number=9, status=0, records=RECORDS, key=KEY, counter=1234,
                                        frame_format="none", **METER))
    plain[-1] ^= 0x40  # altered ciphertext
    with pytest.raises(MacError):
        decode_wmbus(bytes(plain), key=KEY)


def test_ell_aes_ctr_roundtrip_and_errors() -> None:
    data = build_wmbus_ell(access_number=9, records=RECORDS, key=KEY, session=77, **METER)
    tel = decode_wmbus(data, key=KEY)
    assert tel.ell is not None and tel.ell["ci"] == 0x8D and tel.ell["encryption"] == 1
    assert len(tel.records) == 3
    with pytest.raises(WrongKeyError):
        decode_wmbus(data, key=bytes(16))
    assert decode_wmbus(data).encrypted


def test_distinct_security_errors() -> None:
    assert len({WrongKeyError, IntegrityError, MacError}) == 3
    assert not issubclass(WrongKeyError, MacError) and not issubclass(MacError, WrongKeyError)
    assert not issubclass(IntegrityError, WrongKeyError)
    # encrypted part not whole AES blocks → integrity error (a failed check, not a key question)
    data = bytearray(build_wmbus(access_number=9, status=0, records=RECORDS, key=KEY, frame_format="none",
                                 **METER))
    data[13] = 0x00  # config: mode 5, 0 blocks → all remaining bytes, then cut one byte
    data = data[:-1]
    data[0] = len(data) - 1
    with pytest.raises(IntegrityError):
        decode_wmbus(bytes(data), key=KEY)


def _telegram(body: bytes) -> bytes:
    return bytes((len(body),)) + body


def test_long_tpl_identity_differs_from_link_and_keys_the_iv() -> None:
    """A repeater/radio adapter (link M/A) carrying a meter's CI 0x72 telegram: the meter identity is the
    TPL's, the link identity is kept apart, and the mode 5 IV uses the TPL's M and A fields."""
    from flexmeter.iot_agents.mbus import security
    from flexmeter.iot_agents.mbus.telegram import manufacturer_value
    link_m = manufacturer_value("RAD").to_bytes(2, "little")
    link_a = bytes.fromhex("99999999") + bytes((1, 0x37))
    meter_m = manufacturer_value("KAM").to_bytes(2, "little")
    meter_a = bytes.fromhex("78563412") + bytes((0x1B, 0x16))
    plain = b"\x2f\x2f" + RECORDS
    plain += b"\x2f" * (-len(plain) % 16)
    enc = security.encrypt_mode5(KEY, security.mode5_iv(meter_m, meter_a, 0x21), plain)
    cfg = 0x0500 | ((len(plain) // 16) << 4)
    tpl = bytes((0x72,)) + meter_a[:4] + meter_m + meter_a[4:] + bytes((0x21, 0x00, cfg & 0xFF, cfg >> 8)) + enc
    tel = decode_wmbus(_telegram(bytes((0x44,)) + link_m + link_a + tpl), key=KEY)
    assert (tel.manufacturer, tel.id, tel.version, tel.medium) == ("KAM", "12345678", 0x1B, 0x16)
    assert (tel.link_manufacturer, tel.link_id, tel.link_medium) == ("RAD", "99999999", 0x37)
    assert len(tel.records) == 3 and tel.access_number == 0x21


def test_ell_short_and_compact_frame() -> None:
    m = bytes.fromhex("2D2C")
    a = bytes.fromhex("78563412") + bytes((1, 7))
    # CI 0x8C (ELL: CC, ACC) then CI 0x7A and plain records
    tel = decode_wmbus(_telegram(bytes((0x44,)) + m + a + bytes((0x8C, 0x20, 0x55, 0x7A, 0x55, 0, 0, 0)) + RECORDS))
    assert tel.ell == {"ci": 0x8C, "cc": 0x20, "acc": 0x55} and tel.ci == 0x7A and len(tel.records) == 3
    # CI 0x79: compact frame, values without DIF/VIF: header and raw payload only
    tel = decode_wmbus(_telegram(bytes((0x44,)) + m + a + bytes((0x79, 0x34, 0x12, 0xAA, 0xBB, 1, 2, 3))))
    assert tel.signature == 0x1234 and tel.payload == b"\x01\x02\x03" and tel.records == []


def test_json_dump_is_exact() -> None:
    from flexmeter.iot_agents.mbus.jsonout import dumps
    text = dumps({"v": Decimal("0.1000000000000000000001"), "d": [Decimal("-3E-7")], "s": "x"})
    assert text == '{"v": 0.1000000000000000000001, "d": [-0.0000003], "s": "x"}'


def test_ell_repeated_telegram_decrypts() -> None:
    """A repeater sets the CC hop-count bit (0x10); the AES-CTR counter block uses CC with it cleared."""
    data = bytearray(build_wmbus_ell(access_number=9, records=RECORDS, key=KEY, session=77, frame_format="none",
                                     **METER))
    data[11] |= 0x10  # CC after CI 0x8D
    tel = decode_wmbus(bytes(data), key=KEY)
    assert tel.ell is not None and tel.ell["cc"] & 0x10 and len(tel.records) == 3


def test_encode_value_picks_the_vif() -> None:
    from flexmeter.iot_agents.mbus.encode import encode_value, vif_for
    from flexmeter.iot_agents.mbus.records import parse_records
    assert vif_for("energy", "Wh", 3) == b"\x06" and vif_for("voltage", "V", -1) == b"\xfd\x48"
    data = (encode_value("energy", 1234000, "Wh", 3, data_field=0x0C)
            + encode_value("flow_temperature", Decimal("71.3"), "°C", -1, data_field=0x02)
            + encode_value("volume", Decimal("12.345"), "m³", -3, storage=1))
    values = [(r.quantity, r.value, r.unit, r.storage) for r in parse_records(data, 0, len(data))]
    assert values == [("energy", 1234000, "Wh", 0), ("flow_temperature", Decimal("71.3"), "°C", 0),
                      ("volume", Decimal("12.345"), "m³", 1)]
    with pytest.raises(ValueError):
        encode_value("volume", Decimal("12.3456"), "m³", -3)
