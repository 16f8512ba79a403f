"""The query benchmark runs and reports named figures (no timing assertions: figures are noisy)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from flexmeter.cli import app


def test_bench_query_json() -> None:
    result = CliRunner().invoke(app, ["bench", "query", "--json", "--duration", "0.01", "--entities", "200"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["benchmark"] == "query"
    assert data["conditions"]["entities"] == 200
    names = [f["name"] for f in data["figures"]]
    assert "q=temperature>20" in names
    assert "georel=near;maxDistance:5000&geometry=point" in names
    for figure in data["figures"]:
        assert figure["value"] >= 0 and figure["unit"]
    matched = {f["name"]: f.get("matched") for f in data["figures"]}
    assert 0 < matched["q=temperature>20"] < 200
    assert matched["q=observed>2024-01-01T00:00:00Z"] == 200
