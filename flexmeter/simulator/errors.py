"""The simulator's exception tree."""

from __future__ import annotations

from flexmeter.errors import FlexmeterError


class SimulatorError(FlexmeterError):
    """Root of the simulator's errors."""


class FleetError(SimulatorError):
    """The inventory cannot be simulated (a meter without the address or key its frames need, ...)."""


class EmitError(SimulatorError):
    """A transport refused or lost what the simulator sent (broker down, no confirm, HTTP error)."""
