"""NGSI-v2 wire models and the FLEXMETER entity builders (Smart Data Models).

- Wire format (pydantic v2, for clients, provisioning and the service): :class:`Entity`,
  :class:`Attribute`, :class:`Metadata`, :class:`Subscription`, :class:`Notification`,
  :class:`Registration`, :class:`BatchOperation`, :class:`BatchQuery`. ``model_dump(exclude_none=True,
  by_alias=True)`` (or ``.to_json()``) gives Orion's JSON.
- Builders: typed functions returning normalized entity dicts, each driven by one table
  (source quantity → attribute → NGSI type → unitCode), see :data:`TABLES` and docs/data-models.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flexmeter.ngsi_models.base import format_datetime, parse_datetime
from flexmeter.ngsi_models.batch import BatchOperation, BatchQuery
from flexmeter.ngsi_models.entity import (
    Attribute,
    Entity,
    ErrorBody,
    Metadata,
    check_identifier,
    to_key_values,
)
from flexmeter.ngsi_models.errors import (
    InvalidIdentifierError,
    InvalidValueError,
    NgsiModelError,
    UnknownFieldError,
)
from flexmeter.ngsi_models.models.device import DEVICE, device
from flexmeter.ngsi_models.models.electricity import (
    AC_MEASUREMENT,
    THREE_PHASE_AC_MEASUREMENT,
    ac_measurement,
    three_phase_ac_measurement,
)
from flexmeter.ngsi_models.models.events import ALERT, ANOMALY, ThresholdBreach, alert, anomaly
from flexmeter.ngsi_models.models.heat import HEAT_METER_OBSERVATION, heat_meter_observation
from flexmeter.ngsi_models.models.results import (
    CONSUMPTION_PROFILE,
    ENERGY_BALANCE,
    consumption_profile,
    energy_balance,
)
from flexmeter.ngsi_models.models.topology import BUILDING, FEEDER, SUBSTATION, building, feeder, substation
from flexmeter.ngsi_models.models.water import WATER_CONSUMPTION_OBSERVED, water_consumption_observed
from flexmeter.ngsi_models.registration import Registration
from flexmeter.ngsi_models.subscription import KeyValuesNotification, Notification, Subscription
from flexmeter.ngsi_models.table import EntityTable, GeoPoint, entity_id
from flexmeter.ngsi_models.units import UNITS, convert

#: Every entity table with its builder, in documentation order.
BUILDERS: tuple[tuple[EntityTable, Callable[..., dict[str, Any]]], ...] = (
    (THREE_PHASE_AC_MEASUREMENT, three_phase_ac_measurement),
    (AC_MEASUREMENT, ac_measurement),
    (WATER_CONSUMPTION_OBSERVED, water_consumption_observed),
    (HEAT_METER_OBSERVATION, heat_meter_observation),
    (DEVICE, device),
    (ALERT, alert),
    (ANOMALY, anomaly),
    (BUILDING, building),
    (SUBSTATION, substation),
    (FEEDER, feeder),
    (ENERGY_BALANCE, energy_balance),
    (CONSUMPTION_PROFILE, consumption_profile),
)
TABLES: tuple[EntityTable, ...] = tuple(table for table, _ in BUILDERS)

__all__ = [
    "AC_MEASUREMENT",
    "ALERT",
    "ANOMALY",
    "BUILDERS",
    "BUILDING",
    "CONSUMPTION_PROFILE",
    "DEVICE",
    "ENERGY_BALANCE",
    "FEEDER",
    "HEAT_METER_OBSERVATION",
    "SUBSTATION",
    "TABLES",
    "THREE_PHASE_AC_MEASUREMENT",
    "UNITS",
    "WATER_CONSUMPTION_OBSERVED",
    "Attribute",
    "BatchOperation",
    "BatchQuery",
    "Entity",
    "EntityTable",
    "ErrorBody",
    "GeoPoint",
    "InvalidIdentifierError",
    "InvalidValueError",
    "KeyValuesNotification",
    "Metadata",
    "NgsiModelError",
    "Notification",
    "Registration",
    "Subscription",
    "ThresholdBreach",
    "UnknownFieldError",
    "ac_measurement",
    "alert",
    "anomaly",
    "building",
    "check_identifier",
    "consumption_profile",
    "convert",
    "device",
    "energy_balance",
    "entity_id",
    "feeder",
    "format_datetime",
    "heat_meter_observation",
    "parse_datetime",
    "substation",
    "three_phase_ac_measurement",
    "to_key_values",
    "water_consumption_observed",
]
