"""Geographical query filter on the ``location`` attribute (NGSI-v2 ``georel``/``geometry``/``coords``).

Locations are ``geo:point`` strings (``"lat, lon"``) or GeoJSON; a non-point location is tested by its
vertices (coveredBy: all inside; intersects: any inside), an approximation documented in docs/timeseries.md.
Distances are great-circle metres (haversine), as Orion's ``near`` uses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from flexmeter.quantumleap.errors import BadParameters, NotImplementedOption
from flexmeter.quantumleap.model import GeoQuery

EARTH_RADIUS_M = 6_371_008.8
_NEAR = re.compile(r"^near(;(max|min)Distance:(\d+(?:\.\d+)?)){1,2}$")
_GEOREL = ("coveredBy", "intersects", "equals", "disjoint")
_GEOMETRIES = ("point", "line", "polygon", "box")


def parse_geo(georel: str | None, geometry: str | None, coords: str | None) -> GeoQuery | None:
    """The parsed query, None when no geo parameter is given; 400 when they are incomplete or malformed."""
    if georel is None and geometry is None and coords is None:
        return None
    if not (georel and geometry and coords):
        raise BadParameters("georel, geometry and coords must be given together.", error="Bad Request")
    if geometry not in _GEOMETRIES:
        raise BadParameters(f"geometry must be one of {', '.join(_GEOMETRIES)}.", error="Bad Request")
    try:
        points = [tuple(float(x) for x in pair.split(",")) for pair in coords.split(";")]
    except ValueError as exc:
        raise BadParameters(f"Invalid coords {coords!r}.", error="Bad Request") from exc
    if any(len(p) != 2 for p in points):
        raise BadParameters(f"Invalid coords {coords!r}.", error="Bad Request")
    pairs = [(p[0], p[1]) for p in points]
    query = GeoQuery(georel.split(";")[0], geometry, pairs)
    match = _NEAR.match(georel)
    if georel.startswith("near"):
        if not match or geometry != "point":
            raise BadParameters(f"Invalid georel {georel!r}: near needs a point and a distance.", error="Bad Request")
        for part in georel.split(";")[1:]:
            name, value = part.split(":")
            if name == "maxDistance":
                query.max_distance = float(value)
            else:
                query.min_distance = float(value)
    elif query.georel not in _GEOREL:
        raise BadParameters(f"Invalid georel {georel!r}.", error="Bad Request")
    if (geometry == "point" and len(pairs) != 1) or (geometry == "box" and len(pairs) != 2):
        raise BadParameters(
            f"{geometry} takes {1 if geometry == 'point' else 2} coordinate pairs.", error="Bad Request"
        )
    if geometry == "polygon" and (len(pairs) < 4 or pairs[0] != pairs[-1]):
        raise BadParameters("A polygon needs at least 4 points, the last equal to the first.", error="Bad Request")
    if geometry == "line" and query.georel in ("coveredBy",):
        raise NotImplementedOption("coveredBy a line is not supported.")
    return query


def vertices(location: Any) -> list[tuple[float, float]]:
    """(lat, lon) vertices of a ``geo:point`` string or a GeoJSON geometry; [] when unreadable."""
    if isinstance(location, str):
        try:
            lat, lon = (float(x) for x in location.split(","))
        except ValueError:
            return []
        return [(lat, lon)]
    if isinstance(location, dict):
        if location.get("type") == "Feature":
            return vertices(location.get("geometry"))
        return [(c[1], c[0]) for c in _flatten(location.get("coordinates"))]
    return []


def _flatten(coordinates: Any) -> Iterator[list[float]]:
    if isinstance(coordinates, list) and coordinates and isinstance(coordinates[0], int | float):
        if len(coordinates) >= 2:
            yield [float(coordinates[0]), float(coordinates[1])]
        return
    if isinstance(coordinates, list):
        for item in coordinates:
            yield from _flatten(item)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def _inside_polygon(point: tuple[float, float], ring: list[tuple[float, float]]) -> bool:
    lat, lon = point
    inside = False
    for (lat1, lon1), (lat2, lon2) in zip(ring, ring[1:] + ring[:1], strict=True):
        if (lon1 > lon) != (lon2 > lon):
            crossing = lat1 + (lon - lon1) * (lat2 - lat1) / (lon2 - lon1)
            if lat < crossing:
                inside = not inside
    return inside


def _on_segment(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> bool:
    cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
    if abs(cross) > 1e-9:
        return False
    return (
        min(a[0], b[0]) - 1e-12 <= p[0] <= max(a[0], b[0]) + 1e-12
        and min(a[1], b[1]) - 1e-12 <= p[1] <= max(a[1], b[1]) + 1e-12
    )


def _in_shape(point: tuple[float, float], q: GeoQuery) -> bool:
    if q.geometry == "point":
        return abs(point[0] - q.coords[0][0]) < 1e-9 and abs(point[1] - q.coords[0][1]) < 1e-9
    if q.geometry == "box":
        (lat1, lon1), (lat2, lon2) = q.coords
        return min(lat1, lat2) <= point[0] <= max(lat1, lat2) and min(lon1, lon2) <= point[1] <= max(lon1, lon2)
    if q.geometry == "line":
        return any(_on_segment(point, a, b) for a, b in zip(q.coords, q.coords[1:], strict=False))
    return _inside_polygon(point, q.coords[:-1])


def matches(location: Any, q: GeoQuery) -> bool:
    """Whether an entity's location satisfies the query."""
    points = vertices(location)
    if not points:
        return False
    if q.georel == "near":
        d = min(distance_m(p, q.coords[0]) for p in points)
        return (q.max_distance is None or d <= q.max_distance) and (q.min_distance is None or d >= q.min_distance)
    inside = [_in_shape(p, q) for p in points]
    if q.georel == "coveredBy":
        return all(inside)
    if q.georel == "intersects":
        return any(inside)
    if q.georel == "disjoint":
        return not any(inside)
    return all(inside) and len(points) == len(q.coords) if q.geometry != "point" else all(inside)
