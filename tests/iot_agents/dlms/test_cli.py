"""``flexmeter decode dlms|iec62056`` and ``flexmeter bench decode dlms`` as real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus"
_VECTORS = json.loads((CORPUS / "dlms-cosem-21.3.2/vectors.json").read_text())
PUSH = _VECTORS["general_glo_ciphering_push"]["messages"][0]
KEY_HEX = b"MYDUMMYGLOBALKEY".hex()


def flexmeter(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "flexmeter", *args], input=stdin, capture_output=True,
                          timeout=60, check=False)


def test_decode_dlms_ciphered_push_json() -> None:
    done = flexmeter("decode", "dlms", PUSH["udp_wrapped_hex"], "--key", KEY_HEX, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["security"]["invocation_counter"] == PUSH["expected_invocation_counter"]
    assert out["apdu"]["type"] == "data-notification"


def test_decode_dlms_wrong_key_exit_code_and_error_body() -> None:
    done = flexmeter("decode", "dlms", PUSH["udp_wrapped_hex"], "--key", "00" * 16, "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"] == "wrong_key"


def test_decode_dlms_hdlc_from_stdin_values_by_obis(tmp_path: Path) -> None:
    frame = _VECTORS["hdlc_han_aidon_se_list"]["hdlc_frame_hex"]
    done = flexmeter("decode", "dlms", "-", "--json", stdin=frame.encode())
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    voltage = next(r for r in out["records"] if r["obis"] == "1-0:32.7.0.255")
    assert (voltage["value"], voltage["unit"]) == (230.7, "V")
    assert out["tree"]["type"] == "array"
    binary = tmp_path / "frame.bin"
    binary.write_bytes(bytes.fromhex(frame))
    table = flexmeter("decode", "dlms", str(binary))
    assert table.returncode == 0 and b"1-0:32.7.0.255" in table.stdout


def test_decode_iec62056_file_and_bench() -> None:
    done = flexmeter("decode", "iec62056", str(CORPUS / "dsmr_parser" / "telegram_v4_2.txt"), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["checksum_valid"] is True
    assert out["values"]["1-0:1.8.1.255"]["value"] == 1581.123
    bench = flexmeter("bench", "decode", "dlms", "--duration", "0.2", "--json")
    assert bench.returncode == 0, bench.stderr
    result = json.loads(bench.stdout)
    figures = result["figures"]
    assert figures["han_apdus_per_s"]["value"] > 0 and figures["han_apdus_first_sight_per_s"]["value"] > 0
    assert figures["ggc_decrypted_apdus_per_s"]["unit"] == "APDU/s"
    assert result["conditions"]["checked"] == {"han_inputs_equal_to_general_path": 26, "han_values_per_round": 328,
                                               "ggc_plaintexts_cross_checked": 13}
