"""Is the service doing its job? What /healthz answers (200 or 503 with the reasons) and what
operators read first when it is not: a probe kind whose rounds stopped, a store that refuses
writes, a backlog of evidence that grows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slamon.model import ProbeKind
from slamon.service.monitor import RoundStats
from slamon.service.writer import WriterStatus

BACKLOG_AGE_LIMIT_S = 15.0  # a write waiting longer than this (or a round interval, if longer) is a problem
LATE_ROUNDS = 3  # a probe kind is late when no round started within this many intervals


@dataclass(frozen=True, slots=True)
class Health:
    healthy: bool
    reasons: tuple[str, ...]
    body: dict[str, Any]


def assess(
    stats: Mapping[ProbeKind, RoundStats],
    intervals: Mapping[ProbeKind, timedelta],
    writer: WriterStatus,
    devices: int,
    now: float,
) -> Health:
    """The service's health at `now` (wall-clock seconds)."""
    reasons: list[str] = []
    probes: dict[str, Any] = {}
    for kind, interval in intervals.items():
        s = stats.get(kind, RoundStats())
        late = not s.last_started or now - s.last_started > LATE_ROUNDS * interval.total_seconds()
        if late:
            reasons.append(f"no {kind.value} round started in the last {LATE_ROUNDS} intervals")
        probes[kind.value] = {
            "last_round": None
            if not s.last_started
            else datetime.fromtimestamp(s.last_started).astimezone().isoformat(timespec="seconds"),
            "late": late,
            "rounds": s.rounds,
            "timeouts": s.timeouts,
            "errors": s.errors,
        }
    if writer.fatal:
        reasons.append(f"stopped writing: {writer.fatal}")
    elif writer.failing:
        reasons.append(f"the store refuses writes: {writer.failing}")
    limit = max([BACKLOG_AGE_LIMIT_S, *(i.total_seconds() for i in intervals.values())])
    if writer.oldest_age_s is not None and writer.oldest_age_s > limit:
        reasons.append(
            f"{writer.writes} writes of evidence ({writer.rows} rows) wait for the store, "
            f"the oldest for {writer.oldest_age_s:.0f} s"
        )
    body = {
        "status": "degraded" if reasons else "ok",
        "reasons": reasons,
        "devices": devices,
        "probes": probes,
        "store": {
            "writable": writer.failing is None,
            "failing": writer.failing,
            "backlog": {
                "writes": writer.writes,
                "rows": writer.rows,
                "journaled": writer.journaled,
                "oldest_age_s": None if writer.oldest_age_s is None else round(writer.oldest_age_s, 1),
            },
        },
    }
    return Health(not reasons, tuple(reasons), body)
