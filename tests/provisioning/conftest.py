"""Fixtures for the provisioning tests: the embedded broker, IoT Agent and time series as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flexmeter.ngsi import FiwareHeaders, NgsiClient
from flexmeter.ngsi.iota import IotAgentClient
from flexmeter.provisioning.operations import Target
from tests.conftest import start_broker
from tests.support.processes import FlexmeterProcess

REPO = Path(__file__).resolve().parents[2]


def start_agent(ngsi_url: str, data_dir: Path) -> FlexmeterProcess:
    return FlexmeterProcess(["agent", "json", "connode", "--north-port", "0", "--south-port", "0", "--ngsi-url",
                             ngsi_url, "--mqtt-url", "none", "--amqp-url", "none", "--data-dir", str(data_dir)]).start()


@dataclass
class Stack:
    ngsi_url: str
    iota_url: str
    ql_url: str

    def target(self, service: str, **kwargs: object) -> Target:
        return Target(self.ngsi_url, self.iota_url, self.ql_url, service=service, **kwargs)  # type: ignore[arg-type]

    def cli_args(self, service: str) -> list[str]:
        return ["--ngsi-url", self.ngsi_url, "--iota-url", self.iota_url, "--ql-url", self.ql_url,
                "--service", service]

    def ngsi(self) -> NgsiClient:
        return NgsiClient(self.ngsi_url)

    def iota(self) -> IotAgentClient:
        return IotAgentClient(self.iota_url)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Broker + IoT Agent (json, connode) + time series, one set per worker (each test has its own tenant
    and apikeys)."""
    tmp = tmp_path_factory.mktemp("provisioning-stack")
    broker = start_broker(tmp)
    agent = start_agent(broker.url, tmp / "agent")
    timeseries = FlexmeterProcess(["timeseries", "--port", "0", "--db", str(tmp / "ts.db")],
                                  env={"FLEXMETER_POSTGRES_DSN": ""}).start()
    try:
        yield Stack(broker.url, agent.url, timeseries.url)
    finally:
        agent.stop()
        timeseries.stop()
        broker.stop()


@pytest.fixture
def service() -> str:
    """A tenant of its own for each test."""
    return f"prov{uuid.uuid4().hex[:10]}"


def headers(service: str, path: str) -> FiwareHeaders:
    return FiwareHeaders(service, path)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> CliResult:
    """``flexmeter provision ...`` in this process (the real typer app, real endpoints; no interpreter start)."""
    from flexmeter.cli import app

    result = CliRunner().invoke(app, ["provision", *args], env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


def run_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m flexmeter provision ...`` exactly as a user runs it."""
    return subprocess.run([sys.executable, "-m", "flexmeter", "provision", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, cwd=REPO, timeout=120)
