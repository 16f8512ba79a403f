"""NGSI-v2 batch operations: ``POST /v2/op/update`` and ``POST /v2/op/query`` bodies."""

from __future__ import annotations

from typing import Literal

from flexmeter.ngsi_models.base import WireModel
from flexmeter.ngsi_models.entity import Entity
from flexmeter.ngsi_models.subscription import EntitySelector, Expression

ActionType = Literal["append", "appendStrict", "update", "delete", "replace"]


class BatchOperation(WireModel):
    """``/v2/op/update``: one ``actionType`` applied to each entity in turn (normalized entities)."""

    action_type: ActionType
    entities: list[Entity]


class BatchQuery(WireModel):
    """``/v2/op/query``: entity selectors, attribute list, filter expression and metadata list."""

    entities: list[EntitySelector] | None = None
    attrs: list[str] | None = None
    expression: Expression | None = None
    metadata: list[str] | None = None
