"""The simulated fleet: which meters exist, where they hang in the topology, and their identities and keys.

A fleet always comes from an inventory (the provisioning schema, ``flexmeter.provisioning``), so the ids,
apikeys, addresses and keys the simulator sends are the ones provisioned: either a file the utility wrote
(``examples/turin.yaml``) or one generated here at any scale (:mod:`.generate`) and written out for
``flexmeter provision apply``. ``fleet_from_inventory`` is the only place that turns inventory items into
simulated meters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal

import yaml
from pydantic import ValidationError

from flexmeter.errors import FlexmeterError
from flexmeter.iot_agents.mbus.telegram import manufacturer_code, manufacturer_value
from flexmeter.provisioning.inventory import read_meter_csv
from flexmeter.provisioning.schema import Group, Inventory, Meter, Tenant
from flexmeter.provisioning.secrets import resolve
from flexmeter.simulator.errors import FleetError

Role = Literal["heat_mbus", "water_wmbus", "elec_dlms", "substation_dlms", "nialm", "ennova",
               "e350", "pv", "echelon", "heat_connode"]
ROLES: tuple[Role, ...] = ("heat_mbus", "water_wmbus", "elec_dlms", "substation_dlms", "nialm", "ennova",
                           "e350", "pv", "echelon", "heat_connode")
INTERVALS: dict[Role, int] = {
    "heat_mbus": 300, "water_wmbus": 300, "elec_dlms": 15, "substation_dlms": 1, "nialm": 1, "ennova": 60,
    "e350": 10, "pv": 10, "echelon": 10, "heat_connode": 10,
}
"""Seconds between two readings of a meter of each role (docs/simulator.md)."""

METERS_PER_CONCENTRATOR = 50
"""Turin: buildings heard by one IREN concentrator (its uplink carries their frames)."""
METERS_PER_GATEWAY = 100
"""Malmö: meters behind one Connode gateway."""


def stable_int(*parts: object) -> int:
    """A 64-bit integer from the parts, the same on every run and machine (Python's ``hash`` is salted)."""
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


@dataclass
class SimMeter:
    """One simulated meter, with what its frames need (identity, keys) and where it sits."""

    id: str
    role: Role
    pilot: str
    service: str
    service_path: str
    apikey: str
    gateway: str
    building: str | None = None
    feeder: str | None = None
    substation: str | None = None
    serial: str | None = None
    manufacturer: str | None = None
    system_title: bytes | None = None
    keys: dict[str, bytes] = field(default_factory=dict)
    mbus_version: int | None = None
    mbus_medium: int | None = None
    contracted_kw: Decimal | None = None
    customers: int = 1
    device_id: str = ""
    """The IoT Agent's device id: the inventory's ``device_id``, else its ``id``."""
    phase: int = 0
    """Offset (s) of this meter's readings within its interval: meters do not all speak at once."""
    interval_s: int = 0
    """Seconds between two readings when configured (:meth:`Fleet.reporting`); 0: the role's default."""
    on_clock: bool = False
    """Readings on the clock (epoch % interval == 0, like load-profile captures) instead of at ``phase``."""

    def __post_init__(self) -> None:
        self.device_id = self.device_id or self.id

    @property
    def interval(self) -> int:
        return self.interval_s or INTERVALS[self.role]


@dataclass
class Fleet:
    """The meters of one or several pilots, and the substation → customer meters topology."""

    meters: list[SimMeter] = field(default_factory=list)
    substation_customers: dict[str, list[str]] = field(default_factory=dict)
    substation_meter: dict[str, str] = field(default_factory=dict)
    timezones: dict[str, str] = field(default_factory=dict)

    def by_role(self, role: Role) -> list[SimMeter]:
        return [m for m in self.meters if m.role == role]

    def get(self, meter_id: str) -> SimMeter:
        for meter in self.meters:
            if meter.id == meter_id:
                return meter
        raise KeyError(meter_id)

    def by_device(self, device_id: str) -> SimMeter:
        """The meter the agents know as ``device_id``."""
        for meter in self.meters:
            if meter.device_id == device_id:
                return meter
        raise KeyError(device_id)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for meter in self.meters:
            out[meter.role] = out.get(meter.role, 0) + 1
        return out

    def only(self, keep: Callable[[SimMeter], bool]) -> Fleet:
        """The sub-fleet of the meters ``keep`` accepts, with the topology restricted to them."""
        meters = [m for m in self.meters if keep(m)]
        ids = {m.id for m in meters}
        return Fleet(meters,
                     {s: [c for c in cs if c in ids] for s, cs in self.substation_customers.items()},
                     {s: m for s, m in self.substation_meter.items() if m in ids},
                     {p: tz for p, tz in self.timezones.items() if any(m.pilot == p for m in meters)})

    def reporting(self, intervals: Mapping[str, int], on_clock: bool = False) -> None:
        """Configure the reporting interval (s) of the meters of some roles, as a utility configures its
        meters' push schedules (e.g. 15-min load-profile pushes instead of the 1-s substation stream).
        ``on_clock``: those meters read on the clock (epoch % interval == 0) instead of at their own offset."""
        unknown = sorted(set(intervals) - set(ROLES))
        if unknown:
            raise FleetError(f"unknown meter role(s) {', '.join(unknown)} (roles: {', '.join(ROLES)})")
        bad = sorted(role for role, seconds in intervals.items() if seconds < 1)
        if bad:
            raise FleetError(f"the reporting interval of {', '.join(bad)} must be at least 1 s")
        for meter in self.meters:
            seconds = intervals.get(meter.role)
            if seconds is None:
                continue
            meter.interval_s, meter.on_clock = int(seconds), on_clock
            meter.phase = stable_int(meter.pilot, meter.id, "phase") % meter.interval

    def extend(self, other: Fleet) -> None:
        seen = {m.id for m in self.meters}
        clash = [m.id for m in other.meters if m.id in seen]
        if clash:
            raise FleetError(f"meter ids in two inventories: {', '.join(clash[:5])}")
        self.meters.extend(other.meters)
        self.substation_customers.update(other.substation_customers)
        self.substation_meter.update(other.substation_meter)
        self.timezones.update(other.timezones)


def _role(meter: Meter, group: Group) -> Role:
    protocol = meter.protocol or group.protocol
    model = (meter.model or "").upper()
    if protocol == "mbus":
        return "heat_mbus"
    if protocol == "wmbus":
        return "water_wmbus"
    if protocol == "dlms":
        return "substation_dlms" if meter.phases == 3 or meter.building is None else "elec_dlms"
    if protocol == "midori":
        return "nialm"
    if protocol == "ennova":
        return "ennova"
    if protocol == "connode":
        if model == "ECHELON":
            return "echelon"
        if model == "DH" or meter.type == "heat":
            return "heat_connode"
        if (group.service_path and "pv" in group.service_path) or meter.id.upper().startswith(("MA-PV", "PV")):
            return "pv"
        return "e350"
    raise FleetError(f"meter {meter.id}: the simulator has no model for protocol {protocol!r}")


def _key(meter: Meter, base: Path, known: Mapping[str, str], *names: str) -> bytes | None:
    """A key by its reference: from ``known`` (a generated fleet's keys, by key-file entry) or resolved
    as provisioning resolves it (``file:``, ``env:``)."""
    for name in names:
        ref = meter.keys.get(name)
        if ref:
            entry = ref.partition("#")[2]
            try:
                value = known[entry] if entry in known else resolve(ref, base)
                return bytes.fromhex(value)
            except ValueError:
                raise FleetError(f"meter {meter.id}: key {name} is not hex") from None
            except FlexmeterError as exc:
                raise FleetError(f"meter {meter.id}: key {name}: {exc}") from None
    return None


def _gateway(role: Role, apikey: str, ordinal: int) -> str:
    if role in ("heat_mbus", "water_wmbus"):
        return f"IREN-CONC-{ordinal // METERS_PER_CONCENTRATOR + 1:03d}"
    if role in ("elec_dlms", "substation_dlms"):
        return f"STI-{ordinal // METERS_PER_CONCENTRATOR + 1:03d}"
    if role in ("e350", "pv", "echelon", "heat_connode"):
        return f"CN-{apikey}-{ordinal // METERS_PER_GATEWAY + 1:02d}"
    return apikey


def fleet_from_tenant(tenant: Tenant, base: Path, pilot: str, known_keys: Mapping[str, str] | None = None) -> Fleet:
    """The simulated meters of one tenant of a valid inventory."""
    groups = {g.apikey: g for g in tenant.groups}
    buildings = {b.id: b for b in tenant.buildings}
    feeders = {f.id: f for f in tenant.feeders}
    service = tenant.service or pilot
    known = known_keys or {}
    fleet = Fleet(timezones={pilot: tenant.timezone or "UTC"})
    ordinals: dict[str, int] = {}
    for item in tenant.meters:
        group = groups[item.group]
        role = _role(item, group)
        ordinal = ordinals.get(role, 0)
        ordinals[role] = ordinal + 1
        building = buildings.get(item.building) if item.building else None
        feeder = item.feeder or (building.feeder if building else None)
        substation = item.substation or (building.substation if building else None)
        if substation is None and feeder is not None and feeder in feeders:
            substation = feeders[feeder].substation
        address = item.address
        serial = str(address.get("secondary") or item.serial or "") or None
        if role in ("heat_mbus", "water_wmbus") and item.device_id and not address.get("secondary"):
            serial = item.device_id  # the secondary address the agent names the meter by
        manufacturer = item.manufacturer
        version, medium = _int(address.get("version")), _int(address.get("medium"))
        if serial and len(serial) == 16:  # the full secondary address: ID, manufacturer, version, medium
            try:
                manufacturer = manufacturer_code(int(serial[8:12], 16))
                version, medium, serial = int(serial[12:14], 16), int(serial[14:16], 16), serial[:8]
            except ValueError:
                raise FleetError(f"meter {item.id}: address.secondary {serial!r} is not 16 hex digits") from None
        title = address.get("system_title")
        meter = SimMeter(
            id=item.id, role=role, pilot=pilot, service=service,
            service_path=group.service_path or tenant.default_service_path or "/",
            apikey=group.apikey, gateway=_gateway(role, group.apikey, ordinal), building=item.building,
            feeder=feeder, substation=substation, serial=serial, manufacturer=manufacturer,
            mbus_version=version, mbus_medium=medium, device_id=item.device_id or item.id,
            system_title=bytes.fromhex(str(title)) if title else None,
            contracted_kw=building.contracted_heat_power if building else None,
            customers=(building.customers_count or 1) if building else 1,
        )
        if role == "water_wmbus":
            key = _key(item, base, known, "aes_key", "wmbus_key", "key")
            if key is None:
                raise FleetError(f"meter {item.id}: a wM-Bus water meter needs keys.aes_key (OMS mode 5)")
            meter.keys["aes"] = key
        if role in ("elec_dlms", "substation_dlms"):
            guek = _key(item, base, known, "guek", "dlms_guek")
            gak = _key(item, base, known, "gak", "dlms_gak")
            if guek is None or meter.system_title is None:
                raise FleetError(f"meter {item.id}: a DLMS meter needs keys.guek and address.system_title")
            meter.keys["guek"] = guek
            meter.keys["gak"] = gak or guek
        if role in ("heat_mbus", "water_wmbus"):
            if not (serial and serial.isdigit() and len(serial) <= 8):
                raise FleetError(f"meter {item.id}: an M-Bus meter needs address.secondary (up to 8 digits, or "
                                 f"the 16-hex-digit secondary address)")
            if item.device_id and item.device_id.upper() != mbus_device_id(meter):
                raise FleetError(f"meter {item.id}: device_id {item.device_id} is not the secondary address its "
                                 f"frames carry ({mbus_device_id(meter)})")
        meter.phase = stable_int(pilot, item.id, "phase") % meter.interval
        fleet.meters.append(meter)
        if role in ("substation_dlms", "echelon") and substation:
            fleet.substation_meter[substation] = item.id
    for meter in fleet.meters:
        if meter.substation and meter.role in ("elec_dlms", "e350", "pv"):
            fleet.substation_customers.setdefault(meter.substation, []).append(meter.id)
    return fleet


def _int(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text, 16) if text.lower().startswith("0x") else int(text)


def mbus_device_id(meter: SimMeter) -> str:
    """The M-Bus agent's device id of a simulated meter: its 16-hex-digit secondary address
    (docs/mbus-agent.md): ID, manufacturer, version, medium."""
    from flexmeter.simulator.frames import mbus_identity

    serial, manufacturer, version, medium = mbus_identity(meter)
    return f"{int(serial):08d}{manufacturer_value(manufacturer):04X}{version:02X}{medium:02X}"


def pilot_of(service: str) -> str:
    """The pilot of a tenant: IREN's is Turin, E.ON's Malmö (tenants named ``iren...``/``eon...`` too)."""
    for prefix, pilot in (("iren", "turin"), ("eon", "malmo")):
        if service.startswith(prefix):
            return pilot
    return service


def fleet_from_document(document: object, base: Path, known_keys: Mapping[str, str] | None = None,
                        shown: str = "inventory") -> Fleet:
    """The fleet of an inventory document (every tenant in it), validated with the provisioning schema.

    Reference checks (a meter naming a building that does not exist, ...) are ``flexmeter provision``'s job;
    this is the fast path for inventories of tens of thousands of meters."""
    try:
        inventory = Inventory.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise FleetError(f"{shown}: not a valid inventory ({exc.error_count()} problem(s); first: "
                         f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}); "
                         f"run `flexmeter provision plan` on it for the full list") from None
    fleet = Fleet()
    for tenant in inventory.tenants:
        for entry in tenant.meter_files:
            csv_path = Path(entry.file) if Path(entry.file).is_absolute() else base / entry.file
            meters, problems = read_meter_csv(csv_path, entry, entry.file)
            if problems:
                raise FleetError(f"{entry.file}: {problems[0]}")
            tenant.meters.extend(meters)
        fleet.extend(fleet_from_tenant(tenant, base, pilot_of(tenant.service or ""), known_keys))
    return fleet


def load_fleet(path: Path | str) -> Fleet:
    """The fleet of an inventory file (YAML, with the CSV meter lists and key files it names)."""
    path = Path(path)
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as exc:
        raise FleetError(f"cannot read the inventory {path}: {exc}") from None
    return fleet_from_document(document, path.resolve().parent, shown=str(path))
