"""The decoded frame/telegram: link and transport header fields plus the records."""

from __future__ import annotations

from typing import Any

from .records import Record
from .tables import APPLICATION_ERRORS, device_type_name

_MANUFACTURERS: dict[int, str] = {}


def manufacturer_code(value: int) -> str:
    """The 3-letter FLAG code of a 16-bit M-field (EN 13757-3 §5.6)."""
    code = _MANUFACTURERS.get(value)
    if code is None:
        code = "".join(chr(((value >> s) & 0x1F) + 64) for s in (10, 5, 0))
        _MANUFACTURERS[value] = code
    return code


def manufacturer_value(code: str) -> int:
    c = code.upper()
    return ((ord(c[0]) - 64) << 10) | ((ord(c[1]) - 64) << 5) | (ord(c[2]) - 64)


def bcd_id(data: bytes) -> str:
    """A 4-byte little-endian BCD identification number as its 8 digits (hex digits kept if not BCD)."""
    return data[::-1].hex().upper()


class Telegram:
    """One wired M-Bus frame or wireless M-Bus telegram, decoded.

    ``manufacturer``/``id``/``version``/``medium`` identify the meter: the TPL long header when there is one
    (CI 0x72 etc.), else the wM-Bus link layer. The link-layer identity of a wM-Bus telegram (which can be
    a repeater or a radio adapter) is kept in ``link_*``.
    """

    # Class-level defaults: a decode only sets the fields its frame has (cheaper than 26 assignments).
    c_field: int | None = None
    address: int | None = None
    link_manufacturer: str | None = None
    link_id: str | None = None
    link_version: int | None = None
    link_medium: int | None = None
    ci: int | None = None
    manufacturer: str | None = None
    id: str | None = None
    version: int | None = None
    medium: int | None = None
    access_number: int | None = None
    status: int | None = None
    config: int | None = None
    security_mode: int = 0
    ell: dict[str, int] | None = None
    afl: dict[str, int] | None = None
    encrypted: bool = False
    application_error: int | None = None
    more_records_follow: bool = False
    payload: bytes | None = None
    frame_format: str | None = None
    signature: int | None = None

    def __init__(self, kind: str, frame_type: str) -> None:
        self.kind = kind
        self.frame_type = frame_type
        self.records: list[Record] = []

    @property
    def medium_name(self) -> str | None:
        return None if self.medium is None else device_type_name(self.medium, self.manufacturer)

    def header(self) -> dict[str, Any]:
        h: dict[str, Any] = {
            "kind": self.kind, "frame_type": self.frame_type, "c_field": self.c_field, "address": self.address,
            "manufacturer": self.manufacturer, "id": self.id, "version": self.version, "medium": self.medium,
            "medium_name": self.medium_name, "access_number": self.access_number, "status": self.status,
            "ci": self.ci, "config": self.config, "security_mode": self.security_mode,
            "encrypted": self.encrypted,
        }
        if self.kind == "wmbus":
            h.update(link_manufacturer=self.link_manufacturer, link_id=self.link_id,
                     link_version=self.link_version, link_medium=self.link_medium, frame_format=self.frame_format)
        if self.ell is not None:
            h["ell"] = self.ell
        if self.afl is not None:
            h["afl"] = self.afl
        if self.application_error is not None:
            h["application_error"] = self.application_error
            h["application_error_name"] = APPLICATION_ERRORS.get(self.application_error, "Reserved")
        if self.more_records_follow:
            h["more_records_follow"] = True
        if self.payload is not None:
            h["payload"] = self.payload.hex().upper()
        if self.signature is not None:
            h["signature"] = self.signature
        return h

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md §6 form: the header and the list of records (values exact: Decimal kept)."""
        return {"header": self.header(), "records": [r.to_json() for r in self.records]}

    def __repr__(self) -> str:
        return (f"Telegram({self.kind} {self.frame_type} {self.manufacturer} {self.id} ci="
                f"{'' if self.ci is None else hex(self.ci)} records={len(self.records)})")
