"""The bus master's exception tree."""

from __future__ import annotations

from flexmeter.errors import FlexmeterError


class GatewayError(FlexmeterError):
    """Root of the gateway's errors."""


class TransportClosedError(GatewayError):
    """The serial line or the TCP connection to the converter is gone."""


class NoAnswerError(GatewayError):
    """A meter did not answer (after all retries) within the response timeout."""


class BadAnswerError(GatewayError):
    """An answer that is not a valid frame (noise, or a collision of several meters answering)."""
