"""`flexmeter deadletters`: the operator's view of an agent's dead letters, read-only from its outbox.db
(real SQLite file, the command run as a process), in particular those no tenant owns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from flexmeter.iot_agents.core.outbox import NewDeadLetter, Outbox


def flexmeter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flexmeter", *args], capture_output=True, text=True, timeout=60)


def test_lists_counts_and_exports_unattributed_dead_letters(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")  # left open: the agent is running
    outbox.put([], [
        NewDeadLetter("json", "WRONG_SYNTAX", "not JSON", b"{x", {"params": {"apikey": "k1"}}, "iren", "/turin"),
        NewDeadLetter("dlms", "DEVICE_GROUP_NOT_FOUND", "no group with apikey nobody", b"\xdb\x08STI",
                      {"params": {"apikey": "nobody"}}),
        NewDeadLetter("json", "DEVICE_GROUP_NOT_FOUND", "no group with apikey typo", b'{"t": 21}',
                      {"params": {"apikey": "typo"}}),
    ])
    data_dir = str(tmp_path)

    exported = flexmeter("deadletters", "--data-dir", data_dir, "--unattributed", "--json", "--limit", "0")
    assert exported.returncode == 0, exported.stderr
    body = json.loads(exported.stdout)
    assert body["count"] == 2
    first, second = body["deadLetters"]
    assert (first["family"], first["error"], first["raw"]) == ("dlms", "DEVICE_GROUP_NOT_FOUND", {"hex": "db08535449"})
    assert first["service"] is None and first["context"]["params"]["apikey"] == "nobody"
    assert second["raw"] == '{"t": 21}' and second["reason"] == "no group with apikey typo"

    counted = flexmeter("deadletters", "--data-dir", data_dir, "--unattributed", "--count")
    assert counted.returncode == 0 and counted.stdout.strip() == "2", counted.stderr
    everyone = json.loads(flexmeter("deadletters", "--data-dir", data_dir, "--count", "--json").stdout)
    assert everyone == {"count": 3}
    tenant = json.loads(flexmeter("deadletters", "--data-dir", data_dir, "--service", "iren", "--json").stdout)
    assert tenant["count"] == 1 and tenant["deadLetters"][0]["servicePath"] == "/turin"

    page = flexmeter("deadletters", "--data-dir", data_dir, "--limit", "1", "--offset", "1")
    (line,) = page.stdout.splitlines()
    assert "dlms  DEVICE_GROUP_NOT_FOUND  (unattributed)  no group with apikey nobody" in line
    assert "1 of 3 dead letter(s) from offset 1" in page.stderr
    outbox.close()
    assert flexmeter("deadletters", "--data-dir", data_dir, "--count").stdout.strip() == "3"  # agent stopped


def test_missing_outbox_is_an_error(tmp_path: Path) -> None:
    result = flexmeter("deadletters", "--data-dir", str(tmp_path / "nowhere"), "--json")
    assert result.returncode == 2 and result.stdout == ""
    assert "no outbox at" in result.stderr
    assert not (tmp_path / "nowhere").exists()  # read-only: nothing created
