"""Property tests: the compiled filters agree with plain Python oracles, never crash on odd input."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexmeter.contextbroker.errors import BadRequest
from flexmeter.contextbroker.query import parse_geo, parse_mq, parse_order_by, parse_q, sort_entities
from flexmeter.contextbroker.query.geo import haversine_m
from tests.contextbroker.query.builders import attr, entity

SETTINGS = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
numbers = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
)
safe_text = st.text(
    alphabet=st.characters(blacklist_characters="<>\"'=;(),.!:~ \t\n\r\x0b\x0c", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=8,
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=8,
)


def lit(x: float) -> str:
    return repr(float(x)) if isinstance(x, float) else str(x)


@SETTINGS
@given(x=numbers, t=numbers)
def test_number_comparisons_agree_with_python(x: float, t: float) -> None:
    e = entity(a=x)
    assert parse_q(f"a>{lit(t)}").matches(e) is (x > float(lit(t)))
    assert parse_q(f"a<{lit(t)}").matches(e) is (x < float(lit(t)))
    assert parse_q(f"a>={lit(t)}").matches(e) is (x >= float(lit(t)))
    assert parse_q(f"a<={lit(t)}").matches(e) is (x <= float(lit(t)))
    assert parse_q(f"a=={lit(t)}").matches(e) is (x == float(lit(t)))
    assert parse_q(f"a!={lit(t)}").matches(e) is (x != float(lit(t)))
    # the value is never a string
    assert not parse_q(f"a=='{lit(t)}'").matches(e)


@SETTINGS
@given(x=numbers, lo=numbers, hi=numbers)
def test_ranges_agree_with_python(x: float, lo: float, hi: float) -> None:
    e = entity(a=x)
    inside = float(lit(lo)) <= x <= float(lit(hi))
    assert parse_q(f"a=={lit(lo)}..{lit(hi)}").matches(e) is inside
    assert parse_q(f"a!={lit(lo)}..{lit(hi)}").matches(e) is (not inside)


@SETTINGS
@given(s=safe_text, values=st.lists(safe_text, min_size=1, max_size=4))
def test_string_lists_agree_with_python(s: str, values: list[str]) -> None:
    e = entity(a=s)
    quoted = ",".join(f"'{v}'" for v in values)
    assert parse_q(f"a=={quoted}").matches(e) is (s in values)
    assert parse_q(f"a!={quoted}").matches(e) is (s not in values)
    # each list member alone
    assert parse_q(f"a=='{values[0]}'").matches(e) is (s == values[0])


@SETTINGS
@given(xs=st.lists(numbers, max_size=5), t=numbers)
def test_arrays_match_any_element(xs: list[float], t: float) -> None:
    e = entity(a=xs)
    v = float(lit(t))
    assert parse_q(f"a>{lit(t)}").matches(e) is any(x > v for x in xs)
    assert parse_q(f"a=={lit(t)}").matches(e) is any(x == v for x in xs)
    assert parse_q(f"a!={lit(t)}").matches(e) is all(x != v for x in xs)


@SETTINGS
@given(text=st.text(max_size=30))
def test_parse_q_raises_only_bad_request(text: str) -> None:
    for parse in (parse_q, parse_mq):
        try:
            f = parse(text)
        except BadRequest as exc:
            assert exc.description
            continue
        # anything that parses can be evaluated on any entity without raising
        f.matches(entity(a=1, b="x", c=[1, {"d": None}]))


@SETTINGS
@given(
    text=st.text(alphabet="ab.c=!<>~:;,'0123456789truefalsnl -", max_size=24),
    values=st.dictionaries(st.sampled_from(["a", "b", "c"]), json_values, max_size=3),
)
def test_matching_never_raises(text: str, values: dict[str, Any]) -> None:
    e = entity(**{k: attr(v, metadata={"m": v}) for k, v in values.items()})
    for parse in (parse_q, parse_mq):
        try:
            f = parse(text)
        except BadRequest:
            continue
        assert f.matches(e) in (True, False)


@SETTINGS
@given(values=st.lists(st.one_of(st.none(), numbers, safe_text, st.booleans()), max_size=8))
def test_sort_is_a_stable_permutation_consistent_with_class_order(values: list[Any]) -> None:
    es = [entity(f"e{i}", v=v) for i, v in enumerate(values)]
    result = sort_entities(es, parse_order_by("v"))
    assert sorted(e["id"] for e in result) == sorted(e["id"] for e in es)
    rank = {type(None): 1, int: 2, float: 2, str: 3, bool: 6}

    def key(e: Any) -> tuple[int, Any]:
        v = e["attrs"]["v"]["value"]
        return (rank[type(v)], v if v is not None else 0)

    assert [e["id"] for e in result] == [e["id"] for e in sorted(es, key=key)]
    descending = sort_entities(es, parse_order_by("!v"))
    assert [e["id"] for e in descending] == [e["id"] for e in sorted(es, key=key, reverse=True)]


coords = st.tuples(st.floats(min_value=-80, max_value=80), st.floats(min_value=-170, max_value=170))


@SETTINGS
@given(ref=coords, loc=coords, max_distance=st.floats(min_value=0, max_value=5_000_000))
def test_near_agrees_with_haversine(
    ref: tuple[float, float], loc: tuple[float, float], max_distance: float
) -> None:
    e = entity(location=attr(f"{loc[0]}, {loc[1]}", "geo:point"))
    g = parse_geo(f"near;maxDistance:{max_distance!r}", "point", f"{ref[0]!r},{ref[1]!r}")
    assert g is not None
    d = haversine_m(ref[1], ref[0], loc[1], loc[0])
    assert g.matches(e) is (d <= max_distance)  # type: ignore[arg-type]
    assert g.distance(e) == d  # type: ignore[arg-type]


@SETTINGS
@given(loc=coords, a=coords, b=coords)
def test_box_relations_are_consistent(
    loc: tuple[float, float], a: tuple[float, float], b: tuple[float, float]
) -> None:
    if a[0] == b[0] or a[1] == b[1]:
        return
    e = entity(location=attr(f"{loc[0]}, {loc[1]}", "geo:point"))
    box = f"{a[0]!r},{a[1]!r};{b[0]!r},{b[1]!r}"
    covered = parse_geo("coveredBy", "box", box).matches(e)  # type: ignore[union-attr,arg-type]
    intersects = parse_geo("intersects", "box", box).matches(e)  # type: ignore[union-attr,arg-type]
    disjoint = parse_geo("disjoint", "box", box).matches(e)  # type: ignore[union-attr,arg-type]
    inside = min(a[0], b[0]) <= loc[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= loc[1] <= max(a[1], b[1])
    assert covered is inside
    assert intersects is inside  # a point intersects a box exactly when it is covered by it
    assert disjoint is (not inside)
