"""Subscriptions kept as data in ``orion_config/``: moved to :mod:`flexmeter.provisioning.subscriptions`
(this name stays for ``flexmeter up``)."""

from __future__ import annotations

from flexmeter.provisioning.subscriptions import ORION_CONFIG, ensure_subscription, load_subscription

__all__ = ["ORION_CONFIG", "ensure_subscription", "load_subscription"]
