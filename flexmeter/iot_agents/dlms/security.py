"""DLMS/COSEM security suite 0 (AES-128-GCM, 12-byte tags): ciphered APDUs in and out.

Wire forms:

* service-specific glo-/ded- ciphered APDUs (0xC8-0xCF, 0xD0-0xD7): ``tag, len, SC, IC(4), payload`` — the
  system title is the peer's, known from the association, so the caller passes it;
* general-glo-ciphering (0xDB) and general-ded-ciphering (0xDC): ``tag, len, system-title, len, SC, IC(4),
  payload`` — what meters use for pushes.

Security control (SC) bits: 0x10 authentication, 0x20 encryption, 0x40 broadcast key, 0x80 compression
(unsupported), low nibble = suite (only 0). IV = system title (8 bytes) ‖ invocation counter (4 bytes).
The block cipher key is always the encryption key; the authentication key only enters the AAD:
``SC ‖ AK`` with encryption, ``SC ‖ AK ‖ plaintext`` for authentication only (GMAC).

Speed: one ``AESGCM`` object per key is kept (``cryptography``'s AESGCM only checks 16-byte tags, so the
12-byte DLMS tag is checked by recomputing it: GCM's keystream is independent of the AAD, so encrypting
the ciphertext yields the plaintext, and encrypting that plaintext yields the full tag).

Errors: a failed tag check is a :class:`WrongKeyError` when the unauthenticated decryption is not an
xDLMS APDU, a :class:`TamperedFrameError` when it is (right key, modified bytes). With authentication
only, the two cannot be told apart (the text is in clear): :class:`AuthenticationError`. A modified IV
(system title or counter) also reads as a wrong key. Replays are rejected by a :class:`ReplayGuard` the
caller owns (one per key set); counters advance only on authenticated frames.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .axdr import encode_length, read_length
from .errors import (
    AuthenticationError,
    LengthError,
    ReplayError,
    TamperedFrameError,
    TruncatedError,
    UnknownTagError,
    UnsupportedSecurityError,
    WrongKeyError,
)

GENERAL_GLO_CIPHERING = 0xDB
GENERAL_DED_CIPHERING = 0xDC
TAG_LENGTH = 12

SC_AUTHENTICATION = 0x10
SC_ENCRYPTION = 0x20
SC_BROADCAST = 0x40
SC_COMPRESSION = 0x80

# ciphered tag → plaintext tag
GLO_TAGS = {0xC8: 0xC0, 0xC9: 0xC1, 0xCA: 0xC2, 0xCB: 0xC3, 0xCC: 0xC4, 0xCD: 0xC5, 0xCF: 0xC7}
DED_TAGS = {0xD0: 0xC0, 0xD1: 0xC1, 0xD2: 0xC2, 0xD3: 0xC3, 0xD4: 0xC4, 0xD5: 0xC5, 0xD7: 0xC7}
CIPHERED_TAGS = frozenset({*GLO_TAGS, *DED_TAGS, GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING})

_PLAIN_TAGS = frozenset({0x0F, 0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC7, 0xD8})

_CIPHERS: dict[bytes, AESGCM] = {}
_MAX_CIPHERS = 4096


def _cipher(key: bytes) -> AESGCM:
    aes = _CIPHERS.get(key)
    if aes is None:
        if len(key) != 16:
            raise UnsupportedSecurityError("suite 0 needs a 16-byte key", None, f"{len(key)} bytes")
        if len(_CIPHERS) >= _MAX_CIPHERS:
            _CIPHERS.clear()
        aes = _CIPHERS[bytes(key)] = AESGCM(key)
    return aes


@dataclass(slots=True)
class CipheredApdu:
    """A ciphered APDU's header; ``payload`` is ciphertext/plaintext followed by the tag (if any)."""

    tag: int
    system_title: bytes | None
    security_control: int
    invocation_counter: int
    payload: bytes
    payload_offset: int

    @property
    def authenticated(self) -> bool:
        return bool(self.security_control & SC_AUTHENTICATION)

    @property
    def encrypted(self) -> bool:
        return bool(self.security_control & SC_ENCRYPTION)

    def to_json(self) -> dict[str, Any]:
        title = None if self.system_title is None else self.system_title.hex()
        return {"tag": self.tag, "system_title": title,
                "security_control": self.security_control, "invocation_counter": self.invocation_counter,
                "authenticated": self.authenticated, "encrypted": self.encrypted}


_SC_IC = struct.Struct(">BI")


def parse_ciphered(buf: bytes) -> CipheredApdu:
    """Split a ciphered APDU (0xC8-0xD7, 0xDB, 0xDC) into its header fields and payload."""
    if not buf:
        raise TruncatedError("ciphered APDU tag", 0)
    tag = buf[0]
    end = len(buf)
    if tag in (0xDB, 0xDC) and 16 <= end < 0x80 + 11 and buf[1] == 8 and buf[10] == end - 11:
        # general-glo/ded-ciphering as meters send it: an 8-byte system title, content under 128 bytes
        sc, ic = _SC_IC.unpack_from(buf, 11)
        return CipheredApdu(tag, buf[2:10], sc, ic, buf[16:], 16)
    pos = 1
    system_title = None
    if tag in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING):
        length, pos = read_length(buf, pos, end)
        if pos + length > end:
            raise TruncatedError("system-title", pos)
        system_title = buf[pos:pos + length]
        pos += length
    elif tag not in GLO_TAGS and tag not in DED_TAGS:
        raise UnknownTagError("ciphered APDU tag", 0, f"{tag:#04x}")
    start = pos
    length, pos = read_length(buf, pos, end)
    if pos + length != end:
        raise LengthError("ciphered content length must reach the end of the APDU", start,
                          f"declared {length}, {end - pos} bytes left")
    if length < 5:
        raise TruncatedError("security header (SC + invocation counter)", pos)
    sc, ic = _SC_IC.unpack_from(buf, pos)
    return CipheredApdu(tag, system_title, sc, ic, buf[pos + 5:end], pos + 5)


class ReplayGuard:
    """The last accepted invocation counter per system title; a frame must carry a higher one.

    Owned by the caller (an agent keeps one per meter key set); the decoder only consults it, so the
    decoder itself stays a pure function of its inputs."""

    def __init__(self) -> None:
        self._last: dict[bytes, int] = {}

    def check(self, system_title: bytes, invocation_counter: int, offset: int | None = None) -> None:
        last = self._last.get(bytes(system_title))
        if last is not None and invocation_counter <= last:
            raise ReplayError("invocation counter must increase per system title", offset,
                              f"{system_title.hex()}: {invocation_counter} <= {last}")

    def accept(self, system_title: bytes, invocation_counter: int) -> None:
        key = bytes(system_title)
        if invocation_counter > self._last.get(key, -1):
            self._last[key] = invocation_counter

    def last(self, system_title: bytes) -> int | None:
        return self._last.get(bytes(system_title))


def _looks_like_apdu(plain: bytes) -> bool:
    """Whether an unauthenticated decryption reads as an xDLMS APDU header (tag and first field): a
    random plaintext (wrong key) passes with a probability well under 0.1 %."""
    if len(plain) < 3 or plain[0] not in _PLAIN_TAGS:
        return False
    tag = plain[0]
    if tag == 0x0F:
        return len(plain) >= 6 and plain[5] in (0x00, 0x0C, 0x09)
    if tag == 0xC2:
        return plain[1] in (0x00, 0x01)
    if tag == 0xD8:
        return len(plain) == 3
    return 1 <= plain[1] <= 5


def unprotect(apdu: CipheredApdu, encryption_key: bytes | None, authentication_key: bytes | None = None,
              system_title: bytes | None = None, guard: ReplayGuard | None = None) -> bytes:
    """The plaintext APDU of a ciphered one, after the tag check and the replay check."""
    sc = apdu.security_control
    title = apdu.system_title if apdu.system_title is not None else system_title
    offset = apdu.payload_offset - 5
    if sc & 0x0F:
        raise UnsupportedSecurityError("security suite (only suite 0)", offset, str(sc & 0x0F))
    if sc & SC_COMPRESSION:
        raise UnsupportedSecurityError("compressed APDUs", offset, f"SC={sc:#04x}")
    if not sc & (SC_AUTHENTICATION | SC_ENCRYPTION):
        return apdu.payload
    if title is None or len(title) != 8:
        raise UnsupportedSecurityError("an 8-byte system title is needed for the IV", offset,
                                       "none" if title is None else title.hex())
    if encryption_key is None:
        raise UnsupportedSecurityError("frame is protected and no key was given", offset, f"SC={sc:#04x}")
    if guard is not None:
        guard.check(title, apdu.invocation_counter, offset + 1)
    aes = _CIPHERS.get(encryption_key) or _cipher(encryption_key)
    iv = title + apdu.invocation_counter.to_bytes(4, "big")
    payload = apdu.payload
    if sc & SC_AUTHENTICATION:
        if authentication_key is None:
            raise UnsupportedSecurityError("authenticated frame and no authentication key", offset)
        size = len(payload) - TAG_LENGTH
        if size < 0:
            raise TruncatedError("authentication tag (12 bytes)", apdu.payload_offset)
        if sc & SC_ENCRYPTION:
            plain = aes.encrypt(iv, payload[:size], None)[:size]
            full = aes.encrypt(iv, plain, bytes((sc,)) + authentication_key)
            if not hmac.compare_digest(full[size:-4], payload[size:]):
                where = apdu.payload_offset
                if _looks_like_apdu(plain):
                    raise TamperedFrameError("GCM tag mismatch: the key decrypts an APDU, the frame was "
                                             "modified", where)
                raise WrongKeyError("GCM tag mismatch: the key does not decrypt this frame", where)
        else:
            plain = payload[:size]
            full = aes.encrypt(iv, b"", bytes((sc,)) + authentication_key + plain)
            if not hmac.compare_digest(full[:TAG_LENGTH], payload[size:]):
                raise AuthenticationError("GMAC tag mismatch (wrong key or modified frame)",
                                          apdu.payload_offset)
        if guard is not None:
            guard.accept(title, apdu.invocation_counter)
        return plain
    return aes.encrypt(iv, payload, None)[:len(payload)]


# -- encoding -----------------------------------------------------------------------------------------
def protect(plaintext: bytes, security_control: int, system_title: bytes, invocation_counter: int,
            encryption_key: bytes, authentication_key: bytes | None = None) -> bytes:
    """``SC ‖ IC ‖ payload`` for a plaintext APDU (payload = ciphertext and/or tag per SC)."""
    aes = _cipher(encryption_key)
    iv = system_title + invocation_counter.to_bytes(4, "big")
    head = bytes((security_control,)) + invocation_counter.to_bytes(4, "big")
    sc_byte = bytes((security_control,))
    if security_control & SC_AUTHENTICATION and authentication_key is None:
        raise ValueError("authentication needs the authentication key")
    if security_control & SC_ENCRYPTION and security_control & SC_AUTHENTICATION:
        assert authentication_key is not None
        out = aes.encrypt(iv, plaintext, sc_byte + authentication_key)
        return head + out[:len(plaintext) + TAG_LENGTH]
    if security_control & SC_AUTHENTICATION:
        assert authentication_key is not None
        tag = aes.encrypt(iv, b"", sc_byte + authentication_key + plaintext)[:TAG_LENGTH]
        return head + plaintext + tag
    if security_control & SC_ENCRYPTION:
        return head + aes.encrypt(iv, plaintext, None)[:len(plaintext)]
    return head + plaintext


def build_general_glo_ciphering(plaintext: bytes, system_title: bytes, invocation_counter: int,
                                encryption_key: bytes, authentication_key: bytes | None = None,
                                security_control: int = 0x30, tag: int = GENERAL_GLO_CIPHERING) -> bytes:
    """A general-glo-ciphering (or, with ``tag=0xDC``, general-ded-ciphering) APDU."""
    content = protect(plaintext, security_control, system_title, invocation_counter, encryption_key,
                      authentication_key)
    return (bytes((tag,)) + encode_length(len(system_title)) + system_title + encode_length(len(content))
            + content)


def build_ciphered(tag: int, plaintext: bytes, system_title: bytes, invocation_counter: int,
                   encryption_key: bytes, authentication_key: bytes | None = None,
                   security_control: int = 0x30) -> bytes:
    """A service-specific glo-/ded- ciphered APDU (``tag`` 0xC8-0xD7)."""
    content = protect(plaintext, security_control, system_title, invocation_counter, encryption_key,
                      authentication_key)
    return bytes((tag,)) + encode_length(len(content)) + content


def gmac(security_control: int, encryption_key: bytes, authentication_key: bytes, system_title: bytes,
         invocation_counter: int, challenge: bytes) -> bytes:
    """The HLS-5 (GMAC) tag: GMAC over ``SC ‖ AK ‖ challenge`` with IV = system title ‖ IC, 12 bytes."""
    iv = system_title + invocation_counter.to_bytes(4, "big")
    aad = bytes((security_control,)) + authentication_key + challenge
    return _cipher(encryption_key).encrypt(iv, b"", aad)[:TAG_LENGTH]
