"""Never a 500 on bad input: random JSON bodies and parameters against the broker's WSGI app in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexmeter.contextbroker.app import Broker, create_app

names = st.sampled_from(
    [
        "id",
        "type",
        "value",
        "metadata",
        "a",
        "b",
        "dateExpires",
        "actionType",
        "entities",
        "attrs",
        "expression",
        "q",
        "dataProvided",
        "provider",
        "http",
        "url",
        "idPattern",
        "x y",
        "<",
        "",
        "é",
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        [
            "append",
            "update",
            "delete",
            "replace",
            "appendStrict",
            "DateTime",
            "2024-01-01T00:00:00Z",
            "E1",
            "T",
            "http://x/v2",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(names, children, max_size=5)),
    max_leaves=20,
)

ROUTES = [
    ("POST", "/v2/entities"),
    ("POST", "/v2/entities?options=keyValues"),
    ("POST", "/v2/entities?options=upsert"),
    ("PATCH", "/v2/entities/E1/attrs"),
    ("POST", "/v2/entities/E1/attrs"),
    ("PUT", "/v2/entities/E1/attrs"),
    ("PUT", "/v2/entities/E1/attrs/a"),
    ("PUT", "/v2/entities/E1/attrs/a/value"),
    ("POST", "/v2/op/update"),
    ("POST", "/v2/op/query"),
    ("POST", "/v2/registrations"),
    ("POST", "/v2/op/update?options=keyValues"),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    broker: Broker = create_app(Path(tmp_path_factory.mktemp("fuzz")) / "b.db")
    broker.start()
    c = broker.app.test_client()
    c.post(
        "/v2/entities",
        data=json.dumps({"id": "E1", "type": "T", "a": {"value": 1}}),
        headers={"Content-Type": "application/json"},
    )
    try:
        yield c
    finally:
        broker.stop()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=json_values)
def test_embedded_random_bodies_never_500(client: FlaskClient, route: tuple[str, str], body: Any) -> None:
    method, path = route
    response = client.open(path, method=method, data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code < 500, (method, path, body, response.get_data(as_text=True))
    if response.status_code >= 400:
        assert set(response.get_json()) == {"error", "description"}


params = st.dictionaries(
    st.sampled_from(
        [
            "id",
            "type",
            "idPattern",
            "typePattern",
            "q",
            "mq",
            "attrs",
            "metadata",
            "orderBy",
            "limit",
            "offset",
            "options",
            "georel",
            "geometry",
            "coords",
        ]
    ),
    st.text(max_size=15),
    max_size=4,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=params,
    path=st.sampled_from(
        [
            "/v2/entities",
            "/v2/entities/E1",
            "/v2/types",
            "/v2/entities/E1/attrs",
            "/v2/entities/E1/attrs/a/value",
            "/v2/registrations",
        ]
    ),
)
def test_embedded_random_query_parameters_never_500(client: FlaskClient, query: dict[str, str], path: str) -> None:
    response = client.get(path, query_string=query)
    assert response.status_code < 500, (path, query, response.get_data(as_text=True))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(service=st.text(max_size=60), service_path=st.text(max_size=60))
def test_embedded_random_tenancy_headers_never_500(client: FlaskClient, service: str, service_path: str) -> None:
    try:
        headers = {"Fiware-Service": service, "Fiware-ServicePath": service_path}
        response = client.get("/v2/entities", headers=headers)
    except ValueError:  # werkzeug refuses header values with newlines before the app sees them
        return
    assert response.status_code < 500, (service, service_path, response.get_data(as_text=True))
