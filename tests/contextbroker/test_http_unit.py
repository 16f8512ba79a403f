"""Unit tests of the embedded broker's JSON parsing (orjson with the stdlib as referee)."""

from __future__ import annotations

import json

import pytest

from flexmeter.contextbroker.errors import ParseError
from flexmeter.contextbroker.http import parse_json


@pytest.mark.parametrize("text", [
    '{"a": 1, "b": 22.0, "c": -0.5e-7, "d": [true, false, null], "e": "\\u00e9\\ud83d\\ude00"}',
    '{"big": 123456789012345678901234567890, "neg": -98765432109876543210}',
    '{"edge": 18446744073709551615, "edge2": 9223372036854775808}',
    '{"a": 1, "a": 2}',
    '"text"', "1E5", "[]",
])
def test_same_values_as_the_stdlib(text: str) -> None:
    parsed = parse_json(text.encode())
    expected = json.loads(text)
    assert parsed == expected
    assert json.dumps(parsed) == json.dumps(expected)  # same types: big integers stay exact ints


@pytest.mark.parametrize("data", [
    b"{bad", b'{"a": NaN}', b'{"a": 1e999}', b'{"a": -1e400}', b"\xff\xfe", b'["\\ud800x"',
    b"[" * 5000 + b"]" * 5000, b"",
])
def test_errors_are_parse_errors(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_json(data)


def test_lone_surrogate_escape_parsed_as_the_stdlib_does() -> None:
    assert parse_json(b'["\\ud800"]') == json.loads('["\\ud800"]')
