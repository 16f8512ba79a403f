"""The evaluation's exception tree."""

from __future__ import annotations

from flexmeter.errors import FlexmeterError


class EvaluationError(FlexmeterError):
    """The benchmark or the evaluation could not run (a component did not start, provisioning failed)."""
