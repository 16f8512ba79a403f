"""Realistic inputs for every builder: one 'full' set (every table input given) and one minimal set each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D
from typing import Any

import flexmeter.ngsi_models as nm
from flexmeter.ngsi_models import GeoPoint, ThresholdBreach

T = datetime(2026, 11, 27, 3, 15, 0, 250000, tzinfo=UTC)
ROME = timezone(timedelta(hours=1))
TURIN = GeoPoint(7.6869, 45.0703)
MALMO = GeoPoint(13.0038, 55.6050)
DEV = "urn:ngsi-ld:Device:"

THREE_PHASE_FULL: dict[str, Any] = dict(
    observed_at=T,
    name="Cabina MT/BT 0412 TR1",
    description="Echelon CT meter, transformer 1",
    location=MALMO,
    ref_device=[DEV + "echelon-0412"],
    ref_target_device=["urn:ngsi-ld:Substation:0412"],
    date_energy_metering_started=datetime(2019, 1, 1, tzinfo=UTC),
    total_active_energy_import=D("150781.964"),
    total_active_energy_export=D("1059.802"),
    total_reactive_energy_import=D("20490.339"),
    total_reactive_energy_export=D("93275.022"),
    total_apparent_energy_import=D("160000.5"),
    total_apparent_energy_export=D("2000.25"),
    active_energy_import={"L1": D("50000.1"), "L2": D("50000.2"), "L3": D("50781.664")},
    active_energy_export={"L1": D("353.2"), "L2": D("353.3"), "L3": D("353.302")},
    reactive_energy_import={"L1": 6830, "L2": 6830, "L3": D("6830.339")},
    reactive_energy_export={"L1": 31091, "L2": 31092, "L3": D("31092.022")},
    apparent_energy_import={"L1": 53333, "L2": 53333, "L3": D("53334.5")},
    apparent_energy_export={"L1": 666, "L2": 667, "L3": D("667.25")},
    total_active_power=D("31700.27"),
    total_reactive_power=D("-7830.33"),
    total_apparent_power=D("36019.09"),
    active_power={"L1": D("11996.42"), "L2": D("-461.5"), "L3": D("10242.35")},
    reactive_power={"L1": D("-2612.61"), "L2": D("-2209.91"), "L3": D("-3007.82")},
    apparent_power={"L1": D("13201.41"), "L2": D("10755.3"), "L3": D("11941.09")},
    total_power_factor=D("0.88"),
    power_factor={"L1": D("0.908"), "L2": D("-0.1"), "L3": D("0.859")},
    total_displacement_power_factor=D("0.97"),
    displacement_power_factor={"L1": D("0.978"), "L2": D("0.973"), "L3": D("0.960")},
    frequency=D("50.02"),
    current={"L1": D("56.126"), "L2": D("45.894"), "L3": D("50.872"), "N": 0},
    phase_voltage={"L1": D("234.96"), "L2": D("234.56"), "L3": D("235.35")},
    phase_to_phase_voltage={"L12": D("406.77"), "L23": D("407.08"), "L31": D("407.73")},
    thd_voltage={"L1": D("0.0147"), "L2": D("0.016"), "L3": D("0.0154")},
    thd_current={"L1": D("0.385"), "L2": D("0.458"), "L3": D("0.494")},
    total_active_power_import=D("31700.27"),
    total_active_power_export=0,
    total_active_energy_net=D("149722.162"),
    total_active_energy_absolute=D("151841.766"),
    sin_phase_angle={"L1": D("0.42"), "L2": D("-0.99"), "L3": D("0.51")},
    power_outage={"L1": False, "L2": False, "L3": True},
    pulse_count=123456,
)

AC_FULL: dict[str, Any] = dict(
    observed_at=T.astimezone(ROME),
    location=TURIN,
    phase_type="threePhase",
    name="E350 via Connode",
    description="household, 3-phase",
    date_observed_from=T - timedelta(seconds=10),
    date_observed_to=T,
    ref_device=[DEV + "e350-4711"],
    ref_target_device=["urn:ngsi-ld:Building:via-roma-12"],
    date_energy_metering_started=datetime(2020, 3, 1, tzinfo=UTC),
    total_active_energy_import=D("4711.123"),
    total_active_energy_export=D("815.5"),
    total_reactive_energy_import=D("12.5"),
    total_reactive_energy_export=D("3.25"),
    total_apparent_energy_import=D("4800.1"),
    total_apparent_energy_export=D("820"),
    active_energy_import={"L1": D("1570.374"), "L2": D("1570.374"), "L3": D("1570.375")},
    active_energy_export={"L1": D("271.8"), "L2": D("271.8"), "L3": D("271.9")},
    reactive_energy_import={"L1": 4, "L2": 4, "L3": D("4.5")},
    reactive_energy_export={"L1": 1, "L2": 1, "L3": D("1.25")},
    apparent_energy_import={"L1": 1600, "L2": 1600, "L3": D("1600.1")},
    apparent_energy_export={"L1": 273, "L2": 273, "L3": 274},
    total_active_power=D("-1250.5"),
    total_reactive_power=D("120.25"),
    total_apparent_power=D("1300.75"),
    active_power={"L1": D("0"), "L2": D("310.2"), "L3": D("42")},
    reactive_power={"L1": D("-10.5"), "L2": D("40"), "L3": D("90.75")},
    apparent_power={"L1": D("10.5"), "L2": D("320"), "L3": D("100")},
    total_power_factor=D("0.96"),
    power_factor={"L1": D("0.5"), "L2": D("0.97"), "L3": D("0.42")},
    total_displacement_power_factor=D("0.97"),
    displacement_power_factor={"L1": D("0.6"), "L2": D("0.98"), "L3": D("0.5")},
    frequency=D("49.98"),
    current={"L1": D("0.05"), "L2": D("1.35"), "L3": D("0.44"), "N": D("1.1")},
    phase_voltage={"L1": D("230.1"), "L2": D("229.8"), "L3": D("231.4")},
    phase_to_phase_voltage={"L12": D("398.5"), "L23": D("399.1"), "L31": D("400")},
    thd_voltage={"L1": D("0.02"), "L2": D("0.021"), "L3": D("0.019")},
    thd_current={"L1": D("0.1"), "L2": D("0.12"), "L3": D("0.11")},
)

WATER_FULL: dict[str, Any] = dict(
    observed_at=T,
    name="wM-Bus water meter 12345678",
    description="cold water, apartment 3",
    location=TURIN,
    ref_device=DEV + "wmbus-12345678",
    water_consumption=nm.convert(D("191.051"), "MTQ", "LTR"),
    min_flow=1,
    max_flow=620,
    flow=D("0.012"),
    backflow_volume=3,
    alarm_in_progress=True,
    alarm_tamper=False,
    alarm_stops_leaks=False,
    alarm_water_quality=False,
    module_tampered=False,
    acquisition_stage_failure=False,
    alarm_flow_persistence="Nothing to report",
    water_type="serviceWater",
)

HEAT_FULL: dict[str, Any] = dict(
    observed_at=T,
    name="Kamstrup MULTICAL 603",
    description="DH substation, via Roma 12",
    location=TURIN,
    ref_device=DEV + "mbus-KAM-87654321",
    total_consumption=nm.convert(D("1234.567"), "MWH", "KWH"),
    peak_consumption=D("1000000.5"),
    off_peak_consumption=D("234566.5"),
    forward_temperature=D("72.4"),
    return_temperature=D("41.9"),
    temperature_difference=D("30.5"),
    volume_flow=D("1.234"),
    volume=D("45678.91"),
    thermal_power=D("43.8"),
    peak_power=D("112.5"),
)

DEVICE_FULL: dict[str, Any] = dict(
    meter_type="electricity",
    controlled_property=["electricityConsumption", "energy", "power"],
    name="E350 4711",
    description="Landis+Gyr E350, Connode module",
    location=MALMO,
    device_category=["meter"],
    supported_protocol=["mqtt"],
    meter_protocol="connode",
    serial_number="LGZ1030000004711",
    manufacturer_name="LGZ",
    firmware_version="B31",
    hardware_version="2",
    ref_device_model="urn:ngsi-ld:DeviceModel:E350",
    controlled_asset=["urn:ngsi-ld:Building:lorensborg-7"],
    ref_building="urn:ngsi-ld:Building:lorensborg-7",
    ref_feeder="urn:ngsi-ld:Feeder:0412-F3",
    ref_substation="urn:ngsi-ld:Substation:0412",
    date_installed=datetime(2015, 6, 1, 8, 0, tzinfo=UTC),
    device_state="ok",
    date_last_value_reported=T,
    battery_level=D("0.87"),
    rssi=-71,
)

ALERT_FULL: dict[str, Any] = dict(
    category="security",
    alert_source="urn:ngsi-ld:Feeder:0412-F3",
    issued_at=T,
    severity="high",
    name="Power outage",
    description="Last gasp from 12 meters on feeder 0412-F3",
    location=MALMO,
    valid_from=T - timedelta(minutes=3),
    valid_to=T + timedelta(minutes=40),
    data={"event": "powerOutage", "customersAffected": 12, "phases": ["L2"], "durationSeconds": 2580},
)

ANOMALY_FULL: dict[str, Any] = dict(
    anomalous_property="flow",
    detected_at=T,
    detected_by="urn:ngsi-ld:Service:flexmeter-water",
    threshold_breach=[
        ThresholdBreach(T - timedelta(days=2), D("0.012"), "UPPER", D("0.005")),
        ThresholdBreach(T - timedelta(days=1), D("0.011"), "UPPER", D("0.005")),
        ThresholdBreach(T, D("0.013"), "UPPER", D("0.005")),
    ],
    ref_device=DEV + "wmbus-12345678",
    anomaly_type="leak",
    name="Leak suspected",
    description="night minimum flow above 5 l/h for 3 nights",
    location=TURIN,
)

BUILDING_FULL: dict[str, Any] = dict(
    name="Via Roma 12",
    description="apartment block, 24 flats",
    address={
        "streetAddress": "Via Roma 12",
        "addressLocality": "Torino",
        "postalCode": "10121",
        "addressCountry": "IT",
    },
    location=TURIN,
    category="residential",
    ref_feeder="urn:ngsi-ld:Feeder:0412-F3",
    ref_substation="urn:ngsi-ld:Substation:0412",
    contracted_heat_power=D("250"),
    customers_count=24,
)

SUBSTATION_FULL: dict[str, Any] = dict(
    name="Cabina 0412",
    description="MV/LV secondary substation",
    address={"addressLocality": "Malmö"},
    location=MALMO,
    primary_voltage=D("10"),
    secondary_voltage=400,
    rated_power=630,
    transformer_count=1,
    ref_device=[DEV + "echelon-0412"],
)

FEEDER_FULL: dict[str, Any] = dict(
    ref_substation="urn:ngsi-ld:Substation:0412",
    name="0412-F3",
    description="LV line north",
    address={"addressLocality": "Malmö"},
    location={"type": "LineString", "coordinates": [[13.0038, 55.6050], [13.0101, 55.6093]]},
    ref_device=[DEV + "echelon-0412-f3"],
    rated_current=250,
)

BALANCE_FULL: dict[str, Any] = dict(
    ref_substation="urn:ngsi-ld:Substation:0412",
    period_start=T,
    period_end=T + timedelta(minutes=15),
    ref_feeder="urn:ngsi-ld:Feeder:0412-F3",
    energy_delivered=D("100.0"),
    energy_consumed=D("99.2"),
    energy_produced=D("2.2"),
    losses=D("3.0"),
    losses_percent=D("2.941"),
    completeness=D("0.975"),
    meters_expected=40,
    meters_reported=39,
    estimated=True,
)

PROFILE_FULL: dict[str, Any] = dict(
    vector="electricity",
    resolution="PT15M",
    period_start=T,
    period_end=T + timedelta(minutes=15),
    ref_device=DEV + "e350-4711",
    ref_building="urn:ngsi-ld:Building:lorensborg-7",
    consumption=D("0.125"),
    production=D("0.5"),
    estimated=False,
    completeness=1,
)

#: builder → (local id, full inputs, minimal inputs)
SAMPLES: dict[Callable[..., dict[str, Any]], tuple[str, dict[str, Any], dict[str, Any]]] = {
    nm.three_phase_ac_measurement: ("echelon-0412-tr1", THREE_PHASE_FULL, {"observed_at": T}),
    nm.ac_measurement: (
        "e350-4711",
        AC_FULL,
        {"observed_at": T, "location": TURIN, "phase_type": "singlePhase"},
    ),
    nm.water_consumption_observed: ("wmbus-12345678", WATER_FULL, {"observed_at": T}),
    nm.heat_meter_observation: ("mbus-KAM-87654321", HEAT_FULL, {"observed_at": T}),
    nm.device: ("e350-4711", DEVICE_FULL, {"meter_type": "water"}),
    nm.alert: (
        "outage-0412-F3-20261127T0312",
        ALERT_FULL,
        {"category": "security", "alert_source": DEV + "e350-4711", "issued_at": T},
    ),
    nm.anomaly: ("leak-12345678-20261127", ANOMALY_FULL, {"anomalous_property": "flow", "detected_at": T}),
    nm.building: ("via-roma-12", BUILDING_FULL, {}),
    nm.substation: ("0412", SUBSTATION_FULL, {}),
    nm.feeder: ("0412-F3", FEEDER_FULL, {"ref_substation": "urn:ngsi-ld:Substation:0412"}),
    nm.energy_balance: (
        "0412-F3-20261127T0315",
        BALANCE_FULL,
        {
            "ref_substation": "urn:ngsi-ld:Substation:0412",
            "period_start": T,
            "period_end": T + timedelta(minutes=15),
        },
    ),
    nm.consumption_profile: (
        "e350-4711-PT15M",
        PROFILE_FULL,
        {
            "vector": "water",
            "resolution": "P1D",
            "period_start": T,
            "period_end": T + timedelta(days=1),
            "ref_device": DEV + "wmbus-12345678",
        },
    ),
}
