"""Default mapping data of the M-Bus family: which decoded record becomes which NGSI attribute, per meter model.

Data, in iotagent attribute syntax (docs/iot-agents.md §3); provisioning overrides any entry by
``object_id``. The decoder names each data record by an **object_id** built from the record itself
(see :func:`object_id`): ``<quantity>[.max|.min|.err][.t<tariff>][.u<subunit>][.s<storage>]``, e.g.
``energy``, ``energy.t1``, ``power.max``, ``volume.s1``. The values arrive already converted to the unit
of the table entry's ``unitCode`` (exactly, with Decimal arithmetic), so a table decides units as well as
names. Attribute names and units follow ``flexmeter.ngsi_models`` (SmartMeteringObservation with
``meterType`` Heat, WaterConsumptionObserved); docs/mbus-agent.md lists them.

Models are ``<class>[:<MAN>[:<version>]]`` (``heat``, ``water:KAM``, ``heat:KAM:27``): the most specific
table that exists wins, so a meter model that reports differently needs one entry here (or a device
``internal_attributes.model`` naming one), not code.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

HISTORIC_STORAGES = range(1, 16)
"""Storage numbers mapped to their own attributes (``totalConsumptionStorage1`` ...)."""

# EN 13757-3 medium (device type) -> the class of table and entity.
MEDIUM_CLASSES: dict[int, str] = {
    0x04: "heat", 0x0C: "heat", 0x0D: "heat",            # heat outlet / inlet, heat/cooling
    0x0A: "cooling", 0x0B: "cooling",
    0x06: "water", 0x07: "water", 0x15: "water", 0x16: "water", 0x28: "water",  # warm, water, hot, cold, waste
    0x03: "gas", 0x02: "electricity",
}

FUNCTION_SUFFIX = {"instantaneous": "", "maximum": ".max", "minimum": ".min", "error": ".err"}


def object_id(quantity: str, function: str, storage: int, tariff: int, subunit: int) -> str:
    """The object_id of a record: the quantity plus what tells apart records of one quantity."""
    key = quantity + FUNCTION_SUFFIX.get(function, "." + function)
    if tariff:
        key += f".t{tariff}"
    if subunit:
        key += f".u{subunit}"
    if storage:
        key += f".s{storage}"
    return key


def _unit(code: str) -> Json:
    return {"unitCode": {"type": "Text", "value": code}}


def attr(object_id_: str, name: str, unit: str | None = None, attr_type: str = "Number") -> Json:
    entry: Json = {"object_id": object_id_, "name": name, "type": attr_type}
    if unit:
        entry["metadata"] = _unit(unit)
    return entry


def _historic(base: str, name: str, unit: str) -> list[Json]:
    return [attr(f"{base}.s{n}", f"{name}Storage{n}", unit) for n in HISTORIC_STORAGES]


def _historic_dates() -> list[Json]:
    return [attr(f"datetime.s{n}", f"storage{n}DateTime", attr_type="Text") for n in HISTORIC_STORAGES] + [
        attr(f"date.s{n}", f"storage{n}Date", attr_type="Text") for n in HISTORIC_STORAGES]


# Silence anomalies (the silence watchdog's readings): a separate Anomaly entity per meter.
SILENCE: list[Json] = [
    {"object_id": f"silence.{key}", "name": name, "type": attr_type,
     "entity_name": "'Anomaly:' + id + ':silence'", "entity_type": "Anomaly",
     **({"expression": "entity_name"} if key == "refDevice" else {})}
    for key, name, attr_type in (
        ("anomalousProperty", "anomalousProperty", "Text"),
        ("anomalyType", "anomalyType", "Text"),
        ("dateDetected", "dateDetected", "DateTime"),
        ("detectedBy", "detectedBy", "Text"),
        ("description", "description", "Text"),
        ("refDevice", "refDevice", "Relationship"),
        ("thresholdBreach", "thresholdBreach", "StructuredValue"),
        ("status", "status", "Text"),
    )
]

COMMON: list[Json] = [
    attr("rssi", "rssi", "DBM"),
    attr("concentrator", "concentrator", attr_type="Text"),
    attr("meterStatus", "meterStatus"),
    attr("accessNumber", "accessNumber"),
    attr("alarm", "alarmInProgress"),
    *SILENCE,
]

HEAT: list[Json] = [
    attr("energy", "totalConsumption", "KWH"),
    attr("energy.t1", "peakConsumption", "KWH"),
    attr("energy.t2", "offPeakConsumption", "KWH"),
    attr("volume", "volume", "MTQ"),
    attr("volume_flow", "volumeFlow", "MQH"),
    attr("power", "thermalPower", "KWT"),
    attr("power.max", "peakPower", "KWT"),
    attr("flow_temperature", "forwardTemperature", "CEL"),
    attr("return_temperature", "returnTemperature", "CEL"),
    attr("temperature_difference", "temperatureDifference", "KEL"),
    *_historic("energy", "totalConsumption", "KWH"),
    *_historic("volume", "volume", "MTQ"),
    *_historic("power.max", "peakPower", "KWT"),
    *_historic_dates(),
    *COMMON,
    # computed: only when the reading carries a measure (a silence reading must not touch the entity)
    {"name": "meterType", "type": "Text", "expression": "totalConsumption != null || volume != null ? 'Heat' : null"},
]

WATER: list[Json] = [
    attr("volume", "waterConsumption", "LTR"),
    attr("volume.backward", "backflowVolume", "LTR"),
    attr("volume_flow", "flow", "MQH"),
    attr("volume_flow.min", "minFlow", "E32"),
    attr("volume_flow.max", "maxFlow", "E32"),
    *_historic("volume", "waterConsumption", "LTR"),
    *_historic_dates(),
    *COMMON,
]

GENERIC: list[Json] = [
    attr("energy", "energy", "KWH"),
    attr("volume", "volume", "MTQ"),
    attr("volume_flow", "volumeFlow", "MQH"),
    attr("power", "power", "KWT"),
    attr("flow_temperature", "forwardTemperature", "CEL"),
    attr("return_temperature", "returnTemperature", "CEL"),
    *COMMON,
]

TABLES: dict[str, list[Json]] = {"heat": HEAT, "cooling": HEAT, "water": WATER, "generic": GENERIC}
ENTITY_TYPES: dict[str, str] = {"heat": "SmartMeteringObservation", "cooling": "SmartMeteringObservation",
                                "water": "WaterConsumptionObserved", "generic": "Device"}


def model_chain(model: str | None) -> list[str]:
    """``heat:KAM:27`` -> [``heat:KAM:27``, ``heat:KAM``, ``heat``, ``generic``] (most specific first)."""
    if not model:
        return ["generic"]
    parts = model.split(":")
    chain = [":".join(parts[:n]) for n in range(len(parts), 0, -1)]
    return [*chain, "generic"]


def table_for(model: str | None) -> list[Json]:
    for name in model_chain(model):
        if name in TABLES:
            return TABLES[name]
    return GENERIC


def entity_type_for(model: str | None) -> str:
    for name in model_chain(model):
        if name in ENTITY_TYPES:
            return ENTITY_TYPES[name]
    return "Device"
