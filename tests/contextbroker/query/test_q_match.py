"""q matching: every operator, type strictness, arrays, paths, dates, builtins, AND."""

from __future__ import annotations

import pytest

from flexmeter.contextbroker.query import parse_q
from tests.contextbroker.query.builders import attr, entity

ROOM = entity(
    "Room1",
    "Room",
    temperature=25,
    humidity=40.5,
    name="living room",
    code="10",
    on=True,
    off=False,
    nothing=None,
    colors=["red", "green", 7],
    readings=[10, 20, 30],
    brand={
        "name": "Acme",
        "model": {"year": 2020, "tags": ["x", "y"]},
        "parts": [{"id": "p1"}, {"id": "p2"}],
    },
    observed=attr("2024-05-01T12:00:00Z", "DateTime"),
)


def q(text: str, e: object = ROOM) -> bool:
    return parse_q(text).matches(e)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # equality, type-strict
        ("temperature==25", True),
        ("temperature==25.0", True),
        ("temperature:25", True),
        ("temperature==26", False),
        ("temperature=='25'", False),
        ("code=='10'", True),
        ("code==10", False),
        ("name==living room", True),
        ("name=='living room'", True),
        ("on==true", True),
        ("on==false", False),
        ("off==false", True),
        ("on=='true'", False),
        ("nothing==null", True),
        ("temperature==null", False),
        ("nothing!=null", False),
        ("temperature!=null", True),
        ("missing==null", False),
        ("missing!=null", False),
        # inequality needs the attribute
        ("temperature!=26", True),
        ("temperature!=25", False),
        ("temperature!='25'", True),
        ("missing!=1", False),
        ("on!=false", True),
        ("on!=true", False),
        # order comparisons, numbers
        ("temperature>20", True),
        ("temperature>25", False),
        ("temperature>=25", True),
        ("temperature<25", False),
        ("temperature<=25", True),
        ("temperature<30", True),
        ("humidity>40.4", True),
        ("humidity<-1", False),
        ("temperature>'20'", False),
        ("missing>0", False),
        ("on>0", False),
        ("nothing<1", False),
        # order comparisons, strings (binary order)
        ("name>living", True),
        ("name<m", True),
        ("name>=living room", True),
        ("name<living room", False),
        ("code>'1'", True),
        ("code>1", False),
        # ranges
        ("temperature==20..30", True),
        ("temperature==25..25", True),
        ("temperature==26..30", False),
        ("temperature!=26..30", True),
        ("temperature!=20..30", False),
        ("missing!=1..2", False),
        ("name==a..m", True),
        ("name==m..z", False),
        ("name!=m..z", True),
        ("temperature=='a'..'z'", False),
        # lists
        ("temperature==1,25,3", True),
        ("temperature==1,2,3", False),
        ("temperature!=1,2,3", True),
        ("temperature!=1,25", False),
        ("name=='living room',kitchen", True),
        ("name==kitchen,bath", False),
        ("name!=kitchen,bath", True),
        ("code==10,11", False),
        ("code=='10','11'", True),
        ("missing!=1,2", False),
        # patterns
        ("name~=liv", True),
        ("name~=^room", False),
        ("name~=room$", True),
        ("name~=^l.*m$", True),
        ("temperature~=2", False),
        ("missing~=.", False),
        # existence
        ("temperature", True),
        ("missing", False),
        ("!missing", True),
        ("!temperature", False),
        ("nothing", True),
        # AND
        ("temperature>20;humidity<50", True),
        ("temperature>20;humidity>50", False),
        ("temperature>20;!missing;name~=room", True),
        ("temperature>20;missing", False),
    ],
)
def test_operators(text: str, expected: bool) -> None:
    assert q(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("readings==20", True),
        ("readings==25", False),
        ("readings>25", True),
        ("readings>30", False),
        ("readings<11", True),
        ("readings!=20", False),
        ("readings!=25", True),
        ("readings==15..25", True),
        ("readings==21..29", True),  # MongoDB: some element >= 21 and some element <= 29
        ("readings==31..40", False),
        ("readings!=31..40", True),
        ("readings==5,30", True),
        ("readings!=5,30", False),
        ("readings!=5,6", True),
        ("colors==red", True),
        ("colors==blue", False),
        ("colors==7", True),
        ("colors=='7'", False),
        ("colors~=^gr", True),
        ("colors!=blue,black", True),
        ("colors!=green", False),
    ],
)
def test_array_values_match_any_element(text: str, expected: bool) -> None:
    assert q(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("brand.name==Acme", True),
        ("brand.name=='Acme'", True),
        ("brand.name!=Other", True),
        ("brand.name!=Acme", False),
        ("brand.model.year==2020", True),
        ("brand.model.year>2019", True),
        ("brand.model.year=='2020'", False),
        ("brand.model.year==2000..2030", True),
        ("brand.model.tags==y", True),
        ("brand.model.tags.0==x", True),
        ("brand.model.tags.1==x", False),
        ("brand.parts.id==p2", True),
        ("brand.parts.id==p3", False),
        ("brand.parts.0.id==p1", True),
        ("brand.model", True),
        ("brand.model.year", True),
        ("brand.model.month", False),
        ("!brand.model.month", True),
        ("!brand.model.year", False),
        ("brand.missing.deeper==1", False),
        ("brand.missing!=1", False),
        ("name.first==x", False),
        ("temperature.x", False),
        ("!temperature.x", True),
        ("!missing.x", True),
    ],
)
def test_paths_into_structured_values(text: str, expected: bool) -> None:
    assert q(text) is expected


def test_quoted_path_tokens_keep_dots() -> None:
    e = entity(**{"a.b": {"x.y": 5, "w": {"x.y": 6}}})
    # an attribute name cannot contain '.', but a key in a value can: quote it
    e2 = entity(a={"b": 1, "x.y": {"z": 9}})
    assert parse_q("a.'x.y'.z==9").matches(e2)
    assert not parse_q("a.x.y.z==9").matches(e2)
    assert parse_q("'a.b'.w.'x.y'==6").matches(e)
    assert parse_q("'a.b'.'x.y'==5").matches(e)


def test_attribute_names_with_special_characters() -> None:
    e = entity(**{"temp-34": 1, "TEMP_34": 2, "34": 3, "ns:attr": 4, "a%b": 5})
    assert parse_q("temp-34==1").matches(e)
    assert parse_q("TEMP_34==2").matches(e)
    assert parse_q("34==3").matches(e)
    assert parse_q("34").matches(e)
    assert parse_q("'ns:attr'==4").matches(e)  # ':' is an operator unless quoted
    assert parse_q("a%b==5").matches(e)
    assert not parse_q("temp-34==2").matches(e)


class TestDates:
    E = entity(
        observed=attr("2024-05-01T12:00:00Z", "DateTime"),
        offset=attr("2024-05-01T14:00:00+02:00", "DateTime"),
        text="2024-05-01T12:00:00Z",
        cre=1_700_000_000.0,
        mod=1_714_564_800.0,
        exp=1_800_000_000.0,
    )

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("observed==2024-05-01T12:00:00Z", True),
            ("observed==2024-05-01T12:00:00.000Z", True),
            ("observed==2024-05-01T14:00:00+02:00", True),
            ("observed>2024-05-01T11:59:59Z", True),
            ("observed>2024-05-01T12:00:00Z", False),
            ("observed>=2024-05-01T12:00:00Z", True),
            ("observed<2024-05-02", True),
            ("observed<=2024-05-01", False),
            ("observed==2024-05-01T00:00:00Z..2024-05-02T00:00:00Z", True),
            ("observed!=2024-05-01T00:00:00Z..2024-05-02T00:00:00Z", False),
            ("observed==2024-06-01..2024-07-01", False),
            ("observed==2024-01-01,2024-05-01T12:00:00Z", True),
            ("observed=='2024-05-01T12:00:00Z'", False),  # a forced string never matches a DateTime
            ("observed>1714564799", True),  # DateTime values are numbers for Orion
            ("offset==2024-05-01T12:00:00Z", True),
            ("offset==observed", False),
            # a Text attribute holding a date string is a string: a date literal does not match it
            ("text==2024-05-01T12:00:00Z", False),
            ("text=='2024-05-01T12:00:00Z'", True),
            ("text>'2024'", True),
        ],
    )
    def test_datetime_attributes(self, text: str, expected: bool) -> None:
        assert parse_q(text).matches(self.E) is expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("dateCreated<2024-01-01", True),  # 1.7e9 is 2023-11-14
            ("dateCreated>2024-01-01", False),
            ("dateModified==2024-05-01T12:00:00Z", True),
            ("dateModified>=2024-05-01T12:00:00Z;dateCreated<2023-12-01", True),
            ("dateExpires>2026-01-01", True),
            ("dateExpires<2026-01-01", False),
            ("dateCreated==2023-01-01..2024-01-01", True),
            ("dateCreated>1600000000", True),
        ],
    )
    def test_builtin_attributes(self, text: str, expected: bool) -> None:
        assert parse_q(text).matches(self.E) is expected

    def test_builtin_existence(self) -> None:
        # Orion checks attribute names for unary statements: the creation date is no attribute
        assert not parse_q("dateCreated").matches(self.E)
        assert parse_q("!dateModified").matches(self.E)
        assert parse_q("dateExpires").matches(self.E)
        assert not parse_q("dateExpires").matches(entity())
        assert not parse_q("dateExpires<2100-01-01").matches(entity())

    def test_date_expires_attribute_wins(self) -> None:
        e = entity(dateExpires=attr("2030-01-01T00:00:00Z", "DateTime"))
        assert parse_q("dateExpires==2030-01-01").matches(e)
        assert parse_q("dateExpires").matches(e)

    def test_invalid_date_literal_is_a_string(self) -> None:
        # 2016-64-05 is not a date (month 64): it is a plain string, compared as such
        e = entity(t="2016-64-05")
        assert parse_q("t==2016-64-05").matches(e)
        assert not parse_q("t==2016-04-05").matches(e)


def test_number_literals() -> None:
    e = entity(n=-1.5e3, i=0, big=10**20)
    assert parse_q("n==-1500").matches(e)
    assert parse_q("n==-1.5e3").matches(e)
    assert parse_q("n<-1e3").matches(e)
    assert parse_q("i==0").matches(e)
    assert parse_q("i==.0").matches(e)
    assert parse_q("big>1e19").matches(e)
    assert not parse_q("i==false").matches(e)  # booleans are not numbers
    assert not parse_q("i==nan").matches(e)  # 'nan' is a string literal
    assert not parse_q("i==0x0").matches(e)


def test_booleans_are_not_numbers() -> None:
    e = entity(flag=True, one=1)
    assert not parse_q("flag==1").matches(e)
    assert not parse_q("flag>0").matches(e)
    assert not parse_q("one==true").matches(e)
    assert parse_q("flag!=1").matches(e)


def test_whitespace_is_stripped() -> None:
    assert parse_q(" temperature > 20 ; humidity<50 ").matches(ROOM)
    assert parse_q("temperature == 20 .. 30").matches(ROOM)
    assert parse_q("temperature == 1 , 25").matches(ROOM)


def test_attrs_lists_first_path_tokens() -> None:
    f = parse_q("temperature>1;brand.model.year==2;!x;dateCreated>0")
    assert f.attrs == frozenset({"temperature", "brand", "x", "dateCreated"})


def test_quoted_string_with_comma_is_one_value() -> None:
    e = entity(color="light,green")
    assert parse_q("color=='light,green','deep,blue'").matches(e)
    assert parse_q("color=='light,green'").matches(e)
    assert not parse_q("color==light,green").matches(e)
    assert parse_q("color!='deep,blue'").matches(e)


def test_regex_is_a_search_not_a_full_match() -> None:
    e = entity(color="yellow")
    assert parse_q("color~=ow").matches(e)
    assert not parse_q("color~=^ow").matches(e)
    assert parse_q("color~=.*").matches(e)
    assert not parse_q("color~=black").matches(e)


def test_iso8601_typed_attributes_are_dates() -> None:
    e = entity(legacy=attr("2024-05-01T12:00:00.000Z", "ISO8601"))
    assert parse_q("legacy==2024-05-01T12:00:00Z").matches(e)
    assert parse_q("legacy<2025-01-01").matches(e)
