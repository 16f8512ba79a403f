"""Geo queries: parameter errors (Orion's descriptions), and near/coveredBy/intersects/disjoint/equals
on geo:point, geo:line, geo:box, geo:polygon and geo:json locations with known distances."""

from __future__ import annotations

import math

import pytest

from flexmeter.contextbroker.errors import BadRequest
from flexmeter.contextbroker.query import parse_condition, parse_geo
from flexmeter.contextbroker.query.geo import EARTH_RADIUS_M, haversine_m
from tests.contextbroker.query.builders import attr, entity

# One degree of latitude on MongoDB's sphere, in meters (about 111.3 km).
DEG_M = math.pi / 180 * EARTH_RADIUS_M


def point(eid: str, lat: float, lon: float) -> dict:  # type: ignore[type-arg]
    return entity(eid, location=attr(f"{lat}, {lon}", "geo:point"))  # type: ignore[return-value]


def geojson(eid: str, geometry: dict) -> dict:  # type: ignore[type-arg]
    return entity(eid, location=attr(geometry, "geo:json"))  # type: ignore[return-value]


class TestErrors:
    @pytest.mark.parametrize(
        ("georel", "geometry", "coords", "description"),
        [
            (None, None, "1,2", "Invalid query: URI param /coords/ used without /geometry/"),
            ("near;maxDistance:1", None, "1,2", "Invalid query: URI param /coords/ used without /geometry/"),
            (None, "point", None, "Invalid query: URI param /geometry/ used without /coords/"),
            ("near;maxDistance:1", None, None, "Invalid query: URI param /georel/ used without /geometry/"),
            (
                None,
                "point",
                "1,2",
                "partial geo expression: geometry, georel and coords have to be provided together",
            ),
            (
                "near",
                "point",
                "1,2",
                "Invalid query: georel /near/ without either minDistance nor maxDistance",
            ),
            ("near;maxDistance:x", "point", "1,2", "Invalid query: invalid number for maxDistance"),
            ("near;minDistance:", "point", "1,2", "Invalid query: invalid number for minDistance"),
            (
                "near;maxDistance:1;maxDistance:2",
                "point",
                "1,2",
                "Invalid query: maxDistance present more than once",
            ),
            (
                "near;minDistance:1;minDistance:2",
                "point",
                "1,2",
                "Invalid query: minDistance present more than once",
            ),
            ("near;near;maxDistance:1", "point", "1,2", "Invalid query: georel type present more than once"),
            ("within", "point", "1,2", "Invalid query: Invalid modifier in georel parameter"),
            (
                "intersects;maxDistance:5",
                "point",
                "1,2",
                "Invalid query: maxDistance erroneously used with georel /intersects/",
            ),
            (
                "coveredBy;minDistance:5",
                "polygon",
                "0,0;0,1;1,1;0,0",
                "Invalid query: minDistance erroneously used with georel /coveredBy/",
            ),
            (
                "intersects",
                "circle",
                "1,2",
                "Invalid query: error parsing geometry: Invalid selector in geometry specification",
            ),
            (
                "intersects",
                "point;line",
                "1,2",
                "Invalid query: error parsing geometry: geometry-type present more than once",
            ),
            (
                "coveredBy",
                "line",
                "1,2;3,4",
                "Invalid query: line geometry cannot be used with coveredBy georel",
            ),
            (
                "coveredBy",
                "point",
                "1,2",
                "Invalid query: point geometry cannot be used with coveredBy georel",
            ),
            (
                "near;maxDistance:5",
                "polygon",
                "0,0;0,1;1,1;0,0",
                "Invalid query: georel /near/ used with geometry different than point",
            ),
            ("intersects", "point", "1", "Invalid query: invalid point in URI param /coords/"),
            ("intersects", "point", "1,2,3", "Invalid query: invalid point in URI param /coords/"),
            ("intersects", "point", "a,2", "Invalid query: invalid coordinates"),
            ("intersects", "point", "1,2;3,4", "Invalid query: invalid number of coordinates for /point/"),
            ("intersects", "line", "1,2", "Invalid query: invalid number of coordinates for /line/"),
            ("intersects", "box", "1,2", "Invalid query: invalid number of coordinates for /box/"),
            ("intersects", "box", "1,2;1,5", "Invalid query: box coordinates are not defining an actual box"),
            ("intersects", "polygon", "0,0;0,1;0,0", "Invalid query: Too few coordinates for polygon"),
            (
                "intersects",
                "polygon",
                "0,0;0,1;1,1;1,0",
                "Invalid query: First and last point in polygon not the same",
            ),
            ("intersects", "point", ";", "Invalid query: erroneous coordinates for geometry"),
        ],
    )
    def test_query_errors(
        self, georel: str | None, geometry: str | None, coords: str | None, description: str
    ) -> None:
        with pytest.raises(BadRequest) as info:
            parse_geo(georel, geometry, coords)
        assert info.value.description == description

    @pytest.mark.parametrize(
        ("georel", "geometry", "coords"),
        [(None, "point", "1,2"), ("near;maxDistance:1", None, "1,2"), ("near;maxDistance:1", "point", None)],
    )
    def test_subscription_partial_expression(
        self, georel: str | None, geometry: str | None, coords: str | None
    ) -> None:
        with pytest.raises(BadRequest) as info:
            parse_geo(georel, geometry, coords, subscription=True)
        assert info.value.description.startswith("partial geo expression")
        with pytest.raises(BadRequest):
            parse_condition(georel=georel, geometry=geometry, coords=coords, subscription=True)

    def test_no_geo_params(self) -> None:
        assert parse_geo(None, None, None) is None
        assert parse_geo("", "", "") is None
        assert parse_condition().empty


class TestNear:
    # Reference at (lat 40, lon -3); points north of it by known fractions of a degree.
    REF = "40,-3"
    ENTITIES = [point(f"P{i}", 40 + i * 0.001, -3) for i in range(10)]  # 0, 111 m, 222 m, ... 1002 m

    def ids(self, georel: str) -> list[str]:
        g = parse_geo(georel, "point", self.REF)
        assert g is not None
        return [e["id"] for e in self.ENTITIES if g.matches(e)]  # type: ignore[arg-type]

    def test_max_distance(self) -> None:
        # 0.004 deg = 445.2 m, 0.005 deg = 556.6 m
        assert self.ids("near;maxDistance:500") == ["P0", "P1", "P2", "P3", "P4"]
        assert self.ids("near;maxDistance:0") == ["P0"]

    def test_min_distance(self) -> None:
        assert self.ids("near;minDistance:500") == ["P5", "P6", "P7", "P8", "P9"]

    def test_min_and_max(self) -> None:
        assert self.ids("near;minDistance:300;maxDistance:600") == ["P3", "P4", "P5"]

    def test_distance_values(self) -> None:
        g = parse_geo("near;maxDistance:1", "point", self.REF)
        assert g is not None
        for i, e in enumerate(self.ENTITIES):
            d = g.distance(e)  # type: ignore[arg-type]
            assert d == pytest.approx(i * 0.001 * DEG_M, rel=1e-9)

    def test_known_city_distance(self) -> None:
        # Turin (45.0703, 7.6869) to Malmö (55.6050, 13.0038): about 1,230 km on the sphere
        d = haversine_m(7.6869, 45.0703, 13.0038, 55.6050)
        assert 1_220_000 < d < 1_240_000
        turin = point("turin", 45.0703, 7.6869)
        g = parse_geo("near;maxDistance:1240000", "point", "55.6050,13.0038")
        assert g is not None and g.matches(turin)  # type: ignore[arg-type]
        g = parse_geo("near;maxDistance:1220000", "point", "55.6050,13.0038")
        assert g is not None and not g.matches(turin)  # type: ignore[arg-type]

    def test_longitude_distance_shrinks_with_latitude(self) -> None:
        # 0.01 deg of longitude at lat 60 is half as long as at the equator
        at_60 = haversine_m(0, 60, 0.01, 60)
        at_0 = haversine_m(0, 0, 0.01, 0)
        assert at_60 == pytest.approx(at_0 / 2, rel=1e-4)

    def test_near_to_a_line_uses_its_nearest_point(self) -> None:
        # a line along lat 40.01, reference at lat 40: about 1113 m away
        line = entity("L", location=attr(["40.01, -3.1", "40.01, -2.9"], "geo:line"))
        g = parse_geo("near;maxDistance:1200", "point", self.REF)
        assert g is not None and g.matches(line)  # type: ignore[arg-type]
        assert g.distance(line) == pytest.approx(0.01 * DEG_M, rel=1e-6)  # type: ignore[arg-type]
        g = parse_geo("near;maxDistance:1000", "point", self.REF)
        assert g is not None and not g.matches(line)  # type: ignore[arg-type]

    def test_inside_a_polygon_is_distance_zero(self) -> None:
        square = entity("S", location=attr(["39,-4", "41,-4", "41,-2", "39,-2", "39,-4"], "geo:polygon"))
        g = parse_geo("near;maxDistance:1", "point", self.REF)
        assert g is not None and g.matches(square)  # type: ignore[arg-type]

    def test_geojson_point_is_lon_lat(self) -> None:
        e = geojson("J", {"type": "Point", "coordinates": [-3, 40.002]})
        g = parse_geo("near;maxDistance:250", "point", self.REF)
        assert g is not None and g.matches(e)  # type: ignore[arg-type]
        swapped = geojson("J2", {"type": "Point", "coordinates": [40.002, -3]})
        assert not g.matches(swapped)  # type: ignore[arg-type]


# A 1x1 degree square in lat [40, 41], lon [-4, -3], given in NGSI-v2 lat,lon order.
SQUARE = "40,-4;41,-4;41,-3;40,-3;40,-4"
BOX = "40,-4;41,-3"

INSIDE = point("inside", 40.5, -3.5)
OUTSIDE = point("outside", 42, -3.5)
ON_EDGE = point("edge", 40, -3.5)
CROSSING_LINE = entity("crossing", location=attr(["40.5, -3.5", "42, -3.5"], "geo:line"))
INNER_BOX = entity("innerbox", location=attr(["40.2, -3.8", "40.4, -3.6"], "geo:box"))
FAR_POLYGON = entity("far", location=attr(["10,10", "11,10", "11,11", "10,10"], "geo:polygon"))
GEOJSON_INSIDE = geojson(
    "jin", {"type": "Polygon", "coordinates": [[[-3.9, 40.1], [-3.1, 40.1], [-3.1, 40.9], [-3.9, 40.1]]]}
)
FEATURE = geojson(
    "feature",
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-3.5, 40.5]}, "properties": {}},
)
NO_LOCATION = entity("nolocation", temperature=3)
BAD_LOCATION = entity("bad", location=attr("north pole", "geo:point"))
ALL = [
    INSIDE,
    OUTSIDE,
    ON_EDGE,
    CROSSING_LINE,
    INNER_BOX,
    FAR_POLYGON,
    GEOJSON_INSIDE,
    FEATURE,
    NO_LOCATION,
    BAD_LOCATION,
]


def matching(georel: str, geometry: str, coords: str) -> set[str]:
    g = parse_geo(georel, geometry, coords)
    assert g is not None
    return {e["id"] for e in ALL if g.matches(e)}  # type: ignore[arg-type]


@pytest.mark.parametrize(("geometry", "coords"), [("polygon", SQUARE), ("box", BOX)])
def test_covered_by(geometry: str, coords: str) -> None:
    # the border is part of the shape
    assert matching("coveredBy", geometry, coords) == {"inside", "edge", "innerbox", "jin", "feature"}


@pytest.mark.parametrize(("geometry", "coords"), [("polygon", SQUARE), ("box", BOX)])
def test_intersects(geometry: str, coords: str) -> None:
    assert matching("intersects", geometry, coords) == {
        "inside",
        "edge",
        "crossing",
        "innerbox",
        "jin",
        "feature",
    }


@pytest.mark.parametrize(("geometry", "coords"), [("polygon", SQUARE), ("box", BOX)])
def test_disjoint(geometry: str, coords: str) -> None:
    # entities without a (valid) location match no geo query, disjoint included
    assert matching("disjoint", geometry, coords) == {"outside", "far"}


def test_intersects_with_a_line() -> None:
    # a line along lon -3.5 from lat 39 to 40.5 crosses the edge, reaches the inside point and crosses
    # the GeoJSON triangle (whose hypotenuse is at lat 40.5 there)
    assert matching("intersects", "line", "39,-3.5;40.5,-3.5") == {
        "inside",
        "edge",
        "crossing",
        "feature",
        "jin",
    }
    assert matching("intersects", "line", "39,-3.5;40.05,-3.5") == {"edge"}


def test_equals() -> None:
    assert matching("equals", "point", "40.5,-3.5") == {"inside", "feature"}
    assert matching("equals", "point", "40.5,-3.50001") == set()
    assert matching("equals", "box", "40.2,-3.8;40.4,-3.6") == {"innerbox"}
    assert matching("equals", "line", "40.5,-3.5;42,-3.5") == {"crossing"}


def test_default_location_and_ignore_type() -> None:
    e = entity(
        "two",
        first=attr("10, 10", "geo:point"),
        second=attr("40.5, -3.5", "geo:point", metadata={"defaultLocation": True}),
    )
    assert parse_geo("coveredBy", "box", BOX).matches(e)  # type: ignore[union-attr]
    e2 = entity(
        "ignored",
        first=attr("40.5, -3.5", "geo:point", metadata={"ignoreType": True}),
        second=attr("10, 10", "geo:point"),
    )
    assert not parse_geo("coveredBy", "box", BOX).matches(e2)  # type: ignore[union-attr]
    e3 = entity("first-wins", first=attr("40.5, -3.5", "geo:point"), second=attr("10, 10", "geo:point"))
    assert parse_geo("coveredBy", "box", BOX).matches(e3)  # type: ignore[union-attr]


def test_condition_combines_q_mq_and_geo() -> None:
    e = entity(
        "room",
        temperature=attr(25, metadata={"accuracy": 0.1}),
        location=attr("40.5, -3.5", "geo:point"),
    )
    c = parse_condition(
        q="temperature>20", mq="temperature.accuracy<1", georel="coveredBy", geometry="box", coords=BOX
    )
    assert c.matches(e)
    assert not parse_condition(q="temperature>30", georel="coveredBy", geometry="box", coords=BOX).matches(e)
    assert not parse_condition(mq="temperature.accuracy>1").matches(e)
    assert not parse_condition(q="temperature>20", georel="disjoint", geometry="box", coords=BOX).matches(e)
    assert parse_condition().matches(e)
    assert parse_condition(q="", mq="").empty


def test_condition_attrs_and_repr() -> None:
    c = parse_condition(q="a>1;b.c==2", mq="d.m<3")
    assert c.attrs == frozenset({"a", "b", "d"})
    assert "a>1" in repr(c)
    assert parse_condition().attrs == frozenset()


def test_invalid_shapes_never_raise() -> None:
    bow_tie = "0,0;0,2;2,0;2,2;0,0"  # self-intersecting, yet closed with >= 4 points: Orion accepts it
    bad = geojson("bad", {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]})
    weird = [
        bad,
        geojson("notgeo", {"type": "Nope", "coordinates": 1}),
        geojson("string", "Point"),  # type: ignore[arg-type]
        entity("line1", location=attr(["1, 1"], "geo:line")),
        entity("openpoly", location=attr(["0,0", "0,1", "1,1", "1,0"], "geo:polygon")),
        entity("box3", location=attr(["0,0", "1,1", "2,2"], "geo:box")),
        entity("badnum", location=attr("91, 0", "geo:point")),
        entity("list", location=attr([1, 2], "geo:point")),
    ]
    queries = [
        ("coveredBy", "polygon", bow_tie),
        ("intersects", "polygon", bow_tie),
        ("disjoint", "box", "0,0;1,1"),
        ("equals", "line", "0,0;1,1"),
        ("near;maxDistance:1000000", "point", "1,1"),
    ]
    for georel, geometry, coords in queries:
        g = parse_geo(georel, geometry, coords)
        assert g is not None
        for e in weird:
            assert g.matches(e) in (True, False)  # type: ignore[arg-type]
            g.distance(e)  # type: ignore[arg-type]
    only_valid = parse_geo("near;maxDistance:100000000", "point", "1,1")
    assert only_valid is not None
    # the unparseable locations count as no location
    assert {e["id"] for e in weird if only_valid.matches(e)} == {"bad"}  # type: ignore[arg-type]
