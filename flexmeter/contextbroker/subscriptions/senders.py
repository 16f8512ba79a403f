"""Delivering notifications: HTTP (one keep-alive session per worker) and MQTT (one client per broker).

A delivery ends in an :class:`Outcome`: ``code`` set when the receiver answered (any status, 4xx/5xx too,
counts as delivered, as in Orion), ``failure`` set when it could not be reached (refused, timeout, DNS,
MQTT connection refused or publish not acknowledged).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
import requests

from flexmeter.config import get_settings
from flexmeter.contextbroker.subscriptions.payload import HttpMessage, MqttMessage
from flexmeter.contextbroker.subscriptions.pipeline import PipelinedConnection, Request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    code: int | None = None
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


class HttpSender:
    """HTTP delivery for one worker thread: keep-alive connections (see :mod:`pipeline`) for plain
    ``http://`` receivers, one ``requests.Session`` for ``https://``.

    ``FLEXMETER_NOTIFY_PIPELINE`` (default 32; 1 = no pipelining) sets how many requests may be in
    flight on one connection; a receiver that closes the connection mid-pipeline gets the rest one
    at a time.
    """

    max_pipeline_bytes = 256 * 1024

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.max_pipeline = get_settings().notify_pipeline
        self._conns: dict[tuple[str, int, float], PipelinedConnection] = {}
        self._urls: dict[str, tuple[str, int, str] | None] = {}
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=16, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.trust_env = False  # never route notifications through an environment proxy

    def send(self, message: HttpMessage) -> Outcome:
        return self.send_many([message])[0]

    def send_many(self, messages: list[HttpMessage]) -> list[Outcome]:
        """Outcomes in the order of ``messages``; consecutive messages to one receiver are pipelined."""
        outcomes: list[Outcome | None] = [None] * len(messages)
        groups: dict[tuple[str, int, float], list[tuple[int, Request]]] = {}
        for index, message in enumerate(messages):
            plain = self._plain_http(message.url)
            if plain is not None:
                host, port, target = plain
                key = (host, port, message.timeout or self.timeout)
                groups.setdefault(key, []).append(
                    (index, Request(message.method, target, message.headers, message.body)))
            else:
                outcomes[index] = self._send_requests(message)
        for key, items in groups.items():
            conn = self._conns.get(key)
            if conn is None:
                conn = self._conns[key] = PipelinedConnection(*key)
            start = 0
            while start < len(items):
                end, size = start, 0
                while end < len(items) and end - start < self.max_pipeline and (
                        end == start or size + len(items[end][1].body or b"") < self.max_pipeline_bytes):
                    size += len(items[end][1].body or b"")
                    end += 1
                chunk = items[start:end]
                results = conn.exchange([request for _, request in chunk])
                for (index, _), result in zip(chunk, results, strict=True):
                    outcomes[index] = _outcome(result)
                start = end
                if any(isinstance(r, TimeoutError) for r in results):
                    # an unresponsive receiver must not hold this worker (and the other subscriptions
                    # it serves) for one timeout per queued notification
                    for index, _ in items[start:]:
                        outcomes[index] = Outcome(failure="not sent: the receiver timed out on the previous one")
                    break
        return [o if o is not None else Outcome(failure="not sent") for o in outcomes]

    def _plain_http(self, url: str) -> tuple[str, int, str] | None:
        """(host, port, target) of an ``http://`` URL, None for anything else; cached per URL."""
        try:
            return self._urls[url]
        except KeyError:
            pass
        try:
            parts = urlsplit(url)
            port = parts.port or 80
        except ValueError:
            return None  # requests reports the bad URL as the failure
        result = None
        if parts.scheme == "http" and parts.hostname:
            result = (parts.hostname, port, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        if len(self._urls) >= 1024:
            self._urls.clear()
        self._urls[url] = result
        return result

    def _send_requests(self, message: HttpMessage) -> Outcome:
        try:
            response = self.session.request(message.method, message.url, data=message.body,
                                            headers=message.headers, timeout=message.timeout or self.timeout,
                                            allow_redirects=False)
            response.close()
            return Outcome(code=response.status_code)
        except requests.Timeout:
            return Outcome(failure="Timeout was reached")
        except requests.ConnectionError as exc:
            return Outcome(failure=f"Couldn't connect to server ({_short(exc)})")
        except (requests.RequestException, ValueError) as exc:
            return Outcome(failure=f"notification failed: {_short(exc)}")

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
        self.session.close()


def _outcome(result: int | BaseException) -> Outcome:
    if isinstance(result, int):
        return Outcome(code=result)
    if isinstance(result, TimeoutError):
        return Outcome(failure="Timeout was reached")
    return Outcome(failure=f"Couldn't connect to server ({_short(result)})")


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


class _MqttConnection:
    def __init__(self, host: str, port: int, user: str | None, passwd: str | None, timeout: float) -> None:
        self.timeout = timeout
        self.connected = threading.Event()
        self.refused: str | None = None
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  protocol=mqtt.MQTTv311)
        if user is not None:
            self.client.username_pw_set(user, passwd)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        self.host = host
        self.port = port
        self.started = False

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                    properties: object = None) -> None:
        if getattr(reason, "is_failure", False):
            self.refused = str(reason)
            self.connected.clear()
        else:
            self.refused = None
            self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                       properties: object = None) -> None:
        self.connected.clear()

    def ensure(self) -> str | None:
        """Connect if needed; the failure reason, or None when connected."""
        if self.connected.is_set():
            return None
        if not self.started:
            try:
                self.client.connect(self.host, self.port, keepalive=30)
            except OSError as exc:
                return f"MQTT connection to {self.host}:{self.port} failed ({_short(exc)})"
            self.client.loop_start()
            self.started = True
        if not self.connected.wait(self.timeout):
            return f"MQTT connection to {self.host}:{self.port} not established" + (
                f" ({self.refused})" if self.refused else "")
        return None

    def close(self) -> None:
        if self.started:
            self.client.disconnect()
            self.client.loop_stop()


class MqttPool:
    """One paho client per (broker URL, user): shared by every worker, publishes are thread-safe."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._conns: dict[tuple[str, int, str | None, str | None], _MqttConnection] = {}
        self._lock = threading.Lock()

    def _conn(self, message: MqttMessage) -> _MqttConnection:
        parts = urlsplit(message.url)
        host = parts.hostname or "localhost"
        port = parts.port or 1883
        user = message.user if message.user is not None else (
            unquote(parts.username) if parts.username else None)
        passwd = message.passwd if message.passwd is not None else (
            unquote(parts.password) if parts.password else None)
        key = (host, port, user, passwd)
        with self._lock:
            conn = self._conns.get(key)
            if conn is None:
                conn = self._conns[key] = _MqttConnection(host, port, user, passwd, self.timeout)
            return conn

    def send(self, message: MqttMessage) -> Outcome:
        conn = self._conn(message)
        with self._lock:  # serialize connection setup; publishing itself happens outside
            failure = conn.ensure()
        if failure:
            return Outcome(failure=failure)
        info = conn.client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return Outcome(failure=f"MQTT publish failed: {mqtt.error_string(info.rc)}")
        if message.qos > 0:
            try:
                info.wait_for_publish(self.timeout)
            except (ValueError, RuntimeError) as exc:
                return Outcome(failure=f"MQTT publish failed: {_short(exc)}")
            if not info.is_published():
                return Outcome(failure="MQTT publish not acknowledged in time")
        return Outcome(code=None)

    def close(self) -> None:
        with self._lock:
            for conn in self._conns.values():
                try:
                    conn.close()
                except Exception:
                    log.exception("closing MQTT connection")
            self._conns.clear()
