"""Profile-generic reads (class 7): capture objects + buffer → rows of values by OBIS, and the joining
of GET-response-with-datablock blocks into the attribute value.

A read of a load profile is two GETs: attribute 3 (``capture_objects``: array of structures
``{class_id, logical_name, attribute_index, data_index}``) and attribute 2 (``buffer``: array of rows,
each a structure with one element per capture object). Scalers/units of the captured registers are read
separately (attribute 3 of each register); pass them as ``scalers`` (OBIS → (scaler, unit)).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .apdu import GetResponse
from .axdr import ARRAY, COMPACT_ARRAY, STRUCTURE, Data, decode_data_exact
from .errors import FramingError, ProfileError
from .obis import obis_from_bytes
from .push import ObisValue, convert


@dataclass(frozen=True, slots=True)
class CaptureObject:
    class_id: int
    obis: str
    attribute_index: int
    data_index: int

    @property
    def key(self) -> str:
        """The column name: the OBIS code, with ``/attribute`` when it is not the value attribute (2)."""
        return self.obis if self.attribute_index == 2 else f"{self.obis}/{self.attribute_index}"


def capture_objects(node: Data) -> list[CaptureObject]:
    tag, items = node
    if tag != ARRAY:
        raise ProfileError("capture_objects is an array", None, f"tag {tag}")
    out = []
    for i, (t, fields) in enumerate(items):
        if t != STRUCTURE or len(fields) != 4 or fields[1][0] != 9:
            raise ProfileError("capture object {class_id, logical_name, attribute_index, data_index}", None,
                               f"element {i}")
        out.append(CaptureObject(int(fields[0][1]), obis_from_bytes(fields[1][1]), int(fields[2][1]),
                                 int(fields[3][1])))
    return out


def buffer_rows(columns: list[CaptureObject], buffer: Data,
                scalers: Mapping[str, tuple[int, str | None]] | None = None) -> list[dict[str, ObisValue]]:
    """One dict per buffer row, column key → value (clock columns become datetimes)."""
    tag, rows = buffer
    if tag not in (ARRAY, COMPACT_ARRAY):
        raise ProfileError("buffer is an array", None, f"tag {tag}")
    scale = scalers or {}
    out = []
    for r, (t, cells) in enumerate(rows):
        if t != STRUCTURE or len(cells) != len(columns):
            raise ProfileError("buffer row has one element per capture object", None,
                               f"row {r}: {len(cells) if t == STRUCTURE else 'not a structure'}")
        row = {}
        for column, cell in zip(columns, cells, strict=True):
            scaler, unit = scale.get(column.obis, (0, None))
            row[column.key] = convert(column.obis, cell, scaler, unit)
        out.append(row)
    return out


def join_blocks(responses: Iterable[GetResponse]) -> Data:
    """The attribute value carried by consecutive GET-response-with-datablock blocks (1, 2, …, last)."""
    parts = []
    expected = 1
    last = False
    for response in responses:
        if response.variant != "with-datablock" or response.raw_data is None:
            raise FramingError("GET-response-with-datablock carrying raw data", None, response.variant)
        if response.block_number != expected:
            raise FramingError("consecutive block numbers", None, f"{response.block_number} != {expected}")
        parts.append(response.raw_data)
        expected += 1
        last = bool(response.last_block)
        if last:
            break
    if not last:
        raise FramingError("the last block", None, f"{expected - 1} blocks, none marked last")
    return decode_data_exact(b"".join(parts))
