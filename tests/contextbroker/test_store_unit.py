"""Unit tests of the embedded store: atomic batches, reopen from disk, TTL purge, change order."""

from __future__ import annotations

from pathlib import Path

import pytest

from flexmeter.contextbroker import operations
from flexmeter.contextbroker.model import EntityChange, StoredAttr
from flexmeter.contextbroker.store import Store, TenantStore


def attr(value: object, now: float = 1.0) -> StoredAttr:
    return {"type": "Number", "value": value, "metadata": {}, "creDate": now, "modDate": now}


def create(store: TenantStore, entity_id: str, expires: float | None = None, **attrs: object) -> None:
    with store.write() as txn:
        operations.create(
            txn,
            service="t",
            service_path="/",
            entity_id=entity_id,
            entity_type="T",
            attrs={k: attr(v) for k, v in attrs.items()},
            expires=expires,
            now=1.0,
            correlator="c",
        )


def test_reopen_keeps_entities_in_creation_order(tmp_path: Path) -> None:
    store = TenantStore(tmp_path / "t.db", "t")
    for name in ("b", "a", "c"):
        create(store, name, x=1)
    with store.write() as txn:
        entity = txn.get(("a", "T", "/"))
        assert entity is not None
        operations.update(txn, entity, {"x": attr(2, 2.0)}, mode="update", service="t", now=2.0, correlator="c")
    store.close()
    reopened = TenantStore(tmp_path / "t.db", "t")
    assert [e["id"] for e in reopened.snapshot()] == ["b", "a", "c"]
    assert reopened.by_id("a")[0]["attrs"]["x"]["value"] == 2


def test_failed_block_writes_nothing(tmp_path: Path) -> None:
    store = TenantStore(tmp_path / "t.db", "t")
    with pytest.raises(RuntimeError), store.write() as txn:
        operations.create(
            txn,
            service="t",
            service_path="/",
            entity_id="E",
            entity_type="T",
            attrs={},
            expires=None,
            now=1.0,
            correlator="c",
        )
        raise RuntimeError("validation failed half-way")
    assert store.snapshot() == []
    store.close()
    assert TenantStore(tmp_path / "t.db", "t").snapshot() == []


def test_changes_reach_listener_in_commit_order(tmp_path: Path) -> None:
    seen: list[EntityChange] = []
    store = Store(tmp_path / "b.db", listener=seen.extend)
    tenant = store.tenant("iren")
    create(tenant, "E", x=1)
    with tenant.write() as txn:
        entity = txn.get(("E", "T", "/"))
        assert entity is not None
        operations.update(
            txn, entity, {"x": attr(1, 2.0), "y": attr(5, 2.0)}, mode="append", service="iren", now=2.0, correlator="c"
        )
    with tenant.write() as txn:
        entity = txn.get(("E", "T", "/"))
        assert entity is not None
        operations.update(txn, entity, {"x": attr(1, 3.0)}, mode="update", service="iren", now=3.0, correlator="c")
    with tenant.write() as txn:
        entity = txn.get(("E", "T", "/"))
        assert entity is not None
        operations.delete_attrs(txn, entity, ["y"], service="iren", now=4.0, correlator="c")
    assert [c.alteration for c in seen] == ["entityCreate", "entityChange", "entityUpdate", "entityChange"]
    assert seen[1].updated_attrs == {"x", "y"} and seen[1].changed_attrs == {"y"}
    assert seen[1].previous is not None and "y" not in seen[1].previous["attrs"]
    assert seen[2].changed_attrs == frozenset()
    assert seen[3].deleted_attrs == {"y"} and "y" not in seen[3].entity["attrs"]
    store.close()


def test_purge_expired(tmp_path: Path) -> None:
    store = TenantStore(tmp_path / "t.db", "t")
    create(store, "old", expires=10.0)
    create(store, "young", expires=1e12)
    create(store, "forever")
    assert store.purge_expired(now=100.0) == 1
    assert sorted(e["id"] for e in store.snapshot()) == ["forever", "young"]
    store.close()
    assert sorted(e["id"] for e in TenantStore(tmp_path / "t.db", "t").snapshot()) == ["forever", "young"]
