"""List profiles are data: a new meter type is a JSON file, no code."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from flexmeter.iot_agents.dlms.apdu import build_data_notification
from flexmeter.iot_agents.dlms.decoder import decode_dlms
from flexmeter.iot_agents.dlms.errors import ProfileError
from flexmeter.iot_agents.dlms.profiles import ProfileRegistry

POSITIONAL_PUSH = (2, [(10, "ACME_L7"), (9, b"12345678"), (18, 2301), (18, 2298), (5, -1520),
                       (6, 987654)])


def test_new_meter_type_from_a_data_file(tmp_path: Path) -> None:
    (tmp_path / "acme.json").write_text(json.dumps({
        "name": "acme", "manufacturer": "ACME",
        "list_versions": ["ACME_L7"],
        "positional": {"6": ["1-1:0.2.129.255", "0-0:96.1.0.255", "1-0:32.7.0.255", "1-0:52.7.0.255",
                             "1-0:16.7.0.255", "1-0:1.8.0.255"]},
        "units": {"1-0:32.7.0.255": [-1, "V"], "1-0:52.7.0.255": [-1, "V"], "1-0:16.7.0.255": [0, "W"],
                  "1-0:1.8.0.255": [1, "Wh"]},
    }))
    raw = build_data_notification(POSITIONAL_PUSH, 9)
    unknown = decode_dlms(raw)
    assert unknown.push is not None and unknown.push.profile is None and unknown.values == {}
    known = decode_dlms(raw, registry=ProfileRegistry(directories=[tmp_path]))
    assert known.push is not None and (known.push.profile, known.push.manufacturer) == ("acme", "ACME")
    values = {k: (v.value, v.unit) for k, v in known.values.items()}
    assert values["1-0:32.7.0.255"] == (Decimal("230.1"), "V")
    assert values["1-0:16.7.0.255"] == (Decimal(-1520), "W")
    assert values["1-0:1.8.0.255"] == (Decimal(9876540), "Wh")
    assert values["0-0:96.1.0.255"] == ("12345678", None)


def test_known_version_with_unknown_length_is_a_profile_error() -> None:
    body = (2, [(9, b"KFM_001"), (6, 1), (6, 2)])
    with pytest.raises(ProfileError) as info:
        decode_dlms(build_data_notification(body))
    assert "kaifa" in str(info.value)


def test_interleaved_without_profile_keeps_frame_obis_codes() -> None:
    body = (2, [(9, bytes.fromhex("0100010700ff")), (6, 42), (0, None), (0, None),
                (9, bytes.fromhex("0100200700ff")), (18, 2301)])
    msg = decode_dlms(build_data_notification(body))
    assert msg.push is not None and msg.push.layout == "interleaved"
    assert {k: v.value for k, v in msg.values.items()} == {"1-0:1.7.0.255": 42, "1-0:32.7.0.255": 2301}
