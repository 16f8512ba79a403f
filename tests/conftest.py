"""Shared fixtures: real processes on free ports, and the machine's real brokers and databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import FlexmeterProcess
from tests.support.services import require_service

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = Path(os.environ.get("FLEXMETER_CORPUS_DIR", SHARED / "corpus"))
SDM = Path(os.environ.get("FLEXMETER_SDM", SHARED / "sdm"))

# Agents started by tests subscribe to every apikey on the machine's shared Mosquitto with persistent sessions:
# those must not outlive the test run by a week, queueing (and dropping) every later run's messages.
os.environ.setdefault("FLEXMETER_MQTT_SESSION_EXPIRY", "600")


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"corpus not found at {CORPUS} (set FLEXMETER_CORPUS_DIR)")
    return CORPUS


@pytest.fixture(scope="session")
def sdm_dir() -> Path:
    if not SDM.is_dir():
        pytest.fail(f"Smart Data Models not found at {SDM} (set FLEXMETER_SDM)")
    return SDM


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    require_service("Mosquitto", "127.0.0.1", 1883)
    return "mqtt://127.0.0.1:1883"


@pytest.fixture(scope="session")
def amqp_url() -> str:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    return "amqp://guest:guest@127.0.0.1:5672/%2F"


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return os.environ.get("FLEXMETER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def start_broker(tmp_path: Path, *extra: str) -> FlexmeterProcess:
    return FlexmeterProcess(["broker", "--port", "0", "--db", str(tmp_path / "broker.db"), *extra]).start()


@pytest.fixture
def broker_process(tmp_path: Path) -> Iterator[FlexmeterProcess]:
    """A fresh embedded context broker per test (its own SQLite file)."""
    proc = start_broker(tmp_path)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def module_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlexmeterProcess]:
    """One embedded broker per test module; tests isolate themselves with their own Fiware-Service."""
    proc = start_broker(tmp_path_factory.mktemp("broker"))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def ngsi_url(module_broker: FlexmeterProcess) -> str:
    """NGSI_URL when set (qualify a real Orion with the same tests), else the embedded broker."""
    return os.environ.get("NGSI_URL") or module_broker.url
