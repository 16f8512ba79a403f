"""Remote breaker (demand-side management): the E350 connect/disconnect/status command, audited.

The service never talks to the meter: it writes the command attribute ``breaker`` of the meter's entity
in the broker (``PATCH /v2/entities/<id>/attrs``, type ``command``), exactly what any NGSI application
would do. The IoT Agent holds a subscription on that attribute, sends the command to the meter and writes
``breaker_status`` (PENDING → OK / ERROR) and ``breaker_info`` back; the service sees those through its
subscription (or reads them on a status request) and keeps every request in an audit trail.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from flexmeter.ngsi import FiwareHeaders, NgsiClient
from flexmeter.ngsi.errors import NgsiClientError, NgsiResponseError
from flexmeter.service.errors import BadRequest, NotFound, UpstreamError
from flexmeter.service.periods import iso
from flexmeter.service.store import Store, split_tenant

ACTIONS = ("connect", "disconnect", "status")
Json = dict[str, Any]


def who(token: str | None, user: str | None) -> str:
    """The audit identity: the caller's declared user plus a fingerprint of the token used."""
    fingerprint = hashlib.sha256(token.encode()).hexdigest()[:12] if token else "none"
    return f"{user or 'api'}@token:{fingerprint}"


class Breaker:
    def __init__(self, store: Store, ngsi_url: str | None, token: str | None) -> None:
        self.store = store
        self.client = NgsiClient(ngsi_url, timeout=10) if ngsi_url else None
        self.token = token

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def _headers(self, tk: str, meter: str | None = None) -> FiwareHeaders:
        """The tenant headers, with the meter's own service path when the service has seen it."""
        service, path = split_tenant(tk)
        own = self.store.prop(tk, meter, "_path") if meter else None
        return FiwareHeaders(service or None, own if isinstance(own, str) else path, self.token)

    def _entity_type(self, tk: str, meter: str, given: str | None) -> str | None:
        if given:
            return given
        row = self.store.one("SELECT type FROM meters WHERE tk=? AND e=?", (tk, meter))
        return str(row[0]) if row and row[0] else None

    def request(self, tk: str, meter: str, action: str, requested_by: str, entity_type: str | None = None) -> Json:
        if action not in ACTIONS:
            raise BadRequest(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
        if self.client is None:
            raise UpstreamError("the service runs without --ngsi-url: no broker to send the command through")
        kind = self._entity_type(tk, meter, entity_type)
        now = time.time()
        with self.store.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO breaker (tk, meter, entity_type, action, requested_at, requested_by, status, info, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, 'REQUESTED', '', ?)",
                (tk, meter, kind, action, now, requested_by, now))
            request_id = int(cursor.lastrowid or 0)
        try:
            self.client.update_attrs(meter, {"breaker": {"type": "command", "value": action}}, entity_type=kind,
                                     headers=self._headers(tk, meter))
        except NgsiClientError as exc:
            reason = f"{exc.status} {exc.error}" if isinstance(exc, NgsiResponseError) else str(exc)
            self._set(request_id, "FAILED", f"broker: {reason}")
            if isinstance(exc, NgsiResponseError) and exc.status in (404, 422):
                raise NotFound(f"meter {meter} has no breaker command in the broker") from exc
            raise UpstreamError(f"the broker did not take the command: {reason}") from exc
        self._set(request_id, "PENDING", "sent to the broker")
        return self.get(request_id)

    def _set(self, request_id: int, status: str, info: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE breaker SET status=?, info=?, updated_at=? WHERE id=?",
                         (status, info, time.time(), request_id))

    def get(self, request_id: int) -> Json:
        row = self.store.one("SELECT id, meter, entity_type, action, requested_at, requested_by, status, info, "
                             "updated_at FROM breaker WHERE id=?", (request_id,))
        if row is None:
            raise NotFound(f"no breaker request {request_id}")
        return _render(row)

    def status(self, tk: str, meter: str) -> Json:
        """The meter's breaker state as the broker has it, with the audit trail (newest first)."""
        broker: Json = {}
        if self.client is not None:
            try:
                entity = self.client.get_entity(
                    meter, attrs=["breaker_status", "breaker_info", "breakerState"],
                    entity_type=self._entity_type(tk, meter, None), headers=self._headers(tk, meter))
                broker = {k: v.get("value") for k, v in entity.items() if isinstance(v, dict)}
            except NgsiClientError:
                broker = {}
        status = broker.get("breaker_status")
        if status in ("OK", "ERROR"):
            with self.store.transaction() as conn:
                conn.execute("UPDATE breaker SET status=?, info=?, updated_at=? WHERE id = (SELECT max(id) FROM "
                             "breaker WHERE tk=? AND meter=?) AND status='PENDING'",
                             (status, str(broker.get("breaker_info") or ""), time.time(), tk, meter))
        rows = self.store.query("SELECT id, meter, entity_type, action, requested_at, requested_by, status, info, "
                                "updated_at FROM breaker WHERE tk=? AND meter=? ORDER BY id DESC", (tk, meter))
        return {"meter": meter, "broker": broker, "audit": [_render(r) for r in rows]}

    def audit(self, tk: str, limit: int = 200) -> list[Json]:
        rows = self.store.query("SELECT id, meter, entity_type, action, requested_at, requested_by, status, info, "
                                "updated_at FROM breaker WHERE tk=? ORDER BY id DESC LIMIT ?", (tk, limit))
        return [_render(r) for r in rows]


def _render(row: tuple[Any, ...]) -> Json:
    request_id, meter, entity_type, action, requested, by, status, info, updated = row
    return {"id": request_id, "meter": meter, "entityType": entity_type, "action": action,
            "requestedAt": iso(float(requested)), "requestedBy": by, "status": status, "info": info,
            "updatedAt": iso(float(updated))}
