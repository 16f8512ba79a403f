"""Compiled JEXL expressions give exactly what pyjexl's own evaluator gives (values and errors)."""

from __future__ import annotations

from typing import Any

import pytest
from pyjexl.evaluator import Evaluator

from flexmeter.iot_agents.connode.mappings import TABLES
from flexmeter.iot_agents.core.expressions import Expressions

EXPRESSIONS = [
    "p * 1000", "(6 + value) * 3", 'name + "value is " + value', "spaces | trim", "missing * 2",
    "{coordinates: [lon, lat], type: 'Point'}", "a.b.c", "a.b.missing", "p / 0", "p // 2", "p % 3", "p ^ 2",
    "p > 1 && q < 2", "p > 1 || q", "!flag", "flag ? 'on' : 'off'", "x in [1, 2, 3]", "'a' in name",
    "messageType == 'lastGasp' ? 'powerOutage' : (messageType == 'reading' ? 'ok' : null)",
    "t | parsefloat", "t | parseint", "n | tostring", "name | toUpperCase | substr(0, 2)", "arr | addreduce",
    "arr | lengtharray", "v | mapper([1, 2], ['one', 'two'])", "ms | toisodate", "v | round(2)",
    "name | replacestr('D', 'E')", "[p, q, [r]]", "p + q + name", "true && p", "null", "1.5",
]
CONTEXTS: list[dict[str, Any]] = [
    {},
    {"p": 1.5, "q": 1, "r": None, "name": "Dev", "value": 6, "spaces": "  x ", "lon": 5, "lat": 37,
     "a": {"b": {"c": 7}}, "flag": True, "x": 2, "messageType": "lastGasp", "t": "12.5", "n": 3.0,
     "arr": [1, 2, 3], "v": 2, "ms": 1795768000000},
    {"p": "7", "q": None, "name": 5, "a": {"b": 3}, "flag": 0, "x": "2", "messageType": "reading", "t": "x",
     "arr": "abc", "v": 1.23456, "ms": "soon"},
]


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "value", call()
    except Exception as exc:  # the error's kind is part of the contract
        return "error", type(exc).__name__


def _same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] == "value" and isinstance(a[1], float) and isinstance(b[1], float) and a[1] != a[1]:
        return b[1] != b[1]  # NaN
    return a == b


SHIPPED = sorted({attr["expression"] for table in TABLES.values() for attr in table if "expression" in attr})


@pytest.mark.parametrize("expression", EXPRESSIONS + SHIPPED)
def test_compiled_equals_pyjexl(expression: str) -> None:
    ex = Expressions()
    compiled = ex.compiled(expression)
    assert compiled is not None, "every expression here is one the compiler handles"
    for context in CONTEXTS:
        mine = _outcome(lambda: compiled(context))  # noqa: B023 - called at once
        theirs = _outcome(lambda: Evaluator(ex._jexl.config).evaluate(ex.parse(expression), context))  # noqa: B023
        assert _same(mine, theirs), (expression, context, mine, theirs)


def test_filters_are_left_to_pyjexl() -> None:
    ex = Expressions()
    assert ex.compiled("items[1]") is None
    assert ex.evaluate("items[1]", {"items": [{"x": 1}, {"x": 2}]}) == {"x": 2}
