"""q/mq parse errors: BadRequest with Orion's exact descriptions (from Orion's StringFilter)."""

from __future__ import annotations

import pytest

from flexmeter.contextbroker.errors import BadRequest
from flexmeter.contextbroker.query import parse_mq, parse_q


@pytest.mark.parametrize(
    ("q", "description"),
    [
        ("", "empty q"),
        (";", "empty q"),
        ("   ", "empty q"),
        ("a;;b", "empty q-item"),
        ("a; ;", "empty q-item"),
        ("a; ;b", "empty q-item (only whitespace)"),
        ("speed==", "empty right-hand-side in q-item"),
        ("speed!=", "empty right-hand-side in q-item"),
        ("speed>=", "empty right-hand-side in q-item"),
        ("speed<=", "empty right-hand-side in q-item"),
        ("speed>", "empty right-hand-side in q-item"),
        ("speed<", "empty right-hand-side in q-item"),
        ("speed~=", "empty right-hand-side in q-item"),
        ("speed:", "empty right-hand-side in q-item"),
        ("!", "empty right-hand-side in q-item"),
        ("==speed", "empty left-hand-side in q-item"),
        ("!=speed", "empty left-hand-side in q-item"),
        (">=speed", "empty left-hand-side in q-item"),
        ("<=speed", "empty left-hand-side in q-item"),
        (">speed", "empty left-hand-side in q-item"),
        ("<speed", "empty left-hand-side in q-item"),
        ("house=flat", "invalid character found in URI param /q/"),
        ("house(flat)", "invalid character found in URI param /q/"),
        ('house"x"', "invalid character found in URI param /q/"),
        ("speed>=69..90", "ranges only valid for equal and not equal ops"),
        ("speed>69..90", "ranges only valid for equal and not equal ops"),
        ("speed<=69..79", "ranges only valid for equal and not equal ops"),
        ("speed<99..190", "ranges only valid for equal and not equal ops"),
        ("a>1,2", "lists only valid for equal and not equal ops"),
        ("a~=x;b>1,2", "lists only valid for equal and not equal ops"),
        ("speed==99....190", "invalid range: types mixed"),
        ("speed==1..'z'", "invalid range: types mixed"),
        ("speed==1..2024-01-01", "invalid range: types mixed"),
        ("speed==..5", "empty item in range"),
        ("speed==5..", "empty item in range"),
        ("speed==true..false", "invalid data type for /range-from/"),
        ("speed==1..null", "invalid data type for /range-to/"),
        ("speed==99,,,190", "empty item in list"),
        ("speed==1,", "empty item in list"),
        ("speed==,1", "empty item in list"),
        ("speed==1,'a'", "invalid JSON value type in list"),
        ("speed==true,false", "invalid JSON value type in list"),
        ("speed==1,null", "invalid JSON value type in list"),
        ("speed==1,2024-01-01", "invalid JSON value type in list"),
        ("a=='abc", "non-terminated forced string"),
        ("a=='", "non-terminated forced string"),
        ("a=='ab'c'", "quote in forced string"),
        ("a==x(y", "forbidden characters in String Filter"),
        ("a=='x(y'", "forbidden characters in String Filter"),
        ("a~=(ab)", "forbidden characters in String Filter"),
        ("a~=[", "error compiling filter regex: '['"),
        ("a>true", "values of type /Bool/ not supported for operator /GreaterThan/"),
        ("a<null", "values of type /Null/ not supported for operator /LessThan/"),
        ("a>=false", "values of type /Bool/ not supported for operator /GreaterThanOrEqual/"),
        ("a<=null", "values of type /Null/ not supported for operator /LessThanOrEqual/"),
    ],
)
def test_q_errors(q: str, description: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_q(q)
    assert info.value.description == description
    assert info.value.status == 400
    assert info.value.body() == {"error": "BadRequest", "description": description}


@pytest.mark.parametrize(
    ("mq", "description"),
    [
        ("temperature", "no metadata in right-hand-side of q-item"),
        ("!temperature", "no metadata in right-hand-side of q-item"),
        ("temperature==1", "no metadata name - not valid for metadata filters"),
        (".accuracy==1", "no attribute name - not valid for metadata filters"),
        ("temperature.accuracy=1", "invalid character found in URI param /mq/"),
        ("temperature.accuracy>", "empty right-hand-side in q-item"),
        ("", "empty q"),
    ],
)
def test_mq_errors(mq: str, description: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_mq(mq)
    assert info.value.description == description


def test_item_errors_come_before_metadata_name_errors() -> None:
    # Orion parses every item first, then checks the attribute/metadata names.
    with pytest.raises(BadRequest) as info:
        parse_mq("temperature==1;b.c==")
    assert info.value.description == "empty right-hand-side in q-item"


@pytest.mark.parametrize(
    "q",
    [
        "temperature>40",
        "temperature==40.56",
        "temperature==cool",
        "!speed;!timestamp",
        "temperature=='40'",
        "color!='black,ligth'",
        "color!='black,ligth',orange",
        "speed==69..90",
        "speed!=69..90",
        "my_time==2016-04-05T14:00:00.00Z..2016-05-05T14:00:00.00Z",
        "my_time>=2016-04-05T14:00:00.00Z",
        "speed==79..85;!myAttr;otherAttr",
        "34",
        "true",
        "temp-34",
        "a.b.c==1",
        "'a.b'.c==1",
        "a~=^ab.*c$",
        "a;",
        ";a",
        " a > 3 ; b ",
        "a:3",
        "a==null",
        "a!=true",
    ],
)
def test_valid_expressions_parse(q: str) -> None:
    f = parse_q(q)
    assert f.text == q
    assert f.kind == "q"
