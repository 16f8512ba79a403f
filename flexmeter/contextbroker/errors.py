"""The broker's exception tree; each error renders as Orion's error body ``{"error", "description"}``."""

from __future__ import annotations

from typing import Any

from flexmeter.errors import FlexmeterError


class OrionError(FlexmeterError):
    """An NGSI-v2 error with Orion's status code, ``error`` name and ``description``."""

    status = 500
    error = "InternalServerError"

    def __init__(self, description: str, *, status: int | None = None, error: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        if status is not None:
            self.status = status
        if error is not None:
            self.error = error

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "description": self.description}


class BadRequest(OrionError):
    status = 400
    error = "BadRequest"


class ParseError(OrionError):
    status = 400
    error = "ParseError"


class NotFound(OrionError):
    status = 404
    error = "NotFound"


class MethodNotAllowed(OrionError):
    status = 405
    error = "MethodNotAllowed"


class Conflict(OrionError):
    status = 409
    error = "TooManyResults"


class LengthRequired(OrionError):
    status = 411
    error = "ContentLengthRequired"


class RequestEntityTooLarge(OrionError):
    status = 413
    error = "RequestEntityTooLarge"


class UnsupportedMediaType(OrionError):
    status = 415
    error = "UnsupportedMediaType"


class Unprocessable(OrionError):
    status = 422
    error = "Unprocessable"


class NotAcceptable(OrionError):
    status = 406
    error = "NotAcceptable"


class TooManyResults(Conflict):
    """409: a request by id matches several entities (different types or service paths)."""


class PartialUpdate(Unprocessable):
    """422: some of the request was applied, some named things that do not exist."""

    error = "PartialUpdate"


class NotImplementedYet(OrionError):
    status = 501
    error = "NotImplemented"


# Orion's standard descriptions (src/lib/common/errorMessages.h), shared by every route.
DESC_PARSE = "Errors found in incoming JSON buffer"
DESC_ENTITY_NOT_FOUND = "The requested entity has not been found. Check type and id"
DESC_TYPE_NOT_FOUND = "Entity type not found"
DESC_ATTR_NOT_FOUND = "The entity does not have such an attribute"
DESC_REGISTRATION_NOT_FOUND = "The requested registration has not been found. Check id"
DESC_TOO_MANY = "More than one matching entity. Please refine your query"
DESC_ALREADY_EXISTS = "Already Exists"
DESC_SERVICE_NOT_FOUND = "Service not found. Check your URL as probably it is wrong."
DESC_BAD_VERB = "method not allowed"
DESC_EMPTY_PAYLOAD = "empty payload"
DESC_NO_CONTENT_LENGTH = "Zero/No Content-Length in PUT/POST/PATCH request"
DESC_GET_DELETE_CONTENT_TYPE = (
    "Orion accepts no payload for GET/DELETE requests. HTTP header Content-Type is thus forbidden"
)
