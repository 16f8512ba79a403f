"""A subscription in memory: its definition, its delivery state, and the compiled matchers.

The definition (see :mod:`validation`) changes only through the API; the state (counters, last
success/failure, status changes of oneshot/maxFailsLimit) changes as notifications go out, under the
subscription's lock, and is flushed to SQLite by the engine.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from flexmeter.contextbroker.model import EntityChange
from flexmeter.contextbroker.render import iso_from_posix
from flexmeter.contextbroker.subscriptions.validation import (
    DEFAULT_ALTERATION_TYPES,
    Definition,
    compile_expression,
)
from flexmeter.contextbroker.tenancy import path_matches


@dataclass
class DeliveryState:
    """What Orion reports about a subscription's notifications."""

    times_sent: int = 0
    last_notification: float | None = None
    last_success: float | None = None
    last_success_code: int | None = None
    last_failure: float | None = None
    last_failure_reason: str | None = None
    fails_counter: int = 0

    def to_doc(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> DeliveryState:
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class _Selector:
    __slots__ = ("id", "id_re", "type", "type_re")

    def __init__(self, spec: dict[str, str]) -> None:
        self.id = spec.get("id")
        self.id_re = re.compile(spec["idPattern"]) if "idPattern" in spec else None
        self.type = spec.get("type")
        self.type_re = re.compile(spec["typePattern"]) if "typePattern" in spec else None

    def matches(self, entity_id: str, entity_type: str) -> bool:
        if self.id is not None and self.id != entity_id:
            return False
        if self.id_re is not None and self.id_re.search(entity_id) is None:
            return False
        if self.type is not None and self.type != entity_type:
            return False
        return self.type_re is None or self.type_re.search(entity_type) is not None


def _value_changes(change: EntityChange) -> frozenset[str]:
    """The changed attributes whose type or value (not only metadata) changed."""
    before = change.previous["attrs"] if change.previous else {}
    after = change.entity["attrs"]
    out = set()
    for name in change.changed_attrs:
        old, new = before.get(name), after.get(name)
        if old is None or new is None or old["type"] != new["type"] or old["value"] != new["value"] \
                or type(old["value"]) is not type(new["value"]):
            out.add(name)
    return frozenset(out)


# which of the store's alteration kinds each subscribed alteration type accepts
_ACCEPTS = {
    "entityCreate": {"entityCreate"},
    "entityChange": {"entityChange"},
    "entityUpdate": {"entityUpdate", "entityChange"},  # every update, changed or not
    "entityDelete": {"entityDelete"},
}


@dataclass
class Subscription:
    id: str
    service: str
    service_path: str
    definition: Definition
    state: DeliveryState = field(default_factory=DeliveryState)
    created: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    dirty: bool = False
    # compiled from the definition by compile()
    selectors: list[_Selector] = field(default_factory=list, repr=False)
    condition: Any = None
    accepted: frozenset[str] = frozenset()
    condition_attrs: frozenset[str] = frozenset()
    exact_ids: frozenset[str] | None = None
    notify_on_metadata_change: bool = True
    _paths: list[str] = field(default_factory=list, repr=False)
    signature: str = ""

    def __post_init__(self) -> None:
        self.compile()

    def compile(self) -> None:
        """Build the matchers from the definition (after creation or a PATCH)."""
        subject = self.definition["subject"]
        self.selectors = [_Selector(spec) for spec in subject["entities"]]
        self._paths = [self.service_path]
        # equal signatures match the same changes (the engine matches such subscriptions once)
        self.signature = json.dumps([self.service_path, subject], sort_keys=True)
        cond = subject.get("condition") or {}
        expression = cond.get("expression")
        compiled = compile_expression(expression) if expression else None
        self.condition = None if compiled is None or compiled.empty else compiled
        types = cond.get("alterationTypes") or list(DEFAULT_ALTERATION_TYPES)
        self.accepted = frozenset(kind for t in types for kind in _ACCEPTS[t])
        self.condition_attrs = frozenset(cond.get("attrs") or ())
        self.notify_on_metadata_change = bool(cond.get("notifyOnMetadataChange", True))
        ids = [s.id for s in self.selectors]
        self.exact_ids = None if any(i is None for i in ids) else frozenset(i for i in ids if i is not None)

    # -- status ---------------------------------------------------------------------------------
    @property
    def notification(self) -> dict[str, Any]:
        return self.definition["notification"]

    def effective_status(self, now: float) -> str:
        status: str = self.definition["status"]
        expires = self.definition.get("expires")
        if expires is not None and now >= expires:
            return "expired"
        if status == "active" and self.state.fails_counter > 0:
            return "failed"
        return status

    def can_fire(self, now: float) -> bool:
        status = self.definition["status"]
        if status not in ("active", "oneshot"):
            return False
        expires = self.definition.get("expires")
        return expires is None or now < expires

    # -- matching -------------------------------------------------------------------------------
    def matches(self, change: EntityChange) -> bool:
        """Whether the change triggers this subscription (everything but status/throttling)."""
        if change.alteration not in self.accepted:
            return False
        if (change.alteration == "entityChange" and not self.notify_on_metadata_change
                and "entityUpdate" not in self.accepted
                and not _value_changes(change) and not change.deleted_attrs):
            return False  # only metadata changed: an entityUpdate for this subscription

        entity = change.entity
        entity_id, entity_type = entity["id"], entity["type"]
        for selector in self.selectors:
            if selector.matches(entity_id, entity_type):
                break
        else:
            return False
        if change.service_path != self.service_path and not path_matches(change.service_path, self._paths):
            return False
        if self.condition_attrs and change.alteration != "entityDelete":
            if change.alteration == "entityCreate":
                touched: frozenset[str] | set[str] = frozenset(entity["attrs"])
            elif change.alteration == "entityChange":
                touched = change.changed_attrs | change.deleted_attrs
                if not self.notify_on_metadata_change:
                    touched = _value_changes(change) | change.deleted_attrs
            else:
                touched = change.updated_attrs | change.deleted_attrs
            if self.condition_attrs.isdisjoint(touched):
                return False
        return self.condition is None or bool(self.condition.matches(entity))

    # -- rendering ------------------------------------------------------------------------------
    def render(self, now: float) -> dict[str, Any]:
        """The subscription as Orion's ``GET /v2/subscriptions/{id}`` renders it."""
        d = self.definition
        out: dict[str, Any] = {"id": self.id}
        if "description" in d:
            out["description"] = d["description"]
        subject = d["subject"]
        cond = subject.get("condition") or {}
        condition: dict[str, Any] = {"attrs": list(cond.get("attrs") or [])}
        if cond.get("expression"):
            condition["expression"] = dict(cond["expression"])
        if cond.get("alterationTypes"):
            condition["alterationTypes"] = list(cond["alterationTypes"])
        condition["notifyOnMetadataChange"] = cond.get("notifyOnMetadataChange", True)
        out["subject"] = {"entities": [dict(e) for e in subject["entities"]], "condition": condition}
        n = d["notification"]
        notification: dict[str, Any] = {}
        if "exceptAttrs" in n:
            notification["exceptAttrs"] = list(n["exceptAttrs"])
        else:
            notification["attrs"] = list(n.get("attrs") or [])
        notification["onlyChangedAttrs"] = n.get("onlyChangedAttrs", False)
        notification["attrsFormat"] = n.get("attrsFormat", "normalized")
        for channel in ("http", "httpCustom", "mqtt", "mqttCustom"):
            if channel in n:
                notification[channel] = dict(n[channel])
        if "metadata" in n:
            notification["metadata"] = list(n["metadata"])
        if "maxFailsLimit" in n:
            notification["maxFailsLimit"] = n["maxFailsLimit"]
        with self.lock:
            s = DeliveryState(**self.state.__dict__)
        if s.times_sent:
            notification["timesSent"] = s.times_sent
        if s.last_notification is not None:
            notification["lastNotification"] = iso_from_posix(s.last_notification)
        if s.last_failure is not None:
            notification["lastFailure"] = iso_from_posix(s.last_failure)
            if s.last_failure_reason:
                notification["lastFailureReason"] = s.last_failure_reason
        if s.last_success is not None:
            notification["lastSuccess"] = iso_from_posix(s.last_success)
            if s.last_success_code is not None:
                notification["lastSuccessCode"] = s.last_success_code
        if s.fails_counter:
            notification["failsCounter"] = s.fails_counter
        notification["covered"] = n.get("covered", False)
        out["notification"] = notification
        if d.get("expires") is not None:
            out["expires"] = iso_from_posix(d["expires"])
        out["status"] = self.effective_status(now)
        if d.get("throttling"):
            out["throttling"] = d["throttling"]
        return out
