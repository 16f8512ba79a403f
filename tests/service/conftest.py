"""Fixtures of the service tests: an in-process engine on a temp dir, and the real ``flexmeter service``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from flexmeter.service.config import ServiceConfig
from flexmeter.service.engine import Engine
from tests.support.processes import FlexmeterProcess


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """The service core without HTTP and without a broker (results stay in the outbox)."""
    core = Engine(ServiceConfig(data_dir=tmp_path / "service"))
    try:
        yield core
    finally:
        core.stop()


@pytest.fixture
def tenant() -> str:
    return f"svc{uuid.uuid4().hex[:10]}"


def service_process(tmp_path: Path, ngsi_url: str | None, *extra: str) -> FlexmeterProcess:
    args = ["service", "--port", "0", "--data-dir", str(tmp_path / "service"), "--threads", "4", *extra]
    args += ["--ngsi-url", ngsi_url] if ngsi_url else ["--no-results"]
    return FlexmeterProcess(args, env={"FLEXMETER_TOKEN": ""})
