"""NGSI-v2 entities on the wire: metadata, attributes, entities and the keyValues form.

These follow Orion's API manual (doc/manuals/orion-api.md, "JSON Entity/Attribute Representation",
"Partial Representations", "Field syntax restrictions"). ``model_dump(exclude_none=True, by_alias=True)``
gives back exactly the JSON that was read: an attribute or metadata written as ``{"value": null}``
keeps its ``null``, and one written without ``value`` stays without it (both mean null to Orion).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
)

from flexmeter.ngsi_models.errors import InvalidIdentifierError

Json = dict[str, Any]

#: NGSI-v2 field syntax for ids, types and names: printable ASCII (0x21-0x7E) except ``#``, ``&``, ``/``
#: and ``?``, 1 to 256 characters (Orion API manual, "Field syntax restrictions").
IDENTIFIER_PATTERN = r"^[\x21\x22\x24\x25\x27-\x2e\x30-\x3e\x40-\x7e]{1,256}$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_FORBIDDEN_IN_IDENTIFIERS = frozenset("&?/#")
#: Attribute names NGSI-v2 reserves (entity keys, ``orderBy`` keyword, builtins, the "all" wildcard).
RESERVED_ATTRIBUTE_NAMES = frozenset({"id", "type", "geo:distance", "dateCreated", "dateModified", "dateExpires", "*"})

#: A string that obeys the field syntax, checked by pydantic-core (fast, on every parsed name and type).
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]


def check_identifier(text: str, what: str = "identifier") -> str:
    """Apply NGSI-v2's field syntax rules: 1..256 printable ASCII characters, none of ``& ? / #``."""
    if isinstance(text, str) and _IDENTIFIER.match(text):
        return text
    if not isinstance(text, str):
        raise InvalidIdentifierError(f"{what} must be a string, not {type(text).__name__}")
    if not 1 <= len(text) <= 256:
        raise InvalidIdentifierError(f"{what} must be 1 to 256 characters long, got {len(text)}")
    for position, char in enumerate(text):
        if not (0x21 <= ord(char) <= 0x7E) or char in _FORBIDDEN_IN_IDENTIFIERS:
            raise InvalidIdentifierError(f"{what} {text!r}: character {char!r} at {position} is not allowed")
    raise AssertionError(text)  # pragma: no cover - the pattern and the loop agree


def default_type(value: Any) -> str:
    """The NGSI type Orion gives a value sent without one (manual, "Partial Representations")."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, str):
        return "Text"
    if isinstance(value, dict | list):
        return "StructuredValue"
    return "None"


class _ValueHolder(BaseModel):
    """Shared by metadata and attributes: an explicit ``"value": null`` survives a dump with exclude_none."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    type: Identifier | None = None
    value: Any = None

    @model_serializer(mode="wrap")
    def _keep_explicit_null(self, handler: SerializerFunctionWrapHandler) -> Json:
        data: Json = handler(self)
        if "value" in self.model_fields_set and "value" not in data:
            data["value"] = None
            data = {key: data[key] for key in type(self).model_fields if key in data}
        return data


class Metadata(_ValueHolder):
    """One metadata element: ``{"type": ..., "value": ...}`` (no nested metadata in NGSI-v2)."""


class Attribute(_ValueHolder):
    """One attribute: ``{"type": ..., "value": ..., "metadata": {...}}``; type and metadata optional."""

    metadata: dict[Identifier, Metadata] | None = None

    def effective_type(self) -> str:
        """The type the broker will store: the given one, else Orion's default for the value."""
        return self.type if self.type is not None else default_type(self.value)


class Entity(BaseModel):
    """A normalized entity: ``id``, ``type`` (optional in requests) and its attributes as extra keys."""

    model_config = ConfigDict(extra="allow")
    # init=False only tells type checkers that this is not a constructor argument
    # builtin attributes (dateCreated, ...) are legal here: Orion renders them in responses when asked
    __pydantic_extra__: dict[Identifier, Attribute] = Field(init=False)

    id: Identifier
    type: Identifier | None = None

    @classmethod
    def of(cls, entity_id: str, entity_type: str | None = None, **attributes: Attribute) -> Self:
        """An entity from typed attributes: ``Entity.of("R1", "Room", temperature=Attribute(value=21))``."""
        return cls.model_validate({"id": entity_id, "type": entity_type, **attributes})

    @property
    def attributes(self) -> dict[str, Attribute]:
        """The attributes by name, in document order (the same dict the model holds)."""
        return self.__pydantic_extra__

    def attribute(self, name: str) -> Attribute | None:
        return self.__pydantic_extra__.get(name)

    def set_attribute(self, name: str, attribute: Attribute) -> None:
        check_identifier(name, "attribute name")
        if name in RESERVED_ATTRIBUTE_NAMES:
            raise InvalidIdentifierError(f"attribute name {name!r} is reserved by NGSI-v2")
        self.__pydantic_extra__[name] = attribute

    def to_json(self) -> Json:
        """Orion's normalized JSON (what ``POST /v2/entities`` takes and ``GET`` returns)."""
        data: Json = self.model_dump(exclude_none=True, by_alias=True)
        return data

    def to_key_values(self) -> Json:
        """The keyValues form: each attribute replaced by its value (``id`` and ``type`` kept)."""
        return to_key_values(self.to_json())

    @classmethod
    def from_key_values(cls, data: Json, types: dict[str, str] | None = None) -> Self:
        """A normalized entity from keyValues, typing each value as Orion would, unless ``types`` says."""
        types = types or {}
        normalized: Json = {"id": data["id"]}
        if data.get("type") is not None:
            normalized["type"] = data["type"]
        for name, value in data.items():
            if name not in ("id", "type"):
                normalized[name] = {"type": types.get(name, default_type(value)), "value": value}
        return cls.model_validate(normalized)


def to_key_values(entity: Json) -> Json:
    """keyValues from a normalized entity dict (the fast path builders and agents use; no validation)."""
    return {name: (item if name in ("id", "type") else item.get("value")) for name, item in entity.items()}


class ErrorBody(BaseModel):
    """An NGSI-v2 error response: ``{"error": ..., "description": ...}``."""

    model_config = ConfigDict(extra="forbid")

    error: str
    description: str | None = None
