"""Restart safety of the embedded broker: every 2xx was committed, so ``kill -9`` loses nothing."""

from __future__ import annotations

from pathlib import Path

from tests.contextbroker.conftest import Ngsi
from tests.support.processes import FlexmeterProcess


def start(db: Path) -> FlexmeterProcess:
    return FlexmeterProcess(["broker", "--port", "0", "--db", str(db)]).start()


def test_embedded_kill_9_then_restart_keeps_everything(tmp_path: Path) -> None:
    db = tmp_path / "broker.db"
    proc = start(db)
    try:
        iren = Ngsi(proc.url, "iren")
        eon = Ngsi(proc.url, "eon", "/malmo")
        for batch in range(5):
            entities = [
                {"id": f"M{batch}-{i}", "type": "Meter", "energy": {"value": batch * 100 + i}}
                for i in range(100)
            ]
            assert (
                iren.post("/v2/op/update", {"actionType": "append", "entities": entities}).status_code == 204
            )
        for i in range(20):
            eon.create({"id": f"S{i}", "type": "Substation", "p": {"value": i}})
        assert iren.patch("/v2/entities/M0-0/attrs", {"energy": {"value": -1}}).status_code == 204
        assert iren.delete("/v2/entities/M0-1").status_code == 204
        reg = iren.post(
            "/v2/registrations",
            {
                "dataProvided": {"entities": [{"id": "M0-2", "type": "Meter"}], "attrs": ["cmd"]},
                "provider": {"http": {"url": "http://127.0.0.1:9/v2"}},
            },
        )
        assert reg.status_code == 201
    finally:
        proc.kill()  # SIGKILL right after the last 2xx: no clean shutdown
    proc = start(db)
    try:
        iren = Ngsi(proc.url, "iren")
        eon = Ngsi(proc.url, "eon", "/malmo")
        total = iren.get("/v2/entities", params={"options": "count", "limit": 1})
        assert total.headers["Fiware-Total-Count"] == "499"
        assert iren.get("/v2/entities/M0-0").json()["energy"]["value"] == -1
        assert iren.get("/v2/entities/M0-1").status_code == 404
        assert iren.get("/v2/entities/M4-99").json()["energy"]["value"] == 499
        assert len(iren.get("/v2/registrations").json()) == 1
        substations = eon.get("/v2/entities", params={"limit": 100, "options": "keyValues"}).json()
        assert [e["p"] for e in substations] == list(range(20))
        assert Ngsi(proc.url, "eon", "/turin").get("/v2/entities").json() == []
        # the restarted broker keeps accepting writes on the recovered files
        assert iren.patch("/v2/entities/M0-0/attrs", {"energy": {"value": 5}}).status_code == 204
    finally:
        proc.stop()
