"""Offline JSON-Schema validation against the vendored Smart Data Models (../shared/sdm)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

Validate = Callable[[str, dict[str, Any]], None]


def _registry(sdm_dir: Path) -> Registry:
    resources = []
    for path in sorted((sdm_dir / "_refs").glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012)))

    def refuse(uri: str) -> Resource:
        raise LookupError(f"schema {uri} is not vendored: nothing is fetched")

    return Registry(retrieve=refuse).with_resources(resources)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def sdm_registry(sdm_dir: Path) -> Registry:
    return _registry(sdm_dir)


@pytest.fixture(scope="session")
def sdm_schema(sdm_dir: Path) -> Callable[[str], dict[str, Any]]:
    def load(model: str) -> dict[str, Any]:
        schema: dict[str, Any] = json.loads((sdm_dir / model / "schema.json").read_text(encoding="utf-8"))
        return schema

    return load


@pytest.fixture(scope="session")
def sdm_validator(
    sdm_registry: Registry, sdm_schema: Callable[[str], dict[str, Any]]
) -> Callable[[dict[str, Any]], Draft202012Validator]:
    """A validator (format checks on, offline refs) for a schema document."""
    format_checker = FormatChecker()
    # the checks the README relies on must really be active, not silently skipped for a missing library
    assert "date-time" in format_checker.checkers and "uri" in format_checker.checkers

    def make(schema: dict[str, Any]) -> Draft202012Validator:
        return Draft202012Validator(schema, registry=sdm_registry, format_checker=format_checker)

    return make


@pytest.fixture(scope="session")
def validate_model(sdm_validator: Any, sdm_schema: Callable[[str], dict[str, Any]]) -> Iterator[Validate]:
    """``validate(model, key_values)``: raises jsonschema.ValidationError listing every violation."""
    cache: dict[str, Draft202012Validator] = {}

    def validate(model: str, entity: dict[str, Any]) -> None:
        if model not in cache:
            cache[model] = sdm_validator(sdm_schema(model))
        errors = sorted(cache[model].iter_errors(entity), key=lambda e: list(e.path))
        if errors:
            details = "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
            raise AssertionError(f"{model} rejects {entity.get('id')}: {details}")

    yield validate
