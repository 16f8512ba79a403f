"""Property tests: whatever the bytes, the decoders return or raise DecodeError — nothing else, no hang.

Bounded: a few hundred examples per property, derandomized (reproducible in CI), no per-example deadline.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexmeter.iot_agents.dlms.axdr import decode_data, encode_data
from flexmeter.iot_agents.dlms.cosem_time import CosemDateTime
from flexmeter.iot_agents.dlms.decoder import Keys, decode_dlms
from flexmeter.iot_agents.dlms.errors import DecodeError
from flexmeter.iot_agents.dlms.iec62056_21 import decode_message, decode_readout

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus"
HAN = [bytes.fromhex(v["hex"]) for v in json.loads((CORPUS / "amshan/han_dlms/han_frames.json").read_text())]
_VECTORS = json.loads((CORPUS / "dlms-cosem-21.3.2/vectors.json").read_text())
GGC = [bytes.fromhex(m["udp_wrapped_hex"]) for m in _VECTORS["general_glo_ciphering_push"]["messages"]]
HDLC = [bytes.fromhex(_VECTORS["hdlc_han_aidon_se_list"]["hdlc_frame_hex"])]
P1 = [p.read_bytes() for p in sorted((CORPUS / "dsmr_parser").glob("*.txt"))[:6]]
KEYS = Keys(b"MYDUMMYGLOBALKEY", b"MYDUMMYGLOBALKEY")

FAST = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _only_decode_errors(call: object) -> None:
    assert callable(call)
    with contextlib.suppress(DecodeError):
        call()


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at:at + draw(st.integers(1, 8))]
    return bytes(data)


@FAST
@given(st.binary(max_size=300))
def test_random_bytes_dlms(data: bytes) -> None:
    _only_decode_errors(lambda: decode_dlms(data, KEYS))


@FAST
@given(mutated(HAN + HDLC))
def test_mutated_han_frames(data: bytes) -> None:
    _only_decode_errors(lambda: decode_dlms(data))


@FAST
@given(mutated(GGC))
def test_mutated_ciphered_pushes(data: bytes) -> None:
    _only_decode_errors(lambda: decode_dlms(data, KEYS))


@FAST
@given(st.binary(max_size=200).map(lambda b: b"\x13" + b))
def test_random_compact_arrays(data: bytes) -> None:
    _only_decode_errors(lambda: decode_data(data))


@FAST
@given(st.binary(max_size=200))
def test_random_axdr(data: bytes) -> None:
    _only_decode_errors(lambda: decode_data(data))


@FAST
@given(st.binary(min_size=12, max_size=12))
def test_random_date_time(data: bytes) -> None:
    def run() -> None:
        value = CosemDateTime.decode(data)
        value.to_datetime()
        value.to_json()
        assert CosemDateTime.decode(value.encode()) == value
    _only_decode_errors(run)


@FAST
@given(mutated(P1))
def test_mutated_p1(data: bytes) -> None:
    _only_decode_errors(lambda: decode_readout(data, verify=False))
    _only_decode_errors(lambda: decode_readout(data))


@FAST
@given(st.binary(max_size=120))
def test_random_iec_messages(data: bytes) -> None:
    _only_decode_errors(lambda: decode_message(data))
    _only_decode_errors(lambda: decode_readout(b"/ABC5X\r\n\r\n" + data))


_leaf = st.one_of(
    st.tuples(st.just(6), st.integers(0, 2 ** 32 - 1)), st.tuples(st.just(16), st.integers(-32768, 32767)),
    st.tuples(st.just(9), st.binary(max_size=20)), st.tuples(st.just(10), st.text("abcXYZ09 ", max_size=10)),
    st.tuples(st.just(3), st.booleans()), st.tuples(st.just(0), st.none()),
    st.tuples(st.just(21), st.integers(0, 2 ** 64 - 1)),
)
_tree = st.recursive(_leaf, lambda kids: st.tuples(st.sampled_from([1, 2]), st.lists(kids, max_size=6)),
                     max_leaves=30)


@settings(FAST, max_examples=80)
@given(_tree)
def test_axdr_round_trip(node: tuple[int, object]) -> None:
    raw = encode_data(node)
    assert decode_data(raw) == (node, len(raw))


def test_huge_declared_counts_fail_fast() -> None:
    start = time.perf_counter()
    for raw in (b"\x01\x84\xff\xff\xff\xff\x00", b"\x09\x84\xff\xff\xff\xff",
                b"\x13\x01\xff\xff\x11\x02\x00\x00", b"\x04\x84\xff\xff\xff\xff",
                b"\x02\x82\xff\xff" + b"\x00" * 10):
        try:
            decode_data(raw)
        except DecodeError:
            pass
        else:
            raise AssertionError(raw)
    assert time.perf_counter() - start < 1.0
