"""The OpenAPI 3.1 document of the service's REST API (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

TENANT = [
    {"name": "Fiware-Service", "in": "header", "schema": {"type": "string"}, "description": "tenant (utility)"},
    {"name": "Fiware-ServicePath", "in": "header", "schema": {"type": "string", "default": "/"},
     "description": "pilot area"},
]
WINDOW = [
    {"name": "fromDate", "in": "query", "schema": {"type": "string", "format": "date-time"},
     "description": "start (default: two days before the tenant's last observation)"},
    {"name": "toDate", "in": "query", "schema": {"type": "string", "format": "date-time"}},
]
METER = {"name": "meter", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "the meter's measurement entity id"}
DAY = {"name": "day", "in": "query", "schema": {"type": "string", "format": "date"},
       "description": "local day (default: the day of the last observation)"}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"},
                                                                 "description": {"type": "string"}}}


def _get(summary: str, parameters: list[Json], schema: Json, tag: str) -> Json:
    return {"get": {"summary": summary, "tags": [tag], "parameters": TENANT + parameters,
                    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
                                  "400": {"$ref": "#/components/responses/Error"},
                                  "401": {"$ref": "#/components/responses/Error"}}}}


def _array(ref: str) -> Json:
    return {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}}


def openapi_document() -> Json:
    period = {"type": "object", "properties": {
        "from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"},
        "vector": {"type": "string"}, "consumption": {"type": "number"}, "unit": {"type": "string"},
        "production": {"type": ["number", "null"]}, "estimated": {"type": "boolean"},
        "completeness": {"type": "number"}, "complete": {"type": "boolean"}}}
    balance = {"type": "object", "properties": {
        "area": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"},
        "energyDelivered": {"type": "number"}, "energyConsumed": {"type": "number"},
        "energyProduced": {"type": "number"}, "losses": {"type": "number"},
        "lossesPercent": {"type": ["number", "null"]}, "completeness": {"type": "number"},
        "metersExpected": {"type": "integer"}, "metersReported": {"type": "integer"}, "estimated": {"type": "boolean"}}}
    alarm = {"type": "object", "properties": {
        "kind": {"type": "string", "enum": ["powerOutage", "leak", "backflow", "lowDeltaT", "peakPower", "silence"]},
        "source": {"type": "string"}, "start": {"type": "string"}, "end": {"type": ["string", "null"]},
        "active": {"type": "boolean"}, "customersAffected": {"type": "integer"},
        "durationSeconds": {"type": ["integer", "null"]}, "description": {"type": "string"}}}
    breaker_request = {"type": "object", "properties": {
        "id": {"type": "integer"}, "meter": {"type": "string"}, "action": {"type": "string"},
        "requestedAt": {"type": "string"}, "requestedBy": {"type": "string"},
        "status": {"type": "string", "enum": ["REQUESTED", "PENDING", "OK", "ERROR", "FAILED"]},
        "info": {"type": "string"}, "updatedAt": {"type": "string"}}}
    paths: Json = {
        "/notify": {"post": {
            "summary": "NGSI-v2 notification (normalized): readings and topology in, idempotent",
            "tags": ["notifications"], "parameters": TENANT,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["data"], "properties": {
                    "subscriptionId": {"type": "string"}, "data": {"type": "array", "items": {"type": "object"}}}}}}},
            "responses": {"200": {"description": "counts of new and duplicate observations"},
                          "400": {"$ref": "#/components/responses/Error"}}}},
        "/v1/overview": _get("Pilot overview: meters per vector, active alarms, latest losses", [],
                             {"type": "object"}, "overview"),
        "/v1/meters": _get("Meters seen, with their vector and last observation", [], {"type": "array"}, "meters"),
        "/v1/meters/{meter}/consumption": _get(
            "Consumption profile of a meter", [METER, *WINDOW, {
                "name": "resolution", "in": "query",
                "schema": {"type": "string", "enum": ["PT15M", "PT1H", "P1D", "P1M"], "default": "PT15M"}}],
            {"type": "object", "properties": {"periods": _array("Period")}}, "consumption"),
        "/v1/buildings/{building}/consumption": _get(
            "Consumption profile of a building (sum of its meters of one commodity)", [
                {"name": "building", "in": "path", "required": True, "schema": {"type": "string"}}, *WINDOW,
                {"name": "vector", "in": "query", "schema": {"type": "string", "default": "electricity",
                                                             "enum": ["electricity", "heat", "water", "gas"]}},
                {"name": "resolution", "in": "query",
                 "schema": {"type": "string", "enum": ["PT15M", "PT1H", "P1D", "P1M"], "default": "PT1H"}}],
            {"type": "object", "properties": {"periods": _array("Period")}}, "consumption"),
        "/v1/meters/{meter}/series": _get(
            "Raw canonical series of a meter (load curve: quantity p in W)", [METER, *WINDOW, {
                "name": "quantity", "in": "query", "schema": {"type": "string", "default": "p"}}],
            {"type": "object"}, "consumption"),
        "/v1/meters/{meter}/nialm": _get("NIALM switching events grouped into appliance signatures, energy per day",
                                         [METER, DAY], {"type": "object"}, "nialm"),
        "/v1/losses": _get("Energy balance and losses per substation/feeder and 15 min", [*WINDOW, {
            "name": "area", "in": "query", "schema": {"type": "string"}}],
            {"type": "object", "properties": {"balances": _array("Balance")}}, "losses"),
        "/v1/alarms": _get("Outages and anomalies (active only unless active=false)", [{
            "name": "active", "in": "query", "schema": {"type": "boolean", "default": True}}],
            _array("Alarm"), "alarms"),
        "/v1/completeness": _get("Readings received vs expected per meter and pilot, silent meters", [DAY],
                                 {"type": "object"}, "completeness"),
        "/v1/heat": _get("District heating: ΔT per 15 min, daily peak vs contracted power", [*WINDOW, {
            "name": "meter", "in": "query", "schema": {"type": "string"}}], {"type": "object"}, "heat"),
        "/v1/water": _get("Water: night minimum flow per meter and night", [{
            "name": "meter", "in": "query", "schema": {"type": "string"}}], {"type": "array"}, "water"),
        "/v1/meters/{meter}/breaker": {
            **_get("Breaker state in the broker and the audit trail of the meter", [METER], {"type": "object"},
                   "breaker"),
            "post": {"summary": "Connect / disconnect / read the E350 breaker (bearer token required)",
                     "tags": ["breaker"], "security": [{"bearer": []}], "parameters": [*TENANT, METER, {
                         "name": "X-User", "in": "header", "schema": {"type": "string"},
                         "description": "operator name for the audit trail"}],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["action"], "properties": {
                             "action": {"type": "string", "enum": ["connect", "disconnect", "status"]},
                             "entityType": {"type": "string"}}}}}},
                     "responses": {"202": {"description": "sent; status PENDING", "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/BreakerRequest"}}}},
                         **{code: {"$ref": "#/components/responses/Error"} for code in ("401", "403", "404", "502")}}}},
        "/v1/breaker/audit": _get("Audit trail of every breaker request of the tenant", [], _array("BreakerRequest"),
                                  "breaker"),
        "/health": {"get": {"summary": "Liveness and backlog", "responses": {"200": {"description": "OK"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "flexmeter business service", "version": "1.0.0",
                 "description": "Energy balance and losses, consumption profiles, outages, water, district heating, "
                                "completeness, NIALM and the remote breaker, computed from NGSI-v2 notifications."},
        "paths": paths,
        "components": {
            "schemas": {"Period": period, "Balance": balance, "Alarm": alarm, "BreakerRequest": breaker_request,
                        "Error": ERROR},
            "responses": {"Error": {"description": "error", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
    }
