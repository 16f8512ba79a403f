"""The core's agent fixtures, for the Connode end-to-end tests."""

from tests.iot_agents.core.conftest import agent_factory, tenant

__all__ = ["agent_factory", "tenant"]
