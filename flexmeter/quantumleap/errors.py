"""The time series' exception tree; each error renders as the body QuantumLeap 1.0.0 answers.

QuantumLeap answers ``{"error", "description"}`` for query errors and, for requests its OpenAPI layer
(connexion) rejects, an RFC 7807 problem body. Both shapes are kept so that clients written against
QuantumLeap keep working.
"""

from __future__ import annotations

from typing import Any

from flexmeter.errors import FlexmeterError

NOT_FOUND_DESCRIPTION = "No records were found for such query."


class QuantumLeapError(FlexmeterError):
    """Base of the package's errors: an HTTP status and the JSON body to answer."""

    status = 500
    error = "Internal Server Error"

    def __init__(self, description: str, *, error: str | None = None, status: int | None = None) -> None:
        super().__init__(description)
        self.description = description
        if error is not None:
            self.error = error
        if status is not None:
            self.status = status

    def body(self) -> Any:
        return {"error": self.error, "description": self.description}

    content_type = "application/json"


class Problem(QuantumLeapError):
    """400 problem body (connexion's), e.g. a notification that is not JSON or has no ``data``."""

    status = 400
    error = "Bad Request"
    content_type = "application/problem+json"

    def body(self) -> Any:
        return {"type": "about:blank", "title": self.error, "status": self.status, "detail": self.description}


class BadParameters(QuantumLeapError):
    """400 "Bad parameters use": e.g. ``aggrPeriod`` without ``aggrMethod``."""

    status = 400
    error = "Bad parameters use"


class InvalidHeaderValue(QuantumLeapError):
    """400: a header QuantumLeap cannot use (service name, service path list not matching the entities)."""

    status = 400
    error = "InvalidHeaderValue"


class AmbiguousId(QuantumLeapError):
    """400: an entity id found under several types; the client must give ``type``."""

    status = 400
    error = "AmbiguousNGSIIdError"


class InvalidParameterValue(QuantumLeapError):
    """422: a parameter with the right name and a wrong value (dates, limits)."""

    status = 422
    error = "InvalidParameterValue"


class NotFound(QuantumLeapError):
    """404 with QuantumLeap's exact body when a query matches no record."""

    status = 404
    error = "Not Found"

    def __init__(self, description: str = NOT_FOUND_DESCRIPTION) -> None:
        super().__init__(description)


class AggregationNotApplicable(QuantumLeapError):
    """404 (as QuantumLeap answers) for sum/avg/min/max on a non-numeric attribute."""

    status = 404
    error = "AggrMethod cannot be applied"

    def __init__(self, description: str = "AggrMethod cannot be applied on type TEXT and BOOLEAN.") -> None:
        super().__init__(description)


class NotImplementedOption(QuantumLeapError):
    """501 for options QuantumLeap 1.0.0 does not implement (``options``, ``aggrScope=global``)."""

    status = 501
    error = "Not implemented option"


class StoreError(QuantumLeapError):
    """500: the database failed; the notification was not committed and the sender should retry."""

    status = 500
    error = "Internal Server Error"
