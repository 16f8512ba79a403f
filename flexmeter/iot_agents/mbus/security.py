"""OMS / EN 13757-7 security: mode 5 (AES-128-CBC), mode 7 (AES-CBC with a CMAC-derived key and the AFL
MAC), and ELL AES-128-CTR (CI 0x8D). Encryption is here too, so the simulator can emit real telegrams.

Every opening is checked before anything is returned: the 2F2F verification bytes (modes 5 and 7), the
AFL MAC (mode 7) and the ELL payload CRC; each failure is its own exception.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from .crc import crc16_en13757
from .errors import IntegrityError, MacError, SecurityError, WrongKeyError


def check_key(key: bytes) -> None:
    if len(key) != 16:
        raise SecurityError(f"AES-128 key must be 16 bytes, got {len(key)}", 0, "security.key_format")


def _cbc(key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = c.encryptor() if encrypt else c.decryptor()
    return op.update(data) + op.finalize()


def mode5_iv(m_field: bytes, a_field: bytes, access_number: int) -> bytes:
    """IV = M (2 bytes) ‖ A (6 bytes: id, version, device type) ‖ 8 x access number."""
    return bytes(m_field) + bytes(a_field) + bytes((access_number,)) * 8


def decrypt_mode5(key: bytes, iv: bytes, data: bytes, offset: int) -> bytes:
    check_key(key)
    if len(data) % 16 or not data:
        raise IntegrityError(f"encrypted part of {len(data)} bytes is not whole AES blocks", offset,
                             "security.blocks")
    plain = _cbc(key, iv, data, False)
    if plain[:2] != b"\x2f\x2f":
        raise WrongKeyError("decrypted payload does not start with 2F2F: wrong key", offset, "security.key")
    return plain


def encrypt_mode5(key: bytes, iv: bytes, plain: bytes) -> bytes:
    """Pad with 2F to whole blocks (the payload must start with 2F2F) and encrypt."""
    check_key(key)
    if plain[:2] != b"\x2f\x2f":
        plain = b"\x2f\x2f" + plain
    if len(plain) % 16:
        plain += b"\x2f" * (16 - len(plain) % 16)
    return _cbc(key, iv, plain, True)


def cmac(key: bytes, data: bytes) -> bytes:
    c = CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def kdf_a(master: bytes, constant: int, counter: int, meter_id: bytes) -> bytes:
    """OMS KDF-A: CMAC(K, D ‖ C (4 bytes LE) ‖ ID (4 bytes) ‖ 07 x 7). D=0x00 Kenc, 0x01 Kmac (meter→)."""
    check_key(master)
    return cmac(master, bytes((constant,)) + counter.to_bytes(4, "little") + bytes(meter_id) + b"\x07" * 7)


def decrypt_mode7(key: bytes, counter: int, meter_id: bytes, data: bytes, offset: int) -> bytes:
    k_enc = kdf_a(key, 0x00, counter, meter_id)
    if len(data) % 16 or not data:
        raise IntegrityError(f"encrypted part of {len(data)} bytes is not whole AES blocks", offset,
                             "security.blocks")
    plain = _cbc(k_enc, b"\x00" * 16, data, False)
    if plain[:2] != b"\x2f\x2f":
        raise WrongKeyError("decrypted payload does not start with 2F2F: wrong key", offset, "security.key")
    return plain


def encrypt_mode7(key: bytes, counter: int, meter_id: bytes, plain: bytes) -> bytes:
    k_enc = kdf_a(key, 0x00, counter, meter_id)
    if plain[:2] != b"\x2f\x2f":
        plain = b"\x2f\x2f" + plain
    if len(plain) % 16:
        plain += b"\x2f" * (16 - len(plain) % 16)
    return _cbc(k_enc, b"\x00" * 16, plain, True)


def afl_mac(key: bytes, counter: int, meter_id: bytes, mac_input: bytes, length: int) -> bytes:
    """AFL MAC: CMAC with Kmac over MCL ‖ MCR ‖ [ML] ‖ TPL (CI to end), truncated to ``length`` bytes."""
    k_mac = kdf_a(key, 0x01, counter, meter_id)
    return cmac(k_mac, mac_input)[:length]


def verify_afl_mac(key: bytes, counter: int, meter_id: bytes, mac_input: bytes, mac: bytes, offset: int) -> None:
    if afl_mac(key, counter, meter_id, mac_input, len(mac)) != mac:
        raise MacError("AFL MAC does not match: wrong key or altered telegram", offset, "security.mac")


def ell_counter_block(m_field: bytes, a_field: bytes, cc: int, sn: bytes) -> bytes:
    """ELL AES-CTR initial counter: M ‖ A ‖ CC (hop-count bit 0x10 cleared) ‖ SN ‖ FN (0000) ‖ BC (00)."""
    return bytes(m_field) + bytes(a_field) + bytes((cc & 0xEF,)) + bytes(sn) + b"\x00\x00\x00"


def ell_crypt(key: bytes, counter_block: bytes, data: bytes) -> bytes:
    check_key(key)
    c = Cipher(algorithms.AES(key), modes.CTR(counter_block)).encryptor()
    return c.update(data) + c.finalize()


def check_ell_payload(plain: bytes, offset: int, encrypted: bool) -> bytes:
    """Strip and verify the ELL payload CRC (first two bytes, LE, over the rest)."""
    if len(plain) < 2:
        raise IntegrityError("ELL payload shorter than its CRC", offset, "security.ell_crc")
    crc = plain[0] | (plain[1] << 8)
    if crc16_en13757(plain[2:]) != crc:
        if encrypted:
            raise WrongKeyError("ELL payload CRC fails after AES-CTR decryption: wrong key", offset,
                                "security.key")
        raise IntegrityError("ELL payload CRC does not match", offset, "security.ell_crc")
    return plain[2:]
