"""The service's knobs: thresholds and windows of every analytic, in one documented place."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ServiceConfig:
    """Defaults are the ones docs/service.md explains; every field can be set from the command line."""

    data_dir: Path = Path("data/service")
    ngsi_url: str | None = None
    ql_url: str | None = None
    #: bearer token required on the REST API (None: open) and always on the breaker
    token: str | None = None
    #: local time zone of days, nights and months (the pilots are in Europe/Rome and Europe/Stockholm)
    timezone: str = "UTC"
    #: a register reading this far (s) from a period boundary makes the boundary value an estimate
    boundary_tolerance_s: float = 300.0
    #: how long after a 15-min period (data time) a balance is published even if meters are missing
    balance_grace_s: float = 900.0
    #: water: night window (local hours, [start, end)) and leak threshold on the night minimum flow
    night_start_hour: int = 2
    night_end_hour: int = 4
    leak_threshold_lph: float = 5.0
    leak_nights: int = 3
    #: district heating: ΔT below this (K) for this many consecutive 15-min intervals raises an alarm
    low_delta_t_k: float = 20.0
    low_delta_t_intervals: int = 4
    #: completeness: a meter this far (s of data time: its tenant's newest observation) behind is silent
    silence_after_s: float = 900.0
    #: NIALM: smallest active-power step (W) that is a switching event, and grouping tolerance
    nialm_min_step_w: float = 40.0
    nialm_tolerance: float = 0.15
    #: raw readings older than this (days before the newest observation) are pruned; results are kept
    retention_days: float = 70.0
    #: seconds between background computation passes
    compute_interval_s: float = 0.5
    #: batch size of the result writer's /v2/op/update requests
    write_batch: int = 500
    extra: dict[str, str] = field(default_factory=dict)
