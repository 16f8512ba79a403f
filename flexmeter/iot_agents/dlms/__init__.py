"""DLMS/COSEM and IEC 62056-21 decoders (pure functions, no I/O); see docs/dlms.md.

Entry points: ``decode_dlms`` (any DLMS input → tree, APDU, values by OBIS), ``decode_readout`` (mode C
readouts and P1 telegrams), ``decode_message`` (single mode C messages). Every error on bad input is a
``DecodeError``. Names are imported lazily so that ``flexmeter`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DecodeError": "errors", "DlmsMessage": "decoder", "Keys": "decoder", "decode_dlms": "decoder",
    "Readout": "iec62056_21", "decode_message": "iec62056_21", "decode_readout": "iec62056_21",
    "ObisValue": "push", "PushValues": "push", "ReplayGuard": "security",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
