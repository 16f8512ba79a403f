"""Fixtures for the IoT Agent tests: real agent processes on free ports with their own data dirs."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.processes import FlexmeterProcess

AgentFactory = Callable[..., FlexmeterProcess]


def south_url(proc: FlexmeterProcess) -> str:
    match = re.search(r"south on (http://\S+)", proc.log())
    assert match, proc.log()
    return match.group(1)


def start_agent(data_dir: Path, ngsi_url: str, *families: str, mqtt_url: str = "none", amqp_url: str = "none",
                extra: tuple[str, ...] = (), env: dict[str, str] | None = None) -> FlexmeterProcess:
    return FlexmeterProcess(["agent", *families, "--north-port", "0", "--south-port", "0", "--ngsi-url", ngsi_url,
                             "--mqtt-url", mqtt_url, "--amqp-url", amqp_url, "--data-dir", str(data_dir),
                             "--linger", "0.01", *extra], env=env).start()


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator[AgentFactory]:
    started: list[FlexmeterProcess] = []

    def factory(ngsi_url: str, *families: str, data_dir: Path | None = None, **kwargs: Any) -> FlexmeterProcess:
        proc = start_agent(data_dir or tmp_path / "agent", ngsi_url, *families, **kwargs)
        started.append(proc)
        return proc

    yield factory
    for proc in started:
        proc.stop()


@pytest.fixture
def tenant() -> dict[str, str]:
    """A unique Fiware-Service per test (xdist workers share brokers)."""
    return {"Fiware-Service": f"t{uuid.uuid4().hex[:10]}", "Fiware-ServicePath": "/malmo"}


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.time() + timeout
    last: Any = None
    while time.time() < deadline:
        try:
            last = predicate()
        except (requests.RequestException, AssertionError, KeyError):
            last = None
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value {last!r})")


def get_entity(ngsi_url: str, headers: dict[str, str], entity_id: str) -> dict[str, Any] | None:
    response = requests.get(f"{ngsi_url}/v2/entities/{entity_id}", headers=headers, timeout=5)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def must_get_entity(ngsi_url: str, headers: dict[str, str], entity_id: str) -> dict[str, Any]:
    """The entity, or AssertionError (which :func:`wait_for` retries) while it does not exist."""
    found = get_entity(ngsi_url, headers, entity_id)
    assert found is not None, f"no entity {entity_id}"
    return found


def publish_all(mqtt_url: str, messages: list[tuple[str, bytes | str]], qos: int = 1) -> None:
    """Publish with QoS 1 and wait until Mosquitto has acknowledged every message."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from flexmeter.iot_agents.core.mqtt import host_port

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(200)
    host, port = host_port(mqtt_url)
    client.connect(host, port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


def provision(north_url: str, headers: dict[str, str], groups: list[dict[str, Any]],
              devices: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
    response = requests.post(f"{north_url}/iot/services", json={"services": groups}, headers=headers, timeout=5)
    assert response.status_code == 201, response.text
    if devices:
        response = requests.post(f"{north_url}/iot/devices", json={"devices": list(devices)}, headers=headers,
                                 timeout=5)
        assert response.status_code == 201, response.text


def count_entities(ngsi_url: str, headers: dict[str, str], entity_type: str) -> int:
    params: dict[str, str | int] = {"type": entity_type, "options": "count", "limit": 1, "attrs": "id"}
    response = requests.get(f"{ngsi_url}/v2/entities", params=params,
                            headers=headers, timeout=10)
    response.raise_for_status()
    return int(response.headers["Fiware-Total-Count"])
