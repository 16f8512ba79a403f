"""Builder output and wire models against a real NGSI-v2 broker (the embedded one, or NGSI_URL = Orion)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

import flexmeter.ngsi_models as nm
from flexmeter.ngsi_models import BUILDERS, BatchOperation, Entity, Subscription
from tests.ngsi_models.samples import SAMPLES


@pytest.fixture
def tenant() -> dict[str, str]:
    return {"Fiware-Service": f"nm{uuid.uuid4().hex[:12]}", "Fiware-ServicePath": "/ngsi_models"}


def _with_default_metadata(entity: dict[str, Any]) -> dict[str, Any]:
    """What a broker renders: every attribute has ``metadata`` (``{}`` when it had none)."""
    return {k: v if k in ("id", "type") else {"metadata": {}, **v} for k, v in entity.items()}


def test_every_builder_entity_is_stored_and_read_back_exactly(ngsi_url: str, tenant: dict[str, str]) -> None:
    entities = [builder(SAMPLES[builder][0], **SAMPLES[builder][1]) for _, builder in BUILDERS]
    batch = BatchOperation(action_type="append", entities=[Entity.model_validate(e) for e in entities])
    response = requests.post(f"{ngsi_url}/v2/op/update", json=batch.to_json(), headers=tenant, timeout=10)
    assert response.status_code == 204, response.text
    for entity in entities:
        url = f"{ngsi_url}/v2/entities/{entity['id']}"
        normalized = requests.get(url, headers=tenant, timeout=10)
        assert normalized.status_code == 200, normalized.text
        assert Entity.model_validate(normalized.json()).to_json() == _with_default_metadata(entity)
        key_values = requests.get(url, params={"options": "keyValues"}, headers=tenant, timeout=10).json()
        assert key_values == nm.to_key_values(entity)


def test_subscription_model_survives_the_broker(ngsi_url: str, tenant: dict[str, str]) -> None:
    sent = Subscription.model_validate(
        {
            "description": "ACMeasurement history",
            "subject": {
                "entities": [{"idPattern": ".*", "type": "ACMeasurement"}],
                "condition": {"attrs": ["TimeInstant"]},
            },
            "notification": {
                "http": {"url": "http://127.0.0.1:9/notify"},
                "attrsFormat": "normalized",
                "metadata": ["unitCode", "timestamp"],
            },
            "expires": "2030-01-01T00:00:00.000Z",
            "throttling": 1,
        }
    )
    created = requests.post(f"{ngsi_url}/v2/subscriptions", json=sent.to_json(), headers=tenant, timeout=10)
    assert created.status_code == 201, created.text
    listed = requests.get(f"{ngsi_url}/v2/subscriptions", headers=tenant, timeout=10).json()
    assert len(listed) == 1
    read = Subscription.model_validate(listed[0])  # whatever the broker adds must be a modelled field
    assert read.to_json() == listed[0]
    assert read.id == created.headers["Location"].rsplit("/", 1)[1]
    assert read.subject.entities == sent.subject.entities
    assert read.subject.condition is not None and read.subject.condition.attrs == ["TimeInstant"]
    assert read.notification.http == sent.notification.http
    assert read.notification.metadata == ["unitCode", "timestamp"]
    assert read.expires_at() == sent.expires_at() and read.throttling == 1
