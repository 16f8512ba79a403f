"""The tables are the single source: builders' signatures, the docs and the unit list all agree with them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

import flexmeter.ngsi_models as nm
from flexmeter.ngsi_models import BUILDERS, UNITS, EntityTable, check_identifier, docs
from flexmeter.ngsi_models.table import Kind

#: builder keywords that are not table rows: the local id, and the observation time where no row takes it
NOT_ROWS = {"observed_at", "issued_at", "detected_at", "meter_type"}


@pytest.mark.parametrize(("table", "builder"), BUILDERS, ids=lambda x: getattr(x, "__name__", ""))
def test_builder_keywords_are_the_table_inputs(table: EntityTable, builder: Callable[..., Any]) -> None:
    parameters = list(inspect.signature(builder).parameters.values())
    local_id, keywords = parameters[0], parameters[1:]
    assert local_id.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in keywords)
    names = {p.name for p in keywords}
    params = set(table.params)
    assert params - names <= {"meter_type"}, "rows without a builder keyword"  # Heat: meterType is fixed
    assert names - params <= NOT_ROWS, "builder keywords without a row"


@pytest.mark.parametrize("table", nm.TABLES, ids=lambda t: t.entity_type)
def test_rows_are_well_formed(table: EntityTable) -> None:
    check_identifier(table.entity_type)
    attributes = [row.attribute for row in table.rows]
    assert len(attributes) == len(set(attributes)), "duplicate attribute"
    for row in table.rows:
        check_identifier(row.attribute)
        assert row.unit is None or row.unit in UNITS, row.unit
        assert (row.kind is Kind.ENUM or row.kind is Kind.ENUM_LIST) == bool(row.enum), row.attribute
        assert (row.kind in (Kind.PHASES, Kind.PHASE_FLAGS)) == bool(row.keys), row.attribute
        if row.kind in (Kind.NUMBER, Kind.PHASES) and not row.unit and not row.unit_note:
            assert row.attribute in {"pulseCount"}, f"{row.attribute}: a measured number needs a unit"


def test_docs_are_generated_from_the_tables() -> None:
    text = docs.DOC.read_text(encoding="utf-8")
    assert docs.updated(text) == text, "docs/data-models.md is stale: run python -m flexmeter.ngsi_models.docs"
    for table in nm.TABLES:
        assert f"### {table.entity_type}" in text
        for row in table.rows:
            assert f"`{row.attribute}`" in text


def test_docs_check_command_reports_staleness(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "data-models.md"
    stale.write_text(f"intro\n{docs.BEGIN}\nold table\n{docs.END}\nend\n", encoding="utf-8")
    monkeypatch.setattr(docs, "DOC", stale)
    assert docs.main(["--check"]) == 1
    assert docs.main([]) == 0
    assert docs.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8").startswith("intro\n") and "old table" not in stale.read_text()
