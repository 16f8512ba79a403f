"""One object for ``q`` + ``mq`` + geo together (GET /v2/entities and ``condition.expression``)."""

from __future__ import annotations

from collections.abc import Callable

from flexmeter.contextbroker.model import StoredEntity
from flexmeter.contextbroker.query.expression import EntityFilter, parse_mq, parse_q
from flexmeter.contextbroker.query.geo import GeoFilter, parse_geo


class Condition:
    """The AND of the given filters, compiled: ``matches(entity)`` is one closure call (True when there
    are no filters). ``q``, ``mq``, ``geo`` keep the parts (``geo`` drives ``orderBy=geo:distance``);
    ``attrs`` are the attribute names ``q`` and ``mq`` refer to."""

    __slots__ = ("geo", "matches", "mq", "q")

    matches: Callable[[StoredEntity], bool]

    def __init__(self, q: EntityFilter | None, mq: EntityFilter | None, geo: GeoFilter | None) -> None:
        self.q = q
        self.mq = mq
        self.geo = geo
        parts = [p.matches for p in (q, mq, geo) if p is not None]
        if not parts:
            self.matches = lambda e: True
        elif len(parts) == 1:
            self.matches = parts[0]
        else:
            frozen = tuple(parts)

            def all_of(e: StoredEntity) -> bool:
                for predicate in frozen:  # noqa: SIM110 - faster than all() over a generator
                    if not predicate(e):
                        return False
                return True

            self.matches = all_of

    @property
    def empty(self) -> bool:
        return self.q is None and self.mq is None and self.geo is None

    @property
    def attrs(self) -> frozenset[str]:
        return (self.q.attrs if self.q else frozenset()) | (self.mq.attrs if self.mq else frozenset())

    def __repr__(self) -> str:
        return f"Condition(q={self.q!r}, mq={self.mq!r}, geo={self.geo!r})"


def parse_condition(
    q: str | None = None,
    mq: str | None = None,
    georel: str | None = None,
    geometry: str | None = None,
    coords: str | None = None,
    *,
    subscription: bool = False,
) -> Condition:
    """Parse every given part (None or "" means absent). Raises BadRequest.

    ``subscription=True`` for ``condition.expression``: a partial geo expression gets Orion's
    subscription error ("partial geo expression: ...") instead of the URI-parameter ones.
    Parse order follows Orion's GET /v2/entities: geo first, then q, then mq.
    """
    geo = parse_geo(georel, geometry, coords, subscription=subscription)
    return Condition(parse_q(q) if q else None, parse_mq(mq) if mq else None, geo)
