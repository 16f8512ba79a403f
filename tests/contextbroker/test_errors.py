"""Bad input gets Orion's error (status, ``error``, ``description``), never a 500, and changes nothing."""

from __future__ import annotations

import json

import pytest
import requests

from tests.contextbroker.conftest import Ngsi, assert_error


def raw(
    ngsi: Ngsi, method: str, path: str, data: bytes | str | None, content_type: str | None, **headers: str
) -> requests.Response:
    all_headers = {"Fiware-Service": ngsi.service, **headers}
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    return ngsi.session.request(method, ngsi.base + path, data=data, headers=all_headers, timeout=10)


@pytest.mark.parametrize(
    "body",
    [
        "{bad",
        '{"id": "E1", }',
        "\xff\xfe",
        '{"id": "E", "a": {"value": NaN}}',
        '{"id": "E", "a": {"value": 1e999}}',
        "[" * 5000 + "]" * 5000,
    ],
)
@pytest.mark.parametrize("path", ["/v2/entities", "/v2/op/update", "/v2/op/query", "/v2/registrations"])
def test_malformed_json_is_parse_error(ngsi: Ngsi, path: str, body: str) -> None:
    data = body.encode("latin-1") if body == "\xff\xfe" else body
    response = raw(ngsi, "POST", path, data, "application/json")
    assert_error(response, 400, "ParseError", "Errors found in incoming JSON buffer")


def test_malformed_json_on_attribute_routes(ngsi: Ngsi) -> None:
    ngsi.create({"id": "E", "type": "T", "a": {"value": 1}})
    for method, path in (
        ("PATCH", "/v2/entities/E/attrs"),
        ("POST", "/v2/entities/E/attrs"),
        ("PUT", "/v2/entities/E/attrs"),
        ("PUT", "/v2/entities/E/attrs/a"),
    ):
        assert_error(raw(ngsi, method, path, "{nope", "application/json"), 400, "ParseError")
    assert ngsi.get("/v2/entities/E", params={"options": "keyValues"}).json() == {
        "id": "E",
        "type": "T",
        "a": 1,
    }


@pytest.mark.parametrize(
    ("entity", "description"),
    [
        ({"id": 5, "type": "T"}, "Invalid JSON type for entity id"),
        ({"id": "E", "type": ["T"]}, "Invalid JSON type for entity type"),
        ({"type": "T"}, "entity id length: 0, min length supported: 1"),
        ({"id": "", "type": "T"}, "entity id length: 0, min length supported: 1"),
        ({"id": "E" * 257, "type": "T"}, "entity id length: 257, max length supported: 256"),
        ({"id": "E", "type": "T" * 257}, "entity type length: 257, max length supported: 256"),
        (
            {"id": "E", "type": "T", "a" * 257: {"value": 1}},
            "attribute name length: 257, max length supported: 256",
        ),
        ({"id": "E<1>", "type": "T"}, "Invalid characters in entity id"),
        ({"id": "E 1", "type": "T"}, "Invalid characters in entity id"),
        ({"id": "E/1", "type": "T"}, "Invalid characters in entity id"),
        ({"id": "E", "type": "T(x)"}, "Invalid characters in entity type"),
        ({"id": "E", "type": "T", "a;b": {"value": 1}}, "Invalid characters in attribute name"),
        ({"id": "E", "type": "T", "a": {"type": "N=1", "value": 1}}, "Invalid characters in attribute type"),
        ({"id": "E", "type": "T", "a": {"value": "<script>"}}, "Invalid characters in attribute value"),
        (
            {"id": "E", "type": "T", "a": {"value": {"deep": ["x'y"]}}},
            "Invalid characters in attribute value",
        ),
        (
            {"id": "E", "type": "T", "a": 5},
            "attribute must be a JSON object, unless keyValues option is used",
        ),
        (
            {"id": "E", "type": "T", "a": {"value": 1, "metadata": {"m(": {"value": 1}}}},
            "Invalid characters in metadata name",
        ),
    ],
)
def test_invalid_entities(ngsi: Ngsi, entity: dict[str, object], description: str) -> None:
    assert_error(ngsi.post("/v2/entities", entity), 400, "BadRequest", description)
    assert ngsi.get("/v2/entities").json() == []


def test_wrong_body_types(ngsi: Ngsi) -> None:
    for body in ([], "text", 12, None):
        response = ngsi.post(
            "/v2/entities", raw=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"] in ("BadRequest", "ParseError")


def test_huge_body_is_413(ngsi: Ngsi) -> None:
    blob = json.dumps({"id": "Big", "type": "T", "a": {"value": "x" * (1024 * 1024 + 10)}})
    response = raw(ngsi, "POST", "/v2/entities", blob, "application/json")
    assert_error(response, 413, "RequestEntityTooLarge")
    assert "max size supported: 1048576" in response.json()["description"]
    assert_error(ngsi.get("/v2/entities/Big"), 404, "NotFound")


def test_http_level_errors(ngsi: Ngsi) -> None:
    assert_error(
        raw(ngsi, "GET", "/v2/nothing/here", None, None),
        400,
        "BadRequest",
        "Service not found. Check your URL as probably it is wrong.",
    )
    assert_error(
        raw(ngsi, "POST", "/v2/entities", None, None),
        411,
        "ContentLengthRequired",
        "Zero/No Content-Length in PUT/POST/PATCH request",
    )
    assert_error(
        raw(ngsi, "POST", "/v2/entities", "<a/>", "text/html"),
        415,
        "UnsupportedMediaType",
        "not supported content type: text/html",
    )
    assert_error(
        raw(ngsi, "GET", "/v2/entities", None, "application/json"),
        400,
        "BadRequest",
        "Orion accepts no payload for GET/DELETE requests. HTTP header Content-Type is thus forbidden",
    )
    assert_error(raw(ngsi, "GET", "/v2/entities", None, None, Accept="text/html"), 406, "NotAcceptable")
    not_allowed = raw(ngsi, "DELETE", "/v2/entities", None, None)
    assert_error(not_allowed, 405, "MethodNotAllowed")
    assert "GET" in not_allowed.headers.get("Allow", "")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Fiware-Service", "bad-tenant"),
        ("Fiware-Service", "x" * 51),
        ("Fiware-ServicePath", "relative"),
        ("Fiware-ServicePath", "/a/b-c"),
        ("Fiware-ServicePath", "/" + "c" * 51),
    ],
)
def test_bad_tenancy_headers(ngsi: Ngsi, header: str, value: str) -> None:
    for response in (
        ngsi.get("/v2/entities", headers={header: value}),
        ngsi.post("/v2/entities", {"id": "E", "type": "T"}, headers={header: value}),
    ):
        assert_error(response, 400, "BadRequest")
    assert ngsi.get("/v2/entities").json() == []


def test_bad_query_parameters(ngsi: Ngsi) -> None:
    ngsi.create({"id": "E", "type": "T", "a": {"value": 1}})
    for params in (
        {"limit": "-1"},
        {"limit": "abc"},
        {"limit": "\u00b9"},
        {"offset": "-3"},
        {"options": "bogus"},
        {"idPattern": "(unclosed"},
        {"q": "a>>>"},
        {"georel": "near"},
        {"type": "a", "typePattern": "b"},
    ):
        response = ngsi.get("/v2/entities", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"] == "BadRequest"


def test_never_500_on_odd_urls(ngsi: Ngsi) -> None:
    for path in (
        "/v2/entities/%3Cx%3E",
        "/v2/entities/" + "a" * 300,
        "/v2/entities/E/attrs/%22",
        "/v2/types/%28",
        "/v2/registrations/zzz",
        "/v2/entities/E/attrs/a/value/more",
    ):
        response = raw(ngsi, "GET", path, None, None)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert "error" in response.json()
