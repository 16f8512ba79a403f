"""Conformance per API area: flexmeter's own contract tests run against the endpoints under evaluation.

The broker and time-series contract tests honour ``NGSI_URL`` / ``QL_URL`` (they qualify a real Orion or
QuantumLeap with the same assertions), so they are run with pytest in a child process, and the JUnit XML
is read back per area. The IoT Agent's tests start their own agents, so that area is a curated list of
checks in code (:mod:`flexmeter.evaluation.iota_checks`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flexmeter.evaluation.iota_checks import AREA as IOTA_AREA
from flexmeter.evaluation.iota_checks import CheckResult, run_iota_checks

REPO = Path(__file__).resolve().parents[2]

#: API area -> contract test files (relative to the checkout)
AREAS: dict[str, list[str]] = {
    "NGSI-v2 entities": ["tests/contextbroker/test_entities.py"],
    "NGSI-v2 batch operations": ["tests/contextbroker/test_batch.py"],
    "NGSI-v2 errors": ["tests/contextbroker/test_errors.py"],
    "NGSI-v2 query language (q, mq, orderBy)": [
        "tests/contextbroker/query/test_q_match.py", "tests/contextbroker/query/test_q_errors.py",
        "tests/contextbroker/query/test_mq.py", "tests/contextbroker/query/test_order.py"],
    "NGSI-v2 geo-queries": ["tests/contextbroker/query/test_geo.py"],
    "NGSI-v2 subscriptions": ["tests/contextbroker/subscriptions/test_api.py"],
    "NGSI-v2 registrations": ["tests/contextbroker/test_registrations.py"],
    "QuantumLeap API": ["tests/quantumleap/test_contract.py"],
    IOTA_AREA: [],
}


@dataclass
class AreaResult:
    area: str
    checks: list[CheckResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for c in self.checks if c.outcome == outcome)

    @property
    def passed(self) -> int:
        return self.count("passed")

    @property
    def total(self) -> int:
        return len(self.checks) - self.count("skipped")

    @property
    def rate(self) -> float | None:
        return None if self.total == 0 else self.passed / self.total


def _area_of(classname: str, files: dict[str, str]) -> str | None:
    module = classname.replace(".", "/")
    for path, area in files.items():
        if module == path.removesuffix(".py") or module.startswith(path.removesuffix(".py") + "/"):
            return area
    return None


def parse_junit(path: Path, files: dict[str, str]) -> list[CheckResult]:
    """Test cases of a JUnit XML, each attributed to the area of its file."""
    results = []
    for case in ET.parse(path).getroot().iter("testcase"):
        area = _area_of(case.get("classname", ""), files)
        if area is None:
            continue
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                message = (child.get("message") or child.text or "")[:500]
                break
        results.append(CheckResult(area, case.get("name", ""), outcome, message,
                                   float(case.get("time", 0) or 0)))
    return results


def run_conformance(*, ngsi_url: str, ql_url: str, iota_url: str, areas: list[str] | None = None,
                    on_area: Callable[[str], None] | None = None, timeout: float = 900.0) -> list[AreaResult]:
    """Run the selected areas (all by default); a missing checkout makes an area empty, not an error."""
    chosen = areas or list(AREAS)
    unknown = [a for a in chosen if a not in AREAS]
    if unknown:
        from flexmeter.evaluation.errors import EvaluationError

        raise EvaluationError(f"unknown conformance areas {unknown}; known: {list(AREAS)}")
    results = {area: AreaResult(area) for area in chosen}
    env = {**os.environ, "NGSI_URL": ngsi_url, "QL_URL": ql_url, "IOTA_URL": iota_url,
           "FLEXMETER_LOG_LEVEL": "WARNING"}
    for area in chosen:
        files = {f: area for f in AREAS[area] if (REPO / f).is_file()}
        if not files:
            continue
        if on_area:
            on_area(area)
        with tempfile.TemporaryDirectory(prefix="flexmeter-conformance-") as tmp:
            junit = Path(tmp) / "junit.xml"
            try:
                subprocess.run([sys.executable, "-m", "pytest", *files, "-q", "-p", "no:cacheprovider",
                                "-o", "junit_family=xunit2", f"--junitxml={junit}", "-o", "addopts="],
                               cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                results[area].checks.append(CheckResult(area, "(the area's tests)", "error",
                                                        f"timed out after {timeout:.0f} s"))
            if junit.is_file():
                results[area].checks.extend(parse_junit(junit, files))
    if IOTA_AREA in results:
        if on_area:
            on_area(IOTA_AREA)
        results[IOTA_AREA].checks.extend(run_iota_checks(iota_url))
    return list(results.values())
