"""The benchmark's table on the terminal (plain text, so it reads the same in a log)."""

from __future__ import annotations

from typing import Any

from flexmeter.evaluation.e2e import HOP_LABELS


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def e2e_table(result: dict[str, Any]) -> str:
    lines = []
    verdict = "ZERO LOSS" if result["loss_ok"] else f"LOSS: {result['lost']} readings"
    lines.append(f"end to end: {_fmt(result['readings_per_s'])} readings/s through every hop "
                 f"(published at {_fmt(result['publish_rate_per_s'])}/s); {verdict}")
    lines.append("")
    lines.append(f"{'hop':<38}{'count':>10}{'lost':>8}{'extra':>8}{'complete after':>16}{'readings/s':>12}")
    for hop in result["hops"]:
        done = hop["complete_after_s"]
        lines.append(f"{hop.get('label') or HOP_LABELS.get(hop['hop'], hop['hop']):<38}{_fmt(hop['count']):>10}"
                     f"{_fmt(hop['lost']):>8}{_fmt(hop.get('extra')):>8}"
                     f"{'' if done is None else f'{done:.1f} s':>16}{_fmt(hop.get('rate_per_s')):>12}")
    lines.append(f"{'broker: meters not at their last value':<38}{_fmt(result['broker_meters_stale']):>10}")
    lines.append("(extra: redelivered at least once by MQTT QoS 1, deduplicated further on)")
    lines.append("")
    lines.append(f"{'latency from emission':<28}{'p50':>13}{'p95':>13}{'p99':>13}{'max':>13}{'samples':>10}")
    for hop, figures in result["latency"].items():
        lines.append(f"{'to ' + hop:<28}" + "".join(
            f"{_fmt(figures[k]) + (' ms' if figures[k] is not None else ''):>13}"
            for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")) + f"{_fmt(figures['samples']):>10}")
    lines.append("")
    resources = result["resources"]
    lines.append(f"{'process':<28}{'CPU %':>10}{'RSS MB':>10}")
    for proc in resources["processes"]:
        lines.append(f"{proc['name']:<28}{proc['cpu_percent']:>10.1f}{proc['rss_mb_peak']:>10.1f}")
    lines.append(f"{'stack (100 % = one core)':<28}{resources['stack_cpu_percent']:>10.1f}")
    lines.append(f"stack share of the machine: {resources['stack_share_of_machine_percent']:.1f} % "
                 f"(machine busy, everybody: {resources['machine_busy_percent']:.1f} %)")
    lines.append("")
    lines.append("conditions:")
    for key, value in result["conditions"].items():
        lines.append(f"  {key}: {value}")
    for hop, figures in result["latency"].items():
        lines.append(f"  latency to {hop}: {figures['method']}")
    return "\n".join(lines)
