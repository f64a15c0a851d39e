"""`slamon run`: the monitor, its HTTP side and its schedule in one asyncio process.

APScheduler 3 runs a round per probe kind at its interval (a round never overlaps itself; missed
rounds are coalesced, not queued), and the upkeep: flushing horizons and resume points, month-to-
date figures for /metrics, hourly compaction, daily retention. SIGTERM and SIGINT stop it within
seconds, during start-up too: no new round starts, a round in flight gets a few seconds to finish
(and store its results) before it is cancelled, memory is flushed. SIGHUP reloads the files and
keeps every device's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from slamon.clock import Clock
from slamon.errors import SlamonError
from slamon.issuing import month_to_date
from slamon.loaders.config import Config, load_config
from slamon.loaders.fleet import load_fleet
from slamon.model import Fleet, ProbeKind, to_micros
from slamon.probers import build_probers
from slamon.service.metrics import Figures
from slamon.service.monitor import Monitor, devices_for
from slamon.service.web import create_app
from slamon.store import Store, StoreTx
from slamon.store.upkeep import let_go_before

logger = logging.getLogger(__name__)

# seconds a stop waits for rounds in flight before cancelling them: what a cut round got and the
# flush must still be written within the 5 s a stop may take (about 2 s at 100,000 devices)
STOP_WITHIN = 2.5
FIGURES_EVERY = timedelta(minutes=5)
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


async def serve(
    config: Config,
    fleet: Fleet,
    clock: Clock,
    *,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    reload_pending: Callable[[], bool] | None = None,
) -> None:
    """Run until `stop` is set or SIGTERM/SIGINT arrive. The signals are taken from the first line:
    one that comes during start-up stops the service as soon as the step under way is done (opening
    the store, resuming the devices), before it serves; a SIGHUP then (or before, when
    `reload_pending()` says so) reloads the files once the service is up."""
    stop = stop or asyncio.Event()
    signals = _Signals(asyncio.get_running_loop(), stop)
    if reload_pending is not None and reload_pending():
        signals.hup_pending = True
    try:
        async with contextlib.AsyncExitStack() as stack:
            await _serve(config, fleet, clock, stop, ready, signals, stack)
    finally:
        signals.close()
    logger.info("stopped")


async def _serve(
    config: Config,
    fleet: Fleet,
    clock: Clock,
    stop: asyncio.Event,
    ready: asyncio.Event | None,
    signals: _Signals,
    stack: contextlib.AsyncExitStack,
) -> None:
    # a missing ICMP privilege (IPv6 too, if a device needs it) fails here, before anything starts
    probers = build_probers(config, clock, fleet.inventory.devices.values())
    intervals = {ProbeKind.ICMP: config.probes.icmp.interval}
    store = Store(config.database)
    stack.callback(store.close)
    monitor = Monitor(fleet, store, clock, probers, intervals)
    stack.push_async_callback(monitor.close)  # the last flush
    await monitor.start()
    if stop.is_set():  # a signal during start-up
        logger.info("stopping before serving")
        return
    figures = Figures()
    runner = web.AppRunner(create_app(monitor, clock, intervals, figures), access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    try:
        await web.TCPSite(runner, config.listen_host, config.listen_port).start()
    except OSError as exc:
        raise SlamonError(
            f"listen: cannot serve on {config.listen_host}:{config.listen_port}: {exc.strerror}"
        ) from None
    logger.info("serving /metrics and /api/v1 on http://%s:%d", config.listen_host, config.listen_port)

    running: dict[asyncio.Task[None], str] = {}  # jobs under way, by what they do
    cancelled: set[asyncio.Task[None]] = set()  # cancelled by a stop: they end quietly

    def tracked(what: str, fn: Callable[[], Awaitable[object]]) -> Callable[[], Coroutine[Any, Any, None]]:
        async def job() -> None:
            task = asyncio.current_task()
            assert task is not None
            running[task] = what
            try:
                await fn()
            except asyncio.CancelledError:
                if task not in cancelled:
                    raise
                task.uncancel()  # the stop said so already, once, for all of them
            except Exception:
                logger.exception("%s failed", what)
            finally:
                running.pop(task, None)

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

    async def reload() -> None:
        loop = asyncio.get_running_loop()
        try:
            fresh = await loop.run_in_executor(None, load_config, config.path)
            new_fleet = await loop.run_in_executor(None, load_fleet, fresh)
            for prober in probers.values():  # e.g. the first IPv6 device needs an IPv6 socket
                prober.check(devices_for(new_fleet, prober.kind))
        except SlamonError as exc:
            logger.error("reload refused, still monitoring the previous inventory: %s", exc)
            return
        if fresh.probes != config.probes or fresh.database != config.database:
            logger.warning("reload: probe settings and the database change only on restart")
        await monitor.reload(new_fleet)

    scheduler = AsyncIOScheduler()
    start = datetime.now().astimezone()
    for kind, interval in intervals.items():
        scheduler.add_job(
            tracked(f"the {kind.value} round", lambda k=kind: monitor.run_round(k)),  # type: ignore[misc]
            IntervalTrigger(seconds=interval.total_seconds()),
            id=f"round-{kind.value}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(interval.total_seconds())),
            next_run_time=start + timedelta(seconds=random.uniform(0, 1)),  # noqa: S311  (jitter)
        )
    scheduler.add_job(
        tracked("the flush", monitor.flush),
        IntervalTrigger(seconds=monitor.flush_every.total_seconds()),
        id="flush",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        tracked("the month-to-date figures", figures_job),
        IntervalTrigger(seconds=FIGURES_EVERY.total_seconds()),
        id="figures",
        max_instances=1,
        coalesce=True,
        next_run_time=start + timedelta(seconds=5),
    )
    scheduler.add_job(
        tracked("the compaction", monitor.compact),
        CronTrigger(minute=7),
        id="compact",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        tracked("the retention", retention_job),
        CronTrigger(hour=3, minute=17),
        id="retention",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    signals.serving(lambda: asyncio.get_running_loop().create_task(tracked("the reload", reload)()))
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        logger.info("stopping")
        signals.stopping()
        # no new job starts; the ones under way (a round, a flush) get STOP_WITHIN to finish, so a
        # round's results are stored, and are cancelled after that. APScheduler's own shutdown
        # would cancel them at once, and log each cancellation as an error.
        scheduler.pause()
        await asyncio.sleep(0)  # a job the scheduler has just started registers itself
        if running:
            _, late = await asyncio.wait(list(running), timeout=STOP_WITHIN)
            if late:
                logger.warning(
                    "stopping: cancelled %s, still running after %g s (a round stores what it got so far)",
                    " and ".join(sorted(running[t] for t in late if t in running)),
                    STOP_WITHIN,
                )
                cancelled.update(late)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        scheduler.shutdown(wait=False)


class _Signals:
    """SIGTERM and SIGINT set `stop`, and SIGHUP asks for a reload, from the first line of `serve` to
    its last; then the handlers found are put back. A SIGHUP before the service is up waits for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        self.loop = loop
        self.hup_pending = False
        self._reload: Callable[[], object] | None = None
        self._stopping = False
        self._previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._hup)

    def _hup(self) -> None:
        if self._stopping:
            return
        if self._reload is None:
            self.hup_pending = True
        else:
            self._reload()

    def serving(self, reload: Callable[[], object]) -> None:
        self._reload = reload
        if self.hup_pending:
            self.hup_pending = False
            reload()

    def stopping(self) -> None:
        self._stopping = True

    def close(self) -> None:
        for sig, handler in self._previous.items():
            self.loop.remove_signal_handler(sig)
            if handler is not None:
                signal.signal(sig, handler)
