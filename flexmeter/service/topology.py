"""The network topology, from the provisioned relationships the broker notifies.

Customer meters carry ``refSubstation`` / ``refFeeder`` / ``refBuilding`` Relationships (as static
attributes of their measurement entity, or on the ``Device`` their ``refDevice`` points to; the names are
docs/data-models.md's). The meter that measures a substation or feeder itself says so with
``refTargetDevice`` (the model's "what was measured"), or the Substation/Feeder lists its meter Device in
``refDevice``. Everything else electric under an area is a customer meter.
"""

from __future__ import annotations

from flexmeter.service.store import Store

AREA_RELATIONS = ("refFeeder", "refSubstation")


class Topology:
    """Lookups over the ``links`` table, cached for one computation pass (call :meth:`clear` after)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[tuple[str, ...], list[str]] = {}

    def clear(self) -> None:
        self._cache.clear()

    def _targets(self, tk: str, e: str, rel: str) -> list[str]:
        key = ("t", tk, e, rel)
        if key not in self._cache:
            self._cache[key] = self.store.targets(tk, e, rel)
        return self._cache[key]

    def _sources(self, tk: str, target: str, rel: str) -> list[str]:
        key = ("s", tk, target, rel)
        if key not in self._cache:
            self._cache[key] = self.store.sources(tk, target, rel)
        return self._cache[key]

    def identities(self, tk: str, meter: str) -> list[str]:
        """The meter's measurement entity and the Device entities it refers to."""
        return [meter, *self._targets(tk, meter, "refDevice")]

    def _measurements(self, tk: str, ids: list[str]) -> set[str]:
        """Measurement entities for ids that are measurements or Devices (a Substation or Building listing
        the Device in its own ``refDevice`` is not one of its measurements)."""
        found: set[str] = set()
        for entity in ids:
            via_device = [m for m in self._sources(tk, entity, "refDevice") if not self.is_area(tk, m)]
            found.update(via_device or [entity])
        return found

    def related(self, tk: str, meter: str, rel: str) -> list[str]:
        """Targets of ``rel`` of the meter or of its Device(s)."""
        result: list[str] = []
        for entity in self.identities(tk, meter):
            for target in self._targets(tk, entity, rel):
                if target not in result:
                    result.append(target)
        return result

    def areas(self, tk: str, meter: str) -> list[str]:
        """Every substation/feeder whose balance this meter enters (as customer or as supply meter)."""
        areas = [a for rel in AREA_RELATIONS for a in self.related(tk, meter, rel)]
        areas += [a for a in self.related(tk, meter, "refTargetDevice") if a not in areas]
        for device in self.identities(tk, meter):
            for area in self._sources(tk, device, "refDevice"):
                if area not in areas and (":Substation:" in area or ":Feeder:" in area):
                    areas.append(area)
        return areas

    def supply_meters(self, tk: str, area: str) -> set[str]:
        ids = self._sources(tk, area, "refTargetDevice") + self._targets(tk, area, "refDevice")
        return self._measurements(tk, ids)

    def customers(self, tk: str, area: str) -> set[str]:
        rel = "refFeeder" if ":Feeder:" in area else "refSubstation"
        members = {m for m in self._measurements(tk, self._sources(tk, area, rel)) if not self.is_area(tk, m)}
        return members - self.supply_meters(tk, area) - {area}

    def is_area(self, tk: str, entity: str) -> bool:
        """Substations, feeders and buildings are not meters (they refer to each other too)."""
        key = ("a", tk, entity)
        if key not in self._cache:
            kind = self.store.prop(tk, entity, "entityType")
            self._cache[key] = ["1"] if kind in ("Substation", "Feeder", "Building") else []
        return bool(self._cache[key])

    def outage_area(self, tk: str, meter: str) -> str:
        """Where an outage of this meter is reported: the area it supplies, else its feeder, substation,
        building, else the meter itself."""
        supplied = [a for a in self.areas(tk, meter) if meter in self.supply_meters(tk, a)]
        if supplied:
            return supplied[0]
        for rel in ("refFeeder", "refSubstation", "refBuilding"):
            found = self.related(tk, meter, rel)
            if found:
                return found[0]
        return meter

    def members(self, tk: str, target: str, rel: str) -> list[str]:
        """Measurement entities related to ``target`` by ``rel`` (directly or through their Device)."""
        return sorted(m for m in self._measurements(tk, self._sources(tk, target, rel)) if not self.is_area(tk, m))

    def building(self, tk: str, meter: str) -> str | None:
        found = self.related(tk, meter, "refBuilding")
        return found[0] if found else None
