"""Keep HTTP/1.1 connections open after body-less responses (204, 304, 1xx) under waitress.

waitress 3.0 closes the connection after every response without a Content-Length, including a 204,
which may not carry one (RFC 9110 §8.6): it adds ``Connection: close`` and the client has to open a
new TCP connection for its next request. The broker answers every PATCH and batch update with 204,
so each of them paid a connection set-up on both sides (about half of the broker's CPU per PATCH,
measured), and a receiver answering 204 to notifications did the same to the notifier. Orion keeps
such connections alive. A body-less response is delimited by its header alone, so keeping the
connection is safe; every other reason to close (``Connection: close`` from the client, HTTP/1.0,
an application error) is left to waitress.

:func:`install` patches waitress' task class for the whole process; :func:`flexmeter.serving.serve` calls it,
so every HTTP component of flexmeter (and the benchmark receiver) keeps connections open.
"""

from __future__ import annotations

from typing import Any

from waitress.task import Task

_installed = False


def install() -> None:
    """Idempotent: patch ``waitress.task.Task.build_response_header`` once per process."""
    global _installed
    if _installed:
        return
    original = Task.build_response_header

    def build_response_header(self: Any) -> bytes:
        if (self.has_body or self.version != "1.1" or self.close_on_finish
                or self.request.headers.get("CONNECTION", "").lower() == "close"):
            return original(self)
        # the only close waitress would decide now is "no Content-Length": not needed without a body
        self.set_close_on_finish = _keep_open
        try:
            return original(self)
        finally:
            del self.set_close_on_finish

    Task.build_response_header = build_response_header
    _installed = True


def _keep_open() -> None:
    """Stands in for ``Task.set_close_on_finish`` while a body-less response's header is built."""
