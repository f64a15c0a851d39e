"""`slamon run`: the monitor, its HTTP side and its schedule in one asyncio process.

APScheduler 3 runs a round per probe kind at its interval (a round never overlaps itself; missed
rounds are coalesced, not queued), and the upkeep: flushing horizons and resume points, month-to-
date figures for /metrics, hourly compaction, daily retention. SIGTERM and SIGINT stop it within
seconds (rounds in flight are cancelled, memory is flushed); SIGHUP reloads the files and keeps
every device's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from slamon.clock import Clock
from slamon.config import Config, load_config
from slamon.errors import SlamonError
from slamon.fleet import load_fleet
from slamon.ledger import let_go_before
from slamon.metrics import Figures
from slamon.model import Fleet, ProbeKind, to_micros
from slamon.monitor import Monitor
from slamon.probers import build_probers
from slamon.statements import month_to_date
from slamon.store import Store, StoreTx
from slamon.web import create_app

logger = logging.getLogger(__name__)

STOP_WITHIN = 4.0  # seconds a stop waits for rounds in flight before cancelling them
FIGURES_EVERY = timedelta(minutes=5)


async def serve(
    config: Config,
    fleet: Fleet,
    clock: Clock,
    *,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT arrive)."""
    stop = stop or asyncio.Event()
    probers = build_probers(config, clock)  # a missing ICMP privilege fails here, before anything starts
    intervals = {ProbeKind.ICMP: config.probes.icmp.interval}
    store = Store(config.database)
    monitor = Monitor(fleet, store, clock, probers, intervals)
    await monitor.start()
    figures = Figures()
    runner = web.AppRunner(create_app(monitor, clock, intervals, figures), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.listen_host, config.listen_port).start()
    except OSError as exc:
        await runner.cleanup()
        await monitor.close()
        store.close()
        raise SlamonError(
            f"listen: cannot serve on {config.listen_host}:{config.listen_port}: {exc.strerror}"
        ) from None
    logger.info("serving /metrics and /api/v1 on http://%s:%d", config.listen_host, config.listen_port)

    running: set[asyncio.Task[None]] = set()

    def tracked(fn: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            task = asyncio.current_task()
            assert task is not None
            running.add(task)
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("job failed")
            finally:
                running.discard(task)

        return job

    async def figures_job() -> None:
        now = to_micros(clock.now())
        per_contract, per_district = await monitor.db(lambda tx: month_to_date(tx, now))
        figures.contract, figures.district, figures.computed_at = per_contract, per_district, time.time()

    async def retention_job() -> None:
        now = clock.now()
        cutoff = to_micros(now - config.retention)
        state = monitor.state

        def let_go(tx: StoreTx) -> None:
            let_go_before(tx, state.fleet.inventory, state.fleet.contracts, cutoff, to_micros(now))

        await monitor.db(let_go)

    scheduler = AsyncIOScheduler()
    start = datetime.now().astimezone()
    for kind, interval in intervals.items():
        scheduler.add_job(
            tracked(lambda k=kind: monitor.run_round(k)),  # type: ignore[misc]
            IntervalTrigger(seconds=interval.total_seconds()),
            id=f"round-{kind.value}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(interval.total_seconds())),
            next_run_time=start + timedelta(seconds=random.uniform(0, 1)),  # noqa: S311  (jitter)
        )
    scheduler.add_job(
        tracked(monitor.flush),
        IntervalTrigger(seconds=monitor.flush_every.total_seconds()),
        id="flush",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        tracked(figures_job),
        IntervalTrigger(seconds=FIGURES_EVERY.total_seconds()),
        id="figures",
        max_instances=1,
        coalesce=True,
        next_run_time=start + timedelta(seconds=5),
    )
    scheduler.add_job(
        tracked(monitor.compact), CronTrigger(minute=7), id="compact", max_instances=1, coalesce=True
    )
    scheduler.add_job(
        tracked(retention_job), CronTrigger(hour=3, minute=17), id="retention", max_instances=1, coalesce=True
    )
    scheduler.start()

    async def reload() -> None:
        loop = asyncio.get_running_loop()
        try:
            fresh = await loop.run_in_executor(None, load_config, config.path)
            new_fleet = await loop.run_in_executor(None, load_fleet, fresh)
        except SlamonError as exc:
            logger.error("reload refused, still monitoring the previous inventory: %s", exc)
            return
        if fresh.probes != config.probes or fresh.database != config.database:
            logger.warning("reload: probe settings and the database change only on restart")
        await monitor.reload(new_fleet)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload()))
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        logger.info("stopping")
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        scheduler.shutdown(wait=False)
        if running:
            _, late = await asyncio.wait(running, timeout=STOP_WITHIN)
            for task in late:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*late, return_exceptions=True)
        await monitor.close()
        await runner.cleanup()
        store.close()
        logger.info("stopped")
