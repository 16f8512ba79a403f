"""Query-string and header parsing into a :class:`Query`, with QuantumLeap's validation errors."""

from __future__ import annotations

import re
from collections.abc import Mapping

from flexmeter.quantumleap.errors import BadParameters, InvalidParameterValue, NotImplementedOption, Problem
from flexmeter.quantumleap.geo import parse_geo
from flexmeter.quantumleap.model import AGGR_METHODS, Query
from flexmeter.quantumleap.timeindex import PERIODS, BadInstant, parse_instant

DEFAULT_LIMIT = 10000


def split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [s.strip() for s in value.split(",") if s.strip()]
    return items or None


def _int(args: Mapping[str, str], name: str, minimum: int) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise Problem(f"'{raw}' is not of type 'integer' - '{name}'") from exc
    if value < minimum:
        raise Problem(f"{value} is less than the minimum of {minimum} - '{name}'")
    return value


def _date(args: Mapping[str, str], name: str) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_instant(raw)
    except BadInstant as exc:
        raise InvalidParameterValue(f"{raw} is not a valid value for {name}: expected an ISO 8601 date-time") from exc


def service_paths(header: str | None) -> list[str] | None:
    """Query scope: comma-separated paths, each matching itself and everything below; None = all."""
    paths = split_list(header)
    if paths is None:
        return None
    for path in paths:
        if not path.startswith("/"):
            raise BadParameters(f"Fiware-ServicePath {path!r} must start with '/'", error="Bad Request")
    return paths


def parse_query(
    args: Mapping[str, str],
    *,
    service_path: str | None,
    attr_in_path: str | None = None,
    attrs_param: bool = True,
    entity_id: str | None = None,
    entity_type: str | None = None,
) -> Query:
    """A :class:`Query` from the request, raising the error QuantumLeap answers for each misuse."""
    aggr_method = args.get("aggrMethod") or None
    aggr_period = args.get("aggrPeriod") or None
    aggr_scope = args.get("aggrScope") or None
    if aggr_method is not None and aggr_method not in AGGR_METHODS:
        raise Problem(f"'{aggr_method}' is not one of {list(AGGR_METHODS)} - 'aggrMethod'")
    if aggr_period is not None and aggr_period not in PERIODS:
        raise Problem(f"'{aggr_period}' is not one of {list(PERIODS)} - 'aggrPeriod'")
    if aggr_scope is not None and aggr_scope not in ("entity", "global"):
        raise Problem(f"'{aggr_scope}' is not one of ['global', 'entity'] - 'aggrScope'")
    if aggr_period and not aggr_method:
        raise BadParameters("aggrMethod is compulsory when using aggrPeriod.")
    if args.get("options") or aggr_scope not in (None, "entity"):
        raise NotImplementedOption("aggrScope and options are not yet implemented.")
    attrs = [attr_in_path] if attr_in_path else (split_list(args.get("attrs")) if attrs_param else None)
    if aggr_method and not attrs:
        raise BadParameters(f"Specified aggrMethod = {aggr_method} but missing attrs parameter.")
    id_pattern = args.get("idPattern") or None
    if id_pattern is not None:
        try:
            re.compile(id_pattern)
        except re.error as exc:
            raise BadParameters(
                f"idPattern {id_pattern!r} is not a valid regular expression: {exc}", error="Bad Request"
            ) from exc
    limit = _int(args, "limit", 1)
    geo = parse_geo(args.get("georel"), args.get("geometry"), args.get("coords"))
    if geo is not None and aggr_method:
        raise NotImplementedOption("geographical queries combined with aggrMethod are not implemented.")
    from_ms, to_ms = _date(args, "fromDate"), _date(args, "toDate")
    return Query(
        entity_types=[entity_type] if entity_type else split_list(args.get("type")),
        entity_ids=[entity_id] if entity_id else split_list(args.get("id")),
        id_pattern=id_pattern,
        attrs=attrs,
        from_ms=from_ms,
        to_ms=to_ms,
        last_n=_int(args, "lastN", 1),
        limit=min(limit, DEFAULT_LIMIT) if limit else DEFAULT_LIMIT,
        offset=_int(args, "offset", 0) or 0,
        aggr_method=aggr_method,
        aggr_period=aggr_period,
        service_paths=service_paths(service_path),
        geo=geo,
    )
