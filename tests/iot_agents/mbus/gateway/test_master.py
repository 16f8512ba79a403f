"""The bus master against simulated slaves behind a TCP converter: addressing, FCB, retries, scans."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from flexmeter.iot_agents.mbus import decode_mbus
from flexmeter.iot_agents.mbus.encode import encode_value
from flexmeter.iot_agents.mbus.gateway.errors import NoAnswerError
from flexmeter.iot_agents.mbus.gateway.master import BusTiming, MbusMaster, parse_secondary, secondary_of
from flexmeter.iot_agents.mbus.gateway.transport import TcpTransport
from flexmeter.simulator.mbus_slave import MbusSlaveSimulator, SimMeter

FAST = BusTiming(2400, response_timeout_override=0.03)


def _energy(kwh: int) -> bytes:
    return encode_value("energy", Decimal(kwh * 1000), "Wh", 3)


def _meters() -> list[SimMeter]:
    return [
        SimMeter(5, "12345678", telegrams=[_energy(100)]),
        SimMeter(7, "12345679", telegrams=[_energy(1), _energy(2), _energy(3)]),   # three telegrams
        SimMeter(250, "87654321", manufacturer="ELS", medium=0x07, telegrams=[_energy(9)]),
    ]


@pytest.fixture
def bus() -> Iterator[tuple[MbusSlaveSimulator, MbusMaster]]:
    sim = MbusSlaveSimulator(_meters()).start()
    host, port = sim.address.split(":")
    master = MbusMaster(TcpTransport(host, int(port)), FAST, retries=2)
    yield sim, master
    master.close()
    sim.stop()


def _energies(frames: list[bytes]) -> list[int]:
    return [int(next(r.value for r in decode_mbus(f).records if r.quantity == "energy")) // 1000 for f in frames]


def test_timing_at_2400_baud() -> None:
    t = BusTiming(2400)
    assert t.char_time == pytest.approx(11 / 2400)          # 4.58 ms per 11-bit character
    assert t.response_timeout == pytest.approx(330 / 2400 + 0.05)  # 187.5 ms
    assert t.frame_time(261) == pytest.approx(261 * 11 / 2400)
    assert BusTiming(9600).response_timeout == pytest.approx(330 / 9600 + 0.05)
    assert BusTiming(2400, extra=0.2).response_timeout == pytest.approx(0.3875)


def test_selection_bytes_and_secondary_address() -> None:
    assert parse_secondary("123456782C2D1B04") == bytes.fromhex("785634122D2C1B04")
    assert parse_secondary("12345678") == bytes.fromhex("78563412FFFFFFFF")
    assert parse_secondary("1FFFFFFF")[:4] == bytes.fromhex("FFFFFF1F")
    with pytest.raises(ValueError):
        parse_secondary("12G45678")
    frame = SimMeter(5, "12345678").answer(None)
    assert secondary_of(frame) == "123456782C2D1B04"


def test_primary_read_sends_nke_then_req_ud2_with_fcb_set(bus: tuple[MbusSlaveSimulator, MbusMaster]) -> None:
    sim, master = bus
    frames = master.read(5)
    assert _energies(frames) == [100]
    assert [r[1] for r in sim.requests] == [0x40, 0x7B]       # SND_NKE, REQ_UD2 FCV+FCB
    assert decode_mbus(frames[0]).id == "12345678"


def test_multi_telegram_readout_toggles_fcb(bus: tuple[MbusSlaveSimulator, MbusMaster]) -> None:
    sim, master = bus
    frames = master.read(7)
    assert _energies(frames) == [1, 2, 3]
    assert [decode_mbus(f).more_records_follow for f in frames] == [True, True, False]
    assert [r[1] for r in sim.requests] == [0x40, 0x7B, 0x5B, 0x7B]


def test_lost_answer_is_retried_with_the_same_fcb(bus: tuple[MbusSlaveSimulator, MbusMaster]) -> None:
    sim, master = bus
    master.send_nke(7)
    sim.requests.clear()
    sim.drop_next(1)  # the slave answers the first REQ_UD2 but the answer is lost
    frames = []
    fcb = True
    for _ in range(3):
        frames.append(master.request(7, fcb))
        fcb = not fcb
    # the retry repeated FCB=1, so the slave repeated telegram 1 instead of moving on to telegram 2
    assert _energies(frames) == [1, 2, 3]
    assert [r[1] for r in sim.requests] == [0x7B, 0x7B, 0x5B, 0x7B]
    assert master.retried == 1
    access = [int(decode_mbus(f).access_number or 0) for f in frames]
    assert access == sorted(access) and len(set(access)) == 3


def test_no_answer_after_retries(bus: tuple[MbusSlaveSimulator, MbusMaster]) -> None:
    sim, master = bus
    with pytest.raises(NoAnswerError, match="after 3 attempt"):
        master.request(42, True)
    assert len(sim.requests) == 3
    sim.drop_next(3)
    with pytest.raises(NoAnswerError):
        master.read(5)


def test_secondary_addressing(bus: tuple[MbusSlaveSimulator, MbusMaster]) -> None:
    _, master = bus
    frames = master.read("12345679")            # ID only: manufacturer, version, medium wildcards
    assert _energies(frames) == [1, 2, 3]
    assert master.select("87654321" + "1593" + "1B07") == "single"
    assert master.select("99999999") == "none"
    with pytest.raises(NoAnswerError):
        master.read("1234567F")                 # two meters answer the REQ_UD2 at once: a garbled frame


def test_scans(bus: tuple[MbusSlaveSimulator, MbusMaster]) -> None:
    _, master = bus
    master.timing = BusTiming(2400, response_timeout_override=0.06)  # generous: the CI machine is shared
    assert master.scan_primary([*range(0, 10), *range(245, 251)]) == [5, 7, 250]
    # 12345678 and 12345679 answer together down to the last digit: the search descends through collisions
    assert master.scan_secondary("1234FFFF") == ["123456782C2D1B04", "123456792C2D1B04"]
    assert master.scan_secondary("8765432F") == ["8765432115931B07"]
    assert master.scan_secondary("99FFFFFF") == []


def test_serial_transport_over_a_pty() -> None:
    """The serial path (pyserial, 8E1 at 2400 baud) against the simulated slaves on a pseudo-terminal."""
    from flexmeter.iot_agents.mbus.gateway.transport import SerialTransport

    sim = MbusSlaveSimulator(_meters())
    device = sim.serve_pty()
    master = MbusMaster(SerialTransport(device, 2400), BusTiming(2400), retries=1)
    try:
        assert _energies(master.read(7)) == [1, 2, 3]
        sim.drop_next(1)
        assert _energies(master.read(5)) == [100]
        assert master.retried == 1
    finally:
        master.close()
        sim.stop()
