"""Compiled push shapes (shapes.py) against the general path: a shape compiled from one body gives, on any
body of the same length, either ``None`` (the caller takes the general path) or exactly the general
path's tree and values — on the corpus, on generated lists and on mutated ones (values changed, skeleton
bytes changed, both)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flexmeter.iot_agents.dlms import axdr
from flexmeter.iot_agents.dlms.apdu import build_data_notification
from flexmeter.iot_agents.dlms.axdr import decode_data_exact
from flexmeter.iot_agents.dlms.decoder import decode_dlms
from flexmeter.iot_agents.dlms.errors import DecodeError
from flexmeter.iot_agents.dlms.profiles import ProfileRegistry
from flexmeter.iot_agents.dlms.push import PushValues, push_values
from flexmeter.iot_agents.dlms.shapes import MAX_ATTEMPTS_PER_LENGTH, MAX_PER_LENGTH, compile_shape
from tests.iot_agents.dlms.test_onepass import PROPS, body_of, exact_push, flat_list, self_describing

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus"
HAN = [bytes.fromhex(v["hex"]) for v in json.loads((CORPUS / "amshan/han_dlms/han_frames.json").read_text())]
REGISTRY = ProfileRegistry(compile_shapes=False)  # the general path's reference (never compiles)


def general(body: bytes) -> tuple[axdr.Data, PushValues]:
    tree = decode_data_exact(body)
    return tree, push_values(tree, REGISTRY)


def agrees(run: object, body: bytes) -> bool:
    """The shape's answer on ``body`` is None or the general path's (which must not raise then)."""
    found = run(body, 0)  # type: ignore[operator]
    try:
        reference = general(body)
    except DecodeError:
        assert found is None, "a compiled shape accepted what the general path rejects"
        return False
    if found is None:
        return False
    assert found[0] == reference[0]
    assert exact_push(found[1]) == exact_push(reference[1])
    return True


@pytest.mark.parametrize("index", range(len(HAN)))
def test_han_corpus_compiles_and_the_compiled_path_equals_the_general_one(index: int) -> None:
    registry = ProfileRegistry()
    buf = HAN[index]
    first, second, third = (decode_dlms(buf, registry=registry) for _ in range(3))
    assert registry.shapes, "a corpus body seen twice is compiled"
    body = body_of(buf)
    tree, push = general(body)
    for msg in (first, second, third):
        assert msg.body == tree and msg.push is not None and exact_push(msg.push) == exact_push(push)
    (run,) = registry.shapes[len(body)]
    assert agrees(run, body)


def test_a_changed_value_takes_the_compiled_path_a_changed_obis_code_does_not() -> None:
    registry = ProfileRegistry()
    aidon = HAN[1]  # the notification body of Aidon's list 3
    tree, push = general(aidon)
    run = compile_shape(aidon, 0, tree, push, registry)
    assert run is not None
    power = aidon.index(bytes([1, 0, 1, 7, 0, 255])) + 6  # the value after the OBIS code of 1.7.0
    changed = bytearray(aidon)
    changed[power + 1:power + 5] = (123456).to_bytes(4, "big")
    assert agrees(run, bytes(changed))
    values = run(bytes(changed), 0)[1].values  # type: ignore[index]
    assert values["1-0:1.7.0.255"].raw == 123456 and values["1-0:1.7.0.255"].unit == "W"
    other = bytearray(aidon)
    other[power - 3] = 2  # 1-0:1.7.0 -> 1-0:2.7.0: the skeleton differs
    assert run(bytes(other), 0) is None


def _mutations(body: bytes, data: st.DataObject) -> bytes:
    buf = bytearray(body)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(buf) - 1))
        buf[at] = data.draw(st.integers(0, 255))
    return bytes(buf)


@given(st.one_of(self_describing(), flat_list()), st.data())
@PROPS
def test_generated_lists_compile_to_the_general_result_and_mutations_agree_or_step_aside(
        body: bytes, data: st.DataObject) -> None:
    try:
        tree, push = general(body)
    except DecodeError:  # e.g. a known list version with a length its profile does not list
        return
    run = compile_shape(body, 0, tree, push, ProfileRegistry())
    if run is None:  # outside the compiled shapes: booleans, long strings, repeated OBIS codes, …
        return
    assert agrees(run, body)
    for _ in range(5):
        agrees(run, _mutations(body, data))


@given(self_describing())
@PROPS
def test_decode_dlms_gives_the_same_result_first_and_compiled(body: bytes) -> None:
    registry = ProfileRegistry()
    tree, push = general(body)
    note = build_data_notification(tree, invoke_id=7)
    results = [decode_dlms(note, registry=registry) for _ in range(3)]
    for msg in results:
        assert msg.body == tree and msg.push is not None and exact_push(msg.push) == exact_push(push)


def test_bodies_that_never_repeat_stop_being_compiled() -> None:
    registry = ProfileRegistry()
    for counter in range(40):  # a meter id that changes in a skeleton position (the list version)
        body = axdr.encode_data((2, [(10, f"V{counter:04d}"), (9, bytes([1, 0, 1, 7, 0, 255])), (6, counter)]))
        decode_dlms(body, registry=registry)
    (length,) = registry.shape_compiles
    assert registry.shape_compiles[length] == MAX_ATTEMPTS_PER_LENGTH
    assert len(registry.shapes[length]) == MAX_PER_LENGTH
