"""DLMS/UDP (IEC 62056-9-7, as G3-PLC meters send over IPv6): a datagram listener feeding the DLMS family.

The core has no UDP server, so the family starts this listener from its ``start(context)`` hook when
``FLEXMETER_DLMS_UDP_PORT`` is set (0 = a free port; the listener prints ``dlms udp on HOST:PORT``).
Each datagram is one wrapped APDU, submitted through the context (durable in the inbox) as a message of the
group ``FLEXMETER_DLMS_UDP_APIKEY``;
UDP has no acknowledgement, so what is lost before the socket is lost (the meter's push schedule resends).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from flexmeter.config import get_settings
from flexmeter.iot_agents.core.family import Family, Message

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65535
Submit = Callable[[Family, Message], Any]


class DlmsUdpListener:
    def __init__(self, family: Family, submit: Submit, host: str = "0.0.0.0", port: int = 4059,
                 apikey: str = "dlms") -> None:
        from flexmeter.iot_agents.dlms.family import UDP_ROUTE

        self.family = family
        self.submit = submit
        self.apikey = apikey
        self.route = UDP_ROUTE
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind((host, port))
        self.sock.settimeout(0.5)
        self.address = self.sock.getsockname()
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dlms-udp", daemon=True)

    def start(self) -> None:
        self._thread.start()
        print(f"dlms udp on {self.address[0]}:{self.address[1]}", flush=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                log.exception("DLMS/UDP socket error")
                continue
            self.received += 1
            params = {"apikey": self.apikey, "gateway": f"{peer[0]}:{peer[1]}"}
            try:
                self.submit(self.family, Message(self.route, data, params, "application/octet-stream"))
            except Exception:
                log.exception("DLMS/UDP datagram from %s not submitted", peer[0])


def listener_from_env(family: Family, submit: Submit) -> DlmsUdpListener | None:
    """The listener configured by ``FLEXMETER_DLMS_UDP_PORT`` / ``_HOST`` / ``_APIKEY``, or None."""
    settings = get_settings()
    if settings.dlms_udp_port is None:
        return None
    return DlmsUdpListener(family, submit, host=settings.dlms_udp_host, port=settings.dlms_udp_port,
                           apikey=settings.dlms_udp_apikey)
