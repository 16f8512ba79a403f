"""Property test: whatever the bytes, the decoder returns a telegram or raises DecodeError, promptly.

Bounded to a few seconds here; the million-frame run is ``python -m flexmeter.iot_agents.mbus.fuzz``.
"""

from __future__ import annotations

import random
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexmeter.iot_agents.mbus import decode_mbus, decode_wmbus
from flexmeter.iot_agents.mbus.errors import DecodeError
from flexmeter.iot_agents.mbus.fuzz import _seeds, mutate, refit, run_fuzz
from flexmeter.iot_agents.mbus.link import build_long_frame
from tests.conftest import CORPUS

SEEDS = _seeds(str(CORPUS / "libmbus"))
KEY = bytes(range(16))


def _exercise(kind: str, data: bytes, key: bytes | None) -> None:
    start = time.perf_counter()
    try:
        tel = decode_mbus(data) if kind == "mbus" else decode_wmbus(data, key=key)
    except DecodeError as exc:
        assert exc.offset >= 0 and exc.rule
        return
    for r in tel.records:
        r.value  # noqa: B018
        r.flags  # noqa: B018
    tel.to_json()
    assert time.perf_counter() - start < 0.5


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_as_wired_application_data(payload: bytes) -> None:
    body = payload[:252]
    _exercise("mbus", build_long_frame(0x08, 0x01, 0x72, bytes(12) + body), None)
    _exercise("mbus", build_long_frame(0x08, 0x01, 0x78, body), None)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=300), st.booleans())
def test_random_bytes_as_wmbus(payload: bytes, with_key: bool) -> None:
    _exercise("wmbus", payload, KEY if with_key else None)
    if payload:
        _exercise("wmbus", bytes((min(len(payload), 255),)) + payload[:255], KEY if with_key else None)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(0, len(SEEDS) - 1), st.booleans())
def test_mutated_corpus_frames(rng: random.Random, index: int, fix: bool) -> None:
    kind, base = SEEDS[index]
    data = mutate(rng, base)
    if fix:
        data = refit(kind, data)
    _exercise(kind, data, KEY)


def test_fuzz_runner_small_run() -> None:
    result = run_fuzz(3000, seed=7, corpus=str(CORPUS / "libmbus"))
    assert result["crashes"] == 0, result["first_crashes"]
    assert result["decoded"] > 0 and sum(result["rejected"].values()) > 0
