"""How a benchmark prints its report: one JSON object with ``--json``, else conditions then figures.

A report is ``{"conditions": {...}, "figures": {name: {"value", "unit", "target"?}}}``.
"""

from __future__ import annotations

import json
from typing import Any


def print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report))
        return
    for key, value in report["conditions"].items():
        print(f"  {key}: {value}")
    for name, figure in report["figures"].items():
        target = f"  (target {figure['target']})" if "target" in figure else ""
        print(f"{name}: {figure['value']} {figure['unit']}{target}")
