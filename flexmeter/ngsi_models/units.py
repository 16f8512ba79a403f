"""UN/CEFACT Recommendation 20 unit codes used in ``unitCode`` metadata, and exact conversions between them.

Builders take each value in the unit their table names (kWh for energy registers, W for power, ...);
agents convert what a meter sends with :func:`convert`, which is exact (Decimal, no float on the way).
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from flexmeter.ngsi_models.errors import InvalidValueError


class Unit(NamedTuple):
    code: str
    symbol: str
    name: str
    dimension: str
    #: how many of the dimension's base unit (Wh, W, var, VA, varh, VAh, V, A, m3, m3/h) one of this unit is
    factor: Decimal | None


UNITS: dict[str, Unit] = {
    u.code: u
    for u in (
        Unit("WHR", "Wh", "watt hour", "energy", Decimal(1)),
        Unit("KWH", "kWh", "kilowatt hour", "energy", Decimal(1000)),
        Unit("MWH", "MWh", "megawatt hour", "energy", Decimal(1000000)),
        Unit("WTT", "W", "watt", "power", Decimal(1)),
        Unit("KWT", "kW", "kilowatt", "power", Decimal(1000)),
        Unit("MAW", "MW", "megawatt", "power", Decimal(1000000)),
        Unit("D44", "var", "var (volt-ampere reactive)", "reactive power", Decimal(1)),
        Unit("KVR", "kvar", "kilovar", "reactive power", Decimal(1000)),
        Unit("D46", "VA", "volt-ampere", "apparent power", Decimal(1)),
        Unit("KVA", "kVA", "kilovolt-ampere", "apparent power", Decimal(1000)),
        Unit("K3", "kvarh", "kilovar hour", "reactive energy", Decimal(1000)),
        Unit("C79", "kVAh", "kilovolt-ampere hour", "apparent energy", Decimal(1000)),
        Unit("VLT", "V", "volt", "voltage", Decimal(1)),
        Unit("KVT", "kV", "kilovolt", "voltage", Decimal(1000)),
        Unit("AMP", "A", "ampere", "current", Decimal(1)),
        Unit("HTZ", "Hz", "hertz", "frequency", None),
        Unit("MTQ", "m³", "cubic metre", "volume", Decimal(1)),
        Unit("LTR", "l", "litre", "volume", Decimal("0.001")),
        Unit("MQH", "m³/h", "cubic metre per hour", "volume flow", Decimal(1)),
        Unit("E32", "l/h", "litre per hour", "volume flow", Decimal("0.001")),
        Unit("CEL", "°C", "degree Celsius", "temperature", None),
        Unit("KEL", "K", "kelvin", "temperature difference", None),
        Unit("P1", "%", "percent", "ratio", None),
        Unit("C62", "1", "one (dimensionless ratio)", "ratio", None),
        Unit("GV", "GJ", "gigajoule", "heat energy", None),
        Unit("DBM", "dBm", "decibel-milliwatt", "signal level", None),
    )
}


def convert(value: Decimal | int, from_code: str, to_code: str) -> Decimal:
    """``value`` in ``from_code`` expressed in ``to_code``, exactly (both units of one dimension)."""
    try:
        source, target = UNITS[from_code], UNITS[to_code]
    except KeyError as exc:
        raise InvalidValueError(f"unknown unit code {exc.args[0]!r}") from None
    if from_code == to_code:
        return Decimal(value)
    if source.dimension != target.dimension or source.factor is None or target.factor is None:
        raise InvalidValueError(f"cannot convert {from_code} ({source.dimension}) to {to_code} ({target.dimension})")
    return Decimal(value) * source.factor / target.factor
