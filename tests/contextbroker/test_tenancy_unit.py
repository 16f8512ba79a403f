"""Unit tests of tenancy.py (Orion's Fiware-Service / Fiware-ServicePath rules) and timeutil.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from flexmeter.contextbroker.errors import BadRequest
from flexmeter.contextbroker.tenancy import (
    list_tenants,
    path_matches,
    service_from_headers,
    service_path_for_update,
    service_paths_for_query,
    tenant_db_path,
)
from flexmeter.contextbroker.timeutil import iso_from_posix, normalize_iso, posix_from_iso


@pytest.mark.parametrize(
    ("header", "tenant"),
    [
        (None, ""),
        ("", ""),
        ("Iren", "iren"),
        ("eon_2", "eon_2"),
        ("A" * 50, "a" * 50),
    ],
)
def test_service_normalized(header: str | None, tenant: str) -> None:
    headers = {} if header is None else {"Fiware-Service": header}
    assert service_from_headers(headers) == tenant


@pytest.mark.parametrize(
    ("header", "description"),
    [
        ("a-b", "bad character in tenant name - only underscore and alphanumeric characters are allowed"),
        ("a.b", "bad character in tenant name - only underscore and alphanumeric characters are allowed"),
        ("é", "bad character in tenant name - only underscore and alphanumeric characters are allowed"),
        ("a" * 51, "bad length - a tenant name can be max 50 characters long"),
    ],
)
def test_service_rejected(header: str, description: str) -> None:
    with pytest.raises(BadRequest) as info:
        service_from_headers({"Fiware-Service": header})
    assert info.value.description == description
    assert info.value.body() == {"error": "BadRequest", "description": description}


def test_service_paths() -> None:
    assert service_path_for_update({}) == "/"
    assert service_path_for_update({"Fiware-ServicePath": "/turin/dh/"}) == "/turin/dh"
    assert service_paths_for_query({}) == ["/#"]
    assert service_paths_for_query({"Fiware-ServicePath": "/a, /b/#"}) == ["/a", "/b/#"]


@pytest.mark.parametrize(
    ("header", "description"),
    [
        ("turin", "Only /absolute/ Service Paths allowed [a service path must begin with /]"),
        ("/a,b", "Only /absolute/ Service Paths allowed [a service path must begin with /]"),
        ("/" + "x" * 51, "component-name too long in ServicePath"),
        ("/a" * 11, "too many components in ServicePath"),
        ("/a-b", "a component of ServicePath contains an illegal character"),
        ("/a//b", "empty component in ServicePath"),
        (",".join(["/a"] * 11), "too many service paths - a maximum of ten service paths is allowed"),
    ],
)
def test_service_path_rejected(header: str, description: str) -> None:
    with pytest.raises(BadRequest) as info:
        service_paths_for_query({"Fiware-ServicePath": header})
    assert info.value.description == description


def test_update_needs_one_plain_path() -> None:
    with pytest.raises(BadRequest, match="more than one service path"):
        service_path_for_update({"Fiware-ServicePath": "/a,/b"})
    with pytest.raises(BadRequest):
        service_path_for_update({"Fiware-ServicePath": "/a/#"})


@pytest.mark.parametrize(
    ("entity_path", "query", "expected"),
    [
        ("/", ["/#"], True),
        ("/a/b", ["/#"], True),
        ("/a", ["/a/#"], True),
        ("/a/b", ["/a/#"], True),
        ("/ab", ["/a/#"], False),
        ("/a", ["/a"], True),
        ("/a/b", ["/a"], False),
        ("/", ["/"], True),
        ("/b", ["/a", "/b"], True),
        ("/c", ["/a", "/b"], False),
    ],
)
def test_path_matches(entity_path: str, query: list[str], expected: bool) -> None:
    assert path_matches(entity_path, query) is expected


def test_tenant_files(tmp_path: Path) -> None:
    base = tmp_path / "broker.db"
    assert list_tenants(base) == []
    assert tenant_db_path(base, "") == base
    for tenant in ("", "iren", "eon_2"):
        tenant_db_path(base, tenant).write_bytes(b"")
    (tmp_path / "other.db").write_bytes(b"")
    assert list_tenants(base) == ["", "eon_2", "iren"]
    assert tenant_db_path(base, "iren") != tenant_db_path(base, "eon_2")


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000Z"),
        ("2024-01-01T01:30:00+01:30", "2024-01-01T00:00:00.000Z"),
        ("2024-01-01", "2024-01-01T00:00:00.000Z"),
        ("2017-06-17T07:21:24.238Z", "2017-06-17T07:21:24.238Z"),
        ("2024-02-29T23:59:59.9999Z", "2024-03-01T00:00:00.000Z"),
    ],
)
def test_iso_dates(text: str, iso: str) -> None:
    assert normalize_iso(text) == iso
    assert iso_from_posix(posix_from_iso(iso)) == iso


@pytest.mark.parametrize(
    "text", ["yesterday", "2024-13-01", "2024-01-01T25:00:00Z", "", "2024-01-01T00:00:00+1"]
)
def test_bad_dates(text: str) -> None:
    with pytest.raises(ValueError):
        posix_from_iso(text)
