"""Decoder throughput on the public corpora (``flexmeter bench decode dlms``)."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .decoder import Keys, decode_dlms
from .security import parse_ciphered, unprotect


def corpus_dir() -> Path:
    env = os.environ.get("FLEXMETER_CORPUS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[4] / "shared" / "corpus"


def _rate(work: Callable[[], int], duration: float) -> float:
    work()  # warm-up (caches, AESGCM objects)
    done = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < duration:
        done += work()
        elapsed = time.perf_counter() - start
    return done / elapsed


def run_bench(duration: float = 2.0) -> dict[str, Any]:
    base = corpus_dir()
    han = [bytes.fromhex(v["hex"]) for v in
           json.loads((base / "amshan" / "han_dlms" / "han_frames.json").read_text())]
    push = json.loads((base / "dlms-cosem-21.3.2" / "vectors.json").read_text())["general_glo_ciphering_push"]
    ggc = [bytes.fromhex(m["udp_wrapped_hex"]) for m in push["messages"]]
    key = push["encryption_key_ascii"].encode()
    keys = Keys(key, push["authentication_key_ascii"].encode())

    def han_round() -> int:
        for frame in han:
            decode_dlms(frame)
        return len(han)

    def ggc_round() -> int:
        for frame in ggc:
            decode_dlms(frame, keys)
        return len(ggc)

    apdus = [f[8:] for f in ggc]

    def decrypt_round() -> int:
        for apdu in apdus:
            unprotect(parse_ciphered(apdu), key, key)
        return len(apdus)

    figures = {
        "han_apdus_per_s": {"value": _rate(han_round, duration), "unit": "APDU/s",
                            "what": "decode_dlms on the 26 amshan HAN inputs (LLC PDUs and bare bodies): "
                                    "A-XDR tree, list profile, values by OBIS after scaler"},
        "ggc_decrypted_apdus_per_s": {"value": _rate(ggc_round, duration), "unit": "APDU/s",
                                      "what": "decode_dlms on the 13 DLMS/UDP general-glo-ciphering pushes: "
                                              "unwrap, GCM tag check, decrypt, decode"},
        "ggc_decrypt_only_per_s": {"value": _rate(decrypt_round, duration), "unit": "APDU/s",
                                   "what": "parse_ciphered + unprotect only (no APDU decode)"},
    }
    conditions = {"python": platform.python_version(), "machine": platform.machine(),
                  "cpus": os.cpu_count(), "duration_s": duration, "processes": 1, "han_inputs": len(han),
                  "ggc_inputs": len(ggc)}
    return {"benchmark": "decode dlms", "figures": figures, "conditions": conditions}
