"""Standalone fuzz run: mutate corpus frames and telegrams, check that only DecodeError comes out.

``python -m flexmeter.iot_agents.mbus.fuzz --count 1000000`` (prints one JSON line with the tallies).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
import traceback
from typing import Any

from .bench import load_frames
from .decoder import decode_mbus, decode_wmbus
from .errors import DecodeError
from .link import add_format_a, build_long_frame


def _seeds(corpus: str | None) -> list[tuple[str, bytes]]:
    frames = load_frames(corpus)
    out: list[tuple[str, bytes]] = [("mbus", f) for f in frames]
    # the same application data as wM-Bus telegrams (link header + CI 0x72 payload, format A CRCs)
    for f in frames:
        if len(f) > 12 and f[0] == 0x68 and f[6] == 0x72 and len(f) - 6 + 9 <= 255:
            tel = bytes((0x44,)) + f[11:13] + f[7:11] + f[13:15] + f[6:-2]
            out.append(("wmbus", add_format_a(bytes((len(tel),)) + tel)))
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if op < 0.45 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.6 and b:
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 8)]
        elif op < 0.75:
            pos = rng.randrange(len(b) + 1)
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
        elif op < 0.85 and b:
            b = b[:rng.randrange(len(b) + 1)]
        elif b:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def refit(kind: str, b: bytes) -> bytes:
    """Repair lengths/checksums half of the time so mutations reach the application layer."""
    if kind == "mbus" and len(b) >= 7 and b[0] == 0x68:
        body = b[4:-2][:255]
        if len(body) >= 3:
            return build_long_frame(body[0], body[1], body[2], body[3:])
    if kind == "wmbus" and len(b) > 1:
        return bytes((min(len(b) - 1, 255),)) + b[1:256]
    return b


def run_fuzz(count: int, seed: int = 1, corpus: str | None = None, key: bytes | None = None) -> dict[str, Any]:
    rng = random.Random(seed)
    seeds = _seeds(corpus)
    tallies: dict[str, int] = {}
    crashes: list[str] = []
    ok = 0
    slowest = 0.0
    slowest_input: tuple[str, bytes, bool] = ("mbus", b"", False)
    start = time.perf_counter()
    k = key if key is not None else bytes(range(16))
    for n in range(count):
        kind, base = seeds[rng.randrange(len(seeds))]
        data = mutate(rng, base)
        if rng.random() < 0.5:
            data = refit(kind, data)
        t0 = time.perf_counter()
        try:
            tel = decode_mbus(data) if kind == "mbus" else decode_wmbus(data, key=k if n & 1 else None)
            for r in tel.records:
                r.value  # noqa: B018
                r.flags  # noqa: B018
            tel.to_json()
            ok += 1
        except DecodeError as exc:
            name = type(exc).__name__
            tallies[name] = tallies.get(name, 0) + 1
        except Exception:
            crashes.append(f"{data.hex()} {kind}\n{traceback.format_exc()}")
        dt = time.perf_counter() - t0
        if dt > slowest:
            slowest, slowest_input = dt, (kind, data, bool(n & 1))
    elapsed = time.perf_counter() - start
    # the slowest case again, 20 times: a scheduling stall on a busy machine is not a slow input
    kind, data, with_key = slowest_input
    retimed = []
    for _ in range(20):
        t0 = time.perf_counter()
        with contextlib.suppress(DecodeError):
            decode_mbus(data) if kind == "mbus" else decode_wmbus(data, key=k if with_key else None)
        retimed.append(time.perf_counter() - t0)
    return {"count": count, "seed": seed, "decoded": ok, "rejected": tallies, "crashes": len(crashes),
            "first_crashes": crashes[:3], "seconds": round(elapsed, 1),
            "slowest_ms": round(slowest * 1000, 3), "slowest_input_retimed_ms": round(min(retimed) * 1000, 3),
            "slowest_input": f"{kind}:{data.hex()}"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus", default=None)
    args = ap.parse_args(argv)
    result = run_fuzz(args.count, args.seed, args.corpus)
    print(json.dumps(result))
    return 1 if result["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
