"""Known answers for the pure analytics (no I/O)."""

from __future__ import annotations

from datetime import date

import pytest

from flexmeter.service.analytics import heat, nialm, outages, water
from flexmeter.service.analytics.balance import MeterEnergy, energy_balance
from flexmeter.service.analytics.registers import completeness, register_delta, rollover_capacity


# -- registers -------------------------------------------------------------------------------------------
def test_delta_interpolates_boundaries_linearly() -> None:
    points = [(0.0, 10.0), (600.0, 11.0), (1200.0, 12.0)]
    delta = register_delta(points, 300.0, 900.0)
    assert delta is not None
    assert delta.value == pytest.approx(1.0)
    assert not delta.estimated


def test_delta_needs_both_boundaries() -> None:
    assert register_delta([(0.0, 1.0), (500.0, 2.0)], 0.0, 900.0) is None
    assert register_delta([(100.0, 1.0), (1000.0, 2.0)], 0.0, 900.0) is None


def test_delta_far_boundary_is_an_estimate() -> None:
    delta = register_delta([(0.0, 0.0), (3600.0, 4.0)], 900.0, 1800.0, tolerance=300.0)
    assert delta is not None and delta.estimated
    assert delta.value == pytest.approx(1.0)


def test_rollover_is_counted_exactly() -> None:
    assert rollover_capacity(99998.7, 0.4) == 100000.0
    assert rollover_capacity(5000.0, 10.0) is None
    points = [(0.0, 99_999.0), (450.0, 99_999.5), (900.0, 0.5)]
    delta = register_delta(points, 0.0, 900.0)
    assert delta is not None
    assert delta.value == pytest.approx(1.5)
    assert delta.events == ("rollover",) and not delta.estimated


def test_reset_is_estimated_from_the_rate_and_flagged() -> None:
    # 1 kWh per 300 s, then the register restarts at 0 (meter replacement)
    points = [(0.0, 100.0), (300.0, 101.0), (600.0, 102.0), (900.0, 0.0), (1200.0, 1.0)]
    delta = register_delta(points, 0.0, 1200.0)
    assert delta is not None
    assert delta.estimated and delta.events == ("reset",)
    assert delta.value == pytest.approx(4.0)


def test_explicit_replacement_without_a_decrease() -> None:
    points = [(0.0, 10.0), (300.0, 11.0), (600.0, 500.0), (900.0, 501.0)]
    delta = register_delta(points, 0.0, 900.0, resets=[600.0])
    assert delta is not None and delta.estimated
    assert delta.value == pytest.approx(3.0)


def test_a_replacement_near_a_power_of_ten_is_not_a_rollover() -> None:
    # 5 kWh per 300 s; the old meter last reads 99,950, the new one starts at 0 and reads 0.3 300 s later
    points = [(0.0, 99_940.0), (300.0, 99_945.0), (600.0, 99_950.0), (900.0, 0.3), (1200.0, 5.3)]
    assert rollover_capacity(99_950.0, 0.3) == 100_000.0  # the digits alone would say roll-over...
    delta = register_delta(points, 0.0, 1200.0)
    assert delta is not None  # ...but 50.3 kWh in 300 s is 10x the meter's peak rate: a replacement
    assert delta.events == ("reset",) and delta.estimated
    assert delta.value == pytest.approx(20.0)  # 4 x 5 kWh (the reset estimated at the rate), not 65.3


def test_a_plausible_wrap_is_a_rollover_unless_a_replacement_is_signalled() -> None:
    points = [(0.0, 99_990.0), (300.0, 99_995.0), (600.0, 99_999.0), (900.0, 1.0)]
    wrapped = register_delta(points, 0.0, 900.0)
    assert wrapped is not None and wrapped.events == ("rollover",) and not wrapped.estimated
    assert wrapped.value == pytest.approx(11.0)
    # the same readings with a replacement signal (e.g. dateEnergyMeteringStarted at 750 s): never a wrap
    replaced = register_delta(points, 0.0, 900.0, resets=[750.0])
    assert replaced is not None and replaced.events == ("reset",) and replaced.estimated
    assert replaced.value == pytest.approx(9.0 + 4.5)  # the reset interval at the mean rate (9 kWh / 600 s)
    # a wider window's peak rate decides when the period's own readings have none
    alone = register_delta(points[2:], 600.0, 900.0, max_rate=5.0 / 300.0)
    assert alone is not None and alone.events == ("rollover",)


def test_a_wrap_without_any_rate_to_vouch_for_it_is_read_as_a_reset() -> None:
    # two readings only: 99,990 -> 2 could be a wrap or a replacement; the safer reading is a flagged reset
    delta = register_delta([(0.0, 99_990.0), (900.0, 2.0)], 0.0, 900.0)
    assert delta is not None and delta.events == ("reset",) and delta.estimated


def test_completeness_counts_readings_against_the_interval() -> None:
    points = [(float(t), 0.0) for t in range(0, 900, 20)]
    assert completeness(points, 0.0, 900.0, 10.0) == pytest.approx(0.5)


# -- energy balance --------------------------------------------------------------------------------------
def test_balance_known_losses_with_pv() -> None:
    customers = {f"m{i}": MeterEnergy(1.0, 0.2 if i % 5 == 0 else 0.0) for i in range(40)}
    consumed, produced = 40.0, 8 * 0.2
    delivered = consumed / 0.97 - produced
    result = energy_balance(MeterEnergy(delivered, 0.0), customers)
    assert result.losses_percent == pytest.approx(3.0, abs=1e-9)
    assert result.completeness == 1.0 and not result.estimated
    assert result.produced == pytest.approx(produced)


def test_balance_with_a_missing_meter_is_estimated() -> None:
    customers: dict[str, MeterEnergy | None] = {"a": MeterEnergy(1.0), "b": None}
    result = energy_balance(MeterEnergy(2.1), customers, {"b": MeterEnergy(1.0)})
    assert result.estimated and result.meters_reported == 1 and result.completeness == 0.5
    assert result.losses == pytest.approx(0.1)


def test_reverse_flow_counts_negative_delivery() -> None:
    result = energy_balance(MeterEnergy(0.0, 1.0), {"pv": MeterEnergy(0.0, 1.05)})
    assert result.delivered == -1.0
    assert result.losses == pytest.approx(0.05)


# -- outages ---------------------------------------------------------------------------------------------
def test_outage_intervals_are_order_and_duplicate_tolerant() -> None:
    observations = [(100.0, "", True), (400.0, "", False), (100.0, "", True), (50.0, "", False)]
    assert outages.outage_intervals("m", observations) == [outages.Interval("m", "", 100.0, 400.0)]
    assert outages.outage_intervals("m", list(reversed(observations))) == [outages.Interval("m", "", 100.0, 400.0)]


def test_area_outage_merges_meters_and_counts_customers() -> None:
    intervals = [outages.Interval("a", "", 100.0, 400.0), outages.Interval("b", "", 120.0, 700.0),
                 outages.Interval("c", "L2", 2000.0, None)]
    events = outages.area_outages(intervals, {"b": 12})
    assert len(events) == 2
    assert (events[0].start, events[0].end, events[0].customers, events[0].duration) == (100.0, 700.0, 13, 600.0)
    assert events[1].end is None and events[1].phases == ("L2",)


# -- water -----------------------------------------------------------------------------------------------
def test_leak_flagged_on_the_third_night_and_not_before() -> None:
    nights = {date(2026, 1, d): v for d, v in ((1, 2.0), (2, 12.0), (3, 15.0))}
    assert water.leak_suspicion(nights, 5.0) is None
    nights[date(2026, 1, 4)] = 11.0
    found = water.leak_suspicion(nights, 5.0)
    assert found is not None
    assert (found.first_night, found.flagged_night) == (date(2026, 1, 2), date(2026, 1, 4))


def test_leak_needs_consecutive_nights() -> None:
    nights = {date(2026, 1, 1): 9.0, date(2026, 1, 2): 9.0, date(2026, 1, 4): 9.0}
    assert water.leak_suspicion(nights, 5.0) is None


def test_night_minimum_from_flow_or_register() -> None:
    assert water.night_minimum_flow([(0, 30.0), (1, 6.0), (2, 9.0)], []) == 6.0
    volumes = [(0.0, 0.0), (900.0, 3.0), (1800.0, 4.5)]  # 12 l/h then 6 l/h
    assert water.night_minimum_flow([], volumes) == pytest.approx(6.0)


def test_backflow_from_negative_flow_or_reverse_register() -> None:
    assert water.backflow([(1.0, 0.2), (2.0, -0.01)], []) == (2.0, 10.0, "l/h")
    assert water.backflow([], [(1.0, 5.0), (2.0, 7.0)]) == (2.0, 2.0, "l")
    assert water.backflow([(1.0, 0.1)], [(1.0, 5.0), (2.0, 5.0)]) is None


# -- district heating -------------------------------------------------------------------------------------
def test_delta_t_is_flow_weighted() -> None:
    assert heat.interval_delta_t([(70.0, 40.0, 1.0), (70.0, 60.0, 3.0)]) == pytest.approx(15.0)
    assert heat.interval_delta_t([(70.0, 40.0, None), (70.0, 60.0, None)]) == pytest.approx(20.0)


def test_low_delta_t_alarm_after_n_intervals() -> None:
    values = [30.0, 15.0, 14.0, 16.0, 12.0, 35.0]
    intervals = [(i * 900.0, (i + 1) * 900.0, v) for i, v in enumerate(values)]
    assert heat.low_delta_t_alarms(intervals[:4], 20.0, 4) == []
    alarms = heat.low_delta_t_alarms(intervals, 20.0, 4)
    assert len(alarms) == 1
    assert (alarms[0].start, alarms[0].raised_at, alarms[0].end) == (900.0, 4500.0, 4500.0)


def test_peak_against_contract() -> None:
    check = heat.peak_against_contract([100.0, 180.0, 150.0], 160.0)
    assert check is not None and check.exceeded and check.ratio == pytest.approx(1.125)


# -- NIALM -----------------------------------------------------------------------------------------------
def test_nialm_finds_two_appliances_and_their_energy() -> None:
    samples = []
    for t in range(0, 7200):
        p, q = 150.0, 20.0
        if 600 <= t < 2400:  # kettle-like 2000 W resistive for 30 min
            p += 2000.0
        if 1000 <= t < 4600:  # pump-like 500 W with 300 var for 1 h
            p, q = p + 500.0, q + 300.0
        samples.append((float(t), p, q))
    events = nialm.switching_events(samples, 40.0)
    assert len(events) == 4
    groups = nialm.signatures(events, 7199.0)
    assert [round(g.delta_p) for g in groups] == [2000, 500]
    assert groups[0].energy_kwh == pytest.approx(1.0, rel=0.01)
    assert groups[1].energy_kwh == pytest.approx(0.5, rel=0.01)
    assert groups[1].delta_q == pytest.approx(300.0, abs=1.0)
