"""The IoT Agent's exception tree; each error renders as iotagent-node-lib's body ``{"name", "message"}``."""

from __future__ import annotations

from typing import Any

from flexmeter.errors import FlexmeterError


class IotAgentError(FlexmeterError):
    """Base of the tree. ``name`` and ``status`` are iotagent-node-lib's for the same condition."""

    name = "SERVER_ERROR"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"name": self.name, "message": self.message}


class MissingHeaders(IotAgentError):
    name, status = "MISSING_HEADERS", 400

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"Some headers were missing from the request: {missing}")


class WrongSyntax(IotAgentError):
    name, status = "WRONG_SYNTAX", 400

    def __init__(self, detail: str) -> None:
        super().__init__(f"Wrong syntax in request: {detail}")


class BadRequest(IotAgentError):
    name, status = "BAD_REQUEST", 400


class DeviceNotFound(IotAgentError):
    name, status = "DEVICE_NOT_FOUND", 404

    def __init__(self, device_id: str) -> None:
        super().__init__(f"No device was found with id:{device_id}")
        self.device_id = device_id


class DuplicateDeviceId(IotAgentError):
    name, status = "DUPLICATE_DEVICE_ID", 409

    def __init__(self, device_id: str) -> None:
        super().__init__(f"A device with the same pair (Service, DeviceId) was found:{device_id}")


class DuplicateGroup(IotAgentError):
    name, status = "DUPLICATE_GROUP", 409

    def __init__(self, resource: str, apikey: str) -> None:
        super().__init__(f"A device configuration already exists for resource {resource} and API Key {apikey}")


class DeviceGroupNotFound(IotAgentError):
    name, status = "DEVICE_GROUP_NOT_FOUND", 404

    def __init__(self, fields: dict[str, Any]) -> None:
        keys = list(fields)
        values = list(fields.values())
        super().__init__(f"Couldn't find device group for fields: {keys} and values: {values}")


class MandatoryParamsNotFound(IotAgentError):
    """iotagent-json's answer when ``k`` or ``i`` is missing on the south HTTP route."""

    name, status = "MANDATORY_PARAMS_NOT_FOUND", 400

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"Some of the mandatory params weren't found in the request: {missing}")


class InvalidExpression(IotAgentError):
    name, status = "INVALID_EXPRESSION", 400

    def __init__(self, expression: str, detail: str = "") -> None:
        super().__init__(f"Invalid expression in evaluation [{expression}]" + (f": {detail}" if detail else ""))


class BadTimestamp(IotAgentError):
    name, status = "BAD_TIMESTAMP", 400

    def __init__(self, value: Any, device_id: str) -> None:
        super().__init__(f"Invalid ISO8601 timestamp [{value}] in [{device_id}]")


class Unauthorized(IotAgentError):
    name, status = "UNAUTHORIZED", 401


class DecodeError(IotAgentError):
    """A payload a family's decoder rejects: the reason says which field/byte and which rule."""

    name, status = "WRONG_SYNTAX", 400


class PayloadTooLarge(IotAgentError):
    name, status = "PAYLOAD_TOO_LARGE", 413


class AllItemsRejected(IotAgentError):
    """Every item of a message was rejected by its decoder: the message goes to the dead letters whole,
    with the first item's error name and status."""

    def __init__(self, name: str, status: int, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.status = status


class PersistTimeout(IotAgentError):
    """The pipeline did not commit a south HTTP measure in time (the device should retry)."""

    name, status = "TIMEOUT", 503
