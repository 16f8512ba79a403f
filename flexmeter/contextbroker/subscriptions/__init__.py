"""Subscriptions and notifications of the embedded broker (Orion's ``/v2/subscriptions``).

Core hands every committed change to :meth:`SubscriptionEngine.on_changes`; the engine matches it
against the tenant's subscriptions and queues notifications that worker threads send over HTTP or MQTT,
so that an update never waits for a receiver.
"""

from flexmeter.contextbroker.subscriptions.engine import SubscriptionEngine

__all__ = ["SubscriptionEngine"]
