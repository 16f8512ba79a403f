"""`flexmeter evaluate`: conformance of the endpoints per API area, then the pilot workload through them,
then report.md / report.html (plots) / report.json in ``--out``. A progress bar on stderr."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flexmeter.evaluation.conformance import AREAS, run_conformance
from flexmeter.evaluation.e2e import E2EOptions, run_e2e
from flexmeter.evaluation.errors import EvaluationError
from flexmeter.evaluation.report import ReportData, render_html, render_markdown
from flexmeter.evaluation.stack import EmbeddedStack


@dataclass
class EvaluateOptions:
    out: Path
    ngsi_url: str | None = None
    ql_url: str | None = None
    iota_url: str | None = None
    duration: float = 20.0
    rate: float = 600.0
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    host: str = "127.0.0.1"
    areas: list[str] | None = None
    progress: bool = True


class _Bar:
    """A rich progress bar on stderr (or nothing)."""

    def __init__(self, enabled: bool) -> None:
        self.progress: Any = None
        self.task: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description:<48}"), BarColumn(),
                                     TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                                     console=Console(stderr=True), transient=False)

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
            self.task = self.progress.add_task("evaluation", total=100)
        return self

    def update(self, description: str, fraction: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=description, completed=max(0.0, min(100.0, 100 * fraction)))

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def run_evaluation(options: EvaluateOptions) -> list[Path]:
    options.out.mkdir(parents=True, exist_ok=True)
    areas = options.areas or list(AREAS)
    stack = EmbeddedStack(mqtt_url=options.mqtt_url, ngsi_url=options.ngsi_url, ql_url=options.ql_url,
                          iota_url=options.iota_url, host=options.host)
    failures: list[str] = []
    with _Bar(options.progress) as bar:
        bar.update("starting the components not given", 0.0)
        endpoints = stack.start()
        try:
            done = [0]

            def on_area(area: str) -> None:
                bar.update(f"conformance: {area}", 0.05 + 0.45 * done[0] / len(areas))
                done[0] += 1

            conformance = run_conformance(ngsi_url=endpoints.ngsi_url, ql_url=endpoints.ql_url,
                                          iota_url=endpoints.iota_url, areas=areas, on_area=on_area)
            workload: dict[str, Any] | None = None

            def on_workload(phase: str, fraction: float) -> None:
                bar.update(f"pilot workload: {phase}", 0.5 + 0.45 * fraction)

            try:
                workload = run_e2e(E2EOptions(duration=options.duration, rate=options.rate,
                                              mqtt_url=options.mqtt_url, host=options.host, receiver="all"),
                                   progress=on_workload, endpoints=endpoints)
            except (EvaluationError, TimeoutError, OSError) as exc:
                failures.append(f"The pilot workload failed: {exc}")
        finally:
            stack.stop()
        bar.update("writing the report", 0.97)
        data = ReportData(
            endpoints={"NGSI-v2 broker": endpoints.ngsi_url + ("" if options.ngsi_url else " (embedded)"),
                       "time series": endpoints.ql_url + ("" if options.ql_url else " (embedded)"),
                       "IoT Agent north": endpoints.iota_url + ("" if options.iota_url else " (embedded)"),
                       "service": endpoints.service_url + " (embedded)", "MQTT": options.mqtt_url},
            conformance=conformance, workload=workload, failures=failures,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
        paths = [options.out / "report.md", options.out / "report.html", options.out / "report.json"]
        paths[0].write_text(render_markdown(data), encoding="utf-8")
        paths[1].write_text(render_html(data), encoding="utf-8")
        paths[2].write_text(json.dumps({
            "endpoints": data.endpoints, "generated": data.generated, "failures": failures,
            "conformance": [{"area": a.area, "passed": a.passed, "total": a.total,
                             "checks": [asdict(c) for c in a.checks]} for a in conformance],
            "workload": workload}, indent=1), encoding="utf-8")
        bar.update("done", 1.0)
    return paths
