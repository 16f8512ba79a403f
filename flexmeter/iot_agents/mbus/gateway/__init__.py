"""The M-Bus bus master for a field computer (`flexmeter gateway mbus`): EN 13757-2 link layer over a serial
line or an M-Bus-over-TCP converter, meter scans, and store-and-forward publishing to the M-Bus agent.
See docs/mbus-agent.md."""

from .errors import GatewayError, NoAnswerError, TransportClosedError
from .master import BusTiming, MbusMaster

__all__ = ["BusTiming", "GatewayError", "MbusMaster", "NoAnswerError", "TransportClosedError"]
