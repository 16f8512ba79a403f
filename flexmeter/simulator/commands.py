"""``flexmeter simulate``: the Turin and Malmö pilots' meters, through the real transports (docs/simulator.md)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from flexmeter.config import get_settings
from flexmeter.provisioning.pilots import examples_dir
from flexmeter.simulator.emitters import AmqpEmitter, Emitter, HttpEmitter, MemoryEmitter, MqttEmitter
from flexmeter.simulator.errors import SimulatorError
from flexmeter.simulator.fleet import Fleet, load_fleet
from flexmeter.simulator.generate import generated_fleet, write_inventory
from flexmeter.simulator.model import Simulation
from flexmeter.simulator.runner import Runner

log = logging.getLogger(__name__)
PILOTS = {"turin": ["turin"], "malmo": ["malmo"], "all": ["turin", "malmo"]}


def parse_start(text: str | None) -> int:
    """``--start``: ISO 8601 (UTC if no offset) or epoch seconds; default now, floored to the minute."""
    if not text:
        return int(time.time()) // 60 * 60
    if text.isdigit():
        return int(text)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def parse_intervals(items: list[str]) -> dict[str, int]:
    """``--interval ROLE=SECONDS`` options → {role: seconds}."""
    out: dict[str, int] = {}
    for item in items:
        role, _, seconds = item.partition("=")
        if not seconds.strip().isdigit():
            raise SimulatorError(f"--interval {item!r}: expected ROLE=SECONDS, e.g. substation_dlms=900")
        out[role.strip()] = int(seconds)
    return out


def build_fleet(pilots: list[str], scale: float | None, seed: int, inventories: list[Path] | None) -> Fleet:
    """The fleet to simulate: the given inventories, else a generated one at ``scale``, else the example
    inventories that ``flexmeter up`` / ``make run`` provision."""
    if not inventories and scale is not None:
        return generated_fleet(pilots, scale, seed)
    if not inventories:
        inventories = [examples_dir() / f"{pilot}.yaml" for pilot in pilots]
    fleet = Fleet()
    for path in inventories:
        fleet.extend(load_fleet(path))
    return fleet if len(pilots) > 1 else fleet.only(lambda m: m.pilot in pilots)


def simulate_command(
    pilot: str = typer.Option("all", "--pilot", help="turin, malmo or all."),
    scale: float = typer.Option(None, "--scale", help="Simulate a generated fleet of this size relative to the "
                                "full pilots (1 = 5,000 Turin buildings, 1,000 Malmö E350, 100 NIALM sensors). "
                                "Default: the example inventories (examples/turin.yaml, malmo.yaml)."),
    speed: float = typer.Option(1.0, "--speed", help="Sim seconds per wall second (0: as fast as possible)."),
    seed: int = typer.Option(1, "--seed", help="Same seed, same fleet, readings and injections."),
    duration: int = typer.Option(None, "--duration", help="Simulated seconds to run, then stop (default: "
                                 "until Ctrl-C)."),
    start: str = typer.Option(None, "--start", help="Sim start (ISO 8601 or epoch s; default now)."),
    inventory: list[Path] = typer.Option(None, "--inventory", help="Simulate the meters of these inventories "
                                         "(e.g. examples/turin.yaml) instead of a generated fleet."),
    write_inventory_to: Path = typer.Option(None, "--write-inventory", help="Write the generated fleet's "
                                            "inventory (and its key file) for `flexmeter provision apply`, "
                                            "then exit. Several pilots: FILE-<pilot>.yaml."),
    truth: Path = typer.Option(None, "--truth", help="Write the ground truth (JSON) here at the end."),
    mqtt_url: str = typer.Option(None, "--mqtt-url", help="MQTT broker (M-Bus, DLMS, Connode uplinks)."),
    amqp_url: str = typer.Option(None, "--amqp-url", help="AMQP broker (Midori)."),
    south_url: str = typer.Option(None, "--south-url", help="IoT Agent south HTTP (ENNOVA hub)."),
    midori_queue: str = typer.Option(None, "--midori-queue", help="Midori queue (FLEXMETER_MIDORI_QUEUE)."),
    midori_batch: int = typer.Option(1, "--midori-batch", help="1 Hz samples per Midori message (1: a message "
                                     "a second per sensor; more: fewer AMQP confirms at high --speed)."),
    interval: list[str] = typer.Option(None, "--interval", help="ROLE=SECONDS: the reporting interval of the "
                                       "meters of a role (repeatable; roles: heat_mbus, water_wmbus, elec_dlms, "
                                       "substation_dlms, nialm, ennova, e350, pv, echelon, heat_connode)."),
    on_clock: bool = typer.Option(False, "--on-clock", help="Meters given an --interval read on the clock "
                                  "(epoch % interval == 0, like load-profile captures)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Build every frame, send nothing (counts only)."),
    progress: float = typer.Option(5.0, "--progress", help="Seconds between progress lines on stderr (0: none)."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as one JSON object on stdout."),
) -> None:
    """Run the Turin and Malmö pilots' meters: real frames through MQTT, AMQP and HTTP."""
    if pilot not in PILOTS:
        raise typer.BadParameter("turin, malmo or all", param_hint="--pilot")
    pilots = PILOTS[pilot]
    if write_inventory_to is not None:
        scale = 0.01 if scale is None else scale
        paths = write_inventory(write_inventory_to, pilots, scale, seed)
        summary: dict[str, Any] = {"inventories": [str(p) for p in paths], "scale": scale, "seed": seed}
        _print(summary, json_output, "wrote " + ", ".join(str(p) for p in paths))
        return
    logging.getLogger("pika").setLevel(logging.WARNING)
    settings = get_settings()
    try:
        fleet = build_fleet(pilots, scale, seed, inventory)
        fleet.reporting(parse_intervals(interval or []), on_clock)
        if not fleet.meters:
            raise SimulatorError(f"no meter of pilot {pilot} in the inventories")
        families = {m.role for m in fleet.meters}
        transports = {"mqtt"} if families & {"heat_mbus", "water_wmbus", "elec_dlms", "substation_dlms", "e350",
                                             "pv", "echelon", "heat_connode"} else set()
        if "nialm" in families:
            transports.add("amqp")
        if "ennova" in families:
            transports.add("http")
        queue = midori_queue or settings.midori_queue
        emitters = open_emitters(transports, dry_run, mqtt_url or settings.mqtt_url, amqp_url or settings.amqp_url,
                                 south_url or f"http://127.0.0.1:{settings.iota_south_port}", queue)
    except SimulatorError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    t0 = parse_start(start)
    sim = Simulation(fleet, seed, t0, duration, midori_queue=queue, midori_batch=midori_batch)
    runner = Runner(sim, emitters, speed=speed, duration=duration, progress_every=progress)
    counts = ", ".join(f"{n} {role}" for role, n in sorted(fleet.counts().items()))
    began = datetime.fromtimestamp(t0, UTC)
    until = "" if duration is None else f", {duration} s"
    print(f"simulate: {len(fleet.meters)} meters ({counts}); sim start {began:%Y-%m-%dT%H:%M:%SZ}, "
          f"speed {speed or 'max'}, seed {seed}{until}", file=sys.stderr, flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.stop())
    summary = runner.run()
    ground = sim.finish()
    ground["run"] = summary
    if truth is not None:
        truth.parent.mkdir(parents=True, exist_ok=True)
        truth.write_text(json.dumps(ground, indent=1))
    summary = {"pilots": pilots, "scale": scale, "seed": seed, "meters": fleet.counts(),
               "sim_start": ground["start"], "sim_end": ground["end"], **summary,
               "injected": len(ground["injected"]), "truth": str(truth) if truth else None}
    lost = summary["readings_sent"] - summary["readings_delivered"]
    _print(summary, json_output, f"simulate: {summary['readings_sent']} readings sent, "
           f"{summary['readings_delivered']} delivered ({lost} not acknowledged) in {summary['wall_seconds']} s "
           f"({summary['readings_per_s']}/s), sim {summary['sim_start']} .. {summary['sim_end']}")
    if lost:
        raise typer.Exit(1)


def open_emitters(transports: set[str], dry_run: bool, mqtt_url: str, amqp_url: str, south_url: str,
                  queue: str) -> dict[str, Emitter]:
    emitters: dict[str, Emitter] = {}
    try:
        for transport in sorted(transports):
            if dry_run:
                emitters[transport] = MemoryEmitter(transport, keep=False)
            elif transport == "mqtt":
                emitters[transport] = MqttEmitter(mqtt_url, client_id=f"flexmeter-sim-{os.getpid()}")
            elif transport == "amqp":
                emitters[transport] = AmqpEmitter(amqp_url, (queue,))
            else:
                emitters[transport] = HttpEmitter(south_url)
    except SimulatorError:
        for emitter in emitters.values():
            emitter.close(1)
        raise
    return emitters


def _print(summary: dict[str, Any], json_output: bool, line: str) -> None:
    if json_output:
        print(json.dumps(summary))
    else:
        print(line, file=sys.stderr)


def register(groups: dict[str, typer.Typer]) -> None:
    groups["root"].command("simulate")(simulate_command)
