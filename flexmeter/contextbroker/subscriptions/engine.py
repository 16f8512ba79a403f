"""The subscription engine: CRUD, matching of changes, and the notification workers (stub for now)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint

from flexmeter.contextbroker.model import EntityChange
from flexmeter.metrics import Registry


class SubscriptionEngine:
    """Owns the subscriptions of every tenant under ``db_base`` and sends their notifications."""

    def __init__(self, db_base: Path, metrics: Registry, notify_batch: int | None = None) -> None:
        self.db_base = Path(db_base)
        self.metrics = metrics
        self.notify_batch = notify_batch

    def start(self) -> None:
        """Start the worker threads."""

    def stop(self) -> None:
        """Drain the queues and join the workers."""

    def on_changes(self, changes: list[EntityChange]) -> None:
        """Match committed changes and queue their notifications; never blocks on the network."""

    def blueprint(self) -> Blueprint:
        return Blueprint("subscriptions", __name__)
