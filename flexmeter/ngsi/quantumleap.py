"""QuantumLeap client (a real QuantumLeap or the embedded time series): notify and every query endpoint.

Query methods take Python keyword names (``from_date``, ``last_n``, ``aggr_method`` ...) and send
QuantumLeap's (``fromDate``, ``lastN``, ``aggrMethod`` ...); ``value=True`` asks the ``/value`` variant.
A query matching nothing raises :class:`NgsiResponseError` with status 404 (QuantumLeap's answer);
``find_*`` variants return None instead.
"""

from __future__ import annotations

from typing import Any

from flexmeter.ngsi.errors import NgsiResponseError
from flexmeter.ngsi.headers import FiwareHeaders
from flexmeter.ngsi.http import HttpApi

Json = dict[str, Any]
_PARAM_NAMES = {
    "type": "type",
    "entity_type": "type",
    "id": "id",
    "ids": "id",
    "id_pattern": "idPattern",
    "attrs": "attrs",
    "from_date": "fromDate",
    "to_date": "toDate",
    "last_n": "lastN",
    "limit": "limit",
    "offset": "offset",
    "aggr_method": "aggrMethod",
    "aggr_period": "aggrPeriod",
    "aggr_scope": "aggrScope",
    "options": "options",
    "georel": "georel",
    "geometry": "geometry",
    "coords": "coords",
    "drop_table": "dropTable",
}


def query_params(**kwargs: Any) -> dict[str, Any]:
    """Python keyword arguments to QuantumLeap's query parameters (lists joined with commas)."""
    params: dict[str, Any] = {}
    for key, value in kwargs.items():
        if value is None:
            continue
        name = _PARAM_NAMES.get(key)
        if name is None:
            raise TypeError(f"unknown QuantumLeap query parameter {key!r}")
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        params[name] = value
    return params


class QuantumLeapClient(HttpApi):
    """One method per QuantumLeap endpoint; bodies are returned as decoded JSON."""

    # -- meta ---------------------------------------------------------------------------------------------
    def version(self) -> Json:
        result: Json = self.request("GET", "/version").json()
        return result

    def health(self) -> Json:
        result: Json = self.request("GET", "/health", expect=(200, 207, 424, 503)).json()
        return result

    def metrics(self) -> str:
        """The embedded service's Prometheus counters (a real QuantumLeap has no /metrics)."""
        return self.request("GET", "/metrics").text

    # -- notify -------------------------------------------------------------------------------------------
    def notify(
        self,
        entities: list[Json],
        *,
        subscription_id: str = "flexmeter",
        time_index_attribute: str | None = None,
        headers: FiwareHeaders | None = None,
    ) -> Any:
        """POST /v2/notify with an Orion-style (normalized) notification of ``entities``."""
        extra = {"Fiware-TimeIndex-Attribute": time_index_attribute} if time_index_attribute else None
        return self.request(
            "POST",
            "/v2/notify",
            json={"subscriptionId": subscription_id, "data": entities},
            headers=headers,
            extra_headers=extra,
        ).json()

    # -- queries ------------------------------------------------------------------------------------------
    def _get(self, path: str, value: bool, headers: FiwareHeaders | None, params: dict[str, Any]) -> Any:
        return self.request(
            "GET", path + ("/value" if value else ""), params=query_params(**params), headers=headers
        ).json()

    def entities(self, *, headers: FiwareHeaders | None = None, **params: Any) -> list[Json]:
        """GET /v2/entities: every entity with its newest index."""
        result: list[Json] = self._get("/v2/entities", False, headers, params)
        return result

    def entity(
        self, entity_id: str, *, value: bool = False, headers: FiwareHeaders | None = None, **params: Any
    ) -> Json:
        """GET /v2/entities/{entityId}: every (or ``attrs``) attribute of one entity."""
        result: Json = self._get(f"/v2/entities/{entity_id}", value, headers, params)
        return result

    def entity_attr(
        self,
        entity_id: str,
        attr: str,
        *,
        value: bool = False,
        headers: FiwareHeaders | None = None,
        **params: Any,
    ) -> Json:
        """GET /v2/entities/{entityId}/attrs/{attrName}."""
        result: Json = self._get(f"/v2/entities/{entity_id}/attrs/{attr}", value, headers, params)
        return result

    def entity_type(
        self, entity_type: str, *, value: bool = False, headers: FiwareHeaders | None = None, **params: Any
    ) -> Json:
        """GET /v2/types/{entityType}: every entity of a type."""
        result: Json = self._get(f"/v2/types/{entity_type}", value, headers, params)
        return result

    def type_attr(
        self,
        entity_type: str,
        attr: str,
        *,
        value: bool = False,
        headers: FiwareHeaders | None = None,
        **params: Any,
    ) -> Json:
        """GET /v2/types/{entityType}/attrs/{attrName}."""
        result: Json = self._get(f"/v2/types/{entity_type}/attrs/{attr}", value, headers, params)
        return result

    def attrs(self, *, value: bool = False, headers: FiwareHeaders | None = None, **params: Any) -> Json:
        """GET /v2/attrs: attributes across types."""
        result: Json = self._get("/v2/attrs", value, headers, params)
        return result

    def attr(
        self, attr: str, *, value: bool = False, headers: FiwareHeaders | None = None, **params: Any
    ) -> Json:
        """GET /v2/attrs/{attrName}: one attribute across types."""
        result: Json = self._get(f"/v2/attrs/{attr}", value, headers, params)
        return result

    def find_entity(self, entity_id: str, **kwargs: Any) -> Json | None:
        """:meth:`entity`, None when QuantumLeap has no record (404)."""
        try:
            return self.entity(entity_id, **kwargs)
        except NgsiResponseError as exc:
            if exc.status == 404:
                return None
            raise

    def find_entity_attr(self, entity_id: str, attr: str, **kwargs: Any) -> Json | None:
        """:meth:`entity_attr`, None when QuantumLeap has no record (404)."""
        try:
            return self.entity_attr(entity_id, attr, **kwargs)
        except NgsiResponseError as exc:
            if exc.status == 404:
                return None
            raise

    # -- delete -------------------------------------------------------------------------------------------
    def delete_entity(self, entity_id: str, *, headers: FiwareHeaders | None = None, **params: Any) -> None:
        """DELETE /v2/entities/{entityId} (``type``, ``from_date``, ``to_date``)."""
        self.request("DELETE", f"/v2/entities/{entity_id}", params=query_params(**params), headers=headers)

    def delete_type(self, entity_type: str, *, headers: FiwareHeaders | None = None, **params: Any) -> None:
        """DELETE /v2/types/{entityType} (``from_date``, ``to_date``, ``drop_table``)."""
        self.request("DELETE", f"/v2/types/{entity_type}", params=query_params(**params), headers=headers)
