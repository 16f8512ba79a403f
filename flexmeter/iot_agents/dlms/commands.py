"""``flexmeter decode dlms|iec62056`` and ``flexmeter bench decode dlms``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from .errors import DecodeError

_HEX = frozenset(b"0123456789abcdefABCDEF \t\r\n:")


def read_input(source: str, text_ok: bool = False) -> bytes:
    """INPUT is a hex string, ``-`` for stdin, or a file (hex text or raw bytes). With ``text_ok`` (IEC
    62056-21) raw text that is not hex is taken as is."""
    if source == "-":
        data = sys.stdin.buffer.read()
    elif os.path.isfile(source):
        data = Path(source).read_bytes()
    else:
        data = source.encode("latin-1", "replace")
    stripped = data.strip()
    if stripped and all(c in _HEX for c in stripped) and not (text_ok and stripped[:1] == b"/"):
        cleaned = bytes(c for c in stripped if c not in b" \t\r\n:")
        if len(cleaned) % 2 == 0:
            return bytes.fromhex(cleaned.decode())
        raise ValueError("odd number of hex digits")
    return data


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def _fail(exc: Exception, json_output: bool, code: int) -> None:
    body = exc.to_dict() if isinstance(exc, DecodeError) else {"error": "bad_input", "description": str(exc)}
    if json_output:
        print(dumps(body))
    print(f"error: {exc}", file=sys.stderr)
    raise typer.Exit(code)


def _rows(records: list[tuple[str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in records) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in records)


def decode_dlms_command(
    source: str = typer.Argument(..., metavar="INPUT", help="Hex string, '-' for stdin, or a file."),
    key: str = typer.Option(None, "--key", help="Encryption key (hex, 16 bytes) for ciphered APDUs."),
    auth_key: str = typer.Option(None, "--auth-key", help="Authentication key (hex); default: --key."),
    system_title: str = typer.Option(None, "--system-title",
                                     help="Peer system title (hex, 8 bytes) for glo-/ded- APDUs."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Decode one DLMS/COSEM message: HDLC, DLMS/UDP, LLC, ciphered or plain APDU, or a bare push body."""
    from .decoder import Keys, decode_dlms

    try:
        data = read_input(source)
        ek = bytes.fromhex(key) if key else None
        ak = bytes.fromhex(auth_key) if auth_key else ek
        st = bytes.fromhex(system_title) if system_title else None
    except ValueError as exc:
        _fail(exc, json_output, 2)
        return
    try:
        msg = decode_dlms(data, Keys(ek, ak, st))
    except DecodeError as exc:
        _fail(exc, json_output, 1)
        return
    result = msg.to_json()
    if json_output:
        print(dumps(result))
        return
    lines = [" / ".join(layer["layer"] for layer in msg.layers) or "apdu"]
    if msg.apdu is not None:
        lines.append(f"apdu: {msg.apdu.kind}")
    if msg.push is not None:
        lines.append(f"profile: {msg.push.profile} ({msg.push.manufacturer}), layout {msg.push.layout}, "
                     f"list version {msg.push.list_version}")
    lines.append(f"timestamp: {result['timestamp']}")
    rows = [("obis", "value", "unit")] + [(r["obis"], str(r["value"]), r["unit"] or "")
                                          for r in result["records"]]
    print("\n".join(lines) + "\n\n" + _rows(rows))


def decode_iec_command(
    source: str = typer.Argument(..., metavar="INPUT",
                                 help="A file, '-' for stdin, the text itself, or its hex."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Decode one IEC 62056-21 mode C readout or DSMR/P1 telegram (or a single mode C message)."""
    from .iec62056_21 import Message, Readout, decode_message, decode_readout

    try:
        data = read_input(source, text_ok=True)
    except ValueError as exc:
        _fail(exc, json_output, 2)
        return
    try:
        stripped = data.lstrip(b"\r\n")
        result: Readout | Message
        if stripped.startswith(b"/") and not stripped.startswith(b"/?") and (
                b"!" in stripped or b"\x02" in stripped):
            result = decode_readout(data)
        else:
            result = decode_message(data)
    except DecodeError as exc:
        _fail(exc, json_output, 1)
        return
    out = result.to_json()
    if json_output:
        print(dumps(out))
        return
    head = [f"{k}: {v}" for k, v in out.items() if k not in ("records", "values") and not isinstance(v, dict)]
    if isinstance(result, Readout):
        head.append(f"identification: {result.identification.line}")
    rows = [("address", "value", "unit")] + [(r["address"], str(r["value"]), r["unit"] or "")
                                             for r in out["records"]]
    print("\n".join(head) + "\n\n" + _rows(rows))


def bench_dlms_command(
    duration: float = typer.Option(2.0, "--duration", help="Seconds per figure."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """APDUs/s on the amshan HAN corpus and decrypted APDUs/s on the dlms-cosem GGC pushes."""
    from .bench import run_bench

    try:
        result = run_bench(duration)
    except FileNotFoundError as exc:
        _fail(exc, json_output, 2)
        return
    except RuntimeError as exc:  # outputs that differ from what the bench claims to decode: no figures
        _fail(exc, json_output, 1)
        return
    if json_output:
        print(dumps(result))
        return
    for name, fig in result["figures"].items():
        print(f"{name}: {fig['value']:,.0f} {fig['unit']} ({fig['per_cpu_second']:,.0f} per CPU second)")
    print("conditions: " + ", ".join(f"{k}={v}" for k, v in result["conditions"].items()))


def register(groups: dict[str, typer.Typer]) -> None:
    groups["decode"].command("dlms")(decode_dlms_command)
    groups["decode"].command("iec62056")(decode_iec_command)
    groups["bench-decode"].command("dlms")(bench_dlms_command)
