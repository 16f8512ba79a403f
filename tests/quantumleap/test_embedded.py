"""flexmeter's own guarantees beyond QuantumLeap: nothing dropped, counted, durable, QuantumLeap's PG layout."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import psycopg

from flexmeter.ngsi.headers import FiwareHeaders
from flexmeter.ngsi.quantumleap import QuantumLeapClient
from tests.quantumleap.conftest import Server, drop_pg_tenant, start_timeseries
from tests.quantumleap.helpers import meter


def metric(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def original_entities(server: Server, tenant: str, table: str) -> list[dict[str, object]]:
    if server.backend == "postgres":
        assert server.dsn
        with psycopg.connect(server.dsn) as conn:
            rows = conn.execute(f'SELECT __original_ngsi_entity__ FROM "mt{tenant}"."et{table}" '
                                "WHERE __original_ngsi_entity__ IS NOT NULL").fetchall()
        return [r[0] for r in rows]
    assert server.db
    with sqlite3.connect(f"file:{server.db}?mode=ro", uri=True) as conn:
        rows = conn.execute(f'SELECT __original_ngsi_entity__ FROM "mt{tenant}__et{table}" '
                            "WHERE __original_ngsi_entity__ IS NOT NULL").fetchall()
    return [json.loads(r[0]) for r in rows]


def test_misfit_value_is_kept_raw_counted_and_never_drops_the_rest(
        embedded: Server, ql: QuantumLeapClient, tenant: str) -> None:
    before = ql.metrics()
    ql.notify([meter("ok1", "2024-03-01T00:00:00Z", power=1.0)])
    ql.notify([meter("bad", "2024-03-01T00:01:00Z", power="n/a", voltage=230),
               meter("ok1", "2024-03-01T00:01:00Z", power=2.0)])
    assert ql.entity_attr("ok1", "power")["values"] == [1.0, 2.0]
    bad = {a["attrName"]: a["values"] for a in ql.entity("bad")["attributes"]}
    assert bad["power"] == [None] and bad["voltage"] == [230.0]
    kept = original_entities(embedded, tenant, "meter")
    assert [e["power"]["value"] for e in kept] == ["n/a"]  # type: ignore[index]
    after = ql.metrics()
    name = "ql_rejected_values_total"
    assert metric(after, name, '{reason="not_a_number"}') == metric(before, name, '{reason="not_a_number"}') + 1
    assert metric(after, "ql_rows_written_total") == metric(before, "ql_rows_written_total") + 3
    assert metric(after, "ql_notifications_total", '{outcome="ok"}') >= 2


def test_large_notification_is_one_row_per_entity(embedded: Server, ql: QuantumLeapClient) -> None:
    ql.notify([meter(f"big{i:04d}", "2024-03-01T00:00:00Z", power=i) for i in range(1000)])
    listing = ql.entities(type="Meter")
    assert len(listing) == 1000
    assert ql.type_attr("Meter", "power", aggr_method="sum")["entities"][5]["values"] == [5.0]


def test_answered_notification_survives_kill(tmp_path: Path) -> None:
    proc = start_timeseries("sqlite", tmp_path, None)
    headers = FiwareHeaders(service="durable", service_path="/")
    try:
        with QuantumLeapClient(proc.url, headers) as ql:
            ql.notify([meter(f"k{i}", "2024-03-01T00:00:00Z", power=i) for i in range(50)])
    finally:
        proc.kill()
    proc = start_timeseries("sqlite", tmp_path, None)
    try:
        with QuantumLeapClient(proc.url, headers) as ql:
            assert len(ql.entities()) == 50
    finally:
        proc.stop(timeout=5)


def test_postgres_uses_quantumleap_layout_and_survives_restart(postgres_dsn: str, tmp_path: Path) -> None:
    tenant = "fmtlayout" + str(tmp_path.stat().st_ino)
    headers = FiwareHeaders(service=tenant, service_path="/pilot")
    try:
        proc = start_timeseries("postgres", tmp_path, postgres_dsn)
        try:
            with QuantumLeapClient(proc.url, headers) as ql:
                ql.notify([meter("urn:m:1", "2024-03-01T00:00:00Z", entity_type="ThreePhaseAcMeasurement",
                                 totalActiveEnergyImport=12.5, phase="L1")])
        finally:
            proc.stop(timeout=5)  # see serving.py: a SIGTERM during a socket event can be swallowed
        with psycopg.connect(postgres_dsn) as conn:
            columns = dict(conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'etthreephaseacmeasurement'", [f"mt{tenant}"]).fetchall())
            assert {"entity_id", "entity_type", "time_index", "fiware_servicepath", "__original_ngsi_entity__",
                    "instanceid"} <= set(columns)
            assert columns["totalactiveenergyimport"] == "double precision" and columns["phase"] == "text"
            assert columns["time_index"] == "timestamp with time zone"
            attrs = conn.execute("SELECT entity_attrs FROM md_ets_metadata WHERE table_name = %s",
                                 [f'"mt{tenant}"."etthreephaseacmeasurement"']).fetchone()
            assert attrs is not None
            assert attrs[0]["totalactiveenergyimport"] == ["totalActiveEnergyImport", "Number"]
            row = conn.execute(f'SELECT entity_id, fiware_servicepath FROM "mt{tenant}".etthreephaseacmeasurement'
                               ).fetchone()
            assert row == ("urn:m:1", "/pilot")
        proc = start_timeseries("postgres", tmp_path, postgres_dsn)
        try:
            with QuantumLeapClient(proc.url, headers) as ql:
                body = ql.entity("urn:m:1")
                assert body["entityType"] == "ThreePhaseAcMeasurement"
                assert [a["attrName"] for a in body["attributes"]] == ["TimeInstant", "phase",
                                                                       "totalActiveEnergyImport"]
                ql.notify([meter("urn:m:1", "2024-03-01T00:10:00Z", entity_type="ThreePhaseAcMeasurement",
                                 totalActiveEnergyImport=13)])
                assert ql.entity_attr("urn:m:1", "totalActiveEnergyImport")["values"] == [12.5, 13.0]
        finally:
            proc.stop(timeout=5)  # see serving.py: a SIGTERM during a socket event can be swallowed
    finally:
        drop_pg_tenant(postgres_dsn, tenant)


def test_concurrent_notifications_are_all_committed(embedded: Server, ql: QuantumLeapClient) -> None:
    """Group commit: every notification answered 200 is stored exactly once, whatever the interleaving."""
    from concurrent.futures import ThreadPoolExecutor

    def send(worker: int) -> None:
        with QuantumLeapClient(ql.base_url, ql.headers) as client:
            for n in range(40):
                client.notify([meter(f"c{worker}", f"2024-03-01T00:{n // 60:02d}:{n % 60:02d}Z", power=n)])

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(send, range(6)))
    counts = ql.type_attr("Meter", "power", aggr_method="count")["entities"]
    assert [(e["entityId"], e["values"]) for e in counts] == [(f"c{w}", [40]) for w in range(6)]
