"""NGSI-v2 client (Orion or the embedded broker): entities, batch operations, subscriptions, registrations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flexmeter.ngsi.errors import NgsiResponseError
from flexmeter.ngsi.headers import FiwareHeaders
from flexmeter.ngsi.http import HttpApi

Json = dict[str, Any]


class NgsiClient(HttpApi):
    """Thin and explicit: each method is one NGSI-v2 operation, returning the decoded JSON body."""

    # -- server ------------------------------------------------------------------------------------
    def version(self) -> Json:
        result: Json = self.request("GET", "/version").json()
        return result

    # -- entities ----------------------------------------------------------------------------------
    def create_entity(
        self, entity: Json, *, upsert: bool = False, key_values: bool = False, headers: FiwareHeaders | None = None
    ) -> None:
        options = [o for o, on in (("upsert", upsert), ("keyValues", key_values)) if on]
        params = {"options": ",".join(options)} if options else None
        self.request("POST", "/v2/entities", json=entity, params=params, headers=headers)

    def get_entity(
        self,
        entity_id: str,
        *,
        entity_type: str | None = None,
        attrs: list[str] | None = None,
        options: str | None = None,
        headers: FiwareHeaders | None = None,
    ) -> Json:
        params = {"type": entity_type, "attrs": ",".join(attrs) if attrs else None, "options": options}
        result: Json = self.request("GET", f"/v2/entities/{entity_id}", params=params, headers=headers).json()
        return result

    def entity_exists(self, entity_id: str, *, headers: FiwareHeaders | None = None) -> bool:
        try:
            self.get_entity(entity_id, attrs=["__none__"], headers=headers)
        except NgsiResponseError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list_entities(self, *, headers: FiwareHeaders | None = None, **params: Any) -> tuple[list[Json], int | None]:
        """One page: the entities and ``Fiware-Total-Count`` when ``options=count`` was asked."""
        response = self.request("GET", "/v2/entities", params=params, headers=headers)
        total = response.headers.get("Fiware-Total-Count")
        return response.json(), int(total) if total is not None else None

    def iter_entities(self, *, page: int = 1000, headers: FiwareHeaders | None = None, **params: Any) -> Iterator[Json]:
        """Every matching entity, paging with ``limit``/``offset``."""
        offset = 0
        while True:
            batch, _ = self.list_entities(headers=headers, limit=page, offset=offset, **params)
            yield from batch
            if len(batch) < page:
                return
            offset += page

    def update_attrs(
        self, entity_id: str, attrs: Json, *, entity_type: str | None = None, headers: FiwareHeaders | None = None
    ) -> None:
        """PATCH: update existing attributes."""
        self.request("PATCH", f"/v2/entities/{entity_id}/attrs", json=attrs, params={"type": entity_type},
                     headers=headers)

    def append_attrs(
        self, entity_id: str, attrs: Json, *, entity_type: str | None = None, headers: FiwareHeaders | None = None
    ) -> None:
        """POST: append or update attributes."""
        self.request("POST", f"/v2/entities/{entity_id}/attrs", json=attrs, params={"type": entity_type},
                     headers=headers)

    def delete_entity(self, entity_id: str, *, entity_type: str | None = None,
                      headers: FiwareHeaders | None = None) -> None:
        self.request("DELETE", f"/v2/entities/{entity_id}", params={"type": entity_type}, headers=headers)

    # -- batch ---------------------------------------------------------------------------------------
    def batch_update(self, entities: list[Json], action: str = "append", *, key_values: bool = False,
                     headers: FiwareHeaders | None = None) -> None:
        params = {"options": "keyValues"} if key_values else None
        self.request("POST", "/v2/op/update", json={"actionType": action, "entities": entities}, params=params,
                     headers=headers)

    def batch_query(self, query: Json, *, headers: FiwareHeaders | None = None, **params: Any) -> list[Json]:
        result: list[Json] = self.request("POST", "/v2/op/query", json=query, params=params, headers=headers).json()
        return result

    # -- subscriptions ---------------------------------------------------------------------------------
    def create_subscription(self, subscription: Json, *, headers: FiwareHeaders | None = None) -> str:
        response = self.request("POST", "/v2/subscriptions", json=subscription, headers=headers)
        return response.headers["Location"].rsplit("/", 1)[-1]

    def get_subscription(self, subscription_id: str, *, headers: FiwareHeaders | None = None) -> Json:
        result: Json = self.request("GET", f"/v2/subscriptions/{subscription_id}", headers=headers).json()
        return result

    def list_subscriptions(self, *, headers: FiwareHeaders | None = None, limit: int = 1000) -> list[Json]:
        result: list[Json] = self.request("GET", "/v2/subscriptions", params={"limit": limit},
                                          headers=headers).json()
        return result

    def update_subscription(self, subscription_id: str, patch: Json, *,
                            headers: FiwareHeaders | None = None) -> None:
        self.request("PATCH", f"/v2/subscriptions/{subscription_id}", json=patch, headers=headers)

    def delete_subscription(self, subscription_id: str, *, headers: FiwareHeaders | None = None) -> None:
        self.request("DELETE", f"/v2/subscriptions/{subscription_id}", headers=headers)

    # -- registrations ---------------------------------------------------------------------------------
    def create_registration(self, registration: Json, *, headers: FiwareHeaders | None = None) -> str:
        response = self.request("POST", "/v2/registrations", json=registration, headers=headers)
        return response.headers["Location"].rsplit("/", 1)[-1]

    def list_registrations(self, *, headers: FiwareHeaders | None = None) -> list[Json]:
        result: list[Json] = self.request("GET", "/v2/registrations", headers=headers).json()
        return result

    def delete_registration(self, registration_id: str, *, headers: FiwareHeaders | None = None) -> None:
        self.request("DELETE", f"/v2/registrations/{registration_id}", headers=headers)
