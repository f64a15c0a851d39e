"""The service's schedule: rounds at their interval, a flush half a round away from them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from slamon.service.metrics import Figures
from slamon.service.scheduler import Jobs, schedule
from tests.harness.flaky import FlakyStore
from tests.service.drive import INTERVAL, make_run


async def test_a_flush_comes_half_a_round_after_a_round(tmp_path: Path) -> None:
    """At city scale a flush is tens of MB for a moment: it must not come with a round."""
    store = FlakyStore(f"sqlite:///{tmp_path / 'sched.db'}")
    run = make_run(store, tmp_path / "journal")
    scheduler = schedule(run.monitor, run.clock, Figures(), timedelta(days=400), Jobs())
    try:
        scheduler.start(paused=True)
        jobs = {job.id: job for job in scheduler.get_jobs()}
        first_round = jobs["round-icmp"].next_run_time
        first_flush = jobs["flush"].next_run_time
        offset = (first_flush - first_round).total_seconds() % INTERVAL.total_seconds()
        assert abs(offset - INTERVAL.total_seconds() / 2) <= 1  # (the round's start jitters by up to 1 s)
    finally:
        scheduler.shutdown(wait=False)
        store.close()
