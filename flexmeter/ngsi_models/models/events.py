"""Alerts and anomalies: outages ("last gasp", per-phase outage), tamper, leaks, backflow, low ΔT, silence.

**Alert** is for events people must act on. Its ``category`` enum has no energy or technical value, so
flexmeter uses ``security`` (security of supply, tamper) and puts the event's own kind and figures in
the model's free ``data`` object (``{"event": "powerOutage", "customersAffected": 12, ...}``);
``validFrom``/``validTo`` are the outage's start and restoration. ``subCategory`` is left out: its enum
is about traffic, weather and health.

**Anomaly** (same repository) is for detections on measured data: ``anomalousProperty`` names the
attribute, ``thresholdBreach`` lists the observations that crossed the threshold. Which entity is
anomalous is the ``refDevice`` extension, and what kind of anomaly it is the ``anomalyType`` extension.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from flexmeter.ngsi_models.base import format_datetime
from flexmeter.ngsi_models.errors import InvalidValueError
from flexmeter.ngsi_models.table import (
    EntityTable,
    GeoPoint,
    Json,
    Kind,
    Number,
    Row,
    assemble,
    builder_values,
    json_number,
)

ALERT_CATEGORIES = (
    "traffic",
    "naturalDisaster",
    "weather",
    "environment",
    "health",
    "security",
    "agriculture",
)
SEVERITIES = ("informational", "low", "medium", "high", "critical")
AlertCategory = Literal["traffic", "naturalDisaster", "weather", "environment", "health", "security", "agriculture"]
Severity = Literal["informational", "low", "medium", "high", "critical"]

ALERT = EntityTable(
    entity_type="Alert",
    summary="Outages (last gasp, per-phase outage) per affected area, tamper, remote breaker events.",
    rows=(
        Row("name", Kind.TEXT, "short title"),
        Row("description", Kind.TEXT, "human-readable explanation"),
        Row("location", Kind.GEO, "where (GeoJSON)"),
        Row(
            "category",
            Kind.ENUM,
            "alert category (security for supply and tamper events)",
            enum=ALERT_CATEGORIES,
            required=True,
        ),
        Row("severity", Kind.ENUM, "severity", enum=SEVERITIES),
        Row(
            "alertSource",
            Kind.REF,
            "entity the alert is about (meter Device, Building, Feeder, Substation)",
            required=True,
        ),
        Row("dateIssued", Kind.DATETIME, "when the alert was raised", param="issued_at", required=True),
        Row("validFrom", Kind.DATETIME, "event start (e.g. outage start)"),
        Row("validTo", Kind.DATETIME, "event end (e.g. restoration)"),
        Row("data", Kind.OBJECT, "event details: event kind, customers affected, duration, phases ..."),
    ),
    sdm_model="Alert",
    notes=("`TimeInstant` is `dateIssued`.",),
)


@dataclass(frozen=True)
class ThresholdBreach:
    """One observation beyond a threshold (an item of Anomaly's ``thresholdBreach``)."""

    observed_at: datetime
    measured_value: Number
    threshold_type: Literal["UPPER", "LOWER"]
    threshold_value: Number

    def to_json(self) -> Json:
        if self.threshold_type not in ("UPPER", "LOWER"):
            raise InvalidValueError(f"thresholdType must be UPPER or LOWER, not {self.threshold_type!r}")
        return {
            "dateObserved": format_datetime(self.observed_at),
            "measuredValue": json_number(self.measured_value, "measuredValue"),
            "thresholdType": self.threshold_type,
            "thresholdValue": json_number(self.threshold_value, "thresholdValue"),
        }


ANOMALY_TYPES = (
    "leak",
    "backflow",
    "lowDeltaT",
    "silence",
    "overVoltage",
    "underVoltage",
    "powerOutage",
    "tamper",
    "registerReset",
    "meterReplaced",
    "other",
)

ANOMALY = EntityTable(
    entity_type="Anomaly",
    summary="Detections on measured data: leak, backflow, low ΔT, silent meter, voltage out of range.",
    rows=(
        Row("name", Kind.TEXT, "short title"),
        Row("description", Kind.TEXT, "human-readable explanation"),
        Row("location", Kind.GEO, "where (GeoJSON)"),
        Row("anomalousProperty", Kind.TEXT, "attribute that behaved abnormally (e.g. flow)", required=True),
        Row("dateDetected", Kind.DATETIME, "when it was detected", param="detected_at", required=True),
        Row("detectedBy", Kind.TEXT, "detector (URI: the service or agent)"),
        Row("thresholdBreach", Kind.OBJECT, "the observations beyond the threshold"),
        Row(
            "refDevice",
            Kind.REF,
            "entity whose data is anomalous (meter Device or measurement)",
            extension=True,
        ),
        Row("anomalyType", Kind.ENUM, "kind of anomaly", enum=ANOMALY_TYPES, extension=True),
    ),
    sdm_model="Anomaly",
    notes=("`TimeInstant` is `dateDetected`. `detectedBy` must be a URI (the model says so).",),
)


def alert(
    alert_id: str,
    *,
    category: AlertCategory,
    alert_source: str,
    issued_at: datetime,
    severity: Severity | None = None,
    name: str | None = None,
    description: str | None = None,
    location: GeoPoint | Mapping[str, Any] | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    data: Mapping[str, Any] | None = None,
) -> Json:
    """A normalized ``Alert`` (id ``urn:ngsi-ld:Alert:<alert_id>``)."""
    values = builder_values(locals(), "alert_id")
    if valid_from is not None and valid_to is not None and valid_to < valid_from:
        raise InvalidValueError("Alert: validTo is before validFrom")
    return assemble(ALERT, alert_id, values, observed_at=issued_at)


def anomaly(
    anomaly_id: str,
    *,
    anomalous_property: str,
    detected_at: datetime,
    detected_by: str | None = None,
    threshold_breach: Sequence[ThresholdBreach] | None = None,
    ref_device: str | None = None,
    anomaly_type: str | None = None,
    name: str | None = None,
    description: str | None = None,
    location: GeoPoint | Mapping[str, Any] | None = None,
) -> Json:
    """A normalized ``Anomaly`` (id ``urn:ngsi-ld:Anomaly:<anomaly_id>``)."""
    values = builder_values(locals(), "anomaly_id")
    if threshold_breach is not None:
        values["threshold_breach"] = [breach.to_json() for breach in threshold_breach]
    if detected_by is not None and ":" not in detected_by:
        raise InvalidValueError(f"Anomaly: detectedBy must be a URI, got {detected_by!r}")
    return assemble(ANOMALY, anomaly_id, values, observed_at=detected_at)
