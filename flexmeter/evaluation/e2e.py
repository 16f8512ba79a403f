"""`flexmeter bench e2e`: meters → MQTT → agent → broker → time series and service, counted at every hop.

The run: start the embedded stack (or use the given endpoints), provision a Connode fleet under a fresh
tenant, subscribe the time series, the service and a local receiver, publish the workload through the
machine's MQTT broker, then wait until every hop has everything (or stops progressing) and count:

| hop | counted by |
|---|---|
| sent | the load generator (readings, MQTT messages acked by the MQTT broker) |
| agent decoded / forwarded | the agent's ``iota_decoded_total`` / ``iota_forwarded_total`` (deltas over the run); |
| | decoded counts every Connode gateway on the MQTT broker (others' too), so it is shown, not checked |
| broker | distinct (entity, TimeInstant) the broker notified to the local receiver; plus every meter's last |
| | TimeInstant read back from the broker must be its last emission |
| time series | rows per entity (``aggrMethod=count``): readings sent minus each meter's shortfall (a row |
| | stored twice never hides a missing one) |
| service | the service's ``flexmeter_service_entities_total{outcome="new"}`` (delta over the run) |
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from flexmeter.evaluation.errors import EvaluationError
from flexmeter.evaluation.hops import BrokerReceiver, iso_ms, metric_sum, scrape, timeseries_counts
from flexmeter.evaluation.latency import ProbePoller, Timeline, curve_latencies, summary_ms
from flexmeter.evaluation.provision import Tenant, provision_agent, subscribe, wait_agent_ready
from flexmeter.evaluation.resources import ResourceSampler
from flexmeter.evaluation.stack import EmbeddedStack, Endpoints
from flexmeter.evaluation.workload import ENTITY_TYPE, Fleet, Sent, mqtt_publisher, run_workload

QL_ATTR = "totalActiveEnergyImport"
HOP_LABELS = {
    "sent": "sent (MQTT, acked)",
    "agent_decoded": "agent: decoded (all Connode traffic)",
    "agent_forwarded": "agent: accepted by broker",
    "broker": "broker (notified)",
    "timeseries": "time series (rows, per meter)",
    "service": "service (new readings)",
}
HOPS = ("sent", "agent_decoded", "agent_forwarded", "broker", "timeseries", "service")


@dataclass
class E2EOptions:
    duration: float = 20.0
    rate: float = 1000.0
    devices: int | None = None
    """meters (default: ``rate``, i.e. one reading per meter per second)"""
    per_gateway: int = 100
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    ngsi_url: str | None = None
    ql_url: str | None = None
    iota_url: str | None = None
    service_url: str | None = None
    host: str = "127.0.0.1"
    settle_timeout: float = 60.0
    """seconds without progress at any hop before the run gives up waiting (what is missing is loss)"""
    probes: int = 20
    receiver: str = "probes"
    """``all``: the local receiver is subscribed to every meter (counts the broker hop reading by reading);
    ``probes``: only to the probe meters (less load on the broker; the broker hop is then its 2xx count)"""
    workload: str = "connode"
    """``connode``: Malmö E350 gateway documents at ``rate``; ``pilots``: the pilots' mix through the
    simulator at ``scale`` (:mod:`.pilots`)"""
    scale: float = 1.0
    seed: int = 1
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    south_url: str | None = None
    """the agent's south HTTP (ENNOVA) when ``iota_url`` is given"""


Progress = Callable[[str, float], None]
"""(phase, fraction of the whole run done 0..1)"""


def _no_progress(phase: str, fraction: float) -> None:
    return None


class _Counters:
    """The counter readings of the embedded/given components, as deltas from the start of the run."""

    def __init__(self, endpoints: Endpoints, family: str | None = "connode") -> None:
        """``family``: the agent family whose counters are the workload's (None: every family)."""
        self.endpoints = endpoints
        self.session = requests.Session()
        self.base: dict[str, float] = {}
        self.labels = {"family": family} if family else {}

    def read(self) -> dict[str, float | None]:
        agent = scrape(self.endpoints.iota_url, self.session)
        service = scrape(self.endpoints.service_url, self.session)
        return {
            "agent_decoded": None if agent is None else metric_sum(agent, "iota_decoded_total", **self.labels),
            "agent_forwarded": None if agent is None else metric_sum(agent, "iota_forwarded_total", **self.labels),
            "agent_dead_lettered": None if agent is None else metric_sum(agent, "iota_dead_lettered_total"),
            "agent_retried": None if agent is None else metric_sum(agent, "iota_retried_total"),
            "service": None if service is None else metric_sum(service, "flexmeter_service_entities_total",
                                                               outcome="new"),
            "service_rejected": None if service is None else metric_sum(service,
                                                                        "flexmeter_service_rejected_total"),
        }

    def snapshot(self) -> None:
        self.base = {k: v for k, v in self.read().items() if v is not None}

    def delta(self) -> dict[str, float | None]:
        return {k: (None if v is None else v - self.base.get(k, 0.0)) for k, v in self.read().items()}

def _broker_stale(ngsi_url: str, tenant: Tenant, fleet: Fleet, sent: Sent) -> tuple[int, int]:
    """(meters whose last TimeInstant in the broker is not their last emission, entities found)."""
    found: dict[str, int] = {}
    offset = 0
    session = requests.Session()
    while True:
        params: dict[str, str | int] = {"type": ENTITY_TYPE, "attrs": "TimeInstant", "options": "keyValues",
                                        "limit": 1000, "offset": offset}
        response = session.get(f"{ngsi_url}/v2/entities", headers=tenant.headers, timeout=60, params=params)
        response.raise_for_status()
        page = response.json()
        for entity in page:
            if isinstance(entity.get("TimeInstant"), str):
                found[entity["id"]] = iso_ms(entity["TimeInstant"])
        offset += len(page)
        if len(page) < 1000:
            break
    stale = sum(1 for i in range(fleet.devices)
                if sent.per_device[i] and found.get(fleet.entity_id(i)) != sent.last_ms[i])
    return stale, len(found)


def run_e2e(options: E2EOptions, progress: Progress = _no_progress,
            endpoints: Endpoints | None = None) -> dict[str, Any]:
    """Run the workload once; returns the figures, the counts per hop and the conditions.

    ``endpoints``: a stack already running (``evaluate`` shares one); else the given URLs of ``options``
    are used and the missing components are started (and stopped at the end).
    """
    if options.workload == "pilots":
        if endpoints is not None:
            raise EvaluationError("the pilots workload starts its own stack")
        from flexmeter.evaluation.e2e_pilots import run_e2e_pilots

        return run_e2e_pilots(options, progress)
    devices = options.devices or max(1, int(options.rate))
    if devices < options.rate * 0.1:
        raise EvaluationError(f"{devices} meters cannot send {options.rate:g} readings/s with distinct "
                              "observation times: use at least rate/10 meters")
    stack = None
    if endpoints is None:
        stack = EmbeddedStack(mqtt_url=options.mqtt_url, ngsi_url=options.ngsi_url, ql_url=options.ql_url,
                              iota_url=options.iota_url, service_url=options.service_url, host=options.host)
    receiver = BrokerReceiver(host=options.host).start()
    try:
        if stack is not None:
            progress("starting the stack", 0.0)
            endpoints = stack.start()
        assert endpoints is not None
        return _run(options, devices, endpoints, receiver, progress)
    finally:
        receiver.stop()
        if stack is not None:
            stack.stop()


def _run(options: E2EOptions, devices: int, endpoints: Endpoints, receiver: BrokerReceiver,
         progress: Progress) -> dict[str, Any]:
    fleet = Fleet(devices, per_gateway=options.per_gateway)
    tenant = Tenant()
    progress("provisioning", 0.05)
    provision_agent(endpoints.iota_url, tenant, fleet)
    step = max(1, devices // max(1, options.probes))
    probe_indexes = list(range(0, devices, step))[: options.probes]
    probe_ids = [fleet.entity_id(i) for i in probe_indexes]
    subscribe(endpoints.ngsi_url, tenant, ql_url=endpoints.ql_url, service_url=endpoints.service_url,
              receiver_url=receiver.url, receiver_ids=None if options.receiver == "all" else probe_ids)
    wait_agent_ready(endpoints.iota_url)
    counters = _Counters(endpoints)
    counters.snapshot()
    sent_live: list[Sent] = []

    def read_hops() -> dict[str, float | None]:
        values = counters.delta()
        values["sent"] = float(sent_live[0].count) if sent_live else 0.0
        values["broker"] = float(receiver.count()) if options.receiver == "all" else None
        return values

    timeline = Timeline(read_hops, interval=0.2)
    started_ms = int(time.time() * 1000)
    poller = ProbePoller(endpoints.ql_url, tenant.headers, ENTITY_TYPE, QL_ATTR, probe_ids, started_ms).start()
    sampler = ResourceSampler({name: pid for name, pid in endpoints.pids.items()}).start()
    timeline.start()
    publisher = mqtt_publisher(options.mqtt_url)
    total_time = options.duration + 10.0

    def on_tick(sent: Sent) -> None:
        if not sent_live:
            sent_live.append(sent)
        progress("publishing", 0.1 + 0.8 * (time.time() - sent.started) / total_time)

    try:
        sent = run_workload(publisher, fleet, tenant.apikey, rate=options.rate, duration=options.duration,
                            on_tick=on_tick)
    finally:
        publisher.close()
    if not sent_live:
        sent_live.append(sent)
    progress("draining", 0.1 + 0.8 * options.duration / total_time)
    ql_session = requests.Session()
    ours = {fleet.entity_id(i): i for i in range(devices)}

    def ql_total() -> tuple[int, int]:
        """(rows of the workload's entities, readings missing: per meter, sent - rows when short)."""
        counts = timeseries_counts(endpoints.ql_url, tenant.headers, ENTITY_TYPE, QL_ATTR, ql_session)
        total = sum(v for k, v in counts.items() if k in ours)
        missing = sum(max(0, sent.per_device[i] - counts.get(entity, 0)) for entity, i in ours.items())
        return total, missing

    ql_count, ql_missing = 0, sent.count
    ql_complete_at: float | None = None
    # Counting every meter's rows is a query over the whole run: while the probe meters' rows are still
    # arriving the time series is behind anyway, so the full count waits for them (or runs every 5 s).
    probe_expected = sum(sent.per_device[i] for i in probe_indexes)
    next_count = 0.0

    def hop_state() -> tuple[float | int | None, ...]:
        nonlocal ql_count, ql_missing, ql_complete_at, next_count
        delta = counters.delta()
        if poller.count() >= probe_expected or time.time() >= next_count:
            ql_count, ql_missing = ql_total()
            next_count = time.time() + 5.0
        if ql_complete_at is None and ql_missing == 0:
            ql_complete_at = time.time()
        broker_now = receiver.count() if options.receiver == "all" else None
        return delta.get("agent_forwarded"), broker_now, sent.count - ql_missing, delta.get("service")

    drained_at = wait_settled(hop_state, sent.count, options.settle_timeout)
    stop_measuring(timeline, poller, sampler)
    progress("counting", 0.95)
    delta = counters.delta()
    stale, in_broker_entities = _broker_stale(endpoints.ngsi_url, tenant, fleet, sent)
    counts: dict[str, int | None] = {
        "sent": sent.count,
        "agent_decoded": _int(delta.get("agent_decoded")),
        "agent_forwarded": _int(delta.get("agent_forwarded")),
        "broker": receiver.count() if options.receiver == "all" else _int(delta.get("agent_forwarded")),
        "timeseries": sent.count - ql_missing,
        "service": _int(delta.get("service")),
    }
    hops, lost, readings_per_s = hop_table(counts, timeline, sent.count, sent.started, drained_at,
                                           receiver_all=options.receiver == "all", timeseries_done=ql_complete_at)
    broker_latency = [arrival - emitted / 1000 for (_, emitted), arrival in dict(receiver.seen).items()]
    broker_method = ("every reading: the broker's notification to a local receiver (emission time = TimeInstant)"
                     if options.receiver == "all" else f"{len(probe_ids)} probe meters: the broker's "
                     "notification to a local receiver")
    service_curve = timeline.curve("service")
    service_latency = curve_latencies(sent.times_ms, service_curve)
    cores = os.cpu_count() or 1
    publish_span = max(sent.ended - sent.started, 1e-9)
    return {
        "readings_per_s": readings_per_s,
        "publish_rate_per_s": round(sent.count / publish_span, 1),
        "sent": sent.count,
        "lost": lost,
        "loss_ok": lost == 0 and stale == 0,
        "hops": hops,
        "broker_meters_stale": stale,
        "timeseries_rows": ql_count,
        "broker_entities": in_broker_entities,
        "duplicates_notified": receiver.duplicates,
        "agent_dead_lettered": _int(delta.get("agent_dead_lettered")),
        "agent_retried": _int(delta.get("agent_retried")),
        "service_rejected": _int(delta.get("service_rejected")),
        **measured_sections(broker_latency, broker_method, poller, f"{len(probe_ids)} probe meters'",
                            service_latency, sampler, timeline, sent.started),
        "conditions": {
            "duration_s": options.duration, "target_rate_per_s": options.rate, "meters": devices,
            "gateways": fleet.gateways, "meters_per_gateway": options.per_gateway,
            "reading_interval_s": round(devices / options.rate, 2) if options.rate else None,
            "mqtt_messages": sent.messages, "mqtt": options.mqtt_url, "qos": 1,
            "payload": "Connode E350 gateway documents (JSON) over MQTT",
            "broker_counted_by": "a local receiver subscribed to every meter (a third subscription)"
            if options.receiver == "all" else "the agent's 2xx count (receiver on probe meters only)",
            "broker": "given: " + endpoints.ngsi_url if not endpoints.embedded.get("broker")
            else "embedded flexmeter broker (--notify-batch 100)",
            "timeseries": "given: " + endpoints.ql_url if not endpoints.embedded.get("timeseries")
            else "embedded flexmeter timeseries (SQLite)",
            "agent": "given: " + endpoints.iota_url if not endpoints.embedded.get("agent")
            else "embedded flexmeter agent connode",
            "service": "given: " + endpoints.service_url if not endpoints.embedded.get("service")
            else "embedded flexmeter service",
            "cpus": cores, "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "shared_machine": "other engineers' tests may run on the same cores",
        },
    }


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def stop_measuring(timeline: Timeline, poller: ProbePoller, sampler: ResourceSampler) -> None:
    """After the last hop settled: a last timeline sample, then the samplers stop."""
    time.sleep(0.3)
    timeline.sample()
    timeline.stop()
    poller.stop()
    sampler.stop()


def wait_settled(hop_state: Callable[[], tuple[float | int | None, ...]], expected: int,
                 settle_timeout: float) -> float:
    """Poll the hops' counts (None: a hop not counted) until each has ``expected`` or none has moved for
    ``settle_timeout`` s (what is missing then is loss); returns when it stopped waiting."""
    last_change, last_state = time.time(), None
    while True:
        state = hop_state()
        if state != last_state:
            last_state, last_change = state, time.time()
        if all(v is None or v >= expected for v in state) or time.time() - last_change > settle_timeout:
            return time.time()
        time.sleep(0.2)


def hop_table(counts: dict[str, int | None], timeline: Timeline, sent: int, started: float, drained_at: float, *,
              receiver_all: bool, timeseries_done: float | None,
              labels: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], int, float]:
    """(the per-hop rows, readings lost, readings/s through every hop) of a run.

    Without the receiver on every meter, the broker hop is the agent's 2xx count. The agent's decoded
    counter also counts other gateways' traffic on a shared MQTT broker (other tenants' apikeys, rejected
    later): informative, not a hop of this workload's loss."""
    names = {**HOP_LABELS, **(labels or {})}
    hops: list[dict[str, Any]] = []
    for hop in HOPS:
        count = counts[hop]
        curve = timeline.curve("agent_forwarded" if hop == "broker" and not receiver_all else hop)
        done = timeseries_done if hop == "timeseries" else next(
            (t for t, v in curve if count is not None and v >= count), None)
        counted = count if hop != "agent_decoded" else None
        hops.append({"hop": hop, "label": names[hop] if hop != "broker" or receiver_all
                     else "broker (accepted, 2xx)", "count": count,
                     "lost": None if counted is None else max(0, sent - counted),
                     "extra": None if counted is None else max(0, counted - sent),
                     "complete_after_s": None if done is None else round(done - started, 2),
                     "rate_per_s": None if done is None or count is None
                     else round(count / max(done - started, 1e-9), 1)})
    measured = [c for hop, c in counts.items() if c is not None and hop != "agent_decoded"]
    completions = [float(h["complete_after_s"]) for h in hops if h["complete_after_s"] is not None]
    span = max(max(completions) if len(completions) == len(hops) else drained_at - started, 1e-9)
    return hops, max(0, sent - min(measured)), round(min(measured) / span, 1)


def measured_sections(broker_latency: list[float], broker_method: str, poller: ProbePoller, probes: str,
                      service_latency: list[float], sampler: ResourceSampler, timeline: Timeline,
                      started: float) -> dict[str, Any]:
    """The latency, resources, timeline and latency samples of a report (both workloads measure alike)."""
    usage = sampler.usage()
    stack_cpu = sum(u.cpu_percent for u in usage)
    cores = os.cpu_count() or 1
    return {
        "latency": {
            "broker": {**summary_ms(broker_latency), "method": broker_method},
            "timeseries": {**summary_ms(poller.latencies()), "method": f"{probes} rows polled from the time "
                           "series every 0.1 s (± 0.05 s)", "poll_errors": poller.errors},
            "service": {**summary_ms(service_latency), "method": "service counter vs emission order, sampled "
                        "every 0.2 s (FIFO estimate, ± 0.1 s)"},
        },
        "resources": {
            "processes": [u.__dict__ for u in usage],
            "stack_cpu_percent": round(stack_cpu, 1),
            "stack_share_of_machine_percent": round(stack_cpu / cores, 1),
            "machine_busy_percent": sampler.machine_percent(),
            "cpu_timeline": sampler.samples,
        },
        "timeline": [{"t": round(t - started, 3), **v} for t, v in timeline.points if t >= started],
        "latency_samples_ms": {"broker": _sample_ms(broker_latency), "timeseries": _sample_ms(poller.latencies()),
                               "service": _sample_ms(service_latency)},
    }


def _sample_ms(latencies: list[float], limit: int = 5000) -> list[float]:
    """An evenly thinned copy for the report's plots (the percentiles use every value)."""
    if not latencies:
        return []
    step = max(1, len(latencies) // limit)
    return [round(v * 1000, 1) for v in sorted(latencies)[::step]]
