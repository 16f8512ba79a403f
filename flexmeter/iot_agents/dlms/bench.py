"""Decoder throughput on the public corpora (``flexmeter bench decode dlms``)."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flexmeter.config import get_settings

from .apdu import decode_apdu
from .axdr import decode_data_exact
from .decoder import Keys, decode_dlms
from .profiles import ProfileRegistry
from .security import parse_ciphered, unprotect
from .shapes import exact


def corpus_dir() -> Path:
    return get_settings().corpus_dir


Rates = tuple[float, float, int, float, float]


def _rate(work: Callable[[], int], duration: float) -> Rates:
    """(per wall-clock second, per CPU second of this process, APDUs, wall s, CPU s): on a shared machine
    the second one is the decoder's own cost, the first one also counts the time other processes held
    the CPU."""
    work()  # warm-up (caches, AESGCM objects)
    done = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    elapsed = 0.0
    while elapsed < duration:
        done += work()
        elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return done / elapsed, done / cpu if cpu > 0 else 0.0, done, elapsed, cpu


def _figure(rates: Rates, what: str) -> dict[str, Any]:
    return {"value": round(rates[0]), "unit": "APDU/s", "per_cpu_second": round(rates[1]), "apdus": rates[2],
            "wall_s": round(rates[3], 3), "cpu_s": round(rates[4], 3), "what": what}


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on this platform
        return None


def _reference_loop_ms() -> float:
    """Time of a fixed pure-Python loop (1e6 additions): shows how loaded the machine was (about 30-50 ms
    on an idle modern core)."""
    start = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += i
    return round((time.perf_counter() - start) * 1000, 1)


def check_outputs(han: list[bytes], push: dict[str, Any], keys: Keys) -> dict[str, Any]:
    """What the timed loops decode, checked before they run: every HAN input gives, on the steady-state
    path (compiled shapes, decoded a third time), exactly the tree and values of the general path (a
    registry that never compiles); every GGC push decrypts to its cross-checked plaintext with its
    invocation counter. Raises ``RuntimeError`` otherwise (no figure is printed for wrong outputs)."""
    general = ProfileRegistry(compile_shapes=False)
    values = 0
    for frame in han:
        reference = decode_dlms(frame, registry=general)
        steady = [decode_dlms(frame) for _ in range(3)][-1]
        if steady.body != reference.body or steady.push is None or reference.push is None \
                or exact(steady.push) != exact(reference.push):
            raise RuntimeError(f"steady-state output differs from the general path on {frame[:16].hex()}…")
        values += len(steady.values)
    for message in push["messages"]:
        apdu = bytes.fromhex(message["udp_wrapped_hex"])[8:]
        header = parse_ciphered(apdu)
        plain = unprotect(header, keys.encryption_key, keys.authentication_key)
        if plain.hex() != message["cross_checked_plain_apdu"].lower() \
                or header.invocation_counter != message["expected_invocation_counter"]:
            raise RuntimeError(f"GGC push {header.invocation_counter} does not decrypt to its plaintext")
        decode_dlms(bytes.fromhex(message["udp_wrapped_hex"]), keys)
    return {"han_inputs_equal_to_general_path": len(han), "han_values_per_round": values,
            "ggc_plaintexts_cross_checked": len(push["messages"])}


def run_bench(duration: float = 2.0) -> dict[str, Any]:
    base = corpus_dir()
    han = [bytes.fromhex(v["hex"]) for v in
           json.loads((base / "amshan" / "han_dlms" / "han_frames.json").read_text())]
    push = json.loads((base / "dlms-cosem-21.3.2" / "vectors.json").read_text())["general_glo_ciphering_push"]
    ggc = [bytes.fromhex(m["udp_wrapped_hex"]) for m in push["messages"]]
    key = push["encryption_key_ascii"].encode()
    keys = Keys(key, push["authentication_key_ascii"].encode())

    checked = check_outputs(han, push, keys)

    def han_round() -> int:
        for frame in han:
            decode_dlms(frame)
        return len(han)

    first_sight = ProfileRegistry(compile_shapes=False)

    def first_sight_round() -> int:
        for frame in han:
            decode_dlms(frame, registry=first_sight)
        return len(han)

    def ggc_round() -> int:
        for frame in ggc:
            decode_dlms(frame, keys)
        return len(ggc)

    apdus = [f[8:] for f in ggc]
    plain = [f[3:] if f[:2] == b"\xe6\xe7" else f for f in han]

    def tree_round() -> int:
        for frame in plain:
            if frame[0] == 0x0F:
                decode_apdu(frame)
            else:
                decode_data_exact(frame)
        return len(plain)

    def decrypt_round() -> int:
        for apdu in apdus:
            unprotect(parse_ciphered(apdu), key, key)
        return len(apdus)

    load_before = _load_average()
    figures = {
        "han_apdus_per_s": _figure(_rate(han_round, duration),
                                   "decode_dlms on the 26 amshan HAN inputs (LLC PDUs and bare bodies): "
                                   "A-XDR tree, list profile, values by OBIS after scaler; steady state "
                                   "(each push layout compiled on its second sighting, as a meter's 1 Hz "
                                   "pushes repeat it)"),
        "han_apdus_first_sight_per_s": _figure(_rate(first_sight_round, duration),
                                               "the same, never compiled: what a push of a layout not seen "
                                               "before costs (general / one-pass path)"),
        "han_apdus_tree_only_per_s": _figure(_rate(tree_round, duration),
                                             "the same inputs to the typed APDU and A-XDR tree only (no list "
                                             "profile / OBIS values), as dlms-cosem's figure measures"),
        "ggc_decrypted_apdus_per_s": _figure(_rate(ggc_round, duration),
                                             "decode_dlms on the 13 DLMS/UDP general-glo-ciphering pushes: "
                                             "unwrap, GCM tag check, decrypt, decode"),
        "ggc_decrypt_only_per_s": _figure(_rate(decrypt_round, duration),
                                          "parse_ciphered + unprotect only (no APDU decode)"),
    }
    conditions = {"python": platform.python_version(), "reference_loop_ms": _reference_loop_ms(),
                  "load_average_before": load_before, "load_average_after": _load_average(),
                  "machine": platform.machine(),
                  "cpus": os.cpu_count(), "duration_s": duration, "processes": 1, "han_inputs": len(han),
                  "ggc_inputs": len(ggc), "checked": checked}
    return {"benchmark": "decode dlms", "figures": figures, "conditions": conditions}
