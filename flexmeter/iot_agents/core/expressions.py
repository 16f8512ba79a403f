"""JEXL attribute expressions as the FIWARE agents evaluate them (``p * 1000``, ``t | parsefloat``).

pyjexl parses; no Python ``eval`` anywhere. A parsed expression is compiled once into a tree of closures with
exactly pyjexl's evaluation rules (several times faster than its visitor, which walks the tree again for every
reading); the few node kinds left out (filters) are evaluated by pyjexl itself. The transforms are the
iotagent-node-lib ones users rely on most.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pyjexl
from pyjexl import parser as ast
from pyjexl.evaluator import Evaluator

from flexmeter.iot_agents.core.errors import InvalidExpression


def _plus(a: Any, b: Any) -> Any:
    """JavaScript's ``+``: concatenation as soon as one side is a string."""
    if isinstance(a, str) or isinstance(b, str):
        return f"{_js_str(a)}{_js_str(b)}"
    return a + b


def _js_str(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _parse_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _parse_int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _to_iso(value: Any) -> str:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def _mapper(value: Any, values: list[Any], choices: list[Any]) -> Any:
    try:
        return choices[values.index(value)]
    except (ValueError, IndexError):
        return None


TRANSFORMS: dict[str, Any] = {
    "jsonparse": lambda v: json.loads(v),
    "jsonstringify": lambda v: json.dumps(v, separators=(",", ":")),
    "indexOf": lambda v, c: str(v).find(str(c)),
    "length": lambda v: len(str(v)),
    "trim": lambda v: str(v).strip(),
    "substr": lambda v, a, n=None: str(v)[int(a):] if n is None else str(v)[int(a):int(a) + int(n)],
    "addreduce": lambda arr: sum(arr),
    "lengtharray": lambda arr: len(arr),
    "typeof": lambda v: {bool: "boolean", int: "number", float: "number", str: "string"}.get(type(v), "object"),
    "isarray": lambda v: isinstance(v, list),
    "isnan": lambda v: isinstance(_parse_float(v), float) and math.isnan(_parse_float(v) or 0.0),
    "parseint": _parse_int,
    "parsefloat": _parse_float,
    "toisodate": _to_iso,
    "tostring": _js_str,
    "toUpperCase": lambda v: str(v).upper(),
    "toLowerCase": lambda v: str(v).lower(),
    "replacestr": lambda s, a, b: str(s).replace(str(a), str(b), 1),
    "replaceallstr": lambda s, a, b: str(s).replace(str(a), str(b)),
    "split": lambda s, c: str(s).split(str(c)),
    "mapper": _mapper,
    "slice": lambda arr, a, b=None: arr[a:b],
    "round": lambda v, n=0: round(float(v), int(n)),
    "abs": lambda v: abs(v),
}


def _tight_pipes(expression: str) -> str:
    """pyjexl's grammar rejects blanks around the transform pipe (``a | trim``), which JEXL allows."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(expression):
        ch = expression[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < len(expression):
                out.append(expression[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "|" and expression[i + 1:i + 2] != "|" and (not out or out[-1] != "|"):
            while out and out[-1].isspace():
                out.pop()
            out.append("|")
            while i + 1 < len(expression) and expression[i + 1].isspace():
                i += 1
        else:
            out.append(ch)
        i += 1
    return "".join(out)


Compiled = Callable[[Mapping[str, Any]], Any]


class _NotCompiled(Exception):
    """A node kind the compiler leaves to pyjexl's evaluator."""


def _compile(node: Any, transforms: Mapping[str, Any]) -> Compiled:
    """Closures mirroring ``pyjexl.evaluator.Evaluator`` node by node (same order, same errors)."""
    kind = type(node)
    if kind is ast.Literal:
        value = node.value
        return lambda context: value
    if kind is ast.Identifier:
        if node.relative:
            raise _NotCompiled
        name = node.value
        if node.subject is None:
            return lambda context: context.get(name, None)
        subject = _compile(node.subject, transforms)
        return lambda context: subject(context).get(name, None)
    if kind is ast.BinaryExpression:
        op = node.operator
        left, right = _compile(node.left, transforms), _compile(node.right, transforms)
        func = op.evaluate
        if op._evaluate_lazy:
            return lambda context: func(lambda: left(context), lambda: right(context))
        return lambda context: func(left(context), right(context))
    if kind is ast.UnaryExpression:
        op, operand = node.operator, _compile(node.right, transforms)
        if op._evaluate_lazy:
            raise _NotCompiled
        unary = op.evaluate
        return lambda context: unary(operand(context))
    if kind is ast.ConditionalExpression:
        test = _compile(node.test, transforms)
        then, otherwise = _compile(node.consequent, transforms), _compile(node.alternate, transforms)
        return lambda context: then(context) if test(context) else otherwise(context)
    if kind is ast.ArrayLiteral:
        items = [_compile(item, transforms) for item in node.value]
        return lambda context: [item(context) for item in items]
    if kind is ast.ObjectLiteral:
        members = [(key, _compile(value, transforms)) for key, value in node.value.items()]
        return lambda context: {key: value(context) for key, value in members}
    if kind is ast.Transform:
        transform = transforms.get(node.name)
        if transform is None:
            raise _NotCompiled  # pyjexl raises its MissingTransformError when evaluating
        subject = _compile(node.subject, transforms)
        args = [_compile(arg, transforms) for arg in node.args]
        empty: dict[str, Any] = {}  # pyjexl evaluates transform arguments without the context
        return lambda context: transform(subject(context), *[arg(empty) for arg in args])
    raise _NotCompiled


class Expressions:
    """One per agent: a JEXL configuration plus the cache of parsed expressions."""

    def __init__(self) -> None:
        self._jexl = pyjexl.JEXL()
        self._jexl.add_binary_operator("+", 30, _plus)
        for name, func in TRANSFORMS.items():
            self._jexl.add_transform(name, func)
        self._parsed: dict[str, Any] = {}
        self._compiled: dict[str, Compiled | None] = {}
        self._lock = threading.Lock()

    def parse(self, expression: str) -> Any:
        parsed = self._parsed.get(expression)
        if parsed is None:
            with self._lock:
                try:
                    parsed = self._jexl.parse(_tight_pipes(expression))
                except Exception as exc:
                    raise InvalidExpression(expression, str(exc)) from exc
                self._parsed[expression] = parsed
        return parsed

    def compiled(self, expression: str) -> Compiled | None:
        """The expression as closures, or None when part of it is left to pyjexl's evaluator."""
        if expression in self._compiled:
            return self._compiled[expression]
        parsed = self.parse(expression)
        try:
            compiled: Compiled | None = _compile(parsed, self._jexl.config.transforms)
        except _NotCompiled:
            compiled = None
        self._compiled[expression] = compiled
        return compiled

    def evaluate(self, expression: str, context: dict[str, Any]) -> Any:
        """The value, or None when the expression refers to a missing measure (as the FIWARE agents do)."""
        compiled = self.compiled(expression)
        try:
            if compiled is not None:
                return compiled(context)
            return Evaluator(self._jexl.config).evaluate(self.parse(expression), context)
        except (AttributeError, KeyError, TypeError, IndexError):
            return None
        except ZeroDivisionError:
            return None
        except Exception as exc:
            raise InvalidExpression(expression, str(exc)) from exc
