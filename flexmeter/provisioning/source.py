"""Reading inventories while remembering where each value came from (file and line), for error messages.

YAML is parsed by PyYAML's safe loader into ``LineDict``/``LineList`` (plain dict/list subclasses that
also keep the line of every key and item), so a pydantic error location such as
``("meters", 3, "type")`` becomes ``inventory.yaml:42``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from flexmeter.provisioning.errors import InventoryError, Problem


class LineDict(dict[str, Any]):
    """A mapping with ``line`` (its own) and ``lines`` (key -> line of the key's value)."""

    line: int = 0
    file: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines: dict[str, int] = {}


class LineList(list[Any]):
    """A sequence with ``line`` (its own) and ``lines`` (line of each item)."""

    line: int = 0
    file: str = ""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.lines: list[int] = []


class _LineLoader(yaml.SafeLoader):
    """Safe loader whose mappings and sequences remember their lines (1-based)."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = value_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.lines = [child.start_mark.line + 1 for child in node.value]
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path) -> Any:
    """The document of ``path`` with line information; a syntax error becomes an :class:`InventoryError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError([Problem(str(path), None, "", f"cannot read: {exc.strerror or exc}")]) from exc
    try:
        return yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or str(exc)
        if exc.context:
            started = f" that starts on line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
            reason += f" ({exc.context}{started})"
        raise InventoryError([Problem(str(path), line, "", f"YAML syntax: {reason}")]) from exc
    except yaml.YAMLError as exc:
        raise InventoryError([Problem(str(path), None, "", f"YAML: {exc}")]) from exc


def line_of(document: Any, location: Sequence[int | str]) -> int | None:
    """The line of the deepest value along ``location`` that the document knows a line for."""
    line: int | None = getattr(document, "line", None) or None
    current = document
    for part in location:
        if isinstance(current, LineDict) and isinstance(part, str) and part in current:
            line = current.lines.get(part, line)
            current = current[part]
        elif isinstance(current, LineList) and isinstance(part, int) and 0 <= part < len(current):
            line = current.lines[part]
            current = current[part]
        else:
            break
    return line


def dotted(location: Sequence[int | str]) -> str:
    """``("meters", 3, "type")`` -> ``meters[3].type``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
