"""FIWARE multi-tenancy: ``Fiware-Service`` (one SQLite file per tenant) and ``Fiware-ServicePath`` scopes.

Validation and error texts follow Orion (rest.cpp ``servicePathCheck`` and the tenant check), so a client
sees the same 400 BadRequest from the embedded broker as from Orion.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from flexmeter.contextbroker.errors import BadRequest

SERVICE_MAX_LEN = 50
SERVICE_PATH_MAX_LEVELS = 10
SERVICE_PATH_MAX_COMPONENT_LEN = 50
SERVICE_PATH_MAX_TOKENS = 10
_TENANT_SEPARATOR = "@"  # never valid in a tenant name, so file names map back to tenants


class HeaderLookup(Protocol):
    """Anything with ``get(name)``: a dict, or werkzeug's case-insensitive ``request.headers``."""

    def get(self, key: str, /) -> str | None: ...


HeaderSource = Mapping[str, str] | HeaderLookup


def _header(headers: HeaderSource, name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def _is_name_char(ch: str) -> bool:
    return ch == "_" or (ch.isascii() and ch.isalnum())


def validate_service(service: str) -> str:
    """Orion's tenant check; returns the normalized (lowercase) tenant, "" for the default one."""
    if len(service) > SERVICE_MAX_LEN:
        raise BadRequest(f"bad length - a tenant name can be max {SERVICE_MAX_LEN} characters long")
    if not all(_is_name_char(ch) for ch in service):
        raise BadRequest("bad character in tenant name - "
                         "only underscore and alphanumeric characters are allowed")
    return service.lower()


def service_from_headers(headers: HeaderSource) -> str:
    """The request's tenant from ``Fiware-Service``: lowercase, "" when absent or empty (default tenant)."""
    value = _header(headers, "Fiware-Service")
    if value is None:
        return ""
    return validate_service(value.strip())


def _check_path(path: str) -> str:
    """Validate one service path (Orion's rules) and return it without a trailing slash."""
    if not path.startswith("/"):
        raise BadRequest("Only /absolute/ Service Paths allowed [a service path must begin with /]")
    if path == "/":
        return path
    components = path[1:].split("/")
    if components and components[-1] == "":  # a trailing slash is tolerated, as Orion does
        components = components[:-1]
    if len(components) > SERVICE_PATH_MAX_LEVELS:
        raise BadRequest("too many components in ServicePath")
    for index, component in enumerate(components):
        if len(component) > SERVICE_PATH_MAX_COMPONENT_LEN:
            raise BadRequest("component-name too long in ServicePath")
        if component == "":
            raise BadRequest("empty component in ServicePath")
        if index == len(components) - 1 and component == "#":
            continue
        if not all(_is_name_char(ch) for ch in component):
            raise BadRequest("a component of ServicePath contains an illegal character")
    return "/" + "/".join(components) if components else "/"


def _split_paths(headers: HeaderSource) -> list[str] | None:
    value = _header(headers, "Fiware-ServicePath")
    if value is None or value.strip() == "":
        return None
    tokens = [token.strip() for token in value.split(",")]
    if len(tokens) > SERVICE_PATH_MAX_TOKENS:
        raise BadRequest("too many service paths - a maximum of ten service paths is allowed")
    return [_check_path(token) for token in tokens]


def service_path_for_update(headers: HeaderSource) -> str:
    """The single service path of a create/update (default ``/``); Orion refuses lists and ``#`` here."""
    paths = _split_paths(headers)
    if paths is None:
        return "/"
    if len(paths) > 1:
        raise BadRequest("more than one service path in context update request")
    path = paths[0]
    if path.endswith("#"):
        raise BadRequest("a component of ServicePath contains an illegal character")
    return path


def service_paths_for_query(headers: HeaderSource) -> list[str]:
    """The service paths of a query: the comma-separated list of the header, ``["/#"]`` when absent."""
    paths = _split_paths(headers)
    return ["/#"] if paths is None else paths


def path_matches(entity_path: str, query_paths: list[str]) -> bool:
    """Whether an entity's service path falls in a query's scopes (``/a/#`` is ``/a`` and below)."""
    for query in query_paths:
        if query.endswith("/#"):
            prefix = query[:-2]
            if prefix == "" or entity_path == prefix or entity_path.startswith(prefix + "/"):
                return True
        elif entity_path == query:
            return True
    return False


def tenant_db_path(base: Path, service: str) -> Path:
    """The SQLite file of a tenant: ``base`` for the default tenant, ``<stem>@<tenant><suffix>`` beside it."""
    base = Path(base)
    if not service:
        return base
    return base.with_name(f"{base.stem}{_TENANT_SEPARATOR}{service}{base.suffix}")


def list_tenants(base: Path) -> list[str]:
    """Every tenant having a database under ``base`` ("" for the default tenant), sorted."""
    base = Path(base)
    tenants: list[str] = [""] if base.exists() else []
    prefix = f"{base.stem}{_TENANT_SEPARATOR}"
    if base.parent.is_dir():
        for candidate in base.parent.glob(f"{prefix}*{base.suffix}"):
            name = candidate.name[len(prefix):len(candidate.name) - len(base.suffix) if base.suffix else None]
            if name and all(_is_name_char(ch) for ch in name):
                tenants.append(name)
    return sorted(set(tenants))
