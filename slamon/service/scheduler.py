"""What `slamon run` does on a schedule (APScheduler 3): a round per probe kind at its interval (a
round never overlaps itself, and missed rounds are coalesced, not queued), and the upkeep:
flushing horizons and resume points, refreshing the view when no round did, month-to-date
figures for /metrics, hourly compaction, daily retention.

Jobs are tracked, so a stop can give the ones under way a few seconds to finish (a round's results
are then written) and cancel the rest quietly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from slamon.clock import Clock
from slamon.model import to_micros
from slamon.service.metrics import Figures
from slamon.service.monitor import Monitor
from slamon.service.mtd import compute_in_child
from slamon.store import StoreTx
from slamon.store.leader import Leadership
from slamon.store.upkeep import let_go_before

logger = logging.getLogger(__name__)

FIGURES_EVERY = timedelta(minutes=5)


class Jobs:
    """The jobs under way, by what they do; a stop waits for them, then cancels what is left."""

    def __init__(self) -> None:
        self.running: dict[asyncio.Task[None], str] = {}
        self._cancelled: set[asyncio.Task[None]] = set()

    def tracked(
        self, what: str, fn: Callable[[], Awaitable[object]]
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        async def job() -> None:
            task = asyncio.current_task()
            assert task is not None
            self.running[task] = what
            try:
                await fn()
            except asyncio.CancelledError:
                if task not in self._cancelled:
                    raise
                task.uncancel()  # the stop said so already, once, for all of them
            except Exception:
                logger.exception("%s failed", what)
            finally:
                self.running.pop(task, None)

        return job

    async def finish(self, within: float) -> None:
        """Give the jobs under way `within` seconds, then cancel the rest."""
        await asyncio.sleep(0)  # a job the scheduler has just started registers itself
        if not self.running:
            return
        _, late = await asyncio.wait(list(self.running), timeout=within)
        if late:
            logger.warning(
                "stopping: cancelled %s, still running after %g s (a round stores what it got so far)",
                " and ".join(sorted(self.running[t] for t in late if t in self.running)),
                within,
            )
            self._cancelled.update(late)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


class Upkeep:
    """The jobs besides rounds, each a coroutine with what it needs."""

    def __init__(
        self,
        monitor: Monitor,
        clock: Clock,
        figures: Figures,
        retention: timedelta,
        leadership: Leadership | None = None,
    ) -> None:
        self.monitor, self.clock, self.figures, self.retention = monitor, clock, figures, retention
        self.shortest = min(monitor.intervals.values(), default=timedelta(seconds=30))
        self.leadership = leadership  # None: this process alone serves the store

    async def _leads(self) -> bool:
        """The store's own jobs run in one of its processes (store/leader.py)."""
        return self.leadership is None or await asyncio.to_thread(self.leadership.leads)

    async def flush(self) -> None:
        await self.monitor.flush(wait=False)

    async def view(self) -> None:
        """Rounds refresh the view; this keeps it moving (devices turn unknown) if they stop."""
        view = self.monitor.view
        if view is None or to_micros(self.clock.now()) - view.at > to_micros(self.shortest):
            await self.monitor.refresh_view()

    async def month_to_date(self) -> None:
        """In a child process: seconds of CPU at city scale, kept off this process's lock. Only
        where the store's jobs run: the figures are the whole store's, published once."""
        figures = self.figures
        if not await self._leads():
            figures.mtd, figures.computed_at = None, 0.0
            return
        figures.mtd = await compute_in_child(self.monitor.store.url, to_micros(self.clock.now()))
        figures.computed_at = time.time()

    async def compact(self) -> None:
        if await self._leads():
            await self.monitor.compact()

    async def let_go(self) -> None:
        now = self.clock.now()
        cutoff = to_micros(now - self.retention)
        fleet = self.monitor.state.fleet

        def let_go(tx: StoreTx) -> None:
            let_go_before(tx, fleet.inventory, fleet.contracts, cutoff, to_micros(now))

        await self.monitor.call(let_go)


def schedule(
    monitor: Monitor,
    clock: Clock,
    figures: Figures,
    retention: timedelta,
    jobs: Jobs,
    leadership: Leadership | None = None,
) -> AsyncIOScheduler:
    """The scheduler with every job of a running service, not yet started. Retention is each
    process's for its own devices; the store-wide jobs run where `leadership` leads."""
    scheduler = AsyncIOScheduler()
    start = datetime.now().astimezone()
    for kind, interval in monitor.intervals.items():
        scheduler.add_job(
            jobs.tracked(f"the {kind.value} round", lambda k=kind: monitor.run_round(k)),  # type: ignore[misc]
            IntervalTrigger(seconds=interval.total_seconds()),
            id=f"round-{kind.value}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(interval.total_seconds())),
            next_run_time=start + timedelta(seconds=random.uniform(0, 1)),  # noqa: S311  (jitter)
        )
    up = Upkeep(monitor, clock, figures, retention, leadership)
    upkeep: list[tuple[str, Callable[[], Awaitable[object]], Any, dict[str, Any]]] = [
        (
            "flush",
            up.flush,
            IntervalTrigger(seconds=monitor.flush_every.total_seconds()),
            # half a round after a round: a flush at 100,000 devices (every horizon and resume
            # point) is tens of MB for a moment, and it would otherwise come with every other round
            {"next_run_time": start + monitor.flush_every + up.shortest / 2},
        ),
        ("view", up.view, IntervalTrigger(seconds=up.shortest.total_seconds()), {}),
        (
            "month-to-date figures",
            up.month_to_date,
            IntervalTrigger(seconds=FIGURES_EVERY.total_seconds()),
            {"next_run_time": start + timedelta(seconds=5)},
        ),
        ("compaction", up.compact, CronTrigger(minute=7), {}),
        ("retention", up.let_go, CronTrigger(hour=3, minute=17), {}),
    ]
    for what, fn, trigger, extra in upkeep:
        scheduler.add_job(
            jobs.tracked(f"the {what}", fn),
            trigger,
            id=what.replace(" ", "-"),
            max_instances=1,
            coalesce=True,
            **extra,
        )
    return scheduler
