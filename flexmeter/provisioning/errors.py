"""Errors of provisioning: a bad inventory (every problem with its file and line) and failed operations."""

from __future__ import annotations

from dataclasses import dataclass

from flexmeter.errors import FlexmeterError


class ProvisioningError(FlexmeterError):
    """Base of every error raised by ``flexmeter.provisioning``."""


@dataclass(frozen=True)
class Problem:
    """One reason an inventory is refused: where (file, line, path of keys) and why."""

    file: str
    line: int | None
    where: str
    reason: str

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        return f"{place}: {self.where}: {self.reason}" if self.where else f"{place}: {self.reason}"


class InventoryError(ProvisioningError):
    """The inventory is invalid; ``problems`` lists every reason found, each with its line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SecretError(ProvisioningError):
    """A key reference (``env:NAME``, ``file:PATH``) cannot be resolved. Never carries the value."""


class EndpointError(ProvisioningError):
    """An endpoint could not be read before anything was changed (nothing was applied)."""
