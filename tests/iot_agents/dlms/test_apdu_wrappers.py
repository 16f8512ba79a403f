"""APDUs (notification forms, event, GET/SET/ACTION responses, profile-generic reads) and the
HDLC / DLMS-UDP wrappers, built with our encoders and decoded back."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from flexmeter.iot_agents.dlms import apdu as A
from flexmeter.iot_agents.dlms.axdr import encode_data
from flexmeter.iot_agents.dlms.cosem_time import CosemDateTime
from flexmeter.iot_agents.dlms.decoder import decode_dlms
from flexmeter.iot_agents.dlms.errors import (
    ChecksumError,
    DecodeError,
    FramingError,
    InvalidValueError,
    LengthError,
    TruncatedError,
    UnknownTagError,
)
from flexmeter.iot_agents.dlms.profile_generic import buffer_rows, capture_objects, join_blocks
from flexmeter.iot_agents.dlms.wrappers import (
    HdlcReassembler,
    decode_hdlc_frame,
    encode_hdlc_frame,
    segment_hdlc,
    split_hdlc_stream,
    unwrap_udp,
    wrap_udp,
)

H = bytes.fromhex
CET = timezone(timedelta(hours=1))
STAMP = CosemDateTime.from_datetime(datetime(2024, 3, 1, 12, 0, 5, tzinfo=CET))
BODY = (2, [(9, H("0100010700ff")), (6, 1234), (2, [(15, -1), (22, 27)])])
SELF_DESCRIBING = (1, [BODY])


@pytest.mark.parametrize("form", ["absent", "length", "typed"])
def test_data_notification_date_time_forms(form: str) -> None:
    raw = A.build_data_notification(SELF_DESCRIBING, 7, None if form == "absent" else STAMP, form)
    note = A.decode_apdu(raw)
    assert isinstance(note, A.DataNotification)
    assert note.date_time_form == form and note.invoke_id == 7 and note.body == SELF_DESCRIBING
    if form != "absent":
        assert note.date_time is not None
        assert note.date_time.to_datetime() == datetime(2024, 3, 1, 12, 0, 5, tzinfo=CET)
    msg = decode_dlms(raw)
    assert msg.values["1-0:1.7.0.255"].value == Decimal("123.4")
    assert msg.values["1-0:1.7.0.255"].unit == "W"


def test_data_notification_bad_date_time_length() -> None:
    with pytest.raises(InvalidValueError):
        A.decode_apdu(H("0f00000001" "05" "0102030405" "00"))


def test_event_notification() -> None:
    raw = (H("c2" "01" "0c") + STAMP.encode() + H("0001" "0000600b00ff" "02") + encode_data((22, 3)))
    event = A.decode_apdu(raw)
    assert isinstance(event, A.EventNotification)
    assert (event.class_id, event.instance, event.attribute_id) == (1, "0-0:96.11.0.255", 2)
    assert event.value == (22, 3)
    msg = decode_dlms(raw)
    assert msg.timestamp == datetime(2024, 3, 1, 12, 0, 5, tzinfo=CET)
    assert msg.values["0-0:96.11.0.255"].value == Decimal(3)
    assert isinstance(A.decode_apdu(H("c2000001" "0000600b00ff" "02" "1603")), A.EventNotification)


def test_get_responses() -> None:
    normal = A.decode_apdu(H("c401c100") + encode_data((6, 42)))
    assert isinstance(normal, A.GetResponse) and normal.results[0].data == (6, 42)
    refused = A.decode_apdu(H("c401c10104"))
    assert isinstance(refused, A.GetResponse) and refused.results[0].access_result == 4
    assert refused.to_json()["results"] == [{"access_result": "object-undefined"}]
    listed = A.decode_apdu(H("c403c102" "00" "1100" "0103"))
    assert isinstance(listed, A.GetResponse)
    assert [r.data for r in listed.results] == [(17, 0), None]
    assert listed.results[1].access_result == 3


def test_set_and_action_responses() -> None:
    assert A.decode_apdu(H("c501c100")).results == [0]  # type: ignore[union-attr]
    block = A.decode_apdu(H("c502c100000005"))
    assert isinstance(block, A.SetResponse) and block.block_number == 5
    last = A.decode_apdu(H("c503c10000000006"))
    assert isinstance(last, A.SetResponse) and (last.results, last.block_number) == ([0], 6)
    with_list = A.decode_apdu(H("c505c103000300"))
    assert isinstance(with_list, A.SetResponse) and with_list.results == [0, 3, 0]
    assert A.decode_apdu(H("c504c102000300000009")).block_number == 9  # type: ignore[union-attr]
    action = A.decode_apdu(H("c701c10001" "00" "1101"))
    assert isinstance(action, A.ActionResponse)
    assert action.results[0].result == 0 and action.results[0].return_data is not None
    assert action.results[0].return_data.data == (17, 1)
    assert A.decode_apdu(H("c701c10b00")).results[0].result == 11  # type: ignore[union-attr]
    pblock = A.decode_apdu(H("c702c1ff00000001" "03" "112233"))
    assert isinstance(pblock, A.ActionResponse) and pblock.raw_data == H("112233") and pblock.last_block
    assert A.decode_apdu(H("c704c100000002")).block_number == 2  # type: ignore[union-attr]
    assert len(A.decode_apdu(H("c703c102" "0000" "0301" "0103")).results) == 2  # type: ignore[union-attr]
    assert isinstance(A.decode_apdu(H("d80102")), A.ExceptionResponse)


@pytest.mark.parametrize(("hexdata", "error"), [
    ("c4", TruncatedError), ("c409c100", UnknownTagError), ("c401c105", UnknownTagError),
    ("c401c10005", TruncatedError),
    ("c401c1001100ff", LengthError), ("c5", TruncatedError), ("c703c1ff", LengthError),
    ("ab00", UnknownTagError), ("0f0000", TruncatedError),
])
def test_bad_apdus(hexdata: str, error: type[DecodeError]) -> None:
    with pytest.raises(error):
        A.decode_apdu(H(hexdata))


def test_profile_generic_read_with_datablocks() -> None:
    columns = (1, [
        (2, [(18, 8), (9, H("0000010000ff")), (15, 2), (18, 0)]),
        (2, [(18, 3), (9, H("0100010800ff")), (15, 2), (18, 0)]),
        (2, [(18, 1), (9, H("0000600a01ff")), (15, 2), (18, 0)]),
    ])
    t1 = CosemDateTime.from_datetime(datetime(2024, 3, 1, 12, 15, tzinfo=CET))
    t2 = CosemDateTime.from_datetime(datetime(2024, 3, 1, 12, 30, tzinfo=CET))
    buffer = (1, [(2, [(9, t1.encode()), (6, 1000), (17, 0)]), (2, [(9, t2.encode()), (6, 1250), (17, 8)])])
    raw = encode_data(buffer)
    half = len(raw) // 2
    blocks = [A.decode_apdu(H("c402c100") + H("00000001") + H("00") + bytes((half,)) + raw[:half]),
              A.decode_apdu(H("c402c1ff") + H("00000002") + H("00") + bytes((len(raw) - half,)) + raw[half:])]
    joined = join_blocks(b for b in blocks if isinstance(b, A.GetResponse))
    assert joined == buffer
    rows = buffer_rows(capture_objects(columns), joined, {"1-0:1.8.0.255": (1, "Wh")})
    assert [r["1-0:1.8.0.255"].value for r in rows] == [Decimal(10000), Decimal(12500)]
    assert rows[1]["0-0:1.0.0.255"].value == datetime(2024, 3, 1, 12, 30, tzinfo=CET)
    with pytest.raises(FramingError):
        join_blocks([b for b in blocks[1:] if isinstance(b, A.GetResponse)])


def test_udp_wrapper() -> None:
    apdu = A.build_data_notification(SELF_DESCRIBING)
    wrapped = wrap_udp(apdu, 1, 103)
    header, inner = unwrap_udp(wrapped)
    assert (header.source_wport, header.destination_wport, inner) == (1, 103, apdu)
    with pytest.raises(LengthError):
        unwrap_udp(wrapped[:-1])
    with pytest.raises(FramingError):
        unwrap_udp(b"\x00\x02" + wrapped[2:])


def test_hdlc_segmentation_and_checksums() -> None:
    apdu = A.build_data_notification((1, [BODY] * 40), 1, STAMP)
    frames = segment_hdlc(b"\xe6\xe7\x00" + apdu, max_info=100)
    assert len(frames) > 3
    reassembler = HdlcReassembler()
    outputs = [reassembler.feed(decode_hdlc_frame(f)) for f in frames]
    assert outputs[:-1] == [None] * (len(frames) - 1)
    assert outputs[-1] == b"\xe6\xe7\x00" + apdu
    # As one stream with shared flags, through the top-level decoder.
    stream = frames[0] + b"".join(f[1:] for f in frames[1:])
    assert split_hdlc_stream(stream) == frames
    msg = decode_dlms(stream)
    assert len(msg.values) == 1 and msg.layers[0]["segmented"] is True
    bad_fcs = bytearray(frames[0])
    bad_fcs[-2] ^= 0xFF
    with pytest.raises(ChecksumError):
        decode_hdlc_frame(bytes(bad_fcs))
    bad_hcs = bytearray(frames[0])
    bad_hcs[7] ^= 0xFF
    with pytest.raises(ChecksumError):
        decode_hdlc_frame(bytes(bad_hcs))
    with pytest.raises(TruncatedError):
        decode_dlms(b"".join(frames[:-1]))


def test_hdlc_addresses_and_kinds() -> None:
    frame = decode_hdlc_frame(encode_hdlc_frame(b"", destination=1, source=16, control=0x93))
    assert frame.frame_kind == "SNRM" and frame.info == b""
    assert frame.destination == (1, None) and frame.source == (16, None)
    with pytest.raises(LengthError):
        decode_hdlc_frame(encode_hdlc_frame(b"\x01\x02")[:-2] + b"\x7e")
