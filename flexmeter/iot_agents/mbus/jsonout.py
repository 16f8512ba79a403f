"""JSON rendering that keeps Decimal values exact (written as JSON number literals, never via float)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_MARK = "\u0001dec:"


def _prepare(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return _MARK + (format(obj, "f") if obj.is_finite() else "null")
    if isinstance(obj, dict):
        return {k: _prepare(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_prepare(v) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).hex().upper()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj


def dumps(obj: Any) -> str:
    """``json.dumps`` with every Decimal written as its exact numeric literal."""
    text = json.dumps(_prepare(obj), ensure_ascii=False)
    marker = json.dumps(_MARK)[1:-1]
    if marker not in text:
        return text
    out: list[str] = []
    for part in text.split('"' + marker):
        if out:
            end = part.index('"')
            out.append(part[:end] + part[end + 1:])
        else:
            out.append(part)
    return "".join(out)
