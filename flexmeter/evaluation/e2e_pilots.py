"""`flexmeter bench e2e --workload pilots`: the run around :mod:`.pilots` (stack, provisioning, counting).

The hops and the figures are those of the Connode workload (:mod:`.e2e`), so the same table prints them.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from flexmeter.evaluation.e2e import (
    E2EOptions,
    Progress,
    _Counters,
    _int,
    hop_table,
    measured_sections,
    stop_measuring,
    wait_settled,
)
from flexmeter.evaluation.errors import EvaluationError
from flexmeter.evaluation.hops import BrokerReceiver
from flexmeter.evaluation.latency import ProbePoller, Timeline, curve_latencies
from flexmeter.evaluation.pilots import (
    FAMILIES,
    PROBE_ATTR,
    PROBE_TYPE,
    PilotsWorkload,
    delete_queue,
    environment,
    open_emitters,
    provision,
    run_pilots,
    timeseries_distinct_rows,
    timeseries_rows,
)
from flexmeter.evaluation.provision import wait_agent_ready
from flexmeter.evaluation.resources import ResourceSampler
from flexmeter.evaluation.stack import EmbeddedStack, Endpoints


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def run_e2e_pilots(options: E2EOptions, progress: Progress) -> dict[str, Any]:
    logging.getLogger("pika").setLevel(logging.WARNING)
    if options.iota_url and not options.south_url:
        raise EvaluationError("--workload pilots with --iota-url needs --south-url (the agent's south HTTP, "
                              "for the ENNOVA hub)")
    work = Path(tempfile.mkdtemp(prefix="flexmeter-e2e-pilots-"))
    workload = PilotsWorkload(options.scale, options.seed, work / "inventories").write()
    south_port = _free_port(options.host)
    south_url = options.south_url or f"http://{options.host}:{south_port}"
    stack = EmbeddedStack(mqtt_url=options.mqtt_url, ngsi_url=options.ngsi_url, ql_url=options.ql_url,
                          iota_url=options.iota_url, service_url=options.service_url, host=options.host,
                          families=FAMILIES, amqp_url=options.amqp_url, south_port=south_port,
                          agent_env=environment(workload))
    receiver = BrokerReceiver(host=options.host).start()
    try:
        progress("starting the stack", 0.0)
        endpoints = stack.start()
        return _run(options, workload, endpoints, receiver, south_url, progress)
    finally:
        receiver.stop()
        stack.stop()
        delete_queue(options.amqp_url, workload.midori_queue)
        shutil.rmtree(work, ignore_errors=True)


def _run(options: E2EOptions, workload: PilotsWorkload, endpoints: Endpoints, receiver: BrokerReceiver,
         south_url: str, progress: Progress) -> dict[str, Any]:
    progress("provisioning", 0.05)
    probe_ids = workload.probe_ids(options.probes)
    provision(workload, endpoints, receiver.url, None if options.receiver == "all" else probe_ids)
    wait_agent_ready(endpoints.iota_url)
    time.sleep(1.0)  # the agent's Midori consumer declares its queue
    counters = _Counters(endpoints, family=None)
    counters.snapshot()
    times_ms: list[int] = []
    emitters = open_emitters(workload, options.mqtt_url, options.amqp_url, south_url, times_ms)

    def sent_now() -> int:
        return sum(e.counts.readings_delivered for e in emitters.values())

    def read_hops() -> dict[str, float | None]:
        values = counters.delta()
        values["sent"] = float(sent_now())
        values["broker"] = float(receiver.count()) if options.receiver == "all" else None
        return values

    timeline = Timeline(read_hops, interval=0.2)
    probe = next(m for m in workload.fleet.meters if m.role == "e350")
    poller = ProbePoller(endpoints.ql_url, workload.headers("malmo", probe.service_path), PROBE_TYPE, PROBE_ATTR,
                         probe_ids, int(time.time() * 1000)).start()
    sampler = ResourceSampler(dict(endpoints.pids)).start()
    timeline.start()
    progress("publishing", 0.1)
    run = run_pilots(workload, emitters, times_ms, duration=options.duration)
    progress("draining", 0.9)
    rows, next_count = 0, 0.0
    rows_complete_at: float | None = None

    def hop_state() -> tuple[float | int | None, ...]:
        nonlocal rows, rows_complete_at, next_count
        delta = counters.delta()
        if time.time() >= next_count:
            rows = timeseries_rows(endpoints.ql_url, workload)
            next_count = time.time() + 2.0
            if rows_complete_at is None and rows >= run.count:
                rows_complete_at = time.time()
        broker_now = receiver.count() if options.receiver == "all" else None
        return delta.get("agent_forwarded"), broker_now, rows, delta.get("service")

    drained_at = wait_settled(hop_state, run.count, options.settle_timeout)
    stop_measuring(timeline, poller, sampler)
    progress("counting", 0.95)
    delta = counters.delta()
    sent = run.count
    distinct_rows = timeseries_distinct_rows(endpoints.ql_url, workload)  # the count: a duplicate hides nothing
    counts: dict[str, int | None] = {
        "sent": sent, "agent_decoded": _int(delta.get("agent_decoded")),
        "agent_forwarded": _int(delta.get("agent_forwarded")),
        "broker": receiver.count() if options.receiver == "all" else _int(delta.get("agent_forwarded")),
        "timeseries": distinct_rows, "service": _int(delta.get("service")),
    }
    hops, lost, readings_per_s = hop_table(
        counts, timeline, sent, run.started, drained_at, receiver_all=options.receiver == "all",
        timeseries_done=rows_complete_at, labels={"agent_decoded": "agent: decoded (all families)",
                                                  "timeseries": "time series (distinct rows per meter)"})
    broker_latency = [arrival - emitted / 1000 for (_, emitted), arrival in dict(receiver.seen).items()]
    service_latency = curve_latencies(run.times_ms, timeline.curve("service"))
    cores = os.cpu_count() or 1
    families = {family: n for transport in run.summary["transports"].values()
                for family, n in transport["readings_delivered"].items()}
    return {
        "readings_per_s": readings_per_s,
        "publish_rate_per_s": round(sent / max(run.ended - run.started, 1e-9), 1),
        "sent": sent, "lost": lost, "loss_ok": lost == 0, "hops": hops,
        "broker_meters_stale": None, "timeseries_rows": rows, "timeseries_distinct_rows": distinct_rows,
        "broker_entities": None,
        "duplicates_notified": receiver.duplicates,
        "agent_dead_lettered": _int(delta.get("agent_dead_lettered")),
        "agent_retried": _int(delta.get("agent_retried")),
        "service_rejected": _int(delta.get("service_rejected")),
        **measured_sections(broker_latency, "the broker's notification to a local receiver (observation time = "
                            "TimeInstant = scheduled emission)" + (
                                "" if options.receiver == "all" else f", {len(probe_ids)} Malmö E350 probe meters"),
                            poller, f"{len(probe_ids)} Malmö E350 probe meters'", service_latency, sampler, timeline,
                            run.started),
        "conditions": {
            "workload": f"the Turin and Malmö pilots at scale {options.scale:g} (simulator, seed {options.seed}, "
                        "real time, no injections)",
            "duration_s": options.duration, "meters": len(workload.fleet.meters),
            "meters_by_role": workload.fleet.counts(), "readings_by_family": families,
            "generator_max_lag_s": run.summary["max_lag_s"],
            "transports": f"MQTT {options.mqtt_url} (QoS 1: M-Bus concentrator uplinks, DLMS, Connode), AMQP "
                          f"(Midori, publisher confirms), HTTP (ENNOVA) to the agent's south port",
            "broker_counted_by": "a local receiver subscribed to every reading" if options.receiver == "all"
            else "the agent's 2xx count (receiver on probe meters only)",
            "timeseries_counted_by": "distinct (meter, second) rows of the four reading types (aggrMethod=count, "
                                     "aggrPeriod=second): a row stored twice cannot hide a missing one",
            "broker": "given: " + endpoints.ngsi_url if not endpoints.embedded.get("broker")
            else "embedded flexmeter broker (--notify-batch 100)",
            "timeseries": "given: " + endpoints.ql_url if not endpoints.embedded.get("timeseries")
            else "embedded flexmeter timeseries (SQLite)",
            "agent": "given: " + endpoints.iota_url if not endpoints.embedded.get("agent")
            else "embedded flexmeter agent " + " ".join(FAMILIES),
            "service": "given: " + endpoints.service_url if not endpoints.embedded.get("service")
            else "embedded flexmeter service",
            "cpus": cores, "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "shared_machine": "other engineers' tests may run on the same cores",
        },
    }
