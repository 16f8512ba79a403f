"""Pure parts: time parsing and formatting, buckets, time-index precedence, column fitting, geo, params."""

from __future__ import annotations

import pytest

from flexmeter.quantumleap import timeindex
from flexmeter.quantumleap.columns import FLOAT, INTEGER, Misfit, fit, kind_for
from flexmeter.quantumleap.errors import BadParameters, InvalidParameterValue, NotImplementedOption, Problem
from flexmeter.quantumleap.geo import matches, parse_geo
from flexmeter.quantumleap.params import parse_query


@pytest.mark.parametrize("text, expected", [
    ("2024-03-01T10:00:00Z", "2024-03-01T10:00:00.000+00:00"),
    ("2024-03-01T10:00:00.5+02:00", "2024-03-01T08:00:00.500+00:00"),
    ("2024-03-01T10:00:00.123456", "2024-03-01T10:00:00.123+00:00"),
    ("2024-03-01", "2024-03-01T00:00:00.000+00:00"),
    ("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999+00:00"),
])
def test_instants_round_trip_in_utc_with_milliseconds(text: str, expected: str) -> None:
    assert timeindex.format_instant(timeindex.parse_instant(text)) == expected


@pytest.mark.parametrize("bad", ["", "yesterday", "2024-13-01", 17, None])
def test_bad_instants(bad: object) -> None:
    with pytest.raises(timeindex.BadInstant):
        timeindex.parse_instant(bad)


def test_calendar_buckets() -> None:
    lo = timeindex.parse_instant("2024-01-31T23:00:00Z")
    hi = timeindex.parse_instant("2024-03-02T00:00:00Z")
    months = [timeindex.format_instant(s) for s, _ in timeindex.buckets(lo, hi, "month")]
    assert months == ["2024-01-01T00:00:00.000+00:00", "2024-02-01T00:00:00.000+00:00",
                      "2024-03-01T00:00:00.000+00:00"]
    assert len(timeindex.buckets(lo, hi, "hour")) == timeindex.bucket_count(lo, hi, "hour") == 722
    year = timeindex.truncate(timeindex.parse_instant("2024-07-04T05:06:07Z"), "year")
    assert timeindex.format_instant(year) == "2024-01-01T00:00:00.000+00:00"


def test_unparseable_candidates_fall_through() -> None:
    entity = {"id": "x", "type": "T", "TimeInstant": {"type": "DateTime", "value": "garbage"},
              "timestamp": {"type": "DateTime", "value": "2024-01-01T00:00:00Z"}}
    assert timeindex.select_time_index(entity, "missing") == timeindex.parse_instant("2024-01-01T00:00:00Z")
    assert timeindex.select_time_index({"id": "x", "type": "T"}, default=42) == 42


def test_fit_follows_the_column_kind() -> None:
    assert fit(FLOAT, 3) == 3.0 and isinstance(fit(FLOAT, 3), float)
    assert fit(FLOAT, " 2.5 ") == 2.5 and fit(FLOAT, "") is None
    assert fit(INTEGER, 4.0) == 4 and fit("boolean", "true") is True
    for kind, value in ((FLOAT, True), (FLOAT, "abc"), (INTEGER, 1.5), ("boolean", 1), ("datetime", "soon"),
                        ("text", {"a": 1}), (FLOAT, float("nan"))):
        with pytest.raises(Misfit):
            fit(kind, value)
    assert kind_for("Number", 1) == FLOAT and kind_for("kWh", 1) == FLOAT and kind_for("kWh", None) is None
    assert kind_for(None, {"a": 1}) == "json" and kind_for("geo:json", None) == "json"


def test_geo_parsing_and_matching() -> None:
    near = parse_geo("near;maxDistance:1000;minDistance:10", "point", "45.07,7.68")
    assert near is not None and near.max_distance == 1000 and near.min_distance == 10
    assert matches("45.0705, 7.6805", near) and not matches("45.07, 7.68", near)
    polygon = parse_geo("coveredBy", "polygon", "0,0;0,10;10,10;10,0;0,0")
    assert polygon is not None and matches({"type": "Point", "coordinates": [5, 5]}, polygon)
    assert not matches({"type": "Point", "coordinates": [15, 5]}, polygon)
    with pytest.raises(BadParameters):
        parse_geo("near", "point", "1,2")
    with pytest.raises(BadParameters):
        parse_geo("coveredBy", "polygon", "0,0;0,1;1,1")


def test_parameter_errors() -> None:
    assert parse_query({}, service_path=None).limit == 10000
    assert parse_query({"limit": "50000"}, service_path=None).limit == 10000
    with pytest.raises(BadParameters):
        parse_query({"aggrPeriod": "day"}, service_path=None)
    with pytest.raises(InvalidParameterValue):
        parse_query({"toDate": "x"}, service_path=None)
    with pytest.raises(NotImplementedOption):
        parse_query({"options": "keyValues"}, service_path=None)
    with pytest.raises(Problem):
        parse_query({"lastN": "0"}, service_path=None)
    with pytest.raises(Problem):
        parse_query({"aggrMethod": "median", "attrs": "a"}, service_path=None)
