"""The service's exception tree; an API error renders itself as ``{"error": ..., "description": ...}``."""

from __future__ import annotations

from typing import Any

from flexmeter.errors import FlexmeterError


class ServiceError(FlexmeterError):
    """Base of the business service's errors; ``status`` and ``error`` are its HTTP rendering."""

    status = 500
    error = "InternalError"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "description": self.description}


class BadRequest(ServiceError):
    status = 400
    error = "BadRequest"


class InvalidNotification(BadRequest):
    """A notification body that is not NGSI-v2 normalized (``subscriptionId`` + ``data`` of entities)."""

    error = "InvalidNotification"


class Unauthorized(ServiceError):
    status = 401
    error = "Unauthorized"


class Forbidden(ServiceError):
    status = 403
    error = "Forbidden"


class NotFound(ServiceError):
    status = 404
    error = "NotFound"


class UpstreamError(ServiceError):
    """The context broker refused or could not be reached (e.g. a breaker command)."""

    status = 502
    error = "UpstreamError"
