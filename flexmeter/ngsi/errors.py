"""Errors of the FIWARE HTTP clients; a response error carries the response it came from."""

from __future__ import annotations

from typing import Any

import requests

from flexmeter.errors import FlexmeterError


class NgsiClientError(FlexmeterError):
    """Base of every error raised by ``flexmeter.ngsi`` clients."""


class NgsiConnectionError(NgsiClientError):
    """The endpoint could not be reached (refused, timed out, reset)."""


class NgsiResponseError(NgsiClientError):
    """The endpoint answered with a status outside 2xx.

    ``error`` and ``description`` are the FIWARE error body's fields when there is one (Orion and
    QuantumLeap use ``error``/``description``, the IoT Agents ``name``/``message``).
    """

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.status = response.status_code
        self.body: Any = None
        try:
            self.body = response.json()
        except ValueError:
            self.body = response.text
        self.error = ""
        self.description = ""
        if isinstance(self.body, dict):
            self.error = str(self.body.get("error") or self.body.get("name") or "")
            self.description = str(self.body.get("description") or self.body.get("message") or "")
        request = response.request
        super().__init__(
            f"{request.method} {request.url} -> {self.status} {self.error}: {self.description}".rstrip(": ")
        )


NgsiError = NgsiResponseError
