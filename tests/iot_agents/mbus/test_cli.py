"""``flexmeter decode mbus|wmbus`` and ``flexmeter bench decode mbus`` as real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import CORPUS

OMS = json.loads((CORPUS / "m-bus-parser" / "oms_mode5_vectors.json").read_text())["vectors"][0]


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "flexmeter", *args], input=stdin, capture_output=True,
                          timeout=120, check=False)


def test_decode_wmbus_json_with_key_and_wrong_key() -> None:
    ok = run("decode", "wmbus", OMS["input_hex"], "--key", OMS["key"], "--json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["header"]["manufacturer"] == "ELS" and doc["header"]["security_mode"] == 5
    assert doc["records"][0]["value"] == 28504.27 and b'"value": 28504.27,' in ok.stdout  # exact literal
    assert doc["records"][0]["unit"] == "m³" and doc["records"][1]["value"] == "2008-05-31T23:50:00"
    bad = run("decode", "wmbus", OMS["input_hex"], "--key", "00" * 16, "--json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["error"] == "WrongKeyError"


def test_decode_mbus_file_stdin_and_table(tmp_path: Path) -> None:
    frame = (CORPUS / "libmbus" / "test-frames" / "kamstrup_multical_601.hex").read_text()
    binary = tmp_path / "frame.bin"
    binary.write_bytes(bytes.fromhex(frame))
    from_file = run("decode", "mbus", str(binary), "--json")
    from_stdin = run("decode", "mbus", "-", "--json", stdin=frame.encode())
    assert from_file.returncode == 0 and from_file.stdout == from_stdin.stdout
    doc = json.loads(from_file.stdout)
    assert doc["header"]["manufacturer"] == "KAM" and len(doc["records"]) > 5
    table = run("decode", "mbus", frame)
    assert table.returncode == 0 and b"quantity" in table.stdout and b"energy" in table.stdout
    broken = run("decode", "mbus", "68 04 04 68 08 01 72 00 7C 16", "--json")
    assert broken.returncode == 1 and json.loads(broken.stdout)["rule"] == "link.checksum"


def test_bench_json() -> None:
    out = run("bench", "decode", "mbus", "--json", "--duration", "0.2")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["figures"]["frames_per_s"]["value"] > 0
    assert doc["conditions"]["frames"] == doc["conditions"]["frames_decoded"] == 76
