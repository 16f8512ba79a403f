"""Which entities a query selects: id/type lists and patterns, service paths, q/mq/geo, expiry.

Used by ``GET /v2/entities``, ``POST /v2/op/query`` and ``/v2/types``. The store keeps every entity in
memory, so selection is a scan of its snapshot (or a direct lookup when ids are given).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flexmeter.contextbroker.errors import BadRequest
from flexmeter.contextbroker.model import StoredEntity
from flexmeter.contextbroker.query import Condition
from flexmeter.contextbroker.store import TenantStore
from flexmeter.contextbroker.tenancy import path_matches


def compile_pattern(pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        raise BadRequest(f"Invalid regex for entity {what}") from None


@dataclass(frozen=True)
class EntityPattern:
    """One entity selector: ids or idPattern, types or typePattern (None = any)."""

    ids: frozenset[str] | None = None
    id_re: re.Pattern[str] | None = None
    types: frozenset[str] | None = None
    type_re: re.Pattern[str] | None = None

    def matches(self, entity: StoredEntity) -> bool:
        if self.ids is not None and entity["id"] not in self.ids:
            return False
        if self.id_re is not None and self.id_re.search(entity["id"]) is None:
            return False
        if self.types is not None and entity["type"] not in self.types:
            return False
        return self.type_re is None or self.type_re.search(entity["type"]) is not None


def is_live(entity: StoredEntity, now: float) -> bool:
    expires = entity.get("expDate")
    return expires is None or expires > now


def select(store: TenantStore | None, patterns: list[EntityPattern], paths: list[str],
           condition: Condition | None, now: float, stop_after: int | None = None) -> list[StoredEntity]:
    """Entities matching any of ``patterns`` (all when empty), in ``paths``, passing ``condition``.

    ``stop_after``: return as soon as that many matched (a page without count or orderBy).
    """
    if store is None:
        return []
    candidates: list[StoredEntity]
    if patterns and all(p.ids is not None for p in patterns):
        seen: set[int] = set()
        candidates = []
        wanted = [i for p in patterns for i in sorted(p.ids or ())]
        for entity_id in wanted:
            for entity in store.by_id(entity_id):
                if id(entity) not in seen:
                    seen.add(id(entity))
                    candidates.append(entity)
        seq = store.seq
        candidates.sort(key=lambda e: seq.get((e["id"], e["type"], e["servicePath"]), 0))
    else:
        candidates = store.snapshot()
    all_paths = paths == ["/#"]
    cond = None if condition is None or condition.empty else condition
    out = []
    for entity in candidates:
        if patterns and not any(p.matches(entity) for p in patterns):
            continue
        if not all_paths and not path_matches(entity["servicePath"], paths):
            continue
        if entity.get("expDate") is not None and not is_live(entity, now):
            continue
        if cond is not None and not cond.matches(entity):
            continue
        out.append(entity)
        if stop_after is not None and len(out) >= stop_after:
            break
    return out
