"""The decoder's exception tree: every rejection names the byte offset and the rule it broke.

``DecodeError`` is the only family the decoder raises on bad input (the fuzz tests hold it to that).
"""

from __future__ import annotations

from typing import Any

from flexmeter.errors import FlexmeterError


class DecodeError(FlexmeterError):
    """A frame or telegram that cannot be decoded. ``offset`` is the byte index in the input given."""

    rule: str = "decode"
    #: what was decoded before the error (header fields, earlier records), for diagnostics; never complete
    telegram: Any = None
    partial_records: list[Any] | None = None

    def __init__(self, message: str, offset: int = 0, rule: str | None = None) -> None:
        self.message = message
        self.offset = offset
        if rule is not None:
            self.rule = rule
        super().__init__(f"{message} (offset {offset}, rule {self.rule})")

    def to_json(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "rule": self.rule, "offset": self.offset, "description": self.message}


# --- link layer (EN 13757-2, EN 13757-4) -----------------------------------------------------------------
class FrameError(DecodeError):
    """Link-layer framing: start/stop bytes, lengths, the frame kind."""

    rule = "link.frame"


class ChecksumError(FrameError):
    """Wired frame checksum (arithmetic sum of C..data) does not match."""

    rule = "link.checksum"


class LengthError(FrameError):
    """An L-field disagrees with the bytes present."""

    rule = "link.length"


class CrcError(FrameError):
    """A wM-Bus block CRC (EN 13757-4 format A/B, or the ELL payload CRC) does not match."""

    rule = "link.crc"


# --- transport / application layer -----------------------------------------------------------------------
class TransportError(DecodeError):
    """Transport layer: CI field, TPL header."""

    rule = "tpl"


class UnsupportedCiError(TransportError):
    """A CI field this decoder does not know (or that never carries application data)."""

    rule = "tpl.ci"


class HeaderError(TransportError):
    """A TPL header (short/long/ELL/AFL) truncated or inconsistent."""

    rule = "tpl.header"


class RecordError(DecodeError):
    """A data record (DIF/DIFE/VIF/VIFE/data) that cannot be parsed."""

    rule = "record"


class TruncatedRecordError(RecordError):
    """The frame ends inside a record (DIF, DIFE, VIF, VIFE, plain-text VIF or data)."""

    rule = "record.truncated"


class TooManyExtensionsError(RecordError):
    """More than 10 DIFEs or 10 VIFEs (EN 13757-3 limit)."""

    rule = "record.extensions"


class DataFieldError(RecordError):
    """A data field coding that is reserved or inconsistent with its VIF (LVAR range, special DIF)."""

    rule = "record.data"


# --- security (OMS / EN 13757-7) -------------------------------------------------------------------------
class SecurityError(DecodeError):
    """Encrypted or authenticated content that cannot be opened."""

    rule = "security"


class UnsupportedSecurityError(SecurityError):
    """A security mode this decoder does not implement (only 0, 5, 7 and ELL AES-CTR are)."""

    rule = "security.mode"


class WrongKeyError(SecurityError):
    """Decryption gave no 2F2F verification bytes: the key is wrong (nothing of the payload is returned)."""

    rule = "security.key"


class IntegrityError(SecurityError):
    """A check over decrypted content failed (ELL payload CRC, encrypted length not whole blocks)."""

    rule = "security.check"


class MacError(SecurityError):
    """The AFL message authentication code does not match (mode 7 / AFL MAC)."""

    rule = "security.mac"
