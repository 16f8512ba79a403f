"""Device: one entity per physical meter, with what it measures, how it talks and where it sits.

``controlledProperty`` and ``supportedProtocol`` use the Device model's enums. The model has no value
for heat and no M-Bus or DLMS protocol, so a heat meter lists ``energy``, ``power``, ``temperature`` and
``waterFlow``, ``supportedProtocol`` names the uplink transport (``mqtt``, ``http``), and the meter's own
protocol goes into the ``meterProtocol`` extension. The topology the business service needs (which
building, feeder and substation a meter belongs to) is in ``refBuilding``/``refFeeder``/``refSubstation``
(extensions, one Relationship each, so that ``q=refFeeder==<id>`` selects a feeder's meters); the
building is also the model's ``controlledAsset``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from flexmeter.ngsi_models.table import (
    EntityTable,
    GeoPoint,
    Json,
    Kind,
    Number,
    Row,
    assemble,
    builder_values,
)

#: The subset of the Device model's ``controlledProperty`` enum that meters measure.
CONTROLLED_PROPERTIES = (
    "electricityConsumption",
    "energy",
    "power",
    "waterConsumption",
    "waterFlow",
    "temperature",
    "gasConsumption",
    "pressure",
    "batteryLife",
)
#: The Device model's ``supportedProtocol`` enum (complete).
SUPPORTED_PROTOCOLS = (
    "3g",
    "bluetooth",
    "bluetooth LE",
    "cat-m",
    "coap",
    "ec-gsm-iot",
    "gprs",
    "http",
    "lwm2m",
    "lora",
    "lte-m",
    "mqtt",
    "nb-iot",
    "onem2m",
    "sigfox",
    "ul20",
    "websocket",
)
#: The meter protocols flexmeter's agents speak (the ``meterProtocol`` extension).
METER_PROTOCOLS = ("mbus", "wmbus", "dlms", "iec62056-21", "connode", "midori", "ennova", "json")
METER_TYPES = ("electricity", "heat", "water", "gas")
DEVICE_CATEGORIES = (
    "actuator",
    "beacon",
    "endgun",
    "HVAC",
    "implement",
    "irrSection",
    "irrSystem",
    "meter",
    "multimedia",
    "network",
    "sensor",
)

#: What each kind of meter measures, for ``controlledProperty`` when the inventory does not say.
DEFAULT_CONTROLLED_PROPERTY = {
    "electricity": ("electricityConsumption", "energy", "power"),
    "heat": ("energy", "power", "temperature", "waterFlow"),
    "water": ("waterConsumption", "waterFlow"),
    "gas": ("gasConsumption",),
}

DEVICE = EntityTable(
    entity_type="Device",
    summary="One per physical meter (and per concentrator/gateway), created by provisioning.",
    rows=(
        Row("name", Kind.TEXT, "inventory name"),
        Row("description", Kind.TEXT, "free text"),
        Row("location", Kind.GEO, "installation position (GeoJSON, longitude first)"),
        Row("deviceCategory", Kind.ENUM_LIST, "kind of device (meter)", enum=DEVICE_CATEGORIES),
        Row(
            "controlledProperty",
            Kind.ENUM_LIST,
            "what the meter measures",
            enum=CONTROLLED_PROPERTIES,
            required=True,
        ),
        Row("supportedProtocol", Kind.ENUM_LIST, "uplink transport to flexmeter", enum=SUPPORTED_PROTOCOLS),
        Row("meterProtocol", Kind.ENUM, "meter protocol (agent family)", enum=METER_PROTOCOLS, extension=True),
        Row("meterType", Kind.ENUM, "commodity", enum=METER_TYPES, extension=True),
        Row("serialNumber", Kind.TEXT, "meter serial / secondary address / system title"),
        Row("manufacturerName", Kind.TEXT, "manufacturer (e.g. M-Bus manufacturer code)", extension=True),
        Row("firmwareVersion", Kind.TEXT, "firmware version"),
        Row("hardwareVersion", Kind.TEXT, "hardware version"),
        Row("refDeviceModel", Kind.REF, "DeviceModel entity"),
        Row("controlledAsset", Kind.REF_LIST, "the building (or asset) the meter measures"),
        Row("refBuilding", Kind.REF, "Building the meter belongs to", extension=True),
        Row("refFeeder", Kind.REF, "LV feeder the meter is connected to", extension=True),
        Row("refSubstation", Kind.REF, "MV/LV substation the meter is fed from", extension=True),
        Row("dateInstalled", Kind.DATETIME, "installation date"),
        Row("deviceState", Kind.TEXT, "operational state (e.g. ok, silent, disconnected)"),
        Row("dateLastValueReported", Kind.DATETIME, "time of the last reading received"),
        Row("batteryLevel", Kind.NUMBER, "battery level (0..1)", "C62", Decimal(0), Decimal(1)),
        Row("rssi", Kind.NUMBER, "received signal strength of the last telegram", "DBM"),
    ),
    sdm_model="Device",
    time_instant=False,
    notes=(
        "The model's `category` is deprecated in favour of `deviceCategory`; flexmeter writes "
        "`deviceCategory` "
        '`["meter"]` unless told otherwise.',
        "`controlledProperty` defaults by `meterType` (see `DEFAULT_CONTROLLED_PROPERTY`).",
    ),
)


def device(
    meter_id: str,
    *,
    meter_type: str | None = None,
    controlled_property: Sequence[str] | None = None,
    name: str | None = None,
    description: str | None = None,
    location: GeoPoint | Mapping[str, Any] | None = None,
    device_category: Sequence[str] | None = ("meter",),
    supported_protocol: Sequence[str] | None = None,
    meter_protocol: str | None = None,
    serial_number: str | None = None,
    manufacturer_name: str | None = None,
    firmware_version: str | None = None,
    hardware_version: str | None = None,
    ref_device_model: str | None = None,
    controlled_asset: Sequence[str] | None = None,
    ref_building: str | None = None,
    ref_feeder: str | None = None,
    ref_substation: str | None = None,
    date_installed: datetime | None = None,
    device_state: str | None = None,
    date_last_value_reported: datetime | None = None,
    battery_level: Number | None = None,
    rssi: Number | None = None,
) -> Json:
    """A meter as a normalized ``Device`` (id ``urn:ngsi-ld:Device:<meter_id>``)."""
    values = builder_values(locals(), "meter_id")
    if controlled_property is None and meter_type in DEFAULT_CONTROLLED_PROPERTY:
        values["controlled_property"] = DEFAULT_CONTROLLED_PROPERTY[meter_type]
    if controlled_asset is None and ref_building is not None:
        values["controlled_asset"] = [ref_building]
    return assemble(DEVICE, meter_id, values)
