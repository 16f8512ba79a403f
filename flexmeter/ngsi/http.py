"""The one HTTP session wrapper the FIWARE clients share: base URL, tenant headers, typed errors."""

from __future__ import annotations

from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter

from flexmeter.ngsi.errors import NgsiConnectionError, NgsiResponseError
from flexmeter.ngsi.headers import FiwareHeaders


class HttpApi:
    """A base URL plus one pooled ``requests.Session``; each call may override the tenant headers."""

    def __init__(
        self,
        base_url: str,
        headers: FiwareHeaders | None = None,
        *,
        timeout: float = 10.0,
        pool_size: int = 16,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = headers or FiwareHeaders()
        self.timeout = timeout
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: FiwareHeaders | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        extra_headers: dict[str, str] | None = None,
        expect: tuple[int, ...] | None = None,
    ) -> requests.Response:
        """Send a request; raise :class:`NgsiResponseError` unless the status is 2xx (or in ``expect``)."""
        all_headers = (headers or self.headers).as_dict()
        if extra_headers:
            all_headers.update(extra_headers)
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self.session.request(
                method,
                f"{self.base_url}{path}",
                headers=all_headers,
                params=clean_params or None,
                json=json,
                data=data,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise NgsiConnectionError(f"{method} {self.base_url}{path}: {exc}") from exc
        ok = response.status_code in expect if expect else 200 <= response.status_code < 300
        if not ok:
            raise NgsiResponseError(response)
        return response

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
