"""dlms-cosem 21.3.2 vectors: Green Book GCM/GMAC, the 13 GGC pushes, wrong key / tampering / replay,
the plain data-notification and the HDLC frame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flexmeter.iot_agents.dlms import apdu as apdu_mod
from flexmeter.iot_agents.dlms.decoder import Keys, decode_dlms
from flexmeter.iot_agents.dlms.errors import (
    AuthenticationError,
    DecodeError,
    ReplayError,
    TamperedFrameError,
    UnsupportedSecurityError,
    WrongKeyError,
)
from flexmeter.iot_agents.dlms.security import (
    ReplayGuard,
    build_ciphered,
    build_general_glo_ciphering,
    gmac,
    parse_ciphered,
    protect,
    unprotect,
)
from flexmeter.iot_agents.dlms.wrappers import unwrap_udp, wrap_udp

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[4] / "shared" / "corpus" / "dlms-cosem-21.3.2" / "vectors.json")
    .read_text())
PUSH = VECTORS["general_glo_ciphering_push"]
KEY = PUSH["encryption_key_ascii"].encode()
KEYS = Keys(KEY, PUSH["authentication_key_ascii"].encode())
H = bytes.fromhex


def test_green_book_gcm_round_trip() -> None:
    v = VECTORS["gcm_greenbook_glo_get_request"]
    ek, ak, st = H(v["encryption_key"]), H(v["authentication_key"]), H(v["system_title"])
    ic = int(v["invocation_counter"], 16)
    sc = int(v["security_control"], 16)
    content = protect(H(v["plain_apdu"]), sc, st, ic, ek, ak)
    assert content[5:] == H(v["ciphertext_and_tag"])
    apdu = build_ciphered(0xC8, H(v["plain_apdu"]), st, ic, ek, ak, sc)  # glo-get-request
    parsed = parse_ciphered(apdu)
    assert (parsed.security_control, parsed.invocation_counter) == (sc, ic)
    plain = unprotect(parsed, ek, ak, system_title=st)
    assert plain == H(v["plain_apdu"])
    request = apdu_mod.decode_apdu(plain)
    assert isinstance(request, apdu_mod.GetRequest)
    assert (request.class_id, request.instance, request.attribute_id) == (8, "0-0:1.0.0.255", 2)


def test_green_book_gmac() -> None:
    v = VECTORS["gmac_hls5"]
    st = H(v["client_system_title"])
    ic = int(v["invocation_counter"], 16)
    assert st + ic.to_bytes(4, "big") == H(v["expected_iv"])
    tag = gmac(int(v["security_control"], 16), H(v["encryption_key"]), H(v["authentication_key"]), st, ic,
               H(v["server_to_client_challenge"]))
    assert tag == H(v["expected_gmac_tag"])


@pytest.mark.parametrize("index", range(len(PUSH["messages"])))
def test_ggc_push_decrypts_to_cross_checked_plaintext(index: int) -> None:
    message = PUSH["messages"][index]
    raw = H(message["udp_wrapped_hex"])
    header, _ = unwrap_udp(raw)
    assert (header.version, header.source_wport, header.destination_wport, header.length) == (1, 1, 1, 70)
    msg = decode_dlms(raw, KEYS)
    assert msg.security is not None
    assert msg.security.system_title == H(PUSH["expected_system_title"])
    assert msg.security.security_control == int(PUSH["expected_security_control"], 16)
    assert msg.security.invocation_counter == message["expected_invocation_counter"]
    plain = unprotect(parse_ciphered(raw[8:]), KEYS.encryption_key, KEYS.authentication_key)
    assert plain == H(message["cross_checked_plain_apdu"])
    assert isinstance(msg.apdu, apdu_mod.DataNotification)
    # And back: encrypting the plaintext with the same header gives the same frame.
    again = build_general_glo_ciphering(plain, msg.security.system_title, msg.security.invocation_counter,
                                       KEY, KEY)
    assert wrap_udp(again) == raw


def _first_push() -> bytes:
    return H(PUSH["messages"][0]["udp_wrapped_hex"])


def test_wrong_key_is_wrong_key() -> None:
    with pytest.raises(WrongKeyError) as info:
        decode_dlms(_first_push(), Keys(b"0123456789ABCDEF", KEY))
    assert info.value.offset is not None


@pytest.mark.parametrize("position", [25, 40, 60])
def test_flipped_ciphertext_byte_is_tampering(position: int) -> None:
    raw = bytearray(_first_push())
    raw[position] ^= 0x01
    with pytest.raises(TamperedFrameError):
        decode_dlms(bytes(raw), KEYS)


def test_flipped_tag_byte_is_tampering() -> None:
    raw = bytearray(_first_push())
    raw[-1] ^= 0x80
    with pytest.raises(TamperedFrameError):
        decode_dlms(bytes(raw), KEYS)


def test_wrong_authentication_key_fails_authentication() -> None:
    with pytest.raises(AuthenticationError):
        decode_dlms(_first_push(), Keys(KEY, b"\x00" * 16))


def test_replay_is_rejected_per_system_title() -> None:
    guard = ReplayGuard()
    first, second = (H(m["udp_wrapped_hex"]) for m in PUSH["messages"][:2])
    decode_dlms(first, KEYS, guard)
    decode_dlms(second, KEYS, guard)
    with pytest.raises(ReplayError):
        decode_dlms(first, KEYS, guard)
    with pytest.raises(ReplayError):
        decode_dlms(second, KEYS, guard)
    # Another meter (system title) has its own counter.
    other = build_general_glo_ciphering(H(PUSH["messages"][0]["cross_checked_plain_apdu"]),
                                        b"OTHERMTR", 1, KEY, KEY)
    decode_dlms(other, KEYS, guard)
    assert guard.last(b"OTHERMTR") == 1


def test_forged_frame_does_not_advance_the_counter() -> None:
    guard = ReplayGuard()
    raw = bytearray(_first_push())
    raw[40] ^= 0x01
    with pytest.raises(TamperedFrameError):
        decode_dlms(bytes(raw), KEYS, guard)
    decode_dlms(_first_push(), KEYS, guard)  # the genuine frame is still accepted


def test_errors_are_distinct_types() -> None:
    assert not issubclass(WrongKeyError, TamperedFrameError)
    assert not issubclass(TamperedFrameError, WrongKeyError)
    assert not issubclass(ReplayError, AuthenticationError)
    assert issubclass(ReplayError, DecodeError)


def test_authentication_only_mode() -> None:
    plain = H(PUSH["messages"][0]["cross_checked_plain_apdu"])
    apdu = build_general_glo_ciphering(plain, b"AUTHONLY", 7, KEY, KEY, security_control=0x10)
    assert plain in apdu  # in clear
    msg = decode_dlms(apdu, KEYS)
    assert isinstance(msg.apdu, apdu_mod.DataNotification)
    tampered = apdu.replace(plain[-3:], b"\x01\x02\x03")
    with pytest.raises(AuthenticationError):
        decode_dlms(tampered, KEYS)


def test_encryption_only_and_missing_key() -> None:
    plain = H(PUSH["messages"][1]["cross_checked_plain_apdu"])
    apdu = build_general_glo_ciphering(plain, b"ENCONLY1", 9, KEY, None, security_control=0x20)
    assert isinstance(decode_dlms(apdu, KEYS).apdu, apdu_mod.DataNotification)
    with pytest.raises(UnsupportedSecurityError):
        decode_dlms(_first_push())


def test_plain_data_notification() -> None:
    v = VECTORS["plain_data_notification"]
    msg = decode_dlms(H(v["apdu_hex"]))
    assert isinstance(msg.apdu, apdu_mod.DataNotification)
    assert msg.apdu.date_time is None and msg.apdu.date_time_form == "absent"
    assert msg.apdu.body == (9, H(v["expected"]["body_hex"])[2:])


def test_hdlc_frame_decodes_to_the_aidon_list() -> None:
    v = VECTORS["hdlc_han_aidon_se_list"]
    msg = decode_dlms(H(v["hdlc_frame_hex"]))
    assert msg.layers[0]["layer"] == "hdlc" and msg.layers[0]["frame"] == "UI"
    assert msg.layers[1] == {"layer": "llc", "header": "e6e700"}
    assert len(msg.values) == 27
    assert str(msg.values["1-0:32.7.0.255"].value) == "230.7"


def test_dedicated_and_general_ded_ciphering_round_trip() -> None:
    ek, ak = b"K" * 16, b"A" * 16
    title = b"FLXMTR01"
    response = H("c401c100") + bytes((0x06,)) + (123456).to_bytes(4, "big")
    ded = build_ciphered(0xD4, response, title, 42, ek, ak)  # ded-get-response
    msg = decode_dlms(ded, Keys(ek, ak, title))
    assert isinstance(msg.apdu, apdu_mod.GetResponse) and msg.apdu.results[0].data == (6, 123456)
    with pytest.raises(UnsupportedSecurityError):
        decode_dlms(ded, Keys(ek, ak))  # no system title for the IV
    gdc = build_general_glo_ciphering(response, title, 43, ek, ak, tag=0xDC)
    assert isinstance(decode_dlms(gdc, Keys(ek, ak)).apdu, apdu_mod.GetResponse)


def test_wrong_keys_are_not_mistaken_for_tampering() -> None:
    raw = _first_push()
    for i in range(40):
        with pytest.raises(WrongKeyError):
            decode_dlms(raw, Keys(bytes([i]) * 16, KEY))
