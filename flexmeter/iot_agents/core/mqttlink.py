"""The MQTT connection shared by the agent's subscriber (``mqtt.py``) and the bench publisher (``rawmqtt.py``).

``mqtt://[user[:password]@]host[:1883]`` or ``mqtts://...[:8883]`` (TLS): user name and password go in the
CONNECT packet (percent-decoded from the URL, or ``FLEXMETER_MQTT_USERNAME``/``FLEXMETER_MQTT_PASSWORD``);
TLS verifies the MQTT broker's certificate against ``FLEXMETER_MQTT_CA_FILE`` (else the system's CAs) and
its name against the URL's host, optionally presenting a client certificate (``FLEXMETER_MQTT_CERT_FILE``
/ ``FLEXMETER_MQTT_KEY_FILE``). A refused CONNECT raises :class:`MqttConnectRefused` with the reason code
named as the MQTT specification names it; a certificate the client does not accept raises
:class:`MqttTlsError`. The password is never part of a message, a log line or ``repr``.

One thread reads while others write (PUBACKs from the pipeline, commands): plain sockets allow that; an
``SSLSocket`` does not (one OpenSSL object), so with TLS the socket is non-blocking and every read and
write holds one lock, the reader waiting for data in ``select`` without it.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlparse

from flexmeter.errors import FlexmeterError

if TYPE_CHECKING:
    from flexmeter.config import Settings

MQTT5, MQTT311 = 5, 4
PLAIN_SCHEMES = ("mqtt", "tcp")
TLS_SCHEMES = ("mqtts", "ssl", "tls")

CONNACK_311 = {
    1: "unacceptable protocol version", 2: "identifier rejected", 3: "server unavailable",
    4: "bad user name or password", 5: "not authorized",
}
CONNACK_5 = {
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error", 0x83: "implementation specific error",
    0x84: "unsupported protocol version", 0x85: "client identifier not valid", 0x86: "bad user name or password",
    0x87: "not authorized", 0x88: "server unavailable", 0x89: "server busy", 0x8A: "banned",
    0x8C: "bad authentication method", 0x90: "topic name invalid", 0x95: "packet too large",
    0x97: "quota exceeded", 0x99: "payload format invalid", 0x9A: "retain not supported",
    0x9B: "QoS not supported", 0x9C: "use another server", 0x9D: "server moved",
    0x9F: "connection rate exceeded",
}
AUTH_CODES = {(MQTT311, 4), (MQTT311, 5), (MQTT5, 0x86), (MQTT5, 0x87), (MQTT5, 0x8C)}


class MqttError(FlexmeterError):
    """Root of the agent's MQTT errors."""


class MqttConfigError(MqttError):
    """An MQTT URL or TLS setting that cannot work (unknown scheme, CA file missing)."""


class MqttProtocolError(MqttError):
    """The MQTT broker sent something this client does not accept (refused CONNECT, bad packet)."""


class MqttConnectRefused(MqttProtocolError):
    """CONNACK with a failure reason code, named as the MQTT specification names it."""

    def __init__(self, code: int, version: int, where: str) -> None:
        table = CONNACK_5 if version == MQTT5 else CONNACK_311
        self.code = code
        self.version = version
        self.reason = table.get(code, "unknown reason")
        super().__init__(f"CONNECT to {where} refused: 0x{code:02X} {self.reason} "
                         f"(MQTT {'5' if version == MQTT5 else '3.1.1'})")

    @property
    def is_auth(self) -> bool:
        """Bad credentials or not authorized: retrying soon will not help."""
        return (self.version, self.code) in AUTH_CODES


class MqttTlsError(MqttError):
    """The TLS handshake failed: the MQTT broker's certificate (or name) is not accepted, or TLS is off."""


def host_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    tls = parsed.scheme.lower() in TLS_SCHEMES
    return parsed.hostname or "127.0.0.1", parsed.port or (8883 if tls else 1883)


@dataclass(frozen=True)
class MqttEndpoint:
    """Where and how to connect; ``display`` is the URL without the password (for logs and reports)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def parse(cls, url: str, *, username: str | None = None, password: str | None = None,
              ca_file: str | None = None, cert_file: str | None = None,
              key_file: str | None = None) -> MqttEndpoint:
        """The URL's own user/password win over the ``username``/``password`` given (settings)."""
        parsed = urlparse(url)
        scheme = parsed.scheme.lower()
        if scheme not in PLAIN_SCHEMES + TLS_SCHEMES:
            raise MqttConfigError(f"unsupported MQTT URL scheme {scheme!r}: use mqtt://host:port or mqtts://host:port")
        try:
            port = parsed.port
        except ValueError as exc:
            raise MqttConfigError(f"bad port in the MQTT URL: {exc}") from None
        tls = scheme in TLS_SCHEMES
        user = unquote(parsed.username) if parsed.username is not None else username
        secret = unquote(parsed.password) if parsed.password is not None else password
        return cls(parsed.hostname or "127.0.0.1", port or (8883 if tls else 1883), tls, user or None,
                   secret, ca_file, cert_file, key_file)

    @classmethod
    def from_settings(cls, url: str, settings: Settings) -> MqttEndpoint:
        """``url`` with the credentials and TLS files of :class:`flexmeter.config.Settings`."""
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password is not None else None
        return cls.parse(url, username=settings.mqtt_username, password=password,
                         ca_file=_path(settings.mqtt_ca_file), cert_file=_path(settings.mqtt_cert_file),
                         key_file=_path(settings.mqtt_key_file))

    @property
    def display(self) -> str:
        user = ""
        if self.username is not None:
            user = f"{self.username}:***@" if self.password is not None else f"{self.username}@"
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"

    @property
    def url_without_password(self) -> str:
        """A URL another process can use with the password given apart (``FLEXMETER_MQTT_PASSWORD``)."""
        user = f"{quote(self.username, safe='')}@" if self.username is not None else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
            if self.cert_file:
                context.load_cert_chain(self.cert_file, self.key_file)
        except FileNotFoundError as exc:
            raise MqttConfigError(f"MQTT TLS file not found: {exc.filename}") from None
        except ssl.SSLError as exc:
            raise MqttConfigError(f"MQTT TLS files not usable ({self.ca_file}, {self.cert_file}): {exc}") from None
        return context  # CERT_REQUIRED and check_hostname: the broker's name is checked against the URL's host

    def connect(self, timeout: float = 10.0, context: ssl.SSLContext | None = None) -> MqttSocket:
        """``context``: a TLS context made once (:meth:`ssl_context`) for many connections."""
        return MqttSocket(self, timeout, context)


def _path(value: object) -> str | None:
    return str(value) if value else None


class MqttSocket:
    """A connected (and, for ``mqtts``, verified) socket: ``recv`` on one thread, ``sendall`` on any."""

    def __init__(self, endpoint: MqttEndpoint, timeout: float = 10.0, context: ssl.SSLContext | None = None) -> None:
        if endpoint.tls and context is None:
            context = endpoint.ssl_context()
        elif not endpoint.tls:
            context = None
        raw = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout: float | None = timeout
        self.tls = context is not None
        self.where = f"{endpoint.host}:{endpoint.port}"
        self._heard = False
        self._lock = threading.Lock()
        if context is None:
            self.sock: socket.socket = raw
            return
        where = f"{endpoint.host}:{endpoint.port}"
        try:
            self.sock = context.wrap_socket(raw, server_hostname=endpoint.host)
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            trusted = endpoint.ca_file or "the system's CAs"
            raise MqttTlsError(f"TLS: the certificate of {where} is not accepted: "
                               f"{exc.verify_message or exc.reason} (trusted: {trusted})") from None
        except ssl.SSLError as exc:
            raw.close()
            raise MqttTlsError(f"TLS handshake with {where} failed: {exc.reason or exc} "
                               "(is it a TLS listener?)") from None
        except OSError as exc:
            raw.close()
            raise MqttTlsError(f"TLS handshake with {where} failed: {exc} (is it a TLS listener?)") from None
        self.sock.setblocking(False)

    def set_timeout(self, timeout: float | None) -> None:
        """How long ``recv`` waits before TimeoutError (None: for ever)."""
        self.timeout = timeout
        if not self.tls:
            self.sock.settimeout(timeout)

    def recv(self, size: int = 262144) -> bytes:
        """Some bytes; b"" when the MQTT broker closed the connection; TimeoutError after ``timeout``."""
        if not self.tls:
            return self.sock.recv(size)
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        while True:
            if not sock.pending():
                readable, _, _ = select.select([sock], [], [], self.timeout)
                if not readable:
                    raise TimeoutError("no data from the MQTT broker")
            with self._lock:
                try:
                    data = sock.recv(size)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue  # a TLS record without application data (e.g. a session ticket)
                except ssl.SSLError as exc:
                    raise self._refused(exc) from None
                self._heard = True
                return data

    def _refused(self, exc: ssl.SSLError) -> OSError | MqttTlsError:
        """TLS 1.3 settles the client certificate after the handshake: a broker that wants one (or refuses
        ours) drops the connection before answering CONNECT, so the first read or write fails."""
        if self._heard:
            return exc
        return MqttTlsError(f"TLS: {self.where} ended the connection before answering ({exc.reason or exc}); "
                            "does it require a client certificate (FLEXMETER_MQTT_CERT_FILE/_KEY_FILE)?")

    def sendall(self, data: bytes) -> None:
        if not self.tls:
            self.sock.sendall(data)
            return
        view = memoryview(data)
        while view:
            with self._lock:
                try:
                    sent = self.sock.send(view)
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    sent = 0
                except ssl.SSLError as exc:
                    raise self._refused(exc) from None
            if sent:
                view = view[sent:]
            else:
                _, writable, _ = select.select([], [self.sock], [], 10.0)
                if not writable:
                    raise TimeoutError("the MQTT broker does not take our data")

    def shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


# -- packets ---------------------------------------------------------------------------------------------------
def encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_varint(len(body)) + body


def connect_packet(client_id: str, *, version: int, keepalive: int, clean: bool, endpoint: MqttEndpoint,
                   properties: bytes = b"") -> bytes:
    """CONNECT, with the user name and password flags and fields when the endpoint has credentials."""
    username, password = endpoint.username, endpoint.password
    if password is not None and username is None and version == MQTT311:
        username = ""  # 3.1.1 allows a password only with a user name
    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    variable = encode_string("MQTT") + bytes([version, flags]) + struct.pack("!H", keepalive)
    if version == MQTT5:
        variable += encode_varint(len(properties)) + properties
    payload = encode_string(client_id)
    if username is not None:
        payload += encode_string(username)
    if password is not None:
        secret = password.encode()
        payload += struct.pack("!H", len(secret)) + secret
    return packet(0x10, variable + payload)


def check_connack(first: int, body: bytes, version: int, where: str) -> bool:
    """The session-present flag of an accepting CONNACK; :class:`MqttConnectRefused` otherwise."""
    if first >> 4 != 2 or len(body) < 2:
        raise MqttProtocolError(f"expected CONNACK from {where}, got packet type {first >> 4}")
    if body[1] != 0:
        raise MqttConnectRefused(body[1], version, where)
    return bool(body[0] & 1)
