"""`slamon run`: the monitor, the writer, the HTTP side and the schedule in one asyncio process.

SIGTERM and SIGINT stop it within about 5 seconds, during start-up too: no new round starts, a
round in flight gets a few seconds to finish before it is cancelled (what it got is written), the
writer gets a few seconds to store what waits, and the journal keeps whatever the store did not
take. SIGHUP reloads the files, all or nothing, keeping every device's state. A database moved or
replaced under the service stops it with an error (exit 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from slamon.clock import Clock
from slamon.errors import SlamonError, StoreError
from slamon.loaders.config import Config, load_config
from slamon.loaders.fleet import load_fleet, load_fleet_cached
from slamon.model import DeviceId, Fleet, ProbeKind
from slamon.probers import build_probers, devices_for
from slamon.probers.snmp import settings_from
from slamon.probers.snmp_traps import Trap, TrapListener
from slamon.probers.video import tick_of as video_tick
from slamon.service import memory
from slamon.service.journal import Journal
from slamon.service.metrics import Figures
from slamon.service.monitor import Monitor, default_journal
from slamon.service.scheduler import Jobs, schedule
from slamon.service.web import create_app
from slamon.service.writer import Writer
from slamon.shards import Shard, none_of, sizes, subset
from slamon.store import Store
from slamon.store.leader import Leadership, ShardClaim

logger = logging.getLogger(__name__)

# seconds a stop waits for rounds in flight before cancelling them, then for the writer to store
# what is left (the journal keeps the rest): a stop takes at most about 5 s
STOP_WITHIN = 2.0
STORE_WITHIN = 2.0
HTTP_STOP_WITHIN = 1.0
RETRY_RELOAD_S = 10
CLAIM_WITHIN = 15.0  # seconds a start waits for another process to let go of its shard (it stops in ~5)
CLAIM_RETRY_S = 0.5
# How long a thread may hold the interpreter's lock while another waits for it (Python's default is
# 5 ms). An API read gives the lock up at every row its driver steps through and waits to take it
# back; while the writer thread turns a round of 100,000 devices into rows, each wait was up to 5 ms:
# a 0.05-CPU-s answer took 0.3-1 s. At 1 ms the API's p95 at that scale fell from 0.5 s to 0.1 s.
SWITCH_INTERVAL_S = 0.001
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@dataclass(frozen=True, slots=True)
class Role:
    """What this process does: every device (the default), one shard's (`slamon run --shard`), or
    none (`slamon serve`: the HTTP API and the store's jobs, beside shards)."""

    shard: Shard | None = None
    probing: bool = True

    def part(self, fleet: Fleet) -> Fleet:
        return subset(fleet, self.shard) if self.probing else none_of(fleet)

    def journal(self, config: Config, store: Store) -> Journal:
        """Each process its own journal (a journal is replayed by the process that owns it): a
        shard's in `shard-I-of-N/` under the usual folder, `slamon serve`'s in `serve/`."""
        journal = journal_for(config, store)
        if self.shard is not None and self.shard.count > 1:
            return Journal(journal.directory / self.shard.name)
        if not self.probing:
            return Journal(journal.directory / "serve")
        return journal


async def serve(
    config: Config,
    fleet: Fleet,
    clock: Clock,
    *,
    role: Role | None = None,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    reload_pending: Callable[[], bool] | None = None,
) -> None:
    """Run until `stop` is set or SIGTERM/SIGINT arrive. The signals are taken from the first line:
    one that comes during start-up stops the service as soon as the step under way is done (opening
    the store, resuming the devices), before it serves; a SIGHUP then (or before, when
    `reload_pending()` says so) reloads the files once the service is up."""
    stop = stop or asyncio.Event()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    memory.limit_arenas()
    signals = _Signals(asyncio.get_running_loop(), stop)
    if reload_pending is not None and reload_pending():
        signals.hup_pending = True
    try:
        async with contextlib.AsyncExitStack() as stack:
            await _serve(config, fleet, clock, role or Role(), stop, ready, signals, stack)
    finally:
        signals.close()
    logger.info("stopped")


async def _serve(
    config: Config,
    fleet: Fleet,
    clock: Clock,
    role: Role,
    stop: asyncio.Event,
    ready: asyncio.Event | None,
    signals: _Signals,
    stack: contextlib.AsyncExitStack,
) -> None:
    part = role.part(fleet)
    if role.shard is not None:
        logger.info(
            "shard %s: %d of the fleet's %d devices (devices per shard: %s)",
            role.shard,
            len(part.inventory.devices),
            len(fleet.inventory.devices),
            ", ".join(map(str, sizes(fleet.inventory, role.shard.count))),
        )
        if not part.inventory.devices:
            logger.warning(
                "shard %s has no device: devices joined by `parent` or a site go to one shard together",
                role.shard,
            )
    # a missing ICMP privilege (IPv6 too, if a device needs it) fails here, before anything starts
    degrade_after = max((c.sla.degrade_after for c in fleet.contracts.values()), default=2)
    probers = (
        build_probers(config, clock, part.inventory.devices.values(), degrade_after=degrade_after)
        if role.probing
        else {}
    )
    every = {
        ProbeKind.ICMP: config.probes.icmp.interval,
        ProbeKind.SNMP: config.probes.snmp.interval,
        ProbeKind.VIDEO: video_tick(config.probes.video),  # probes.video.interval spaces each camera
    }
    intervals = {kind: every[kind] for kind in probers}
    store = Store(config.database)
    stack.callback(store.close)
    if role.probing and not await _unless_stopped(_claim(store, role, stack), stop):
        logger.info("stopping before serving")
        return
    fatal: list[StoreError] = []
    loop = asyncio.get_running_loop()

    def on_fatal(error: StoreError) -> None:  # from the writer thread: stop, then raise it
        fatal.append(error)
        loop.call_soon_threadsafe(stop.set)

    writer = Writer(store, role.journal(config, store), on_fatal=on_fatal)
    leadership = Leadership(store)
    stack.callback(leadership.close)
    monitor = Monitor(
        part,
        store,
        clock,
        probers,
        intervals,
        writer=writer,
        settle_heap=True,
        reachability=config.probes.snmp.reachability,
        port_metrics=config.probes.snmp.port_metrics,
        whole=fleet,
    )
    stack.push_async_callback(monitor.close, STORE_WITHIN)  # the last flush; the journal keeps the rest
    if not await _unless_stopped(monitor.start(), stop):
        logger.info("stopping before serving")
        return
    figures = Figures()
    # a stop gives requests under way HTTP_STOP_WITHIN (aiohttp's default is a minute: a slow
    # outages query against a database that is away would hold the stop, and the hand-over)
    runner = web.AppRunner(
        create_app(monitor, clock, intervals, figures, config.api),
        access_log=None,
        shutdown_timeout=HTTP_STOP_WITHIN,
    )
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    try:
        await web.TCPSite(runner, config.listen_host, config.listen_port).start()
    except OSError as exc:
        raise SlamonError(
            f"listen: cannot serve on {config.listen_host}:{config.listen_port}: {exc.strerror}"
        ) from None
    logger.info("serving /metrics and /api/v1 on http://%s:%d", config.listen_host, config.listen_port)

    jobs = Jobs()
    traps = await _trap_polls(config, monitor, jobs, stack)
    reloads = _Reloads(config, store, clock, monitor, jobs, role, traps)
    scheduler = schedule(monitor, clock, figures, config.retention, jobs, leadership)
    scheduler.start()
    signals.serving(reloads.request)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        logger.info("stopping")
        signals.stopping()
        reloads.stop()
        # no new job starts; the ones under way (a round, a flush) get STOP_WITHIN to finish, so a
        # round's results are handed to the writer, and are cancelled after that. APScheduler's
        # own shutdown would cancel them at once, and log each cancellation as an error.
        scheduler.pause()
        await jobs.finish(STOP_WITHIN)
        scheduler.shutdown(wait=False)
    if fatal:
        raise fatal[0]


class TrapPolls:
    """A trap from a known switch asks for a poll of it now: one at a time per switch (the traps of
    a restart, a coldStart and a linkUp per port, make one poll, and one more if any came while it
    ran: that poll may have read the port before the change)."""

    def __init__(self, monitor: Monitor, jobs: Jobs) -> None:
        self.monitor = monitor
        self.jobs = jobs
        self.listener: TrapListener | None = None
        self.pending: set[DeviceId] = set()
        self.again: set[DeviceId] = set()  # switches that sent a trap while their poll ran

    def switches(self, fleet: Fleet) -> dict[str, DeviceId]:
        return {d.address: d.id for d in devices_for(fleet, ProbeKind.SNMP)}

    def on_trap(self, trap: Trap) -> None:
        logger.info("trap %s from %s (%s): polling it now", trap.kind, trap.switch, trap.source)
        if trap.switch in self.pending:
            self.again.add(trap.switch)
            return
        self.pending.add(trap.switch)

        async def poll() -> None:
            try:
                await self.monitor.poll_now(ProbeKind.SNMP, [trap.switch])
                while trap.switch in self.again:
                    self.again.discard(trap.switch)
                    await self.monitor.poll_now(ProbeKind.SNMP, [trap.switch])
            finally:
                self.pending.discard(trap.switch)
                self.again.discard(trap.switch)

        asyncio.get_running_loop().create_task(self.jobs.tracked(f"the poll of {trap.switch}", poll)())


async def _trap_polls(
    config: Config, monitor: Monitor, jobs: Jobs, stack: contextlib.AsyncExitStack
) -> TrapPolls | None:
    """The trap listener, when probes.snmp.traps names where and switches are polled."""
    where = config.probes.snmp.traps
    if where is None or ProbeKind.SNMP not in monitor.probers:
        return None
    polls = TrapPolls(monitor, jobs)
    settings = settings_from(config.probes.snmp)  # v3: its user's traps and informs are taken too
    listener = TrapListener(settings.community, polls.switches(monitor.fleet), polls.on_trap, v3=settings.v3)
    try:
        await listener.start(*where)
    except OSError as exc:
        raise SlamonError(
            f"probes.snmp.traps: cannot listen on {where[0]}:{where[1]}/udp: {exc.strerror or exc}"
        ) from None
    stack.push_async_callback(listener.aclose)
    polls.listener = listener
    monitor.trap_counts = listener.counts  # the same dict: the metrics read it as it counts
    logger.info("listening for SNMP traps on %s:%d/udp", *where)
    return polls


async def _unless_stopped(step: Awaitable[None], stop: asyncio.Event) -> bool:
    """Run a start-up step; a stop meanwhile abandons it (the journal keeps what was not stored).
    True when the step finished."""
    task = asyncio.ensure_future(step)
    stopped = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        stopped.cancel()
        task.result()
        return not stop.is_set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return False


async def _claim(store: Store, role: Role, stack: contextlib.AsyncExitStack) -> None:
    """Claim this process's share of the fleet on the store (store/leader.py ShardClaim), waiting
    up to CLAIM_WITHIN for a predecessor that is stopping (a pod being replaced); SlamonError when
    another process holds it still."""
    shard = role.shard or Shard(0, 1)
    claim = ShardClaim(store, shard.index, shard.count)
    stack.callback(claim.close)
    deadline = asyncio.get_running_loop().time() + CLAIM_WITHIN
    while (refused := await asyncio.to_thread(claim.take)) is not None:
        if asyncio.get_running_loop().time() >= deadline:
            raise SlamonError(f"{refused}; waited {CLAIM_WITHIN:g} s")
        logger.info("%s; waiting", refused)
        await asyncio.sleep(CLAIM_RETRY_S)


def journal_for(config: Config, store: Store) -> Journal:
    """Where writes wait while the store cannot take them: `journal` in slamon.yaml, else beside a
    SQLite file, else `slamon-journal/` beside slamon.yaml."""
    if config.journal is not None:
        return Journal(config.journal)
    if store.file is not None:
        return default_journal(store)
    return Journal(config.path.parent / "slamon-journal")


class _Reloads:
    """SIGHUP: load the files (through the fleet cache), check the probers can take the new
    devices, then reload the monitor all or nothing. Files that do not load are refused (the
    service goes on as it was); a store that does not take the new versions postpones the reload,
    which is tried again every RETRY_RELOAD_S until it goes through or a newer SIGHUP replaces it."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        monitor: Monitor,
        jobs: Jobs,
        role: Role,
        traps: TrapPolls | None = None,
    ) -> None:
        self.config, self.store, self.clock, self.monitor, self.jobs = config, store, clock, monitor, jobs
        self.role, self.traps = role, traps
        self._generation = 0
        self._retry: asyncio.TimerHandle | None = None

    def request(self) -> None:
        self._generation += 1
        self._start(self._generation)

    def stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()

    def _start(self, generation: int) -> None:
        if generation != self._generation:
            return  # a newer SIGHUP took over
        run = self.jobs.tracked("the reload", lambda: self._reload(generation))
        asyncio.get_running_loop().create_task(run())

    async def _reload(self, generation: int) -> None:
        config = self.config
        try:
            fresh = await asyncio.to_thread(load_config, config.path)
            whole = await asyncio.to_thread(self._load_fleet, fresh)
            new_fleet = self.role.part(whole)
            for prober in self.monitor.probers.values():  # e.g. the first IPv6 device needs an IPv6 socket
                prober.check(devices_for(new_fleet, prober.kind, config.probes.snmp.reachability))
            if (
                self.role.probing
                and ProbeKind.SNMP not in self.monitor.probers
                and devices_for(new_fleet, ProbeKind.SNMP)
            ):
                logger.warning("reload: switches now have `snmp`; SNMP polling starts at the next restart")
        except SlamonError as exc:
            logger.error("reload refused, still monitoring the previous inventory: %s", exc)
            return
        if fresh.probes != config.probes or fresh.database != config.database:
            logger.warning("reload: probe settings and the database change only on restart")
        try:
            await self.monitor.reload(new_fleet, whole)
            if self.traps is not None and self.traps.listener is not None:
                self.traps.listener.set_switches(self.traps.switches(new_fleet))
        except StoreError as exc:
            logger.warning(
                "reload postponed, still monitoring the previous inventory: %s; trying again in %d s",
                exc,
                RETRY_RELOAD_S,
            )
            loop = asyncio.get_running_loop()
            self._retry = loop.call_later(RETRY_RELOAD_S, self._start, generation)

    def _load_fleet(self, config: Config) -> Fleet:
        """Through the fleet cache; straight from the files when the store cannot be asked."""
        try:
            return load_fleet_cached(config, self.store, self.clock.now())
        except StoreError:
            return load_fleet(config)


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
