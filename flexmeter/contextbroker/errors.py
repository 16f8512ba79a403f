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
