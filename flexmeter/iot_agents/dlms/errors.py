"""The decoders' one exception tree.

Every error a decoder raises on bad input is a :class:`DecodeError`: it names the byte ``offset`` where the
input broke the rule and the ``rule`` itself, so a log line or an API error body says what was wrong
without the frame being re-read. Callers catch ``DecodeError`` (or a subclass) and nothing else.

    DecodeError
    ├── TruncatedError          input ends inside an element
    ├── LengthError             a length field disagrees with the input (BER, HDLC, wrapper, limits)
    ├── UnknownTagError         a tag / choice / type the decoder does not know
    ├── InvalidValueError       a field holds a value its type forbids (date-time, OBIS, number text)
    ├── ChecksumError           HDLC HCS/FCS, IEC 62056-21 BCC, DSMR CRC16
    ├── FramingError            frame delimiters, addresses, LLC, line syntax
    ├── ProfileError            a push list does not match the list profile chosen for it
    └── SecurityError           ciphered APDUs
        ├── UnsupportedSecurityError  suite / security-control / missing key
        ├── AuthenticationError      GCM/GMAC tag check failed ...
        │   ├── WrongKeyError        ... and the key does not decrypt to an xDLMS APDU
        │   └── TamperedFrameError   ... but the key is right: the frame was modified
        └── ReplayError             invocation counter not above the last accepted one
"""

from __future__ import annotations

from typing import Any

from flexmeter.errors import FlexmeterError


class DecodeError(FlexmeterError):
    """A frame broke a rule of its format at ``offset`` (byte index into the decoder's input)."""

    kind = "decode_error"

    def __init__(self, rule: str, offset: int | None = None, detail: str = "") -> None:
        self.rule = rule
        self.offset = offset
        self.detail = detail
        where = f" at offset {offset}" if offset is not None else ""
        extra = f": {detail}" if detail else ""
        super().__init__(f"{rule}{where}{extra}")

    def to_dict(self) -> dict[str, Any]:
        """The error as a JSON body (CLI ``--json`` and the agents' error responses)."""
        return {"error": self.kind, "rule": self.rule, "offset": self.offset, "detail": self.detail,
                "description": str(self)}


class TruncatedError(DecodeError):
    kind = "truncated"


class LengthError(DecodeError):
    kind = "bad_length"


class UnknownTagError(DecodeError):
    kind = "unknown_tag"


class InvalidValueError(DecodeError):
    kind = "invalid_value"


class ChecksumError(DecodeError):
    kind = "bad_checksum"


class FramingError(DecodeError):
    kind = "bad_framing"


class ProfileError(DecodeError):
    kind = "profile_mismatch"


class SecurityError(DecodeError):
    kind = "security_error"


class UnsupportedSecurityError(SecurityError):
    kind = "unsupported_security"


class AuthenticationError(SecurityError):
    kind = "authentication_failed"


class WrongKeyError(AuthenticationError):
    kind = "wrong_key"


class TamperedFrameError(AuthenticationError):
    kind = "tampered_frame"


class ReplayError(SecurityError):
    kind = "replayed_invocation_counter"
