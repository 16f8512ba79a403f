"""The outbox's own contract: tenant of every dead letter, an earlier outbox.db upgraded, deletes by id runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flexmeter.iot_agents.core.outbox import DeadLetter, NewDeadLetter, NewRow, Outbox


def test_dead_letters_keep_their_tenant_and_a_refused_update_gets_its_rows(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.put([NewRow("city", "/north", '{"id":"E1","type":"T"}', "json", 1.0)], [
        NewDeadLetter("json", "WRONG_SYNTAX", "bad", b"{", {}, "city", "/north"),
        NewDeadLetter("json", "WRONG_SYNTAX", "bad", b"[", {}, "city", "/south"),
        NewDeadLetter("json", "DEVICE_GROUP_NOT_FOUND", "no group", b"{}", {}),
    ])
    (row,) = outbox.peek(10)
    outbox.to_dead_letter(row, "NGSI_400", "the broker refuses it")
    count, north = outbox.tenant_dead_letters("city", "/north")
    assert count == 2 and [d.error for d in north] == ["WRONG_SYNTAX", "NGSI_400"]
    assert north[1].raw == b'{"id":"E1","type":"T"}' and north[1].context["stage"] == "forward"
    assert outbox.tenant_dead_letters("city", None)[0] == 3  # every path of the service
    assert outbox.tenant_dead_letters("town", None) == (0, [])
    count, page = outbox.tenant_dead_letters("city", None, limit=1, offset=2)
    assert count == 3 and [d.raw for d in page] == [b'{"id":"E1","type":"T"}']
    assert outbox.unattributed_count() == 1 and outbox.dead_count() == 4
    outbox.close()


def test_an_earlier_outbox_db_is_upgraded_and_its_letters_stay_unattributed(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, "
                   "family TEXT NOT NULL, error TEXT NOT NULL, reason TEXT NOT NULL, raw BLOB NOT NULL, "
                   "context TEXT NOT NULL)")
        db.execute("INSERT INTO dead_letters (at, family, error, reason, raw, context) VALUES "
                   "(1, 'json', 'WRONG_SYNTAX', 'old', x'00', '{}')")
    outbox = Outbox(path)
    assert outbox.unattributed_count() == 1 and outbox.tenant_dead_letters("city", None)[0] == 0
    outbox.put([], [NewDeadLetter("json", "WRONG_SYNTAX", "new", b"{", {}, "city", "/")])
    assert [d.reason for d in outbox.tenant_dead_letters("city", "/")[1]] == ["new"]
    outbox.close()


def test_delete_takes_exactly_the_ids_given_and_peek_reads_after_an_id(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.put([NewRow("s", "/", f'{{"id":"E{i}","type":"T"}}', "json", float(i)) for i in range(10)])
    ids = [r.id for r in outbox.peek(100)]
    outbox.delete([ids[7], ids[0], ids[1], ids[2], ids[5], ids[2]])  # unordered, runs, a duplicate
    assert [r.id for r in outbox.peek(100)] == [ids[3], ids[4], ids[6], ids[8], ids[9]]
    assert [r.id for r in outbox.peek(2, after=ids[4])] == [ids[6], ids[8]]
    outbox.close()


def test_a_dead_letter_shows_text_as_text_and_binary_as_hex() -> None:
    def shown(raw: bytes) -> object:
        return DeadLetter(1, 0.0, "dlms", "reason", "WRONG_SYNTAX", raw, {}).as_json()["raw"]

    assert shown(b'{"device": "E350-1",\n "v": "\xc3\xa9"}') == '{"device": "E350-1",\n "v": "\u00e9"}'
    assert shown(b"0F000102\r\n") == "0F000102\r\n"  # hex lines are text
    assert shown(b"\x0f\x00\x01\x02") == {"hex": "0f000102"}  # valid UTF-8, but a binary frame
    assert shown(b"\xdb\x08") == {"hex": "db08"}  # not UTF-8
