"""M-Bus (EN 13757-2/-3) and wireless M-Bus (EN 13757-4, OMS) decoder: pure functions, no I/O.

``decode_mbus(frame)`` and ``decode_wmbus(telegram, key=None)`` return a ``Telegram`` (header fields and
``records``) or raise a ``DecodeError`` subclass naming the byte offset and the rule. See docs/mbus.md.
"""

from __future__ import annotations

from .decoder import decode_mbus, decode_wmbus, parse_hex
from .errors import DecodeError
from .records import Record
from .telegram import Telegram

__all__ = ["DecodeError", "Record", "Telegram", "decode_mbus", "decode_wmbus", "parse_hex"]
