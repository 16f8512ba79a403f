"""The pilots as a pure model: sim time (epoch seconds) → what every meter sends, plus the ground truth.

``Simulation.step(t)`` must be called for consecutive seconds; it returns the :class:`Emission` s of that
second (payload bytes, the transport and channel they go to, how many meter readings they carry) and keeps
the ground truth (:mod:`.truth`) of what was injected and of the exact energy balances. No I/O, no clock:
the runner decides how fast sim time goes and the emitters send.

Electricity loads are constant for 10 s steps; registers are integer joules, so for every substation and
every 15 minutes: delivered = Σ customers' import - Σ customers' export + injected losses, exactly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from flexmeter.simulator import frames, physics
from flexmeter.simulator.fleet import Fleet, SimMeter, stable_int
from flexmeter.simulator.physics import APPLIANCES, STEP, HeatPoint
from flexmeter.simulator.schedule import Injection, default_schedule
from flexmeter.simulator.truth import GroundTruth

Transport = Literal["mqtt", "amqp", "http"]
WINDOW = 900
"""Seconds of a ground-truth energy-balance window (the service's 15 minutes)."""
MIDORI_QUEUE = "midori"


@dataclass(frozen=True)
class Emission:
    """One message to one transport."""

    transport: Transport
    family: str           # mbus | wmbus | dlms | connode | midori | ennova
    channel: str          # MQTT topic, AMQP queue / routing key, or HTTP path?query
    payload: bytes
    readings: int
    at: int
    content_type: str = "application/json"
    service: str = ""
    service_path: str = ""


@dataclass
class ElecState:
    import_j: int = 0
    export_j: int = 0
    import_w: int = 0
    export_w: int = 0
    since: int = 0
    phase: int = 0

    def registers_wh(self, epoch: int) -> tuple[int, int]:
        dt = epoch - self.since
        return (self.import_j + self.import_w * dt) // 3600, (self.export_j + self.export_w * dt) // 3600


@dataclass
class SubstationState:
    meter: str
    rate_bp: int
    customers: list[str]
    phase_import_w: list[int]
    phase_export_w: list[int]
    import_j: int = 0
    export_j: int = 0
    reactive_j: int = 0
    phase_import_j: list[int] | None = None
    net_w: list[int] | None = None
    since: int = 0

    def net_phase_w(self) -> list[int]:
        return self.net_w or [0, 0, 0]


@dataclass
class HeatState:
    energy_acc: int = 0      # W·s x HEAT_SCALE
    volume_acc: int = 0      # l·s/h
    point: HeatPoint | None = None
    since: int = 0
    access: int = 0
    peak_w: int = 0
    day: int = -1
    offset_wh: int = 0

    def energy_wh(self) -> int:
        return self.offset_wh + self.energy_acc // (physics.HEAT_SCALE * 3600)

    def volume_l(self) -> int:
        return self.volume_acc // 3600


@dataclass
class WaterState:
    volume_ml: int = 0
    access: int = 0
    since: int = 0


def loss_w(customers_w: int, rate_bp: int) -> int:
    """Losses (W) of a phase for a loss rate in basis points of the energy the substation delivers:
    delivered = customers + losses and losses = rate x delivered, so losses = customers x r / (1 - r)."""
    denominator = 10_000 - rate_bp
    return (2 * customers_w * rate_bp + denominator) // (2 * denominator)  # rounded to the nearest W


class Simulation:
    """The pilots' meters from ``start`` on (epoch seconds, UTC)."""

    def __init__(self, fleet: Fleet, seed: int, start: int, duration: int | None = None,
                 schedule: list[Injection] | None = None, midori_queue: str = MIDORI_QUEUE,
                 midori_batch: int = 1) -> None:
        self.fleet, self.seed, self.start = fleet, seed, int(start)
        self.duration = duration if duration is not None else 3600
        self.schedule = schedule if schedule is not None else default_schedule(fleet, seed, self.start,
                                                                                self.duration)
        self.midori_queue = midori_queue
        self.midori_batch = max(1, midori_batch)
        self._midori_samples: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.truth = GroundTruth(seed, self.start, fleet, self.schedule)
        self.now = self.start - 1
        self.zones = {pilot: ZoneInfo(tz) for pilot, tz in fleet.timezones.items()}
        self._offsets: dict[str, int] = {}
        self._due: dict[int, dict[int, list[SimMeter]]] = defaultdict(lambda: defaultdict(list))
        for meter in fleet.meters:
            phase = (-self.start) % meter.interval if meter.on_clock else meter.phase
            self._due[meter.interval][phase].append(meter)
        self._leaks = {i.target: i for i in self.schedule if i.kind == "leak"}
        self._outages = [i for i in self.schedule if i.kind == "outage"]
        self._replacements = {i.target: i for i in self.schedule if i.kind == "replacement"}
        self._low_dt = {i.target: i for i in self.schedule if i.kind == "low_delta_t"}
        customers = [m for m in fleet.meters if m.role in ("elec_dlms", "e350", "pv")]
        self._customers = customers
        self.elec: dict[str, ElecState] = {}
        for m in customers:
            initial = 3_600_000 * (1000 + stable_int(seed, m.id, "reg") % 20000)   # 1..21 MWh, in J
            self.elec[m.id] = ElecState(import_j=initial, since=self.start, phase=stable_int(m.id, "phase") % 3)
        self.subs: dict[str, SubstationState] = {}
        rates = {i.target: int(i.params["rate_bp"]) for i in self.schedule if i.kind == "losses"}
        for sid, meter_id in fleet.substation_meter.items():
            customers_here = [c for c in fleet.substation_customers.get(sid, []) if c in self.elec]
            state = SubstationState(meter_id, rates.get(sid, 300), customers_here,
                                    [0, 0, 0], [0, 0, 0], since=self.start)
            state.import_j = 3_600_000 * (500_000 + stable_int(seed, sid, "reg") % 100_000)
            state.phase_import_j = [state.import_j // 3] * 3
            self.subs[sid] = state
        self.heat: dict[str, HeatState] = {}
        for m in fleet.meters:
            if m.role in ("heat_mbus", "heat_connode"):
                wh = 10_000_000 + stable_int(seed, m.id, "heat") % 90_000_000
                self.heat[m.id] = HeatState(offset_wh=wh, since=self.start,
                                            volume_acc=3600 * (stable_int(seed, m.id, "vol") % 5_000_000))
        self.water: dict[str, WaterState] = {
            m.id: WaterState(volume_ml=1000 * (stable_int(seed, m.id, "wvol") % 900_000), since=self.start)
            for m in fleet.by_role("water_wmbus")}
        self._nialm_state: dict[tuple[str, str], bool] = {}
        self._ennova_j: dict[str, int] = {m.id: 3_600_000 * 50_000 for m in fleet.by_role("ennova")}
        self._seq: dict[str, int] = defaultdict(int)
        self._elec_step_start = -1

    # -- time --------------------------------------------------------------------------------------------
    def offset(self, pilot: str, epoch: int) -> int:
        key = f"{pilot}:{epoch // 3600}"
        found = self._offsets.get(key)
        if found is None:
            zone = self.zones.get(pilot, UTC)
            delta = datetime.fromtimestamp(epoch, UTC).astimezone(zone).utcoffset()
            found = int(delta.total_seconds()) if delta else 0
            if len(self._offsets) > 1000:
                self._offsets.clear()
            self._offsets[key] = found
        return found

    def hour(self, pilot: str, epoch: int) -> float:
        return physics.local_hour(epoch, self.offset(pilot, epoch))

    def in_outage(self, meter: SimMeter, epoch: int) -> Injection | None:
        for outage in self._outages:
            if outage.target == meter.building and outage.params.get("pilot") == meter.pilot and outage.active(epoch):
                return outage
        return None

    # -- the step ----------------------------------------------------------------------------------------
    def step(self, t: int) -> list[Emission]:
        if t != self.now + 1:
            raise ValueError(f"step({t}) after step({self.now}): sim time goes one second at a time")
        self.now = t
        if t % STEP == 0 or self._elec_step_start < 0:
            self._electricity_step(t)
        due: list[SimMeter] = []
        for interval, phases in self._due.items():
            due.extend(phases.get((t - self.start) % interval if interval > 1 else 0, ()))
        # every meter reads on its phase; the start second reads all that are due at phase 0 of the run
        out: list[Emission] = []
        mbus: dict[tuple[str, str, str], list[tuple[str, bytes, int]]] = defaultdict(list)
        connode: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        meta: dict[tuple[str, str], SimMeter] = {}
        for meter in due:
            role = meter.role
            if role == "heat_mbus":
                frame = self._heat_mbus(meter, t)
                mbus[(meter.apikey, meter.gateway, "mbus")].append(("mbus", frame, t))
                meta[(meter.apikey, meter.gateway)] = meter
            elif role == "water_wmbus":
                frame = self._water(meter, t)
                mbus[(meter.apikey, meter.gateway, "wmbus")].append(("wmbus", frame, t))
                meta[(meter.apikey, meter.gateway)] = meter
            elif role in ("elec_dlms", "substation_dlms"):
                emission = self._dlms(meter, t)
                if emission is not None:
                    out.append(emission)
            elif role in ("e350", "pv", "echelon", "heat_connode"):
                message = self._connode(meter, t)
                if message is not None:
                    connode[(meter.apikey, meter.gateway)].append(message)
                    meta[(meter.apikey, meter.gateway)] = meter
            elif role == "nialm":
                sent = self._nialm(meter, t)
                if sent is not None:
                    out.append(sent)
            elif role == "ennova":
                out.append(self._ennova(meter, t))
        for outage in self._outages:  # last gasps: the meters' goodbye at the outage's first second
            if outage.start == t:
                for meter_id in outage.params["meters"]:
                    meter = self.fleet.get(meter_id)
                    gasp = self._dlms(meter, t, last_gasp=True) if meter.role == "elec_dlms" else None
                    if gasp is not None:
                        out.append(gasp)
                    if meter.role in ("e350", "pv"):
                        connode[(meter.apikey, meter.gateway)].append(
                            {"device": meter.device_id, "model": "E350", "time": frames.iso(t), "type": "lastGasp",
                             "values": {"reason": "supply lost"}})
                        meta[(meter.apikey, meter.gateway)] = meter
        for (apikey, gateway, kind), items in mbus.items():
            m = meta[(apikey, gateway)]
            out.append(Emission("mqtt", kind, f"mbus/{apikey}/{gateway}/up",
                                frames.concentrator_uplink(gateway, items), len(items), t,
                                service=m.service, service_path=m.service_path))
        for (apikey, gateway), messages in connode.items():
            m = meta[(apikey, gateway)]
            self._seq[gateway] += 1
            out.append(Emission("mqtt", "connode", f"connode/{apikey}/{gateway}/up",
                                frames.connode_document(gateway, self._seq[gateway], t, messages), len(messages), t,
                                service=m.service, service_path=m.service_path))
        for emission in out:
            self.truth.count(emission.family, emission.readings)
        return out

    # -- electricity -------------------------------------------------------------------------------------
    def _electricity_step(self, t: int) -> None:
        """Integrate the last step's powers up to ``t`` and draw the loads of the step starting at ``t``."""
        step = t // STEP
        for state in self.elec.values():
            dt = t - state.since
            state.import_j += state.import_w * dt
            state.export_j += state.export_w * dt
            state.since = t
        window = t - t % WINDOW
        for sid, sub in self.subs.items():
            dt = t - sub.since
            if dt and sub.net_w is not None:
                imp = [max(0, n) for n in sub.net_w]
                exp = [max(0, -n) for n in sub.net_w]
                sub.import_j += sum(imp) * dt
                sub.export_j += sum(exp) * dt
                sub.reactive_j += sum(imp) * 25 // 100 * dt
                assert sub.phase_import_j is not None
                for i in range(3):
                    sub.phase_import_j[i] += imp[i] * dt
                self.truth.balance(sid, sub.since - sub.since % WINDOW, sum(sub.phase_import_w) * dt,
                                   sum(sub.phase_export_w) * dt, self._loss_w(sub) * dt, sum(imp) * dt,
                                   sum(exp) * dt)
            sub.since = t
        del window
        for meter in self._customers:
            state = self.elec[meter.id]
            hour = self.hour(meter.pilot, t)
            if self.in_outage(meter, t):
                state.import_w = state.export_w = 0
            elif meter.role == "pv":
                kwp = 6 + stable_int(meter.id, "kwp") % 9
                produced = physics.pv_power(self.seed, meter.id, step, hour, kwp)
                state.import_w, state.export_w = (0, produced) if produced else (8, 0)
            else:
                peak = 2500.0 * meter.customers if meter.role == "elec_dlms" else 3000.0
                state.import_w = physics.household_power(self.seed, meter.id, step, hour, peak)
                state.export_w = 0
        for sub in self.subs.values():
            imp, exp = [0, 0, 0], [0, 0, 0]
            for meter_id in sub.customers:
                state = self.elec[meter_id]
                imp[state.phase] += state.import_w
                exp[state.phase] += state.export_w
            sub.phase_import_w, sub.phase_export_w = imp, exp
            sub.net_w = [imp[i] - exp[i] + loss_w(imp[i], sub.rate_bp) for i in range(3)]
        self._elec_step_start = t

    @staticmethod
    def _loss_w(sub: SubstationState) -> int:
        return sum(loss_w(sub.phase_import_w[i], sub.rate_bp) for i in range(3))

    def _dlms(self, meter: SimMeter, t: int, last_gasp: bool = False) -> Emission | None:
        """An ST-I or substation push. ``last_gasp``: the ST-I's last push as its supply collapses (what its
        hold-up capacitor allows): the registers, no power and the collapsed voltage (0 V)."""
        assert meter.system_title is not None
        if meter.role == "elec_dlms":
            if self.in_outage(meter, t) and not last_gasp:
                return None
            state = self.elec[meter.id]
            imp, exp = state.registers_wh(t)
            values = frames.single_phase_values(imp, exp, 0 if last_gasp else state.import_w,
                                                0 if last_gasp else physics.voltage_dv(self.seed, meter.id, t))
        else:
            sub = self.subs.get(meter.substation or "")
            if sub is None:
                return None
            dt = t - sub.since
            net = sub.net_phase_w()
            imp_now = [max(0, n) for n in net]
            exp_now = [max(0, -n) for n in net]
            assert sub.phase_import_j is not None
            values = frames.substation_values(
                (sub.import_j + sum(imp_now) * dt) // 3600, (sub.export_j + sum(exp_now) * dt) // 3600,
                [(sub.phase_import_j[i] + imp_now[i] * dt) // 3600 for i in range(3)], net,
                [physics.voltage_dv(self.seed, meter.id + str(i), t) for i in range(3)],
                4990 + stable_int(self.seed, meter.id, t, "f") % 21)
        self._seq[meter.id] += 1
        payload = frames.dlms_push(system_title=meter.system_title, guek=meter.keys["guek"], gak=meter.keys["gak"],
                                   epoch=t, body=frames.dlms_values(values), invoke_id=self._seq[meter.id])
        return Emission("mqtt", "dlms", f"dlms/{meter.apikey}/{meter.gateway}/push/{meter.device_id}", payload, 1, t,
                        "application/octet-stream", meter.service, meter.service_path)

    def _connode(self, meter: SimMeter, t: int) -> dict[str, Any] | None:
        time = frames.iso(t)
        if meter.role in ("e350", "pv"):
            if self.in_outage(meter, t):
                return None
            state = self.elec[meter.id]
            imp, exp = state.registers_wh(t)
            volts = [physics.voltage_dv(self.seed, meter.id + str(i), t) for i in range(3)]
            values: dict[str, Any] = {"1.8.0": frames.number(imp, 3), "2.8.0": frames.number(exp, 3),
                                      "1.7.0": state.import_w, "2.7.0": state.export_w}
            for i, code in enumerate(("21", "41", "61")):
                values[f"{code}.7.0"] = state.import_w if i == state.phase else 0
                values[f"{int(code) + 1}.7.0"] = state.export_w if i == state.phase else 0
            for i, code in enumerate(("32", "52", "72")):
                values[f"{code}.7.0"] = frames.number(volts[i], 1)
            values["14.7.0"] = 50.0
            return {"device": meter.device_id, "model": "E350", "time": time, "type": "reading", "values": values}
        if meter.role == "echelon":
            sub = self.subs.get(meter.substation or "")
            if sub is None:
                return None
            dt = t - sub.since
            net = sub.net_phase_w()
            p_imp, p_exp = sum(max(0, n) for n in net), sum(max(0, -n) for n in net)
            q = p_imp * 25 // 100
            volts = [physics.voltage_dv(self.seed, meter.id + str(i), t) for i in range(3)]
            currents = [abs(net[i]) * 100 // volts[i] if volts[i] else 0 for i in range(3)]  # 0.1 A
            values = {
                "1.7.0": frames.number(p_imp, 3), "2.7.0": frames.number(p_exp, 3),
                "1.8.0": frames.number((sub.import_j + p_imp * dt) // 3600, 3),
                "2.8.0": frames.number((sub.export_j + p_exp * dt) // 3600, 3),
                "3.7.0": frames.number(q, 3), "4.7.0": 0,
                "3.8.0": frames.number((sub.reactive_j + q * dt) // 3600, 3), "4.8.0": 0,
                "9.7.0": frames.number(int((p_imp ** 2 + q ** 2) ** 0.5), 3),
                "32.7.0": frames.number(volts[0], 1), "52.7.0": frames.number(volts[1], 1),
                "72.7.0": frames.number(volts[2], 1),
                "31.7.0": frames.number(currents[0], 1), "51.7.0": frames.number(currents[1], 1),
                "71.7.0": frames.number(currents[2], 1),
                "33.7.0": 0.97, "53.7.0": 0.97, "73.7.0": 0.97, "14.7.0": 50.0,
                "81.7.40": 0.24, "81.7.51": 0.24, "81.7.62": 0.24,
                "C.7.1": 0, "C.7.2": 0, "C.7.3": 0, "pulse1": 0, "pulse2": 0,
            }
            return {"device": meter.device_id, "model": "ECHELON", "time": time, "type": "reading", "values": values}
        heat = self._heat_advance(meter, t)
        point = heat.point
        assert point is not None
        return {"device": meter.device_id, "model": "DH", "time": time, "type": "reading", "values": {
            "forwardTemp": frames.number(point.forward_c, 2), "returnTemp": frames.number(point.return_c, 2),
            "flow": frames.number(point.flow_lph, 3), "volume": heat.volume_l(),
            "power": frames.number(round(point.power_w), 3), "peakPower": frames.number(heat.peak_w, 3),
            "energy": frames.number(heat.energy_wh(), 6)}}

    # -- heat --------------------------------------------------------------------------------------------
    def _heat_advance(self, meter: SimMeter, t: int) -> HeatState:
        """Integrate the previous operating point up to ``t``, apply a replacement, draw the next point."""
        state = self.heat[meter.id]
        if state.point is not None:
            dt = t - state.since
            state.energy_acc += state.point.power_scaled * dt
            state.volume_acc += state.point.flow_lph * dt
        replaced = self._replacements.get(meter.id)
        if replaced is not None and state.since < replaced.start <= t:
            self.truth.replaced(meter.id, t, state.energy_wh(), "energy_Wh")
            state.energy_acc, state.offset_wh, state.volume_acc = 0, 0, 0
        state.since = t
        low = self._low_dt.get(meter.id)
        contracted = float(meter.contracted_kw or 50)
        point = physics.heat_point(self.seed, meter.id, t // meter.interval, self.hour(meter.pilot, t), contracted,
                                   bool(low and low.active(t)))
        state.point = point
        day = (t + self.offset(meter.pilot, t)) // 86400
        if day != state.day:
            state.day, state.peak_w = day, 0
        state.peak_w = max(state.peak_w, round(point.power_w))
        self.truth.heat(meter.id, t, state.energy_wh(), point)
        return state

    def _heat_mbus(self, meter: SimMeter, t: int) -> bytes:
        state = self._heat_advance(meter, t)
        point = state.point
        assert point is not None and meter.serial is not None
        state.access += 1
        return frames.heat_rsp_ud(meter, primary=1, access=state.access, energy_wh=state.energy_wh(),
                                  volume_l=state.volume_l(), power_w=round(point.power_w), flow_lph=point.flow_lph,
                                  forward_c=point.forward_c, return_c=point.return_c)

    # -- water -------------------------------------------------------------------------------------------
    def _water(self, meter: SimMeter, t: int) -> bytes:
        state = self.water[meter.id]
        dt = max(1, t - state.since) if state.since != t else meter.interval
        used = physics.water_use_ml(self.seed, meter.id, t // meter.interval, self.hour(meter.pilot, t), dt,
                                    meter.customers)
        leak = self._leaks.get(meter.id)
        leaked = 0
        if leak is not None and leak.active(t):
            leaked = int(leak.params["flow_lph"]) * 1000 * min(dt, t - leak.start) // 3600
        state.volume_ml += used + leaked
        replaced = self._replacements.get(meter.id)
        if replaced is not None and state.since < replaced.start <= t:
            self.truth.replaced(meter.id, t, state.volume_ml // 1000, "volume_l")
            state.volume_ml = 0
        flow_lph = (used + leaked) * 3600 // (dt * 1000)
        state.since = t
        state.access += 1
        self.truth.water(meter.id, t, state.volume_ml // 1000, flow_lph, leaked)
        assert meter.serial is not None
        return frames.water_wmbus(meter, access=state.access, volume_l=state.volume_ml // 1000, flow_lph=flow_lph,
                                  key=meter.keys["aes"])

    # -- NIALM and ENNOVA --------------------------------------------------------------------------------
    def _nialm(self, meter: SimMeter, t: int) -> Emission | None:
        """This second's sample; a message once ``midori_batch`` samples are buffered (1: every second)."""
        offset = self.offset(meter.pilot, t)
        p, q = physics.NIALM_BASE_W, physics.NIALM_BASE_VAR
        for appliance in APPLIANCES:
            on = physics.appliance_on(self.seed, meter.id, appliance, t, offset)
            key = (meter.id, appliance.name)
            before = self._nialm_state.get(key)
            if before is not None and before != on:
                self.truth.switch(meter.id, appliance, t, on)
            self._nialm_state[key] = on
            if on:
                p += appliance.power_w
                q += appliance.reactive_var
                self.truth.appliance_energy(meter.id, appliance.name, appliance.power_w)
        volts = physics.voltage_dv(self.seed, meter.id, t)
        current = (p * p + q * q) ** 0.5 / (volts / 10)
        sample = {"ts": frames.iso(t), "voltage": frames.number(volts, 1), "current": round(current, 2),
                  "activePower": p, "reactivePower": q}
        samples = self._midori_samples[meter.id]
        samples.append(sample)
        if len(samples) < self.midori_batch:
            return None
        self._midori_samples[meter.id] = []
        self._seq[meter.id] += 1
        return Emission("amqp", "midori", self.midori_queue,
                        frames.midori_message(meter.device_id, meter.apikey, self._seq[meter.id], samples),
                        len(samples), t, service=meter.service, service_path=meter.service_path)

    def _ennova(self, meter: SimMeter, t: int) -> Emission:
        """Four samples over the hub's interval (15-s samples at the default 60 s)."""
        samples = []
        step = max(1, meter.interval // 4)
        for s in (t - 3 * step, t - 2 * step, t - step, t):
            power = physics.household_power(self.seed, meter.id, s // step, self.hour(meter.pilot, s), 40_000.0)
            self._ennova_j[meter.id] += power * step
            samples.append({"ts": frames.iso(s), "activePower": power, "voltage": 230.0,
                            "activeEnergyImport": frames.number(self._ennova_j[meter.id] // 3600, 3)})
        return Emission("http", "ennova", f"/iot/ennova?k={meter.apikey}",
                        frames.ennova_batch(meter.device_id, {meter.device_id: samples}), len(samples), t,
                        service=meter.service, service_path=meter.service_path)

    def finish(self) -> dict[str, Any]:
        """Close the balances up to now and return the ground truth document."""
        self._electricity_step(self.now + 1)
        return self.truth.to_json(self.now + 1)
