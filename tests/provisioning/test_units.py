"""The pure parts: line tracking, key references, templates, the subset comparison."""

from __future__ import annotations

from pathlib import Path

import pytest

from flexmeter.provisioning.errors import SecretError
from flexmeter.provisioning.plan import subset_diff
from flexmeter.provisioning.secrets import digest, resolve
from flexmeter.provisioning.source import line_of, load_yaml
from flexmeter.provisioning.subscriptions import load_subscription, orion_config_dir, render_template


def test_line_of_follows_keys_and_items(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a:\n  b:\n    - 1\n    - {c: 2,\n       d: 3}\n")
    document = load_yaml(path)
    assert line_of(document, ("a", "b", 1, "d")) == 5
    assert line_of(document, ("a", "b", 0)) == 3
    assert line_of(document, ("a", "b", 7, "x")) == 3  # the deepest known: where b's list starts


def test_key_references_resolve_without_showing_values(tmp_path: Path) -> None:
    (tmp_path / "one.key").write_text("  CAFE  \n")
    (tmp_path / "many.keys").write_text("# comment\nM-1=AAAA\nM-2 BBBB\n")
    assert resolve("file:one.key", tmp_path) == "CAFE"
    assert resolve("file:many.keys#M-2", tmp_path) == "BBBB"
    assert resolve("env:K", tmp_path, {"K": "DDDD"}) == "DDDD"
    with pytest.raises(SecretError, match="no entry 'M-3'") as missing:
        resolve("file:many.keys#M-3", tmp_path)
    assert "AAAA" not in str(missing.value)
    with pytest.raises(SecretError, match="K is not set"):
        resolve("env:K", tmp_path, {})
    assert digest("CAFE") != digest("CAFF") and "CAFE" not in digest("CAFE")


def test_templates_fill_placeholders_and_leave_regex_dollars() -> None:
    body = render_template('{"a": "${QL_URL}/v2/notify", "p": "^(A|B)$"}', QL_URL="http://ql:8668")
    assert body == {"a": "http://ql:8668/v2/notify", "p": "^(A|B)$"}
    with pytest.raises(KeyError):
        render_template('{"a": "${NOPE}"}')
    shipped = load_subscription(orion_config_dir() / "subscriptions" / "timeseries.json", QL_URL="http://q")
    assert shipped["notification"]["http"]["url"] == "http://q/v2/notify"


def test_subset_diff_compares_only_what_is_declared() -> None:
    wanted = {"name": {"type": "Text", "value": "x"}, "tags": [], "n": {"value": 2}}
    remote = {"name": {"type": "Text", "value": "x", "metadata": {}}, "n": {"value": 2.0}, "extra": 1}
    assert subset_diff(wanted, remote) == []
    changed = subset_diff(wanted, {**remote, "n": {"value": 3}})
    assert [(d.field, d.remote, d.wanted) for d in changed] == [("n.value", 3, 2)]
    assert subset_diff({"l": [1, 2]}, {"l": [2, 1]})[0].field == "l"
    assert subset_diff({"b": True}, {"b": 1})  # a boolean is not a number
