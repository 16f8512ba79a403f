"""The ingest hot path in process: orjson parsing with its fallback, row builders per attribute set."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from flexmeter.quantumleap.errors import InvalidHeaderValue, Problem
from flexmeter.quantumleap.notify import parse_notification, to_rows
from flexmeter.quantumleap.store.base import MAX_PLANS_PER_BATCH
from flexmeter.quantumleap.store.sqlite import SqliteStore
from flexmeter.quantumleap.timeindex import parse_instant


def _stored(store: SqliteStore, table: str) -> dict[str, dict[str, Any]]:
    conn = sqlite3.connect(store.path)
    conn.row_factory = sqlite3.Row
    try:
        return {r["entity_id"]: dict(r) for r in conn.execute(f'SELECT * FROM "{table}"')}
    finally:
        conn.close()


def _ingest(store: SqliteStore, body: bytes, path: str | None = "/p") -> Any:
    rows, _ = to_rows(parse_notification(body), path, None)
    return store.insert("t", rows)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    opened = SqliteStore(tmp_path / "ts.db")
    yield opened
    opened.close()


def test_mixed_attribute_sets_and_orders_land_in_their_columns(store: SqliteStore) -> None:
    data = [
        {"id": "a", "type": "M", "TimeInstant": {"type": "DateTime", "value": "2024-01-01T00:00:00Z"},
         "p": {"type": "Number", "value": 1}, "q": {"type": "Integer", "value": "7"}},
        {"id": "b", "type": "M", "q": {"type": "Integer", "value": 8}, "p": {"type": "Number", "value": 2.5},
         "TimeInstant": {"type": "DateTime", "value": "2024-01-01T00:00:01Z"}},
        {"id": "c", "type": "M", "p": {"type": "Number", "value": "3.5"}, "on": {"type": "Boolean", "value": True},
         "TimeInstant": {"type": "DateTime", "value": "2024-01-01T00:00:02Z"}},
    ]
    result = _ingest(store, json.dumps({"data": data}).encode())
    assert result.rows == 3 and result.rejected == []
    rows = _stored(store, "mtt__etm")
    assert (rows["a"]["p"], rows["a"]["q"], rows["a"]["on"]) == (1.0, 7, None)
    assert (rows["b"]["p"], rows["b"]["q"], rows["b"]["on"]) == (2.5, 8, None)
    assert (rows["c"]["p"], rows["c"]["q"], rows["c"]["on"]) == (3.5, None, 1)
    assert rows["b"]["time_index"] == parse_instant("2024-01-01T00:00:01Z")
    assert {r["fiware_servicepath"] for r in rows.values()} == {"/p"}


def test_many_attribute_sets_take_the_general_path_with_the_same_result(store: SqliteStore) -> None:
    data = [{"id": f"e{n}", "type": "M", f"a{n}": {"type": "Number", "value": n}, "x": {"type": "Text", "value": n}}
            for n in range(MAX_PLANS_PER_BATCH + 2)]
    result = _ingest(store, json.dumps({"data": data}).encode())
    assert result.rows == len(data)
    rows = _stored(store, "mtt__etm")
    for n in range(len(data)):
        assert rows[f"e{n}"][f"a{n}"] == float(n)
        assert rows[f"e{n}"]["x"] == str(n)  # a number in a Text attribute is kept as its JSON text


def test_misfits_and_reserved_names_keep_the_entity_raw_and_the_rest_of_the_row(store: SqliteStore) -> None:
    good = {"id": "ok", "type": "M", "p": {"type": "Number", "value": 1}, "q": {"type": "Integer", "value": 2}}
    bad = {"id": "bad", "type": "M", "p": {"type": "Number", "value": "high"}, "q": {"type": "Integer", "value": 3}}
    reserved = {"id": "res", "type": "M", "p": {"type": "Number", "value": 4},
                "entity_id": {"type": "Text", "value": "x"}}
    result = _ingest(store, json.dumps({"data": [good, bad, reserved]}).encode())
    assert result.rows == 3
    assert sorted((r.entity_id, r.reason) for r in result.rejected) == [
        ("bad", "not_a_number"), ("res", "reserved_name")]
    rows = _stored(store, "mtt__etm")
    assert rows["ok"]["__original_ngsi_entity__"] is None
    assert (rows["bad"]["p"], rows["bad"]["q"]) == (None, 3)
    assert json.loads(rows["bad"]["__original_ngsi_entity__"]) == bad
    assert rows["res"]["p"] == 4.0 and json.loads(rows["res"]["__original_ngsi_entity__"]) == reserved


def test_what_orjson_refuses_but_json_accepts_is_still_ingested(store: SqliteStore) -> None:
    body = b'{"data": [{"id": "n", "type": "M", "p": {"type": "Number", "value": NaN},' \
           b' "big": {"type": "Number", "value": 123456789012345678901234567890}}]}'
    result = _ingest(store, body)
    assert result.rows == 1
    assert [r.reason for r in result.rejected] == ["not_a_number"]
    assert _stored(store, "mtt__etm")["n"]["big"] == pytest.approx(1.2345678901234568e29)


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[]", "is not of type 'object'"),
    (b'{"data": [{"id": "x"}]}', "'type' is a required property"),
    (b'{"data": [{"id": "", "type": "T"}]}', "'id' must be a non-empty string"),
])
def test_bad_bodies_are_problems(body: bytes, message: str) -> None:
    with pytest.raises(Problem, match=message):
        parse_notification(body)


def test_service_path_lists_give_one_path_per_entity() -> None:
    entities = [{"id": "a", "type": "T", "v": 1}, {"id": "b", "type": "T", "v": 2}]
    rows, empty = to_rows(entities, "/x, /y", None)
    assert [r.service_path for r in rows] == ["/x", "/y"] and empty == 0
    with pytest.raises(InvalidHeaderValue):
        to_rows(entities, "/x,/y,/z", None)
    rows, _ = to_rows(entities, " ", None)
    assert [r.service_path for r in rows] == ["/", "/"]
