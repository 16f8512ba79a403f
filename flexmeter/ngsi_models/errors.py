"""The exception tree of :mod:`flexmeter.ngsi_models`.

Builders and wire models refuse bad input at the edge (a naive datetime, a value outside the range the
Smart Data Model allows, an identifier Orion would reject) so that a bad entity is never sent to a broker.
"""

from __future__ import annotations

from flexmeter.errors import FlexmeterError


class NgsiModelError(FlexmeterError, ValueError):
    """Root of this package's errors; a ``ValueError`` so that pydantic validators can raise it."""

    def to_ngsi_error(self) -> dict[str, str]:
        """The error as an NGSI-v2 error body (what Orion answers to such a request)."""
        return {"error": "BadRequest", "description": str(self)}


class InvalidIdentifierError(NgsiModelError):
    """An entity id/type, attribute or metadata name/type that breaks NGSI-v2's field syntax rules."""


class InvalidValueError(NgsiModelError):
    """A value a builder cannot put into its attribute: wrong kind, out of range, not exact, naive time."""


class UnknownFieldError(NgsiModelError):
    """A builder was given an input its model's table does not know (e.g. a phase key ``L4``)."""
