"""Column kinds: the NGSI type of an attribute decides its column, and each value is fitted to it.

QuantumLeap picks a column type from the first value it sees, and a later value that does not fit fails
the whole insert. Here the declared NGSI type decides (``Number`` is a float column even if the first
reading is ``3``), and a value that does not fit is rejected alone: its row keeps a null there and the
original entity is kept raw in ``__original_ngsi_entity__``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from flexmeter.quantumleap.timeindex import BadInstant, format_instant, parse_instant

FLOAT, INTEGER, BOOLEAN, DATETIME, TEXT, JSON = "float", "integer", "boolean", "datetime", "text", "json"
KINDS = (FLOAT, INTEGER, BOOLEAN, DATETIME, TEXT, JSON)
NUMERIC_KINDS = (FLOAT, INTEGER)

_BY_NGSI_TYPE = {
    "Number": FLOAT,
    "Float": FLOAT,
    "Double": FLOAT,
    "Integer": INTEGER,
    "Boolean": BOOLEAN,
    "DateTime": DATETIME,
    "ISO8601": DATETIME,
    "Text": TEXT,
    "String": TEXT,
    "URL": TEXT,
    "Relationship": TEXT,
    "StructuredValue": JSON,
    "Array": JSON,
    "Object": JSON,
    "geo:json": JSON,
    "geo:point": JSON,
    "geo:line": JSON,
    "geo:polygon": JSON,
    "geo:box": JSON,
}


def kind_for(ngsi_type: str | None, value: Any) -> str | None:
    """The column kind for an attribute; None when nothing can be decided yet (unknown type, null value)."""
    if ngsi_type in _BY_NGSI_TYPE:
        return _BY_NGSI_TYPE[ngsi_type]
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int | float):
        return FLOAT  # an unknown numeric type may carry decimals later: never an integer column
    if isinstance(value, dict | list):
        return JSON
    return TEXT


class Misfit(ValueError):
    """A value that does not fit its column; ``reason`` labels the rejection counter."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Fitted:
    """A value ready for the store: ``sql`` is what is bound in the insert."""

    sql: Any


def _number(value: Any, kind: str) -> float | int:
    if isinstance(value, bool) or value is None:
        raise Misfit("not_a_number", f"{value!r} is not a number")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if kind == INTEGER and text.lstrip("+-").isdigit() else float(text)
        except ValueError as exc:
            raise Misfit("not_a_number", f"{value!r} is not a number") from exc
    if isinstance(value, float) and not math.isfinite(value):
        raise Misfit("not_a_number", f"{value!r} is not a finite number")
    if kind == INTEGER:
        if isinstance(value, float):
            if not value.is_integer():
                raise Misfit("not_an_integer", f"{value!r} is not an integer")
            value = int(value)
        if not isinstance(value, int) or not -(2**63) <= value < 2**63:
            raise Misfit("not_an_integer", f"{value!r} is not a 64-bit integer")
        return value
    if not isinstance(value, int | float):
        raise Misfit("not_a_number", f"{value!r} is not a number")
    return float(value)


def fit(kind: str, value: Any) -> Any:
    """The value to bind for a column of ``kind`` (``None`` stays null); :class:`Misfit` if it does not fit.

    SQL-neutral: datetimes come back as epoch milliseconds, JSON as the Python value; each store adapts.
    """
    if value is None:
        return None
    if isinstance(value, str) and kind != TEXT and not value.strip():
        return None  # QuantumLeap stores an empty string of a non-text attribute as null
    if kind in NUMERIC_KINDS:
        return _number(value, kind)
    if kind == BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise Misfit("not_a_boolean", f"{value!r} is not a boolean")
    if kind == DATETIME:
        try:
            return parse_instant(value)
        except BadInstant as exc:
            raise Misfit("not_a_datetime", str(exc)) from exc
    if kind == TEXT:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return json.dumps(value)
        raise Misfit("not_a_text", f"a {type(value).__name__} is not text")
    return value  # JSON takes anything


def present_datetime(ms: int | None) -> str | None:
    return None if ms is None else format_instant(ms)
