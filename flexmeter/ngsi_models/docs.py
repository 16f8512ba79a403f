"""Render the entity tables into docs/data-models.md, so that the documentation cannot drift from the code.

``python -m flexmeter.ngsi_models.docs`` rewrites the generated part of docs/data-models.md (between the
``BEGIN``/``END GENERATED`` markers); ``--check`` exits 1 when the file is out of date (a test does this).
"""

from __future__ import annotations

import sys
from pathlib import Path

from flexmeter.ngsi_models import BUILDERS, UNITS
from flexmeter.ngsi_models.table import EntityTable, Kind, Row

BEGIN = "<!-- BEGIN GENERATED: python -m flexmeter.ngsi_models.docs -->"
END = "<!-- END GENERATED -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "data-models.md"


def _range(row: Row) -> str:
    parts = []
    if row.minimum is not None:
        parts.append(f"≥ {row.minimum}")
    if row.maximum is not None:
        parts.append(f"≤ {row.maximum}")
    if row.enum:
        parts.append(" \\| ".join(f"`{e}`" for e in row.enum) if len(row.enum) <= 6 else f"enum ({len(row.enum)})")
    if row.keys and row.kind in (Kind.PHASES, Kind.PHASE_FLAGS):
        parts.append("keys " + "/".join(row.keys))
    return ", ".join(parts)


def render_table(table: EntityTable) -> str:
    origin = f"Smart Data Model `{table.sdm_model}`" if table.sdm_model else "project-own type"
    lines = [
        f"### {table.entity_type}",
        "",
        f"{table.summary} Follows: {origin}; id `urn:ngsi-ld:{table.entity_type}:<id>`.",
        "",
        "| source quantity | attribute | NGSI type | unitCode | builder keyword | range / values | origin |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table.rows:
        unit = row.unit_note or (f"{row.unit} ({UNITS[row.unit].symbol})" if row.unit else "")
        origin_cell = "extension" if row.extension or table.sdm_model is None else "SDM"
        required = " (required)" if row.required else ""
        lines.append(
            f"| {row.quantity} | `{row.attribute}`{required} | {row.ngsi_type} | {unit} | `{row.param}` "
            f"| {_range(row)} | {origin_cell} |"
        )
    if table.time_instant:
        lines.append(
            "| observation time | `TimeInstant` | DateTime |  | `observed_at` (or the period end) |  | "
            "FIWARE convention |"
        )
    lines.append("")
    lines.extend(f"- {note}" for note in table.notes)
    if table.notes:
        lines.append("")
    return "\n".join(lines)


def render_units() -> str:
    lines = ["### Unit codes", "", "| unitCode | symbol | name |", "|---|---|---|"]
    lines.extend(f"| {u.code} | {u.symbol} | {u.name} |" for u in UNITS.values())
    return "\n".join(lines) + "\n"


def render() -> str:
    body = "\n".join(render_table(table) for table, _ in BUILDERS)
    return f"{BEGIN}\n\n{body}\n{render_units()}\n{END}"


def updated(text: str) -> str:
    """``text`` with its generated part replaced by the current rendering."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + render() + text[end:]


def main(argv: list[str]) -> int:
    current = DOC.read_text(encoding="utf-8")
    fresh = updated(current)
    if "--check" in argv:
        if fresh != current:
            print(f"{DOC} is out of date: run python -m flexmeter.ngsi_models.docs", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
