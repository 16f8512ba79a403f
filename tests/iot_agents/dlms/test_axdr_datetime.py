"""A-XDR: every type tag, BER lengths, compact arrays, limits; COSEM date/time/date-time special values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from flexmeter.iot_agents.dlms import axdr
from flexmeter.iot_agents.dlms.axdr import BitString, decode_data_exact, encode_data, float_to_decimal
from flexmeter.iot_agents.dlms.cosem_time import (
    DST_BEGIN,
    DST_END,
    LAST_DAY,
    SECOND_LAST_DAY,
    CosemDate,
    CosemDateTime,
    CosemTime,
)
from flexmeter.iot_agents.dlms.errors import (
    DecodeError,
    InvalidValueError,
    LengthError,
    TruncatedError,
    UnknownTagError,
)

H = bytes.fromhex

SCALARS = [
    ("00", (0, None)),
    ("0300", (3, False)), ("03ff", (3, True)),
    ("040c a5f0", (4, BitString(12, H("a5f0")))),
    ("05 fffffffe", (5, -2)), ("06 ffffffff", (6, 0xFFFFFFFF)),
    ("09 03 010203", (9, H("010203"))),
    ("0a 05 48454c4c4f", (10, "HELLO")),
    ("0c 03 e282ac", (12, "€")),
    ("0d 42", (13, 42)),
    ("0f 80", (15, -128)), ("10 8000", (16, -32768)), ("11 ff", (17, 255)), ("12 ffff", (18, 65535)),
    ("14 8000000000000000", (20, -(2 ** 63))), ("15 ffffffffffffffff", (21, 2 ** 64 - 1)),
    ("16 07", (22, 7)),
    ("17 3dcccccd", (23, 0.10000000149011612)), ("18 3fb999999999999a", (24, 0.1)),
    ("ff", (255, None)),
]


@pytest.mark.parametrize(("hexdata", "expected"), SCALARS, ids=[s[0][:2] for s in SCALARS])
def test_scalar_types_decode_and_encode(hexdata: str, expected: tuple[int, object]) -> None:
    raw = H(hexdata.replace(" ", ""))
    assert decode_data_exact(raw) == expected
    assert encode_data(expected) == raw


def test_float32_is_exact_decimal() -> None:
    assert float_to_decimal(23, decode_data_exact(H("173dcccccd"))[1]) == Decimal("0.1")
    assert float_to_decimal(24, 0.1) == Decimal("0.1")


def test_dates_and_times_typed() -> None:
    node = decode_data_exact(H("19" "07e8021d04" "0c1e0032" "ff88" "80"))
    assert node[0] == 25
    dt = node[1]
    assert dt.to_datetime() == datetime(2024, 2, 29, 12, 30, 0, 500000, timezone(timedelta(hours=2)))
    assert dt.status_flags == ["daylight_saving_active"]
    assert decode_data_exact(H("1a07e8021d04"))[1] == CosemDate(2024, 2, 29, 4)
    assert decode_data_exact(H("1b0c1e00ff"))[1] == CosemTime(12, 30, 0, None)
    for raw in ("19" "07e8021d04" "0c1e0032" "ff88" "80", "1a07e8021d04", "1b0c1e00ff"):
        assert encode_data(decode_data_exact(H(raw))) == H(raw)


def test_structures_arrays_and_long_ber_lengths() -> None:
    items = [(17, i % 256) for i in range(300)]
    raw = H("01820" + "12c") + b"".join(bytes((0x11, i % 256)) for i in range(300))
    assert decode_data_exact(raw) == (1, items)
    assert encode_data((1, items)) == raw
    long_octets = bytes(range(256)) * 2
    raw = H("09820200") + long_octets
    assert decode_data_exact(raw) == (9, long_octets)
    assert decode_data_exact(H("0981") + bytes((200,)) + bytes(200)) == (9, bytes(200))
    nested = (2, [(2, [(9, b"\x01\x00\x01\x08\x00\xff"), (6, 5)]), (1, [])])
    assert decode_data_exact(encode_data(nested)) == nested


def test_compact_array() -> None:
    # array of 3 structures {long-unsigned, octet-string}: description 02 02 12 09, contents
    contents = H("0001" "02aabb" "0002" "01cc" "0003" "00")
    raw = H("13" "020212" "09") + bytes((len(contents),)) + contents
    node = decode_data_exact(raw)
    assert node == (19, [(2, [(18, 1), (9, H("aabb"))]), (2, [(18, 2), (9, H("cc"))]),
                         (2, [(18, 3), (9, b"")])])
    # description "array of 2 unsigned" per row
    raw = H("13" "01" "0002" "11" "04" "01020304")
    assert decode_data_exact(raw) == (19, [(1, [(17, 1), (17, 2)]), (1, [(17, 3), (17, 4)])])


@pytest.mark.parametrize(("hexdata", "error"), [
    ("", TruncatedError), ("06 0102", TruncatedError), ("09 05 0102", TruncatedError),
    ("01 05 11", LengthError), ("02 8f", LengthError), ("09 80", LengthError),
    ("07", UnknownTagError), ("0a 01 ff", InvalidValueError), ("0d 1a", InvalidValueError),
    ("1a 07e80d0104", InvalidValueError), ("11 01 00", LengthError),
    ("13 00 05 0000000000", InvalidValueError), ("13 13", UnknownTagError),
])
def test_bad_data_raises_specific_errors(hexdata: str, error: type[DecodeError]) -> None:
    with pytest.raises(error) as info:
        decode_data_exact(H(hexdata.replace(" ", "")))
    assert info.value.rule


def test_nesting_is_bounded() -> None:
    with pytest.raises(LengthError):
        decode_data_exact(b"\x02\x01" * 200 + b"\x00")


def test_error_names_offset_and_rule() -> None:
    with pytest.raises(TruncatedError) as info:
        decode_data_exact(H("0202 1101 06aabb"))
    assert info.value.offset == 5
    assert info.value.to_dict()["error"] == "truncated"


# -- COSEM date-time ------------------------------------------------------------------------------------
def _dt(hexdata: str) -> CosemDateTime:
    return CosemDateTime.decode(H(hexdata))


def test_deviation_sign_convention() -> None:
    # Kaifa sends deviation -60 (FFC4) for CET: UTC = local + deviation, so the offset is +01:00.
    value = _dt("07e509160311231effffc400")
    assert value.deviation == -60
    assert value.to_datetime() == datetime(2021, 9, 22, 17, 35, 30, tzinfo=timezone(timedelta(hours=1)))
    as_offset = value.to_datetime(deviation_is_offset=True)
    assert as_offset is not None and as_offset.utcoffset() == timedelta(hours=-1)
    assert CosemDateTime.from_datetime(value.to_datetime() or datetime.now()).deviation == -60


def test_deviation_unspecified_gives_naive_datetime() -> None:
    value = _dt("07e30c1001073b28ff8000ff")
    assert value.deviation is None and value.clock_status is None
    assert value.to_datetime() == datetime(2019, 12, 16, 7, 59, 40)


def test_unspecified_fields_and_markers() -> None:
    value = _dt("ffff" "fe" "fe" "07" "02" "00" "00" "ff" "8000" "ff")
    assert value.date.year is None and value.date.month == DST_BEGIN and value.date.day == LAST_DAY
    assert value.to_datetime() is None
    view = value.to_json()
    assert view["date"]["month"] == "dst_begin" and view["date"]["day"] == "last_day"
    value = _dt("07e8" "fd" "fd" "ff" "ff" "ff" "ff" "ff" "8000" "ff")
    assert value.date.month == DST_END and value.date.day == SECOND_LAST_DAY
    assert value.time == CosemTime(None, None, None, None)
    assert value.to_datetime() is None
    assert value.to_json()["date"]["day"] == "second_last_day"


def test_clock_status_bits() -> None:
    value = _dt("07e801010100000000ff008f")
    assert value.status_flags == ["invalid", "doubtful", "different_clock_base", "invalid_clock_status",
                                  "daylight_saving_active"]


@pytest.mark.parametrize("hexdata", [
    "07e80d0101000000ff800000",  # month 13
    "07e8010001000000ff800000",  # day 0
    "07e8010108000000ff800000",  # day of week 8
    "07e8010101180000ff800000",  # hour 24
    "07e80101013c0000ff800000",  # minute 60
    "07e8010101003c00ff800000",  # second 60
    "07e801010100000064800000",  # hundredths 100
    "07e8010101000000ff02d100",  # deviation 721
])
def test_invalid_date_time_fields(hexdata: str) -> None:
    with pytest.raises(InvalidValueError):
        _dt(hexdata)


def test_impossible_calendar_date_is_not_an_instant() -> None:
    assert _dt("07e7021e04000000ff800000").to_datetime() is None  # 30 February


def test_round_trip_encoding() -> None:
    for raw in ("07e509160311231effffc400", "ffff" "fe" "fe" "07" "02" "00" "00" "ff" "8000" "ff"):
        assert _dt(raw).encode() == H(raw)
    assert axdr.encode_length(0x1234) == H("821234")
