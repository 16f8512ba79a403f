"""The evaluation report: the same sections in Markdown (for a repository or a ticket) and in HTML with
the plots inline as SVG (one self-contained file)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Any

from flexmeter.evaluation.conformance import AreaResult
from flexmeter.evaluation.render import HOP_LABELS
from flexmeter.evaluation.svg import bar_chart, cdf, line_chart

SECTIONS = ("Summary", "Conformance per API area", "Throughput", "Latency", "Loss", "Resource use",
            "Conditions")


@dataclass
class ReportData:
    endpoints: dict[str, str]
    conformance: list[AreaResult]
    workload: dict[str, Any] | None
    generated: str
    failures: list[str] = field(default_factory=list)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def _v(value: Any, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:,.1f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def tables(data: ReportData) -> dict[str, list[list[str]]]:
    """Every table of the report as rows of cells (first row = header); both renderers use them."""
    w = data.workload or {}
    out: dict[str, list[list[str]]] = {}
    out["endpoints"] = [["component", "endpoint"]] + [[k, v] for k, v in data.endpoints.items()]
    out["conformance"] = [["API area", "passed", "failed", "errors", "skipped", "pass rate"]] + [
        [a.area, str(a.passed), str(a.count("failed")), str(a.count("error")), str(a.count("skipped")),
         _pct(a.rate)] for a in data.conformance]
    failing = [c for a in data.conformance for c in a.checks if c.outcome in ("failed", "error")]
    out["failures"] = [["API area", "check", "outcome", "message"]] + [
        [c.area, c.name, c.outcome, c.message.splitlines()[0][:200] if c.message else ""] for c in failing]
    if w:
        out["throughput"] = [["figure", "value"],
                             ["readings/s through every hop", _v(w["readings_per_s"])],
                             ["published readings/s", _v(w["publish_rate_per_s"])],
                             ["readings sent", _v(w["sent"])]]
        out["hops"] = [["hop", "count", "lost", "extra (redelivered)", "complete after", "readings/s"]] + [
            [h.get("label") or HOP_LABELS.get(h["hop"], h["hop"]), _v(h["count"]), _v(h["lost"]), _v(h.get("extra")),
             _v(h["complete_after_s"], "s"), _v(h.get("rate_per_s"))] for h in w["hops"]]
        out["loss"] = [["check", "value"], ["readings lost (sent - fewest at any hop)", _v(w["lost"])],
                       ["meters whose last value is not in the broker", _v(w["broker_meters_stale"])],
                       ["agent dead letters", _v(w["agent_dead_lettered"])],
                       ["agent retries", _v(w["agent_retried"])],
                       ["service rejections", _v(w["service_rejected"])],
                       ["verdict", "zero loss" if w["loss_ok"] else "LOSS"]]
        out["latency"] = [["emission →", "p50", "p95", "p99", "max", "samples", "method"]] + [
            [hop, _v(f["p50_ms"], "ms"), _v(f["p95_ms"], "ms"), _v(f["p99_ms"], "ms"), _v(f["max_ms"], "ms"),
             _v(f["samples"]), f["method"]] for hop, f in w["latency"].items()]
        r = w["resources"]
        out["resources"] = [["process", "CPU % (100 = one core)", "peak RSS MB"]] + [
            [p["name"], _v(p["cpu_percent"]), _v(p["rss_mb_peak"])] for p in r["processes"]] + [
            ["stack total", _v(r["stack_cpu_percent"]), ""],
            ["stack share of the machine", _v(r["stack_share_of_machine_percent"], "%"), ""],
            ["machine busy (everybody)", _v(r["machine_busy_percent"], "%"), ""]]
        out["conditions"] = [["condition", "value"]] + [[k, str(v)] for k, v in w["conditions"].items()]
    return out


def charts(data: ReportData) -> dict[str, str]:
    w = data.workload or {}
    out = {"conformance": bar_chart(
        [(a.area, 100 * a.rate if a.rate is not None else math.nan) for a in data.conformance],
        title="Conformance: pass rate per API area")}
    if w:
        hops = ("sent", "agent_forwarded", "broker", "service")
        out["throughput"] = line_chart(
            {HOP_LABELS[h]: [(p["t"], p[h]) for p in w["timeline"] if h in p] for h in hops},
            title="Readings counted at each hop", x_label="seconds since the first emission", y_label="readings")
        out["latency"] = line_chart(
            {f"to {hop}": [(x, y) for x, y in cdf(sample)] for hop, sample in w["latency_samples_ms"].items()},
            title="Latency from emission (cumulative distribution)", x_label="latency (ms)",
            y_label="% of readings")
        timeline = w["resources"]["cpu_timeline"]
        names = sorted({n for _, values in timeline for n in values})
        out["resources"] = line_chart(
            {n: [(t, v[n]) for t, v in timeline if n in v] for n in names},
            title="CPU per process", x_label="seconds since the workload started", y_label="CPU % (100 = one core)")
    return out


def _md_table(rows: list[list[str]]) -> str:
    if len(rows) <= 1:
        return "_none_\n"
    cells = [[c.replace("|", "\\|").replace("\n", " ") for c in row] for row in rows]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines) + "\n"


def _summary(data: ReportData) -> list[str]:
    w = data.workload
    passed = sum(a.passed for a in data.conformance)
    total = sum(a.total for a in data.conformance)
    lines = [f"Conformance: {passed} of {total} checks passed over {len(data.conformance)} API areas."]
    if w:
        lines.append(f"Pilot workload: {w['sent']:,} readings at {w['conditions']['target_rate_per_s']:g}/s for "
                     f"{w['conditions']['duration_s']:g} s; {_v(w['readings_per_s'])} readings/s through every "
                     f"hop; {'zero loss' if w['loss_ok'] else 'LOSS: ' + str(w['lost']) + ' readings'}; "
                     f"p95 emission → time series {_v(w['latency']['timeseries']['p95_ms'], 'ms')}, "
                     f"→ service {_v(w['latency']['service']['p95_ms'], 'ms')}; the stack used "
                     f"{_v(w['resources']['stack_share_of_machine_percent'], '%')} of the machine.")
    lines += data.failures
    return lines


def render_markdown(data: ReportData) -> str:
    t = tables(data)
    out = ["# FLEXMETER GE evaluation", "", f"Generated {data.generated}.", "", "## Summary", ""]
    out += [f"- {line}" for line in _summary(data)]
    out += ["", "Endpoints:", "", _md_table(t["endpoints"])]
    out += ["## Conformance per API area", "", _md_table(t["conformance"]), "Failed checks:", "",
            _md_table(t["failures"])]
    if "throughput" in t:
        out += ["## Throughput", "", _md_table(t["throughput"]), _md_table(t["hops"])]
        out += ["## Latency", "", _md_table(t["latency"])]
        out += ["## Loss", "", _md_table(t["loss"])]
        out += ["## Resource use", "", _md_table(t["resources"])]
        out += ["## Conditions", "", _md_table(t["conditions"])]
    else:
        for name in ("Throughput", "Latency", "Loss", "Resource use", "Conditions"):
            out += [f"## {name}", "", "_the workload did not run_", ""]
    out += ["The plots are in report.html."]
    return "\n".join(out) + "\n"


def _html_table(rows: list[list[str]]) -> str:
    if len(rows) <= 1:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:1.8em}
.ok{color:#2ca02c}.bad{color:#d62728}"""


def render_html(data: ReportData) -> str:
    t = tables(data)
    c = charts(data)
    parts = ['<!doctype html><html lang="en"><head><meta charset="utf-8">',
             f"<title>FLEXMETER GE evaluation</title><style>{STYLE}</style></head><body>",
             "<h1>FLEXMETER GE evaluation</h1>", f"<p>Generated {escape(data.generated)}.</p>",
             '<h2 id="summary">Summary</h2><ul>']
    parts += [f"<li>{escape(line)}</li>" for line in _summary(data)]
    parts += ["</ul>", _html_table(t["endpoints"])]
    parts += ['<h2 id="conformance">Conformance per API area</h2>', c["conformance"], _html_table(t["conformance"]),
              "<h3>Failed checks</h3>", _html_table(t["failures"])]
    sections = [("throughput", "Throughput", ["throughput", "hops"]), ("latency", "Latency", ["latency"]),
                ("loss", "Loss", ["loss"]), ("resources", "Resource use", ["resources"]),
                ("conditions", "Conditions", ["conditions"])]
    for anchor, title, keys in sections:
        parts.append(f'<h2 id="{anchor}">{title}</h2>')
        if anchor in c:
            parts.append(c[anchor])
        if all(k in t for k in keys):
            parts += [_html_table(t[k]) for k in keys]
        else:
            parts.append("<p><em>the workload did not run</em></p>")
    parts.append("</body></html>")
    return "\n".join(parts)
