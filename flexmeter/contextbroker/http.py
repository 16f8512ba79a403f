"""Request/response plumbing shared by the broker's routes: JSON in and out, options, Orion's checks.

Responses are serialized with the stdlib encoder without key sorting (Orion keeps attribute order)
and without Flask's jsonify, which is slower and sorts keys.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import flask
import orjson
from flask import Response

from flexmeter.contextbroker.errors import DESC_PARSE, BadRequest, ParseError, UnsupportedMediaType
from flexmeter.contextbroker.render import RenderMode

MAX_PAYLOAD = 1024 * 1024  # Orion's default -inReqPayloadMaxSize
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
KNOWN_OPTIONS = frozenset({
    "count", "keyValues", "values", "unique", "append", "upsert", "overrideMetadata", "skipForwarding",
    "forcedUpdate", "flowControl", "noAttrDetail", "fullCounters", "sysAttrs",
})

class EnvironHeaders:
    """``get(name, default)`` on a WSGI environ, as werkzeug's headers but without their overhead."""

    __slots__ = ("_environ",)

    def __init__(self, environ: dict[str, Any]) -> None:
        self._environ = environ

    def get(self, key: str, default: Any = None) -> Any:
        name = key.upper().replace("-", "_")
        if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = "HTTP_" + name
        return self._environ.get(name, default)


class FastRequest:
    """The part of ``flask.request`` the hot routes use, read straight from the WSGI environ.

    The broker serves single-entity PATCH and ``/v2/op/update`` through it, skipping Flask's request
    machinery (about a third of a small request's CPU); every other route goes through Flask.
    """

    __slots__ = ("_body", "args", "content_type", "environ", "headers", "method", "mimetype", "path")

    def __init__(self, environ: dict[str, Any], path: str) -> None:
        self.environ = environ
        self.path = path
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.headers = EnvironHeaders(environ)
        query = environ.get("QUERY_STRING", "")
        args: dict[str, str] = {}
        if query:
            for key, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace"):
                args.setdefault(key, value)
        self.args = args
        self.content_type = environ.get("CONTENT_TYPE") or None
        self.mimetype = (self.content_type or "").split(";", 1)[0].strip().lower()
        self._body: bytes | None = None

    def get_data(self, cache: bool = True) -> bytes:
        if self._body is None:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
            self._body = self.environ["wsgi.input"].read(length) if length > 0 else b""
        return self._body


_local = threading.local()


def current_request() -> Any:
    """The request being served: the fast path's :class:`FastRequest`, else Flask's ``request``."""
    fast = getattr(_local, "fast", None)
    return fast if fast is not None else flask.request


def set_fast_request(fast: FastRequest | None) -> None:
    _local.fast = fast


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
JSON_MIMETYPE = "application/json"


class FastResponse(Response):
    """A body-less response of the fast routes, answered without werkzeug's response machinery.

    Only :func:`empty_response` builds it, and only while a :class:`FastRequest` is being served (the
    object never reaches Flask); it skips werkzeug's ``__init__`` and header processing, which cost
    more than the rest of a small PATCH. ``headers`` stays a plain list of pairs.
    """

    def __init__(self, status: int, headers: dict[str, str] | None) -> None:
        self.fast_status = f"{status} {HTTPStatus(status).phrase}"
        self.fast_headers = [("Content-Length", "0"), *(headers or {}).items()]

    def __call__(self, environ: Any, start_response: Any) -> Any:
        start_response(self.fast_status, list(self.fast_headers))
        return [b""]


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(payload), status=status, mimetype=JSON_MIMETYPE, headers=headers)


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    if getattr(_local, "fast", None) is not None:
        return FastResponse(status, headers)
    response = Response(status=status, headers=headers)
    response.headers.remove("Content-Type")
    return response


def encode(payload: Any) -> str:
    return _encode(payload)


def content_mime() -> str:
    return (current_request().content_type or "").split(";", 1)[0].strip().lower()


def read_json(*, allow_text: bool = False) -> Any:
    """The request body as JSON, after Orion's Content-Type check (415) and parse (400 ParseError)."""
    mime = content_mime()
    if mime != JSON_MIMETYPE and not (allow_text and mime == "text/plain"):
        if not mime:
            raise UnsupportedMediaType(
                "Content-Type header not used, default application/octet-stream is not supported")
        raise UnsupportedMediaType(f"not supported content type: {current_request().content_type}")
    data = current_request().get_data(cache=False)
    if mime == "text/plain":
        return data.decode("utf-8", errors="replace")
    return parse_json(data)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError("number out of range")
    return value


_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19


def _has_long_digit_run(data: bytes) -> bool:
    """Whether ``data`` holds 19+ consecutive digits (10x cheaper than a regex scan on large bodies)."""
    return _LONG_RUN in data.translate(_DIGITS_AS_ZERO)


def parse_json(data: bytes | str) -> Any:
    """Strict JSON (no NaN/Infinity, no overflowing numbers); any failure is Orion's ParseError.

    orjson first (several times faster); the stdlib parser decides whatever orjson refuses (so the
    error is exactly the stdlib's) and any body with 19+ digit runs, whose integers orjson would
    turn into floats beyond 64 bits.
    """
    if isinstance(data, bytes) and not _has_long_digit_run(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ParseError(DESC_PARSE) from None


def read_object() -> dict[str, Any]:
    body = read_json()
    if not isinstance(body, dict):
        raise ParseError(DESC_PARSE)
    return body


def csv_param(name: str) -> list[str] | None:
    """A comma-separated URI parameter as a list (None when absent)."""
    raw = current_request().args.get(name)
    if raw is None:
        return None
    items = [item.strip() for item in raw.split(",")]
    items = [item for item in items if item]
    if not items:
        raise BadRequest(f"Empty right-hand-side for URI param /{name}/")
    return items


def options() -> frozenset[str]:
    raw = current_request().args.get("options")
    if raw is None:
        return frozenset()
    opts = frozenset(o.strip() for o in raw.split(",") if o.strip())
    if not opts <= KNOWN_OPTIONS:
        raise BadRequest("Invalid value for URI param /options/")
    return opts


def render_mode(opts: Iterable[str]) -> RenderMode:
    opts = frozenset(opts)
    if "keyValues" in opts and "values" in opts:
        raise BadRequest("Invalid value for URI param /options/")
    if "values" in opts or "unique" in opts:
        return "values"
    if "keyValues" in opts:
        return "keyValues"
    return "normalized"


def attrs_format_param() -> str | None:
    """``attrsFormat`` as Orion's alias for keyValues/values (normalized by default)."""
    raw = current_request().args.get("attrsFormat")
    if raw is None:
        return None
    if raw not in ("normalized", "keyValues", "values"):
        raise BadRequest("invalid attrsFormat, accepted values: legacy, normalized, keyValues, values")
    return raw


def pagination() -> tuple[int, int]:
    limit_raw = current_request().args.get("limit")
    offset_raw = current_request().args.get("offset")
    limit = DEFAULT_LIMIT
    offset = 0
    if limit_raw is not None:
        if not (limit_raw.isascii() and limit_raw.isdigit()):
            raise BadRequest(f"Bad pagination limit: /{limit_raw}/ [must be a decimal number]")
        limit = int(limit_raw)
        if limit == 0:
            raise BadRequest(f"Bad pagination limit: /{limit_raw}/ [a value of ZERO is unacceptable]")
        if limit > MAX_LIMIT:
            raise BadRequest(f"Bad pagination limit: /{limit_raw}/ [max: {MAX_LIMIT}]")
    if offset_raw is not None:
        if not (offset_raw.isascii() and offset_raw.isdigit()):
            raise BadRequest(f"Bad pagination offset: /{offset_raw}/ [must be a decimal number]")
        offset = int(offset_raw)
    return limit, offset


def correlator() -> str:
    return current_request().headers.get("Fiware-Correlator") or str(uuid.uuid4())
