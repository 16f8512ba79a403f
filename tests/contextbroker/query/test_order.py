"""orderBy: parsing, builtin keys, descending, multi-key ties, cross-type order, geo:distance."""

from __future__ import annotations

import pytest

from flexmeter.contextbroker.errors import BadRequest
from flexmeter.contextbroker.query import OrderKey, parse_geo, parse_order_by, sort_entities
from tests.contextbroker.query.builders import attr, entity


def ids(entities: list) -> list[str]:  # type: ignore[type-arg]
    return [e["id"] for e in entities]


def test_parse() -> None:
    spec = parse_order_by("temperature,!humidity,id")
    assert spec.keys == (OrderKey("temperature"), OrderKey("humidity", True), OrderKey("id"))
    assert not spec.uses_distance
    assert parse_order_by("geo:distance").uses_distance


@pytest.mark.parametrize("text", ["", "a,", ",a", "a,,b", "!", "a,!"])
def test_parse_empty_item(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_order_by(text)


def test_parse_duplicates() -> None:
    with pytest.raises(BadRequest):
        parse_order_by("a,!a")


def test_by_attribute_ascending_and_descending() -> None:
    es = [entity("a", t=3), entity("b", t=1), entity("c", t=2)]
    assert ids(sort_entities(es, parse_order_by("t"))) == ["b", "c", "a"]
    assert ids(sort_entities(es, parse_order_by("!t"))) == ["a", "c", "b"]
    assert ids(es) == ["a", "b", "c"]  # the input is not modified


def test_by_id_and_type() -> None:
    es = [entity("b", "Y"), entity("a", "Z"), entity("c", "X")]
    assert ids(sort_entities(es, parse_order_by("id"))) == ["a", "b", "c"]
    assert ids(sort_entities(es, parse_order_by("!id"))) == ["c", "b", "a"]
    assert ids(sort_entities(es, parse_order_by("type"))) == ["c", "b", "a"]


def test_by_builtin_dates() -> None:
    es = [entity("a", cre=3, mod=1), entity("b", cre=1, mod=3), entity("c", cre=2, mod=2)]
    assert ids(sort_entities(es, parse_order_by("dateCreated"))) == ["b", "c", "a"]
    assert ids(sort_entities(es, parse_order_by("!dateModified"))) == ["b", "c", "a"]
    es2 = [entity("a", exp=5), entity("b"), entity("c", exp=1)]
    assert ids(sort_entities(es2, parse_order_by("dateExpires"))) == ["b", "c", "a"]


def test_multi_key_and_stable_ties() -> None:
    es = [
        entity("a", room="x", t=2),
        entity("b", room="y", t=1),
        entity("c", room="x", t=1),
        entity("d", room="y", t=1),
        entity("e", room="x", t=2),
    ]
    assert ids(sort_entities(es, parse_order_by("room,!t"))) == ["a", "e", "c", "b", "d"]
    assert ids(sort_entities(es, parse_order_by("!room,t"))) == ["b", "d", "c", "a", "e"]
    assert ids(sort_entities(es, parse_order_by("t"))) == ["b", "c", "d", "a", "e"]
    assert ids(sort_entities(es, parse_order_by("!t"))) == ["a", "e", "b", "c", "d"]


def test_cross_type_order() -> None:
    es = [
        entity("date", v=attr("2020-01-01T00:00:00Z", "DateTime")),
        entity("bool", v=False),
        entity("array", v=[1]),
        entity("object", v={"a": 1}),
        entity("string", v="abc"),
        entity("number", v=10),
        entity("null", v=None),
        entity("missing"),
    ]
    expected = ["missing", "null", "number", "string", "object", "array", "bool", "date"]
    assert ids(sort_entities(es, parse_order_by("v"))) == expected
    assert ids(sort_entities(es, parse_order_by("!v"))) == list(reversed(expected))


def test_within_type_order() -> None:
    es = [
        entity("s2", v="b"),
        entity("s1", v="B"),  # 'B' < 'b' in binary order
        entity("n2", v=2.5),
        entity("n1", v=-1),
        entity("t", v=True),
        entity("f", v=False),
        entity("d2", v=attr("2021-01-01T00:00:00Z", "DateTime")),
        entity("d1", v=attr("2020-12-31T23:00:00-02:00", "DateTime")),  # 2021-01-01T01:00Z
        entity("o2", v={"a": 2}),
        entity("o1", v={"a": 1, "b": 9}),
        entity("a2", v=[2]),
        entity("a1", v=[1, 5]),
    ]
    assert ids(sort_entities(es, parse_order_by("v"))) == [
        "n1",
        "n2",
        "s1",
        "s2",
        "o1",
        "o2",
        "a1",
        "a2",
        "f",
        "t",
        "d2",
        "d1",
    ]


def test_geo_distance() -> None:
    es = [
        entity("far", location=attr("40.03, -3", "geo:point")),
        entity("none"),
        entity("near", location=attr("40.01, -3", "geo:point")),
        entity("mid", location=attr("40.02, -3", "geo:point")),
    ]
    g = parse_geo("near;maxDistance:100000", "point", "40,-3")
    assert ids(sort_entities(es, parse_order_by("geo:distance"), g)) == ["none", "near", "mid", "far"]
    assert ids(sort_entities(es, parse_order_by("!geo:distance"), g)) == ["far", "mid", "near", "none"]


def test_geo_distance_without_near_keeps_the_order() -> None:
    # Orion lets MongoDB's $near order the results; without a near query the order is unspecified
    # and no error is raised: we keep the store's order.
    es = [entity("b", location=attr("40.03, -3", "geo:point")), entity("a"), entity("c")]
    assert ids(sort_entities(es, parse_order_by("geo:distance"))) == ["b", "a", "c"]
    g = parse_geo("intersects", "point", "40,-3")
    assert ids(sort_entities(es, parse_order_by("geo:distance"), g)) == ["b", "a", "c"]
    assert ids(sort_entities(es, parse_order_by("geo:distance,id"), g)) == ["a", "b", "c"]
