"""``flexmeter decode mbus|wmbus`` and ``flexmeter bench decode mbus``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from .errors import DecodeError


def read_input(source: str) -> bytes:
    """INPUT is a hex string, ``-`` for stdin, or a file (hex text or binary)."""
    if source == "-":
        data = sys.stdin.buffer.read()
    elif os.path.isfile(source):
        data = Path(source).read_bytes()
    else:
        data = source.encode()
    text = data.strip()
    if text and all(c in b"0123456789abcdefABCDEF \t\r\n:x" for c in text):
        from .decoder import parse_hex
        return parse_hex(text.decode())
    return data


def _table(result: dict[str, Any]) -> str:
    h = result["header"]
    lines = [f"{k}: {v}" for k, v in h.items() if v is not None]
    rows = [("#", "quantity", "value", "unit", "function", "storage", "tariff", "subunit", "dif/vif", "flags")]
    for i, r in enumerate(result["records"]):
        rows.append((str(i), r["quantity"], str(r["value"]), r["unit"], r["function"], str(r["storage"]),
                     str(r["tariff"]), str(r["subunit"]), f"{r['dif']}/{r['vif']}", ",".join(r["flags"])))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines.append("")
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def _emit(kind: str, source: str, key: str | None, json_output: bool, frame_format: str = "auto") -> None:
    from .decoder import decode_mbus, decode_wmbus
    from .jsonout import dumps
    try:
        data = read_input(source)
        k = bytes.fromhex(key) if key else None
        tel = decode_mbus(data, key=k) if kind == "mbus" else decode_wmbus(data, key=k, frame_format=frame_format)
    except DecodeError as exc:
        if json_output:
            print(dumps(exc.to_json()))
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    except ValueError as exc:
        if json_output:
            print(dumps({"error": "InvalidKey", "description": str(exc)}))
        print(f"error: --key is not hexadecimal: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    result = tel.to_json()
    print(dumps(result) if json_output else _table(result))
    if tel.encrypted:
        print(f"note: payload encrypted (security mode {tel.security_mode or 'ELL'}); pass --key to decrypt",
              file=sys.stderr)


def decode_mbus_command(
    source: str = typer.Argument(..., metavar="INPUT", help="Hex string, '-' for stdin, or a file."),
    key: str = typer.Option(None, "--key", help="AES-128 key (hex) for OMS-secured payloads."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Decode one wired M-Bus frame (EN 13757-2/-3)."""
    _emit("mbus", source, key, json_output)


def decode_wmbus_command(
    source: str = typer.Argument(..., metavar="INPUT", help="Hex string, '-' for stdin, or a file."),
    key: str = typer.Option(None, "--key", help="AES-128 key (hex): OMS mode 5/7, ELL AES-CTR."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    frame_format: str = typer.Option("auto", "--format", help="auto, A, B or none (block CRCs)."),
) -> None:
    """Decode one wireless M-Bus telegram (EN 13757-4, OMS), with or without block CRCs."""
    _emit("wmbus", source, key, json_output, frame_format)


def bench_mbus_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    duration: float = typer.Option(3.0, "--duration", help="Seconds per figure."),
    corpus: str = typer.Option(None, "--corpus", help="libmbus corpus dir (default ../shared/corpus/libmbus)."),
    fuzz: int = typer.Option(0, "--fuzz", help="Also run this many mutated frames through the decoder."),
) -> None:
    """Frames/s of the wired decoder over the libmbus corpus, on one core."""
    from .bench import format_text, run_bench
    from .jsonout import dumps
    result = run_bench(duration, corpus, fuzz)
    print(dumps(result) if json_output else format_text(result))


def register(groups: dict[str, typer.Typer]) -> None:
    groups["decode"].command("mbus")(decode_mbus_command)
    groups["decode"].command("wmbus")(decode_wmbus_command)
    groups["bench-decode"].command("mbus")(bench_mbus_command)
