"""Fixtures for the time-series tests: ``flexmeter timeseries`` per backend (or QL_URL), a tenant per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from flexmeter.ngsi.headers import FiwareHeaders
from flexmeter.ngsi.quantumleap import QuantumLeapClient
from tests.support.processes import FlexmeterProcess

QL_URL = os.environ.get("QL_URL")


@dataclass
class Server:
    url: str
    backend: str
    """sqlite, postgres, or external (a real QuantumLeap at QL_URL)."""
    dsn: str | None = None
    db: Path | None = None
    process: FlexmeterProcess | None = None


def drop_pg_tenant(dsn: str, service: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "mt{service}" CASCADE')
        conn.execute("DELETE FROM md_ets_metadata WHERE table_name LIKE %s", [f'"mt{service}".%'])


def start_timeseries(backend: str, tmp: Path, dsn: str | None) -> FlexmeterProcess:
    args = ["timeseries", "--port", "0", "--threads", "4"]
    args += ["--postgres", dsn] if backend == "postgres" and dsn else ["--db", str(tmp / "ts.db")]
    return FlexmeterProcess(args, env={"FLEXMETER_POSTGRES_DSN": ""}).start()


@pytest.fixture(scope="module", params=["external"] if QL_URL else ["sqlite", "postgres"])
def ql_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if request.param == "external":
        assert QL_URL is not None
        yield Server(QL_URL, "external")
        return
    dsn = request.getfixturevalue("postgres_dsn") if request.param == "postgres" else None
    tmp = tmp_path_factory.mktemp(f"ts-{request.param}")
    proc = start_timeseries(request.param, tmp, dsn)
    try:
        yield Server(proc.url, request.param, dsn, tmp / "ts.db", proc)
    finally:
        proc.stop(timeout=5)


@pytest.fixture
def embedded(ql_server: Server) -> Server:
    """For checks of flexmeter's own additions (metrics, raw values, storage): not run against QL_URL."""
    if ql_server.backend == "external":
        pytest.skip("flexmeter-specific behaviour; QL_URL points at a real QuantumLeap")
    return ql_server


@pytest.fixture
def tenant(ql_server: Server) -> Iterator[str]:
    service = "fmt" + uuid.uuid4().hex[:12]
    yield service
    if ql_server.backend == "postgres" and ql_server.dsn:
        drop_pg_tenant(ql_server.dsn, service)


@pytest.fixture
def ql(ql_server: Server, tenant: str) -> Iterator[QuantumLeapClient]:
    client = QuantumLeapClient(ql_server.url, FiwareHeaders(service=tenant, service_path="/"))
    yield client
    client.close()
