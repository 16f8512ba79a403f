"""Fixtures shared by the agents' test areas."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.iot_agents.core.secure_mosquitto import SecureMosquitto, start_secure_mosquitto


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureMosquitto]:
    """A private Mosquitto with a password file and TLS listeners (secure_mosquitto.py), one per module."""
    broker = start_secure_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield broker
    finally:
        broker.stop()
