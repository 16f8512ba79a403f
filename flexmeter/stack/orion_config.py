"""Subscriptions kept as data in ``orion_config/``, applied idempotently (matched by description)."""

from __future__ import annotations

import json
from pathlib import Path
from string import Template
from typing import Any

from flexmeter.ngsi import FiwareHeaders, NgsiClient

ORION_CONFIG = Path(__file__).resolve().parents[2] / "orion_config"


def load_subscription(path: Path, **urls: str) -> dict[str, Any]:
    """Read a subscription template; ``${QL_URL}``-style placeholders come from ``urls``."""
    text = Template(path.read_text(encoding="utf-8")).substitute(urls)
    document: dict[str, Any] = json.loads(text)
    return document


def ensure_subscription(client: NgsiClient, subscription: dict[str, Any], headers: FiwareHeaders) -> str:
    """Create the subscription unless one with the same description exists; return its id."""
    for existing in client.list_subscriptions(headers=headers):
        if existing.get("description") == subscription.get("description"):
            return str(existing["id"])
    return client.create_subscription(subscription, headers=headers)
