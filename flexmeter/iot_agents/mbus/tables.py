"""EN 13757-3 code tables, precomputed at import into flat 128/256-entry lists (no parsing at decode time).

A ``Vif`` entry says what a VIF code measures and how to scale it to SI: value = raw x mult x 10^exp
(+ nothing else; additive corrections come from VIFEs). Durations are normalised to seconds, volume flow
to m³/h and mass flow to kg/h (exact integer factors), so one quantity has one unit.
"""

from __future__ import annotations

from typing import NamedTuple


class Vif(NamedTuple):
    quantity: str
    unit: str
    exp: int = 0
    mult: int = 1
    kind: str = ""  # "" numeric, "date", "datetime", "time", "text", "fb", "fd", "plain", "any", "mfr", "id"


_DUR = ((1, "s"), (60, "s"), (3600, "s"), (86400, "s"))  # s, min, h, d as seconds


def _primary() -> list[Vif]:
    t: list[Vif] = [Vif("reserved", "", kind="reserved")] * 128
    for n in range(8):
        t[0x00 + n] = Vif("energy", "Wh", n - 3)
        t[0x08 + n] = Vif("energy", "J", n)
        t[0x10 + n] = Vif("volume", "m³", n - 6)
        t[0x18 + n] = Vif("mass", "kg", n - 3)
        t[0x28 + n] = Vif("power", "W", n - 3)
        t[0x30 + n] = Vif("power", "J/h", n)
        t[0x38 + n] = Vif("volume_flow", "m³/h", n - 6)
        t[0x40 + n] = Vif("volume_flow", "m³/h", n - 7, 60)
        t[0x48 + n] = Vif("volume_flow", "m³/h", n - 9, 3600)
        t[0x50 + n] = Vif("mass_flow", "kg/h", n - 3)
    for n in range(4):
        m, u = _DUR[n]
        t[0x20 + n] = Vif("on_time", u, 0, m)
        t[0x24 + n] = Vif("operating_time", u, 0, m)
        t[0x58 + n] = Vif("flow_temperature", "°C", n - 3)
        t[0x5C + n] = Vif("return_temperature", "°C", n - 3)
        t[0x60 + n] = Vif("temperature_difference", "K", n - 3)
        t[0x64 + n] = Vif("external_temperature", "°C", n - 3)
        t[0x68 + n] = Vif("pressure", "bar", n - 3)
        t[0x70 + n] = Vif("averaging_duration", u, 0, m)
        t[0x74 + n] = Vif("actuality_duration", u, 0, m)
    t[0x6C] = Vif("date", "", kind="date")
    t[0x6D] = Vif("datetime", "", kind="datetime")
    t[0x6E] = Vif("hca_units", "")
    t[0x6F] = Vif("reserved", "", kind="reserved")
    t[0x78] = Vif("fabrication_number", "")
    t[0x79] = Vif("enhanced_identification", "")
    t[0x7A] = Vif("bus_address", "")
    t[0x7B] = Vif("extension_fb", "", kind="fb")
    t[0x7C] = Vif("plain_text", "", kind="plain")
    t[0x7D] = Vif("extension_fd", "", kind="fd")
    t[0x7E] = Vif("any", "", kind="any")
    t[0x7F] = Vif("manufacturer_specific", "", kind="mfr")
    return t


def _fb() -> list[Vif]:
    """Extension table after VIF 0xFB (EN 13757-3:2018 table 14)."""
    t: list[Vif] = [Vif("reserved", "", kind="reserved")] * 128
    for n in range(2):
        t[0x00 + n] = Vif("energy", "Wh", n + 5)  # 10^(n-1) MWh
        t[0x02 + n] = Vif("reactive_energy", "varh", n + 3)
        t[0x04 + n] = Vif("apparent_energy", "VAh", n + 3)
        t[0x08 + n] = Vif("energy", "J", n + 8)  # 10^(n-1) GJ
        t[0x10 + n] = Vif("volume", "m³", n + 2)
        t[0x18 + n] = Vif("mass", "kg", n + 5)  # 10^(n+2) t
        t[0x1A + n] = Vif("relative_humidity", "%", n - 1)
        t[0x28 + n] = Vif("power", "W", n + 5)  # 10^(n-1) MW
        t[0x30 + n] = Vif("power", "J/h", n + 8)  # 10^(n-1) GJ/h
    for n in range(4):
        t[0x0C + n] = Vif("energy", "J", n + 5, 4184)  # 10^(n-1) MCal, 1 cal = 4.184 J
        t[0x14 + n] = Vif("reactive_power", "var", n - 3)
        t[0x2C + n] = Vif("frequency", "Hz", n - 3)
        t[0x34 + n] = Vif("apparent_power", "VA", n - 3)
        t[0x58 + n] = Vif("flow_temperature", "°F", n - 3)
        t[0x5C + n] = Vif("return_temperature", "°F", n - 3)
        t[0x60 + n] = Vif("temperature_difference", "°F", n - 3)
        t[0x64 + n] = Vif("external_temperature", "°F", n - 3)
        t[0x70 + n] = Vif("temperature_limit", "°F", n - 3)
        t[0x74 + n] = Vif("temperature_limit", "°C", n - 3)
    t[0x20] = Vif("volume", "ft³")
    t[0x21] = Vif("volume", "ft³", -1)
    t[0x2A] = Vif("phase_u_u", "°", -1)
    t[0x2B] = Vif("phase_u_i", "°", -1)
    for n in range(8):
        t[0x78 + n] = Vif("cumulative_max_power", "W", n - 3)
    return t


def _fd() -> list[Vif]:
    """Extension table after VIF 0xFD (EN 13757-3:2018 table 15)."""
    t: list[Vif] = [Vif("reserved", "", kind="reserved")] * 128
    for n in range(4):
        t[0x00 + n] = Vif("credit", "currency", n - 3)
        t[0x04 + n] = Vif("debit", "currency", n - 3)
        m, u = _DUR[n]
        t[0x24 + n] = Vif("storage_interval", u, 0, m)
        t[0x2C + n] = Vif("duration_since_last_readout", u, 0, m)
        t[0x34 + n] = Vif("period_of_tariff", u, 0, m)
        t[0x68 + n] = Vif("duration_since_last_cumulation", *(("s", 0, 3600), ("s", 0, 86400), ("month", 0, 1),
                                                             ("year", 0, 1))[n])
        t[0x6C + n] = Vif("battery_operating_time", *(("s", 0, 3600), ("s", 0, 86400), ("month", 0, 1),
                                                      ("year", 0, 1))[n])
    for n, name in enumerate(("access_number", "medium", "manufacturer", "parameter_set_id", "model_version",
                              "hardware_version", "firmware_version", "software_version", "customer_location",
                              "customer", "access_code_user", "access_code_operator", "access_code_system_operator",
                              "access_code_developer", "password", "error_flags", "error_mask", "security_key",
                              "digital_output", "digital_input", "baud_rate", "response_delay_time", "retry",
                              "remote_control", "first_storage_number", "last_storage_number",
                              "storage_block_size", "tariff_subunit_descriptor")):
        t[0x08 + n] = Vif(name, "")
    t[0x1C] = Vif("baud_rate", "Bd")
    t[0x1D] = Vif("response_delay_time", "bit_times")
    t[0x28] = Vif("storage_interval", "month")
    t[0x29] = Vif("storage_interval", "year")
    t[0x2A] = Vif("operator_specific_data", "")
    t[0x2B] = Vif("time_point_second", "s")
    t[0x30] = Vif("start_of_tariff", "", kind="datetime")
    t[0x31] = Vif("duration_of_tariff", "s", 0, 60)
    t[0x32] = Vif("duration_of_tariff", "s", 0, 3600)
    t[0x33] = Vif("duration_of_tariff", "s", 0, 86400)
    t[0x38] = Vif("period_of_tariff", "month")
    t[0x39] = Vif("period_of_tariff", "year")
    t[0x3A] = Vif("dimensionless", "")
    t[0x3B] = Vif("register_number", "")
    for n in range(16):
        t[0x40 + n] = Vif("voltage", "V", n - 9)
        t[0x50 + n] = Vif("current", "A", n - 12)
    for n, name in enumerate(("reset_counter", "cumulation_counter", "control_signal", "day_of_week", "week_number",
                              "time_point_of_day_change", "parameter_activation_state",
                              "special_supplier_information")):
        t[0x60 + n] = Vif(name, "")
    t[0x70] = Vif("battery_change", "", kind="datetime")
    t[0x71] = Vif("reception_level", "dBm")
    t[0x72] = Vif("daylight_saving", "")
    t[0x73] = Vif("listening_window_management", "")
    t[0x74] = Vif("remaining_battery_life", "s", 0, 86400)
    t[0x75] = Vif("meter_stop_count", "")
    t[0x76] = Vif("manufacturer_protocol_container", "")
    return t


VIF_PRIMARY: list[Vif] = _primary()
VIF_FB: list[Vif] = _fb()
VIF_FD: list[Vif] = _fd()

# Combinable (orthogonal) VIFEs, EN 13757-3:2018 table 16. Values: (name, kind, arg)
#   kind "per": unit divided by arg; "mul": exp adds arg; "add": additive correction 10^(arg) x unit;
#   "date": the record is a date/time "of" something; "info": a qualifier only; "mfr": rest manufacturer.
VIFE_COMBINABLE: dict[int, tuple[str, str, object]] = {
    0x20: ("per_second", "per", "s"), 0x21: ("per_minute", "per", "min"), 0x22: ("per_hour", "per", "h"),
    0x23: ("per_day", "per", "d"), 0x24: ("per_week", "per", "week"), 0x25: ("per_month", "per", "month"),
    0x26: ("per_year", "per", "year"), 0x27: ("per_revolution", "per", "revolution"),
    0x28: ("per_input_pulse_0", "per", "pulse"), 0x29: ("per_input_pulse_1", "per", "pulse"),
    0x2A: ("per_output_pulse_0", "per", "pulse"), 0x2B: ("per_output_pulse_1", "per", "pulse"),
    0x2C: ("per_litre", "per", "l"), 0x2D: ("per_m3", "per", "m³"), 0x2E: ("per_kg", "per", "kg"),
    0x2F: ("per_kelvin", "per", "K"), 0x30: ("per_kwh", "per", "kWh"), 0x31: ("per_gj", "per", "GJ"),
    0x32: ("per_kw", "per", "kW"), 0x33: ("per_kelvin_litre", "per", "K·l"), 0x34: ("per_volt", "per", "V"),
    0x35: ("per_ampere", "per", "A"), 0x36: ("times_second", "times", "s"),
    0x37: ("times_second_per_volt", "times", "s/V"),
    0x38: ("times_second_per_ampere", "times", "s/A"), 0x39: ("start_date_time_of", "date", None),
    0x3A: ("uncorrected_unit", "info", None), 0x3B: ("accumulation_positive_only", "info", None),
    0x3C: ("accumulation_negative_only", "info", None), 0x3D: ("non_metric_units", "info", None),
    0x3E: ("value_at_base_conditions", "info", None), 0x3F: ("obis_declaration", "info", None),
    0x40: ("lower_limit", "info", None), 0x48: ("upper_limit", "info", None),
    0x41: ("lower_limit_exceed_count", "count", None), 0x49: ("upper_limit_exceed_count", "count", None),
    0x7D: ("multiplier_1e3", "mul", 3), 0x7E: ("future_value", "info", None),
    0x7F: ("manufacturer_specific_vifes", "mfr", None),
}
for _u, _ul in ((0, "lower"), (8, "upper")):
    for _f, _fl in ((0, "first"), (4, "last")):
        VIFE_COMBINABLE[0x42 + _u + _f] = (f"{_fl}_{_ul}_limit_exceed_begin", "date", None)
        VIFE_COMBINABLE[0x43 + _u + _f] = (f"{_fl}_{_ul}_limit_exceed_end", "date", None)
        for _n, _nl in enumerate(("s", "min", "h", "d")):
            VIFE_COMBINABLE[0x50 + _u + _f + _n] = (f"{_fl}_{_ul}_limit_exceed_duration_{_nl}", "duration", _n)
for _f, _fl in ((0, "first"), (4, "last")):
    for _n, _nl in enumerate(("s", "min", "h", "d")):
        VIFE_COMBINABLE[0x60 + _f + _n] = (f"duration_of_{_fl}_{_nl}", "duration", _n)
    VIFE_COMBINABLE[0x6A + _f] = (f"{_fl}_begin_date", "date", None)
    VIFE_COMBINABLE[0x6B + _f] = (f"{_fl}_end_date", "date", None)
for _n in range(8):
    VIFE_COMBINABLE[0x70 + _n] = (f"multiplier_1e{_n - 6}", "mul", _n - 6)
for _n in range(4):
    VIFE_COMBINABLE[0x78 + _n] = (f"additive_1e{_n - 3}", "add", _n - 3)
# 0x00-0x1F: record error codes (slave to master), EN 13757-3 table 17.
for _n in range(0x20):
    VIFE_COMBINABLE.setdefault(_n, (f"record_error_{_n:02x}", "error", _n))

DEVICE_TYPES: dict[int, str] = {
    0x00: "Other", 0x01: "Oil", 0x02: "Electricity", 0x03: "Gas", 0x04: "Heat (outlet)", 0x05: "Steam",
    0x06: "Warm water (30-90 °C)", 0x07: "Water", 0x08: "Heat cost allocator", 0x09: "Compressed air",
    0x0A: "Cooling load meter (outlet)", 0x0B: "Cooling load meter (inlet)", 0x0C: "Heat (inlet)",
    0x0D: "Heat / cooling load meter", 0x0E: "Bus / system component", 0x0F: "Unknown medium",
    0x10: "Irrigation water", 0x11: "Water data logger", 0x12: "Gas data logger", 0x13: "Gas converter",
    0x14: "Calorific value", 0x15: "Hot water (>= 90 °C)", 0x16: "Cold water", 0x17: "Dual register water",
    0x18: "Pressure", 0x19: "A/D converter", 0x1A: "Smoke detector", 0x1B: "Room sensor", 0x1C: "Gas detector",
    0x1D: "Reserved sensor", 0x20: "Breaker (electricity)", 0x21: "Valve (gas or water)",
    0x25: "Customer unit (display)", 0x28: "Waste water", 0x29: "Garbage", 0x2A: "Carbon dioxide",
    0x30: "System device", 0x31: "Communication controller", 0x32: "Unidirectional repeater",
    0x33: "Bidirectional repeater", 0x36: "Radio converter (system side)", 0x37: "Radio converter (meter side)",
    0x38: "Wired adapter",
}

# Manufacturer-specific device types outside EN 13757-3 (data, per manufacturer).
MANUFACTURER_DEVICE_TYPES: dict[tuple[str, int], str] = {
    ("TCH", 0x43): "Heat (outlet)", ("TCH", 0x62): "Warm water (30-90 °C)", ("TCH", 0x72): "Cold water",
    ("TCH", 0x80): "Heat cost allocator", ("TCH", 0xC3): "Heat (outlet)",
}


def device_type_name(code: int, manufacturer: str | None = None) -> str:
    if manufacturer is not None:
        name = MANUFACTURER_DEVICE_TYPES.get((manufacturer, code))
        if name is not None:
            return name
    return DEVICE_TYPES.get(code, "Reserved")


# Fixed data structure (CI 0x73/0x77, EN 1434-3 annex): 6-bit unit codes → (quantity, unit, exp, mult).
FIXED_UNITS: list[tuple[str, str, int, int]] = [("reserved", "", 0, 1)] * 64
for _fi, (_fq, _fu, _fe) in enumerate((("energy", "Wh", 0), ("energy", "Wh", 3), ("energy", "Wh", 6),
                                    ("energy", "J", 3), ("energy", "J", 6), ("energy", "J", 9),
                                    ("power", "W", 0), ("power", "W", 3), ("power", "W", 6),
                                    ("power", "J/h", 3), ("power", "J/h", 6), ("power", "J/h", 9),
                                    ("volume", "m³", -6), ("volume", "m³", -3), ("volume", "m³", 0),
                                    ("volume_flow", "m³/h", -6), ("volume_flow", "m³/h", -3),
                                    ("volume_flow", "m³/h", 0))):
    for _k in range(3):
        FIXED_UNITS[0x02 + _fi * 3 + _k] = (_fq, _fu, _fe + _k, 1)
FIXED_UNITS[0x00] = ("time", "s", 0, 1)  # h,m,s coded: kept raw
FIXED_UNITS[0x01] = ("time", "s", 0, 1)
FIXED_UNITS[0x38] = ("temperature", "°C", -3, 1)
FIXED_UNITS[0x39] = ("hca_units", "", 0, 1)
FIXED_UNITS[0x3E] = ("same_but_historic", "", 0, 1)
FIXED_UNITS[0x3F] = ("dimensionless", "", 0, 1)

FUNCTIONS: tuple[str, str, str, str] = ("instantaneous", "maximum", "minimum", "error")

# Application error codes (CI 0x70 and friends), EN 13757-3 table 21.
APPLICATION_ERRORS: dict[int, str] = {
    0: "Unspecified error", 1: "Unimplemented CI-Field", 2: "Buffer too long, truncated",
    3: "Too many records", 4: "Premature end of record", 5: "More than 10 DIFEs", 6: "More than 10 VIFEs",
    7: "Reserved", 8: "Application busy", 9: "Too many readouts",
}
