"""Byte transports to the bus: a serial line (pyserial, 8E1 as EN 13757-2 requires) or a TCP converter."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from typing import Protocol

from .errors import TransportClosedError


class Transport(Protocol):
    is_network: bool

    def write(self, data: bytes) -> None: ...

    def read(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes; returns what arrived (maybe nothing) once ``timeout`` passes with no byte."""
        ...

    def drain(self) -> None:
        """Discard whatever is waiting (a late answer must not be taken for the next one)."""
        ...

    def close(self) -> None: ...


class TcpTransport:
    """An M-Bus-over-TCP converter (transparent byte stream)."""

    is_network = True

    def __init__(self, host: str, port: int, connect_timeout: float = 5.0) -> None:
        self.address = (host, port)
        self.connect_timeout = connect_timeout
        self._sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            try:
                self._sock = socket.create_connection(self.address, timeout=self.connect_timeout)
            except OSError as exc:
                raise TransportClosedError(f"cannot connect to {self.address[0]}:{self.address[1]}: {exc}") from exc
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._sock

    def write(self, data: bytes) -> None:
        try:
            self._socket().sendall(data)
        except OSError as exc:
            self.close()
            raise TransportClosedError(f"write to {self.address}: {exc}") from exc

    def read(self, size: int, timeout: float) -> bytes:
        sock = self._socket()
        out = bytearray()
        while len(out) < size:
            ready, _, _ = select.select([sock], [], [], timeout)
            if not ready:
                break
            try:
                chunk = sock.recv(size - len(out))
            except OSError as exc:
                self.close()
                raise TransportClosedError(f"read from {self.address}: {exc}") from exc
            if not chunk:
                self.close()
                raise TransportClosedError(f"{self.address[0]}:{self.address[1]} closed the connection")
            out += chunk
        return bytes(out)

    def drain(self) -> None:
        if self._sock is None:
            return
        while True:
            ready, _, _ = select.select([self._sock], [], [], 0)
            if not ready:
                return
            try:
                if not self._sock.recv(4096):
                    self.close()
                    return
            except OSError:
                self.close()
                return

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


class SerialTransport:
    """A serial M-Bus level converter: 8 data bits, even parity, 1 stop bit (the 11-bit character)."""

    is_network = False

    def __init__(self, device: str, baudrate: int = 2400) -> None:
        import serial  # pyserial, imported here so the TCP-only gateway does not need it loaded

        try:
            self._port = serial.Serial(device, baudrate=baudrate, bytesize=serial.EIGHTBITS,
                                       parity=serial.PARITY_EVEN, stopbits=serial.STOPBITS_ONE, timeout=0)
        except (serial.SerialException, OSError) as exc:
            raise TransportClosedError(f"cannot open {device}: {exc}") from exc
        self._serial = serial

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except (self._serial.SerialException, OSError) as exc:
            raise TransportClosedError(f"write: {exc}") from exc

    def read(self, size: int, timeout: float) -> bytes:
        out = bytearray()
        deadline = time.monotonic() + timeout
        while len(out) < size:
            try:
                chunk = self._port.read(size - len(out))
            except (self._serial.SerialException, OSError) as exc:
                raise TransportClosedError(f"read: {exc}") from exc
            if chunk:
                out += chunk
                deadline = time.monotonic() + timeout
                continue
            if time.monotonic() >= deadline:
                break
            time.sleep(0.002)
        return bytes(out)

    def drain(self) -> None:
        with contextlib.suppress(self._serial.SerialException, OSError):
            self._port.reset_input_buffer()

    def close(self) -> None:
        self._port.close()
