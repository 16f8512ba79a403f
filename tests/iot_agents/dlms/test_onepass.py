"""The one-pass paths (bytes → tree and values at once, precomputed profile plans) against the general
path (A-XDR tree, then values by OBIS from the tree): equal trees and equal values, digit for digit, on
the whole corpus and on generated lists; where the general path raises, the one-pass path steps aside.
"""

from __future__ import annotations

import json
import struct
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexmeter.iot_agents.dlms import axdr
from flexmeter.iot_agents.dlms.apdu import build_data_notification, decode_apdu
from flexmeter.iot_agents.dlms.axdr import decode_data_exact, encode_data
from flexmeter.iot_agents.dlms.cosem_time import CosemDateTime
from flexmeter.iot_agents.dlms.decoder import Keys, decode_dlms
from flexmeter.iot_agents.dlms.errors import DecodeError
from flexmeter.iot_agents.dlms.onepass import flat_push, self_describing_push
from flexmeter.iot_agents.dlms.profiles import default_registry
from flexmeter.iot_agents.dlms.push import MAKERS, ObisValue, PushValues, _number, push_values

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus"
HAN = [bytes.fromhex(v["hex"]) for v in json.loads((CORPUS / "amshan/han_dlms/han_frames.json").read_text())]
_PUSH = json.loads((CORPUS / "dlms-cosem-21.3.2/vectors.json").read_text())["general_glo_ciphering_push"]
GGC = [bytes.fromhex(m["udp_wrapped_hex"]) for m in _PUSH["messages"]]
KEYS = Keys(_PUSH["encryption_key_ascii"].encode(), _PUSH["authentication_key_ascii"].encode())

PROPS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def exact(value: ObisValue) -> tuple[Any, ...]:
    """Every field, with the Decimal's digits and exponent (``==`` alone says 1.0 == 1.00)."""
    number = value.value.as_tuple() if isinstance(value.value, Decimal) else value.value
    return (value.obis, type(value.value), number, value.unit, value.scaler, type(value.raw), value.raw,
            value.cosem_datetime)


def exact_push(push: PushValues) -> tuple[Any, ...]:
    return (push.layout, push.profile, push.manufacturer, push.list_version,
            [(k, exact(v)) for k, v in push.values.items()])


def general(body_bytes: bytes) -> tuple[axdr.Data, PushValues]:
    """The general path: the A-XDR tree, then the values from the tree."""
    body = decode_data_exact(body_bytes)
    return body, push_values(body)


def body_of(buf: bytes) -> bytes:
    """The push body of an LLC PDU / data-notification / bare body."""
    if buf[:3] == b"\xe6\xe7\x00":
        buf = buf[3:]
    if buf[0] == 0x0F:
        note = decode_apdu(buf)
        return encode_data(note.body)  # type: ignore[union-attr]
    return buf


@pytest.mark.parametrize("index", range(len(HAN)))
def test_han_corpus_one_pass_equals_tree_path(index: int) -> None:
    buf = HAN[index]
    msg = decode_dlms(buf)
    assert msg.push is not None
    body, push = general(body_of(buf))
    assert msg.body == body
    assert exact_push(msg.push) == exact_push(push)
    found = self_describing_push(body_of(buf), 0, default_registry())
    if push.layout == "self_describing":
        assert found is not None, "the corpus's self-describing lists take the one-pass path"
        assert found[0] == body and exact_push(found[1]) == exact_push(push)
    else:
        assert found is None


def test_ggc_pushes_one_pass_equals_tree_path() -> None:
    for buf in GGC:
        msg = decode_dlms(buf, KEYS)
        assert msg.push is not None and msg.body is not None
        body, push = general(encode_data(msg.body))
        assert msg.body == body and exact_push(msg.push) == exact_push(push)


@given(st.integers(-(2 ** 63), 2 ** 64 - 1), st.integers(-128, 127))
@PROPS
def test_makers_equal_the_scaled_number(raw: int, scaler: int) -> None:
    made, reference = MAKERS[scaler](raw), _number(raw, scaler)
    assert made.as_tuple() == reference.as_tuple()


# -- generated self-describing lists ------------------------------------------------------------------
_FIXED_TAGS = [5, 6, 15, 16, 17, 18, 20, 21, 22, 23, 24]
_RANGES = {5: (-(2 ** 31), 2 ** 31 - 1), 6: (0, 2 ** 32 - 1), 15: (-128, 127), 16: (-(2 ** 15), 2 ** 15 - 1),
           17: (0, 255), 18: (0, 2 ** 16 - 1), 20: (-(2 ** 63), 2 ** 63 - 1), 21: (0, 2 ** 64 - 1), 22: (0, 255)}
_OBIS = st.sampled_from([bytes([1, 0, c, d, 0, 255]) for c in (1, 2, 31, 32, 71) for d in (7, 8)]
                        + [bytes([0, 0, 1, 0, 0, 255]), bytes([1, 1, 0, 2, 129, 255]), bytes([0, 0, 96, 1, 0, 255])])


@st.composite
def value_node(draw: st.DrawFn) -> axdr.Data:
    kind = draw(st.sampled_from(["int", "int", "int", "float", "octet", "clock", "visible", "utf8", "null", "bool"]))
    if kind == "int":
        tag = draw(st.sampled_from([t for t in _FIXED_TAGS if t in _RANGES]))
        return tag, draw(st.integers(*_RANGES[tag]))
    if kind == "float":
        tag = draw(st.sampled_from([23, 24]))
        value = draw(st.floats(allow_nan=False, allow_infinity=False, width=32 if tag == 23 else 64))
        return tag, struct.unpack(">f", struct.pack(">f", value))[0] if tag == 23 else value
    if kind == "octet":
        return 9, draw(st.binary(max_size=draw(st.sampled_from([6, 20, 200]))))
    if kind == "clock":
        return 9, bytes.fromhex(draw(st.sampled_from(["07e50a1b03120000ff800000", "07e50a1b0312000000ffc400",
                                                      "ffffffffffffffffff800000"])))
    if kind == "visible":
        return 10, draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30))
    if kind == "utf8":
        return 12, draw(st.text(max_size=10))
    if kind == "null":
        return 0, None
    return 3, draw(st.booleans())


@st.composite
def self_describing(draw: st.DrawFn) -> bytes:
    elements = []
    for _ in range(draw(st.integers(1, 12))):
        fields: list[axdr.Data] = [(9, draw(_OBIS)), draw(value_node())]
        if draw(st.booleans()):
            fields.append((2, [(15, draw(st.integers(-128, 127))), (22, draw(st.integers(0, 255)))]))
        elements.append((2, fields))
    if draw(st.booleans()):
        elements.insert(0, (2, [(9, bytes([1, 1, 0, 2, 129, 255])),
                                (10, draw(st.sampled_from(["AIDON_V0001", "KFM_001", "other"])))]))
    return encode_data((draw(st.sampled_from([1, 2])), elements))


def _same_as_general(body: bytes) -> None:
    found = self_describing_push(body, 0, default_registry())
    try:
        reference = general(body)
    except DecodeError:
        assert found is None, "the one-pass path accepted what the general path rejects"
        return
    if found is not None:
        assert found[0] == reference[0]
        assert exact_push(found[1]) == exact_push(reference[1])


@given(self_describing())
@PROPS
def test_generated_self_describing_lists_equal_the_tree_path(body: bytes) -> None:
    found = self_describing_push(body, 0, default_registry())
    tree, push = general(body)
    if found is None:  # only shapes outside the one-pass path (booleans, long strings)
        assert any(t in (3,) or (t in (9, 10, 12) and len(v if isinstance(v, bytes) else v.encode()) > 127)
                   for _, fields in tree[1] for t, v in fields[1:2])
        return
    assert found[0] == tree and exact_push(found[1]) == exact_push(push)
    for date_time in (None, CosemDateTime.decode(bytes.fromhex("07e50a1b03120000ff800000"))):
        note = build_data_notification(tree, invoke_id=3, date_time=date_time)
        msg = decode_dlms(note)
        assert msg.body == tree and msg.push is not None and exact_push(msg.push) == exact_push(push)


@given(self_describing(), st.data())
@PROPS
def test_mutated_self_describing_lists_take_the_general_path_or_agree(body: bytes, data: st.DataObject) -> None:
    buf = bytearray(body)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(buf) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            buf[at] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del buf[max(at, 1):]
        else:
            buf[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    _same_as_general(bytes(buf))


# -- generated interleaved and positional lists (structures of scalars) -------------------------------
_VERSIONS = st.sampled_from([(10, "Kamstrup_V0001"), (9, b"KFM_001"), (10, "KFM_001"), (10, "other")])
_SCALAR = value_node().filter(lambda node: node[0] not in (3, 12) and not (node[0] == 9 and len(node[1]) > 127))


@st.composite
def flat_list(draw: st.DrawFn) -> bytes:
    items: list[axdr.Data] = []
    shape = draw(st.sampled_from(["interleaved", "interleaved", "positional", "raw"]))
    if draw(st.booleans()):
        items.append(draw(_VERSIONS))
    if shape == "interleaved":
        for _ in range(draw(st.integers(1, 10))):
            items += [(0, None), (0, None)] if draw(st.integers(0, 5)) == 0 else [(9, draw(_OBIS)), draw(_SCALAR)]
    elif shape == "positional":
        items += [(6, draw(st.integers(0, 2 ** 32 - 1))) for _ in range(draw(st.sampled_from([0, 1, 8, 12, 13, 17])))]
    else:
        items += draw(st.lists(_SCALAR, min_size=0 if items else 1, max_size=14))
    return encode_data((2, items))


@given(flat_list())
@PROPS
def test_generated_flat_lists_equal_the_tree_path(body: bytes) -> None:
    found = flat_push(body, 0, default_registry())
    try:
        tree, push = general(body)
    except DecodeError:
        assert found is None
        return
    if not tree[1]:  # an empty structure is a "single" body: the general path
        assert found is None
        return
    assert found is not None, "structures of short scalars take the one-pass path"
    assert found[0] == tree and exact_push(found[1]) == exact_push(push)


@given(flat_list(), st.data())
@PROPS
def test_mutated_flat_lists_take_the_general_path_or_agree(body: bytes, data: st.DataObject) -> None:
    buf = bytearray(body)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(buf) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            buf[at] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del buf[max(at, 1):]
        else:
            buf[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    found = flat_push(bytes(buf), 0, default_registry())
    try:
        tree, push = general(bytes(buf))
    except DecodeError:
        assert found is None, "the one-pass path accepted what the general path rejects"
        return
    if found is not None:
        assert found[0] == tree and exact_push(found[1]) == exact_push(push)
