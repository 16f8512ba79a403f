"""Subscriptions kept as data in ``orion_config/``: templates, and matching them by description.

A template is Orion's JSON with ``${NAME}`` placeholders (``${QL_URL}``, ``${SERVICE_URL}`` ...). It is
checked with :class:`flexmeter.ngsi_models.Subscription` before anything is sent. A subscription is
identified by its ``description`` within a tenant and service path, so applying twice creates it once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from flexmeter.config import get_settings
from flexmeter.ngsi import FiwareHeaders, NgsiClient
from flexmeter.ngsi_models import Subscription


def orion_config_dir() -> Path:
    """``FLEXMETER_ORION_CONFIG``, else the checkout's ``orion_config/``, else ``./orion_config`` (an
    installed package, e.g. the Docker image whose working directory holds it)."""
    configured = get_settings().orion_config
    if configured is not None:
        return configured
    checkout = Path(__file__).resolve().parents[2] / "orion_config"
    return checkout if checkout.is_dir() else Path.cwd() / "orion_config"

#: read-only fields Orion adds to a subscription it returns
READ_ONLY = ("id", "status")
READ_ONLY_NOTIFICATION = ("timesSent", "lastNotification", "lastFailure", "lastFailureReason", "lastSuccess",
                          "lastSuccessCode", "failsCounter")


PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_template(text: str, **urls: str) -> dict[str, Any]:
    """A template's JSON with its ``${NAME}`` placeholders filled (``KeyError`` names a missing one).

    Only ``${NAME}`` is a placeholder: a lone ``$`` (as in a ``typePattern`` regex) is left alone.
    """
    document: dict[str, Any] = json.loads(PLACEHOLDER.sub(lambda m: urls[m.group(1)], text))
    return document


def load_subscription(path: Path, **urls: str) -> dict[str, Any]:
    """Read a subscription template; ``${QL_URL}``-style placeholders come from ``urls``."""
    return render_template(path.read_text(encoding="utf-8"), **urls)


def normalized(subscription: dict[str, Any]) -> dict[str, Any]:
    """The subscription as Orion's JSON, validated by the wire model, without read-only fields."""
    body = Subscription.model_validate(subscription).to_json()
    for key in READ_ONLY:
        body.pop(key, None)
    notification = body.get("notification", {})
    for key in READ_ONLY_NOTIFICATION:
        notification.pop(key, None)
    return body


def find_by_description(client: NgsiClient, description: str | None,
                        headers: FiwareHeaders) -> dict[str, Any] | None:
    for existing in client.list_subscriptions(headers=headers):
        if existing.get("description") == description:
            return existing
    return None


def ensure_subscription(client: NgsiClient, subscription: dict[str, Any], headers: FiwareHeaders) -> str:
    """Create the subscription unless one with the same description exists; return its id."""
    existing = find_by_description(client, subscription.get("description"), headers)
    if existing is not None:
        return str(existing["id"])
    return client.create_subscription(subscription, headers=headers)
