"""Root of the project's exception trees.

Each package derives its own tree from :class:`FlexmeterError`; an error that crosses an API knows how to
render itself as that API's error body (see each package's ``errors`` module).
"""

from __future__ import annotations


class FlexmeterError(Exception):
    """Base of every exception the project raises on purpose."""
