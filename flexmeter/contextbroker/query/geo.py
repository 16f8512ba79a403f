"""Geographical queries (``georel``, ``geometry``, ``coords``), evaluated with shapely.

Coordinates in ``coords`` and in the simple location format (``geo:point`` "lat, lon", ``geo:line``,
``geo:box``, ``geo:polygon``) are latitude first; GeoJSON (``geo:json``) is longitude first. Shapes are
built in (lon, lat) order. Predicates are planar on lon/lat (what MongoDB does for small shapes, close
enough for pilot-sized areas); ``near`` distances are great-circle (haversine) meters on MongoDB's Earth
radius, measured to the nearest point of the entity's shape.

The entity's location is its geo-typed attribute; with several, the one whose ``defaultLocation``
metadata is true wins, else the first one; attributes with metadata ``ignoreType: true`` are skipped.
An entity without a (valid) location never matches, ``disjoint`` included.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import shapely
from shapely.geometry import LineString, Point, Polygon, box, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from flexmeter.contextbroker.errors import BadRequest
from flexmeter.contextbroker.model import StoredAttr, StoredEntity
from flexmeter.contextbroker.query.values import parse_number

EARTH_RADIUS_M = 6378.1 * 1000  # MongoDB's 2dsphere radius, so distances agree with Orion's
GEO_TYPES = frozenset({"geo:point", "geo:line", "geo:box", "geo:polygon", "geo:json"})
GEORELS = ("near", "coveredBy", "intersects", "equals", "disjoint")
GEOMETRIES = ("point", "line", "box", "polygon")
PARTIAL = "partial geo expression: geometry, georel and coords have to be provided together"


class GeoFilter:
    """A parsed geo query.

    - ``matches(entity)``: the relation holds between the entity's location and the reference shape;
    - ``distance(entity)``: haversine meters from the reference point to the entity's location (None
      without a location); it drives ``orderBy=geo:distance``;
    - ``georel``, ``geometry``, ``coords`` (``[(lat, lon), ...]``), ``min_distance``/``max_distance``.
    """

    def __init__(
        self,
        georel: str,
        geometry: str,
        coords: list[tuple[float, float]],
        reference: BaseGeometry,
        min_distance: float | None = None,
        max_distance: float | None = None,
    ) -> None:
        self.georel = georel
        self.geometry = geometry
        self.coords = coords
        self.reference = reference
        self.min_distance = min_distance
        self.max_distance = max_distance
        shapely.prepare(reference)
        self._relation = _relation(georel, reference)
        centre = reference if isinstance(reference, Point) else reference.centroid
        self._lon, self._lat = float(centre.x), float(centre.y)
        self._point_relation = _point_relation(georel, geometry, reference)

    @property
    def is_near(self) -> bool:
        return self.georel == "near"

    def matches(self, entity: StoredEntity) -> bool:
        attr = location_attr(entity)
        if attr is None:
            return False
        value = attr["value"]
        if attr["type"] == "geo:point" and value.__class__ is str:
            # Fast path for the common case: no shapely object per evaluation.
            lonlat = point_lonlat(value)
            if lonlat is None:
                return False
            if self.georel == "near":
                return self._within(haversine_m(self._lon, self._lat, lonlat[0], lonlat[1]))
            return self._point_relation(lonlat[0], lonlat[1])
        location = location_shape(attr["type"], value)
        if location is None:
            return False
        try:
            if self.georel == "near":
                return self._within(_distance_m(self._lon, self._lat, location))
            return self._relation(location)
        except shapely.errors.GEOSException:
            return False  # an invalid shape (e.g. a self-intersecting polygon) GEOS cannot relate

    def _within(self, d: float) -> bool:
        if self.max_distance is not None and d > self.max_distance:
            return False
        return not (self.min_distance is not None and d < self.min_distance)

    def distance(self, entity: StoredEntity) -> float | None:
        attr = location_attr(entity)
        if attr is None:
            return None
        value = attr["value"]
        if attr["type"] == "geo:point" and value.__class__ is str:
            lonlat = point_lonlat(value)
            return None if lonlat is None else haversine_m(self._lon, self._lat, lonlat[0], lonlat[1])
        location = location_shape(attr["type"], value)
        if location is None:
            return None
        try:
            return _distance_m(self._lon, self._lat, location)
        except shapely.errors.GEOSException:
            return None

    def __repr__(self) -> str:
        return f"GeoFilter({self.georel}, {self.geometry}, {self.coords})"


def parse_geo(
    georel: str | None, geometry: str | None, coords: str | None, *, subscription: bool = False
) -> GeoFilter | None:
    """None when no geo parameter is given; BadRequest when only some are, or any is invalid.

    Error descriptions are Orion's: for ``GET /v2/entities`` "Invalid query: URI param /coords/ used
    without /geometry/" and the like, and "Invalid query: <reason>" for a bad value; with
    ``subscription=True`` (``condition.expression``) a missing part is Orion's "partial geo expression…".
    Empty strings count as absent.
    """
    georel, geometry, coords = georel or None, geometry or None, coords or None
    if georel is None and geometry is None and coords is None:
        return None
    if subscription:
        if georel is None or geometry is None or coords is None:
            raise BadRequest(PARTIAL)
    else:
        if coords is not None and geometry is None:
            raise BadRequest("Invalid query: URI param /coords/ used without /geometry/")
        if geometry is not None and coords is None:
            raise BadRequest("Invalid query: URI param /geometry/ used without /coords/")
        if georel is not None and geometry is None:
            raise BadRequest("Invalid query: URI param /georel/ used without /geometry/")
        if georel is None:
            raise BadRequest(PARTIAL)
    assert georel is not None and geometry is not None and coords is not None
    try:
        return _build(georel, geometry, coords)
    except _Invalid as exc:
        raise BadRequest(f"Invalid query: {exc}") from None


class _Invalid(Exception):
    pass


def _parse_geometry(text: str) -> str:
    area = ""
    for item in (part for part in text.split(";") if part):
        if item in GEOMETRIES:
            if area:
                raise _Invalid("error parsing geometry: geometry-type present more than once")
            area = item
        else:
            raise _Invalid("error parsing geometry: Invalid selector in geometry specification")
    if not area:
        raise _Invalid("error parsing geometry: empty geometry")
    return area


def _parse_georel(text: str) -> tuple[str, float | None, float | None]:
    relation = ""
    max_distance: float | None = None
    min_distance: float | None = None
    items = [part for part in text.split(";") if part]
    if not items:
        raise _Invalid("empty georel")
    for item in items:
        if item in GEORELS:
            if relation:
                raise _Invalid("georel type present more than once")
            relation = item
        elif item.startswith("maxDistance:"):
            if max_distance is not None:
                raise _Invalid("maxDistance present more than once")
            max_distance = parse_number(item[12:])
            if max_distance is None:
                raise _Invalid("invalid number for maxDistance")
        elif item.startswith("minDistance:"):
            if min_distance is not None:
                raise _Invalid("minDistance present more than once")
            min_distance = parse_number(item[12:])
            if min_distance is None:
                raise _Invalid("invalid number for minDistance")
        else:
            raise _Invalid("Invalid modifier in georel parameter")
    if max_distance is not None and relation != "near":
        raise _Invalid(f"maxDistance erroneously used with georel /{relation}/")
    if min_distance is not None and relation != "near":
        raise _Invalid(f"minDistance erroneously used with georel /{relation}/")
    if relation == "near" and max_distance is None and min_distance is None:
        raise _Invalid("georel /near/ without either minDistance nor maxDistance")
    if not relation:
        raise _Invalid("Invalid modifier in georel parameter")
    return relation, min_distance, max_distance


def _parse_coords(text: str) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for pair in (part for part in text.split(";") if part):
        parts = [part for part in pair.split(",") if part]
        if len(parts) != 2:
            raise _Invalid("invalid point in URI param /coords/")
        lat, lon = parse_number(parts[0].strip()), parse_number(parts[1].strip())
        if lat is None or lon is None:
            raise _Invalid("invalid coordinates")
        points.append((lat, lon))
    if not points:
        raise _Invalid("erroneous coordinates for geometry")
    return points


def _build(georel: str, geometry: str, coords: str) -> GeoFilter:
    area = _parse_geometry(geometry)
    relation, min_distance, max_distance = _parse_georel(georel)
    if area == "line" and relation == "coveredBy":
        raise _Invalid("line geometry cannot be used with coveredBy georel")
    if area == "point" and relation == "coveredBy":
        raise _Invalid("point geometry cannot be used with coveredBy georel")
    if area != "point" and relation == "near":
        raise _Invalid("georel /near/ used with geometry different than point")
    points = _parse_coords(coords)
    lonlat = [(lon, lat) for lat, lon in points]
    reference: BaseGeometry
    if area == "polygon":
        if len(points) < 4:
            raise _Invalid("Too few coordinates for polygon")
        if points[0] != points[-1]:
            raise _Invalid("First and last point in polygon not the same")
        reference = Polygon(lonlat)
    elif area == "line":
        if len(points) < 2:
            raise _Invalid("invalid number of coordinates for /line/")
        reference = LineString(lonlat)
    elif area == "box":
        if len(points) != 2:
            raise _Invalid("invalid number of coordinates for /box/")
        (lat1, lon1), (lat2, lon2) = points
        if lat1 == lat2 or lon1 == lon2:
            raise _Invalid("box coordinates are not defining an actual box")
        reference = box(min(lon1, lon2), min(lat1, lat2), max(lon1, lon2), max(lat1, lat2))
    else:
        if len(points) != 1:
            raise _Invalid("invalid number of coordinates for /point/")
        reference = Point(lonlat[0])
    return GeoFilter(relation, area, points, reference, min_distance, max_distance)


def _relation(georel: str, reference: BaseGeometry) -> Callable[[BaseGeometry], bool]:
    if georel == "coveredBy":
        return lambda g: bool(reference.covers(g))
    if georel == "intersects":
        return lambda g: bool(reference.intersects(g))
    if georel == "disjoint":
        return lambda g: bool(reference.disjoint(g))
    if georel == "equals":
        return lambda g: bool(reference.equals(g))
    return lambda g: True  # near: handled by distances


def _point_relation(georel: str, geometry: str, reference: BaseGeometry) -> Callable[[float, float], bool]:
    """The relation for a point location given as (lon, lat): for a point, covered-by (border included)
    and intersects are the same test."""
    if geometry == "box":
        min_lon, min_lat, max_lon, max_lat = reference.bounds

        def inside(lon: float, lat: float) -> bool:
            return min_lon <= lon <= max_lon and min_lat <= lat <= max_lat

    elif geometry == "point":
        ref_lon, ref_lat = reference.x, reference.y

        def inside(lon: float, lat: float) -> bool:
            return lon == ref_lon and lat == ref_lat

    else:

        def inside(lon: float, lat: float) -> bool:
            try:
                return bool(shapely.intersects_xy(reference, lon, lat))
            except shapely.errors.GEOSException:
                return False

    if georel == "disjoint":
        return lambda lon, lat: not inside(lon, lat)
    if georel == "equals":
        if geometry == "point":
            return inside
        return lambda lon, lat: False  # a point never equals a line, box or polygon
    return inside


# ------------------------------------------------------------------------------------ entity locations

_CACHE: dict[tuple[str, str], BaseGeometry | None] = {}
_CACHE_MAX = 8192


def entity_location(entity: StoredEntity) -> BaseGeometry | None:
    """The shape of the entity's location attribute (lon/lat), or None if it has none or it is invalid."""
    attr = location_attr(entity)
    return None if attr is None else location_shape(attr["type"], attr["value"])


def location_attr(entity: StoredEntity) -> StoredAttr | None:
    """The attribute holding the entity's location (see the module docstring), or None."""
    chosen: StoredAttr | None = None
    for attr in entity["attrs"].values():
        if attr["type"] not in GEO_TYPES:
            continue
        metadata = attr.get("metadata") or {}
        ignore = metadata.get("ignoreType")
        if ignore is not None and ignore.get("value") is True:
            continue
        default = metadata.get("defaultLocation")
        if default is not None and default.get("value") is True:
            chosen = attr
            break
        if chosen is None:
            chosen = attr
    return chosen


@lru_cache(maxsize=65536)
def point_lonlat(text: str) -> tuple[float, float] | None:
    """(lon, lat) of a ``geo:point`` "lat, lon" string, or None when it is not a valid point."""
    try:
        return _latlon(text)
    except ValueError:
        return None


def location_shape(attr_type: str, value: Any) -> BaseGeometry | None:
    """Parse a geo attribute value (cached: entities are re-evaluated on every scan and change)."""
    try:
        key = (attr_type, value if isinstance(value, str) else json.dumps(value, sort_keys=True))
    except (TypeError, ValueError):
        return None
    if key in _CACHE:
        return _CACHE[key]
    try:
        geometry = _shape(attr_type, value)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, shapely.errors.ShapelyError):
        geometry = None
    if geometry is not None and geometry.is_empty:
        geometry = None
    if geometry is not None:
        shapely.prepare(geometry)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = geometry
    return geometry


def _latlon(text: Any) -> tuple[float, float]:
    if not isinstance(text, str):
        raise ValueError("not a coordinate string")
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError("not a lat, lon pair")
    lat, lon = float(parts[0]), float(parts[1])
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        raise ValueError("coordinates out of range")
    return lon, lat


def _shape(attr_type: str, value: Any) -> BaseGeometry | None:
    if attr_type == "geo:point":
        return Point(_latlon(value))
    if attr_type == "geo:json":
        if not isinstance(value, dict):
            return None
        if value.get("type") == "Feature":
            value = value.get("geometry")
        elif value.get("type") == "FeatureCollection":
            shapes = [shape(f["geometry"]) for f in value.get("features", []) if f.get("geometry")]
            return shapely.union_all(shapes) if shapes else None
        return shape(value) if isinstance(value, dict) else None
    if not isinstance(value, list):
        return None
    points = [_latlon(item) for item in value]
    if attr_type == "geo:line":
        return LineString(points) if len(points) >= 2 else None
    if attr_type == "geo:box":
        if len(points) != 2:
            return None
        (lon1, lat1), (lon2, lat2) = points
        return box(min(lon1, lon2), min(lat1, lat2), max(lon1, lon2), max(lat1, lat2))
    if attr_type == "geo:polygon":
        if len(points) < 4 or points[0] != points[-1]:
            return None
        return Polygon(points)
    return None


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in meters between two (lon, lat) points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _distance_m(lon: float, lat: float, location: BaseGeometry) -> float:
    """Meters from (lon, lat) to the nearest point of ``location`` (0 inside it)."""
    if isinstance(location, Point):
        return haversine_m(lon, lat, location.x, location.y)
    if shapely.intersects_xy(location, lon, lat):
        return 0.0
    nearest = nearest_points(location, Point(lon, lat))[0]
    return haversine_m(lon, lat, nearest.x, nearest.y)
