"""Live monitoring: a round of one probe kind → the live state → a write of evidence → the store.

The event loop runs the probers and the live state (memory only) and never waits for the database:
each round's results, and the timeline tails they changed, become one write handed to the writer
(service/writer.py), which stores writes in order and keeps any the store refuses until it takes
them. A round is bounded by its interval: cut there, it stores what it got. The end of the evidence
(horizons) and the resume carries of steady devices are written every `flush_every` and at a stop,
behind the rounds they follow; after a crash the gap since the last write is `unknown`, as SLA.md
wants, and nothing that was written is contradicted.

After every round the monitor takes a view of the fleet (service/views.py) that /metrics and the
device API serve until the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np

from slamon.clock import Clock
from slamon.engine.live import FleetState, TailChange
from slamon.engine.power import PowerWatch, Suspicion
from slamon.engine.timeline import Carry, EngineParams
from slamon.errors import StoreError
from slamon.model import (
    HOUR,
    SECOND,
    Device,
    DeviceId,
    DeviceState,
    Event,
    Exclusion,
    Fleet,
    Micros,
    ProbeKind,
    ProbeResult,
    defects_to_mask,
    from_micros,
    to_micros,
)
from slamon.probers import Prober, devices_for, pinged
from slamon.service import memory
from slamon.service.evidence import Evidence, HorizonMove, TailWrite
from slamon.service.journal import Journal
from slamon.service.metrics import FleetExposition
from slamon.service.ports import SwitchPorts
from slamon.service.video import VideoSamples
from slamon.service.views import FleetView, LiveCauses, take_view
from slamon.service.writer import Writer
from slamon.store import ResultColumns, Store, StoreTx
from slamon.store.blocks import KIND_CODES, NO_RTT
from slamon.store.upkeep import params_json, rebuild_timelines, sync_fleet

logger = logging.getLogger(__name__)

T = TypeVar("T")
Resume = tuple[Carry, Micros | None]  # a device's resume carry, and since when it was in its state
BATCH = 5000  # results handed to the live state at a time while a round runs
RELOAD_START_WITHIN = 5.0  # seconds a reload waits for its turn at the store before it is postponed


def default_journal(store: Store) -> Journal:
    """Beside a SQLite file (`slamon.db.journal/`), else `slamon-journal/` in the working folder."""
    if store.file is not None:
        return Journal(store.file.with_name(store.file.name + ".journal"))
    return Journal(Path("slamon-journal").absolute())


@dataclass(slots=True)
class RoundStats:
    """What the rounds of one probe kind did, for slamon's own metrics."""

    rounds: int = 0
    overruns: int = 0  # rounds that took longer than the interval
    timeouts: int = 0  # rounds cut at their deadline
    errors: int = 0  # rounds that failed with an exception (a bug: logged, counted, survived)
    probes: int = 0
    failed: int = 0
    last_duration: float = 0.0
    last_started: float = 0.0  # wall-clock seconds


class ReloadPostponed(StoreError):
    """The store did not take a reload's versions in time: nothing changed; try again later."""


class _Gate:
    """Rounds run side by side; a reload runs alone (it swaps the fleet under them)."""

    def __init__(self) -> None:
        self._rounds = 0
        self._reloading = False
        self._cond = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def round(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._reloading)
            self._rounds += 1
        try:
            yield
        finally:
            async with self._cond:
                self._rounds -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def alone(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._reloading)
            self._reloading = True
            await self._cond.wait_for(lambda: self._rounds == 0)
        try:
            yield
        finally:
            async with self._cond:
                self._reloading = False
                self._cond.notify_all()


class Monitor:
    def __init__(
        self,
        fleet: Fleet,
        store: Store,
        clock: Clock,
        probers: Mapping[ProbeKind, Prober],
        intervals: Mapping[ProbeKind, timedelta] | None = None,
        *,
        journal: Journal | None = None,
        writer: Writer | None = None,
        flush_every: timedelta = timedelta(minutes=1),
        settle_heap: bool = False,
        reachability: str = "both",
        port_metrics: str = "all",
        whole: Fleet | None = None,
    ) -> None:
        """`settle_heap`: once the first round after the start or a reload is done, exempt the
        fleet's long-lived objects from the garbage collector's full passes (memory.settle; the
        service's own heap policy, not a test's). `reachability`: probes.snmp.reachability (which
        devices ICMP rounds take). `whole`: the whole fleet when `fleet` is one shard's part of it
        (shards.subset): the store records the whole fleet's versions, whichever shard starts."""
        self.fleet = fleet
        self.whole = whole or fleet
        self.store = store
        self.clock = clock
        self.probers = probers
        self.intervals = dict(intervals or {})
        self.flush_every = flush_every
        self.reload_start_within = RELOAD_START_WITHIN
        self.state = FleetState(fleet)
        self.stats = {kind: RoundStats() for kind in probers}
        self.writer = writer or Writer(store, journal or default_journal(store))
        self.exposition = FleetExposition()
        self.ports = SwitchPorts.of(fleet, port_metrics)  # the switches' ports, as SNMP rounds see them
        self.video = VideoSamples()  # the cameras' latest video samples, as video rounds see them
        self.power = PowerWatch.of(fleet, self._unpinged(fleet, reachability))  # suspected power cuts
        self.trap_counts: dict[str, int] = {}  # the trap listener's, when the service runs one
        self.view: FleetView | None = None
        self._causes = LiveCauses(fleet)  # the file's exclusions until the first view reads the store's
        self._exclusions_stamp: tuple[int, int] | None = None  # the store's, when they were read
        self._exclusions_unread = False  # the last try to read them failed (logged once)
        self._view_lock = asyncio.Lock()
        self._gate = _Gate()
        self._keys: dict[DeviceId, int] = {}
        self._flushed: dict[DeviceId, tuple[Micros | None, Carry | None]] = {}
        self._shown: dict[DeviceId, DeviceState] = {}
        self._last_part = 0
        self._round_devices: dict[ProbeKind, tuple[Fleet, list[Device]]] = {}
        self._first_view: asyncio.Task[None] | None = None
        self._settle_heap = settle_heap
        self._closing: list[Suspicion] = []  # suspicions closed since the last write
        self.reachability = reachability
        self._settled = False  # since the start or the last reload

    async def call(self, fn: Callable[[StoreTx], T], *, start_within: float | None = None) -> T:
        """Run `fn` in a write transaction, in order with the evidence (see Writer.call)."""
        return await self.writer.call(fn, start_within=start_within)

    # --- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        """Replay what the journal holds, give every device a key and resume each one where the
        store left it."""
        journal = self.writer.journal

        def progress() -> tuple[str, int]:
            with self.store.read() as tx:
                applied = tx.meta.get(journal.progress_key)
                return tx.meta.store_id(), int(applied) if applied else 0

        store_id, applied = await asyncio.to_thread(progress)
        replayed = self.writer.load_journal(store_id, applied)
        if replayed:
            logger.info("writing %d writes the journal kept from the last run", replayed)
        await self.writer.drained()
        fleet, whole = self.fleet, self.whole
        now = to_micros(self.clock.now())

        def load(tx: StoreTx) -> tuple[dict[DeviceId, int], dict[int, Resume], list[DeviceId], list[Event]]:
            keys = tx.keys.ensure(fleet.inventory.devices)
            # the files may have changed while the service was down: a contract whose state
            # settings changed has its timelines rebuilt (with new resume points) before they resume;
            # a shard rebuilds its own devices only (the keys it passes)
            sync_fleet(tx, whole, now, keys)
            resumes = tx.timelines.resume_points(keys.values())
            # a device with a stored timeline but no resume point (history imported, or a
            # timeline rebuilt): rebuild it once from its results, which stores one
            without = tx.timelines.without_resume()
            missing = [d for d, k in keys.items() if k in without]
            if missing:
                rebuild_timelines(tx, fleet.inventory, fleet.contracts, missing, now)
                resumes = tx.timelines.resume_points(keys.values())
            return keys, resumes, missing, tx.events.between("power", 0, now + 1)

        self._keys, resumes, rebuilt, power = await self.call(load)
        reopened = self.power.resume(power)
        if reopened:
            logger.info("sites still dark when the service stopped: %s", ", ".join(sorted(reopened)))
        if rebuilt:
            logger.info("rebuilt %d timelines that had no resume point", len(rebuilt))
        await self._restore(resumes)
        for live in self.state:
            self._flushed[live.device.id] = (live.horizon, live.carry)
            self._shown[live.device.id] = live.state_at(now)
        # the first view is made while the first round runs: at 100,000 devices it is a second
        self._first_view = asyncio.get_running_loop().create_task(self.refresh_view())
        logger.info("monitoring %d devices (%d resumed from the store)", len(self.state), len(resumes))

    async def _restore(self, resumes: Mapping[int, Resume]) -> None:
        """Put devices back where the store left them: their resume carry, the results after it,
        when their current state began and their latest outages (their children's causes)."""
        ids = {k: d for d, k in self._keys.items()}
        wanted = {k: r for k, r in resumes.items() if k in ids}
        if not wanted:
            return
        now = to_micros(self.clock.now())
        grace = max((c.sla.upstream_grace for c in self.fleet.contracts.values()), default=timedelta(0))
        carries = {k: carry for k, (carry, _) in wanted.items()}
        unknown_since = [k for k, (_, since) in wanted.items() if since is None]
        found = await asyncio.to_thread(
            _read_resumed, self.store, carries, unknown_since, now - to_micros(grace)
        )
        changes, outages, results = found
        for key, (carry, since) in wanted.items():
            reach, video = results.get(key, ((), ()))
            device = ids[key]
            self.state.restore(device, carry, reach, video, outages=outages.get(key, ()), since=since)
            live = self.state.get(device)
            change = changes.get(key)  # resumes stored without it (before 0004, or by a rebuild)
            if live is not None and change is not None and live.state_at(max(now, change[0])) is change[1]:
                live.changed_at = min(change[0], live.changed_at or change[0])

    async def reload(self, fleet: Fleet, whole: Fleet | None = None) -> None:
        """A new inventory (SIGHUP), all or nothing: the store records it first (new devices get
        keys; a device whose contract now judges state differently is rebuilt from its stored
        results, like an import would, and resumed from there), then the live state, the probers'
        device lists and the views switch together. When the store does not take it within
        `reload_start_within` seconds, ReloadPostponed is raised and nothing changed.

        Rounds go on while the reload waits for the store; they pause only while it records and
        switches (it must not race a round feeding the devices it rebuilds)."""
        try:
            await asyncio.wait_for(self.writer.drained(), self.reload_start_within)
        except TimeoutError:
            raise self._postponed() from None
        async with self._gate.alone():
            now = to_micros(self.clock.now())
            fresh = [d for d in fleet.inventory.devices.values() if self._needs_resume(fleet, d)]

            def record(tx: StoreTx) -> tuple[dict[DeviceId, int], dict[int, Resume]]:
                keys = tx.keys.ensure(fleet.inventory.devices)
                # records the (whole fleet's) versions; rebuilds the timelines whose settings changed
                sync_fleet(tx, whole or fleet, now, keys)
                return keys, tx.timelines.resume_points(keys[d.id] for d in fresh)

            try:
                keys, resumes = await self.call(record, start_within=self.reload_start_within)
            except TimeoutError:
                raise self._postponed() from None
            self.state.reload(fleet)
            self.ports.reload(fleet)
            self.video.keep(fleet.inventory.devices)
            self.power.reload(fleet, self._unpinged(fleet, self.reachability))
            self._keys, self.fleet, self.whole = keys, fleet, whole or fleet
            await self._restore(resumes)
            for d in fresh:
                live = self.state.get(d.id)
                if live is not None:
                    self._flushed[d.id] = (live.horizon, live.carry)
            await self.refresh_view()
            self._settled = False
        logger.info(
            "inventory reloaded: %d devices (%d resumed from the store)", len(self.state), len(resumes)
        )

    def _postponed(self) -> ReloadPostponed:
        status = self.writer.status()
        return ReloadPostponed(
            "the store is not taking writes"
            + (f" ({status.failing})" if status.failing else f" ({status.writes} writes waiting)")
        )

    def _needs_resume(self, fleet: Fleet, device: Device) -> bool:
        """A device the reload starts afresh: new, or judged by different settings now."""
        live = self.state.get(device.id)
        if live is None:
            return True
        return live.params != EngineParams.from_terms(fleet.contracts[device.contract].sla)

    async def close(self, store_within: float = 2.0) -> bool:
        """Write what is in memory (the journal keeps what the store does not take within
        `store_within` seconds) and release the probers. True when everything reached the store."""
        if self._first_view is not None and not self._first_view.done():
            self._first_view.cancel()
            await asyncio.gather(self._first_view, return_exceptions=True)
        with contextlib.suppress(RuntimeError):
            self._queue_flush()
        stored = await asyncio.to_thread(self.writer.close, store_within)
        for prober in self.probers.values():
            await prober.aclose()
        return stored

    # --- rounds -----------------------------------------------------------------------------

    def _devices_of(self, kind: ProbeKind) -> list[Device]:
        """devices_for, worked out once per inventory: the same list every round lets the prober
        keep what it built for these addresses (and sorting 100,000 ids is not free)."""
        memo = self._round_devices.get(kind)
        if memo is None or memo[0] is not self.fleet:
            memo = self._round_devices[kind] = (self.fleet, devices_for(self.fleet, kind, self.reachability))
        return memo[1]

    async def run_round(self, kind: ProbeKind) -> None:
        """One round of `kind` over its devices, cut at its interval; its results go through the
        live state to the writer, and a new view is taken."""
        async with self._gate.round():
            await self._round(kind)
        await self.refresh_view()
        if self._settle_heap and not self._settled:
            self._settled = True
            memory.settle()

    async def poll_now(self, kind: ProbeKind, wanted: Iterable[DeviceId]) -> int:
        """Probe some devices now, outside the schedule (an SNMP trap asks for its switch): their
        results go the way a round's do. A device the prober is polling already is polled again
        once that poll ends (the prober takes one poll per device at a time: that one may have read
        it before what the trap reports). Bounded by the kind's interval, like a round; the view is not
        rebuilt for it (a storm of traps would rebuild it for every one): the API reads the ports
        as they are, and the next round renders them. How many were probed."""
        prober = self.probers.get(kind)
        if prober is None:
            return 0
        ids = set(wanted)
        devices = [d for d in self._devices_of(kind) if d.id in ids]
        if not devices:
            return 0
        interval = self.intervals.get(kind)
        async with self._gate.round():
            taken = _Taken(self.state, feed=self._judges(kind))
            try:
                async with asyncio.timeout(None if interval is None else interval.total_seconds()):
                    async for batch in prober.round(devices):
                        taken.add(batch)
            except TimeoutError:
                logger.warning("%s poll of %s cut at its deadline", kind.value, ", ".join(sorted(ids)))
            finally:  # what it got is stored, a stop included
                self._take(kind, taken.finish())
        return len(devices)

    def _take(self, kind: ProbeKind, taken: tuple[list[ProbeResult], list[TailChange]]) -> None:
        """A round's (or a poll's) results into the ports' view, the ledger and the writer."""
        results, changes = taken
        events = self.ports.take(results) if kind is ProbeKind.SNMP else []
        if kind is ProbeKind.VIDEO:
            self.video.take(results)
        self._queue_round(kind, (results, changes), events)
        self._log_transitions({c.device for c in changes})

    async def _round(self, kind: ProbeKind) -> None:
        prober, stats = self.probers[kind], self.stats[kind]
        devices = self._devices_of(kind)
        interval = self.intervals.get(kind)
        started = time.monotonic()
        stats.last_started = time.time()
        taken = _Taken(self.state, feed=self._judges(kind))
        cut = False
        try:
            async with asyncio.timeout(None if interval is None else interval.total_seconds()):
                async for batch in prober.round(devices):
                    taken.add(batch)
        except TimeoutError:
            cut = True
            stats.timeouts += 1
            logger.warning(
                "%s round cut at its deadline (%.0f s) with %d of %d results; they are stored",
                kind.value,
                interval.total_seconds() if interval else 0,
                len(taken.results) + len(taken.pending),
                len(devices),
            )
        except asyncio.CancelledError:  # a stop: what the round got is stored
            self._take(kind, taken.finish())
            raise
        except Exception:
            stats.errors += 1
            logger.exception("%s round failed", kind.value)
        finally:
            stats.rounds += 1
            stats.last_duration = time.monotonic() - started
            if interval is not None and stats.last_duration > interval.total_seconds() and not cut:
                stats.overruns += 1  # (a cut round is counted as a timeout)
                logger.warning(
                    "%s round took %.1f s, longer than its interval", kind.value, stats.last_duration
                )
        results, changes = taken.finish()
        stats.probes += len(results)
        stats.failed += sum(not r.ok for r in results)
        self._take(kind, (results, changes))

    def _queue_round(
        self,
        kind: ProbeKind,
        taken: tuple[list[ProbeResult], list[TailChange]],
        events: Sequence[Event] = (),
    ) -> None:
        results, changes = taken
        if not results:
            return
        if not self._judges(kind):  # SNMP under reachability: icmp: its port evidence, not its results
            if events:
                self.writer.submit(
                    Evidence(f"{kind.value} round", to_micros(self.clock.now()), events=tuple(events))
                )
            return
        if kind is ProbeKind.ICMP:  # ping alone judges a site dark (an SNMP failure may be SNMP's)
            events = [*events, *self._power(results)]
        keys = self._keys
        tails = tuple(
            TailWrite(keys[c.device], c.tail, c.since, params_json(c.params))
            for c in changes
            if c.device in keys
        )
        now = to_micros(self.clock.now())
        self.writer.submit(
            Evidence(
                f"{kind.value} round",
                now,
                self._columns(results),
                self._next_part(),
                tails,
                events=tuple(events),
                proposals=tuple(self._proposals(now)),
            )
        )
        for c in changes:  # the horizon the store will hold is the one in the tail written last
            last = c.tail.transitions[-1] if c.tail.transitions else None
            horizon = last.at if last is not None and last.state is DeviceState.UNKNOWN else None
            self._flushed[c.device] = (horizon, self._flushed.get(c.device, (None, None))[1])

    def _judges(self, kind: ProbeKind) -> bool:
        """Whether a kind's results say if a device answers: SNMP does not under `reachability:
        icmp` (ping alone does; the polls give the ports)."""
        return not (kind is ProbeKind.SNMP and self.reachability == "icmp")

    @staticmethod
    def _unpinged(fleet: Fleet, reachability: str) -> list[DeviceId]:
        return [d.id for d in fleet.inventory.devices.values() if not pinged(d, reachability)]

    def _power(self, results: Sequence[ProbeResult]) -> list[Event]:
        """A round's word on sites going dark or coming back: the ledger's site events."""
        opened, closed = self.power.round(results)
        for s in opened:
            logger.warning(
                "site %s: all %d devices failed in one round while its upstream answered: suspected "
                "power cut; proposed exclusion %s",
                s.site,
                len(s.devices),
                s.exclusion_id,
            )
        for s in closed:
            logger.info("site %s answers again: proposed exclusion %s ends", s.site, s.exclusion_id)
            self._closing.append(s)
        return [
            Event(s.since if s.until is None else s.until, "power", s.site, s.evidence())
            for s in (*opened, *closed)
        ]

    def _proposals(self, now: Micros) -> list[Exclusion]:
        """The proposed exclusions of the sites that came back, with their end: stored once, whole
        (a proposal whose end moved with every round would change the inputs of a statement issued
        meanwhile). A site still dark is the `power` event in the ledger and the API's open one."""
        closing, self._closing = self._closing, []
        return [s.proposal(now) for s in closing]

    def _next_part(self) -> int:
        """A part number new for every hour this round touches: the wall-clock second, bumped."""
        part = max(int(self.clock.now().timestamp()) & 0x7FFFFFFF, self._last_part + 1)
        self._last_part = part
        return part

    def _columns(self, results: Sequence[ProbeResult]) -> ResultColumns:
        keys = self._keys
        chosen = [r for r in results if r.device in keys]
        return ResultColumns(
            np.fromiter((keys[r.device] for r in chosen), np.int32, len(chosen)),
            np.fromiter((KIND_CODES[r.kind] for r in chosen), np.uint8, len(chosen)),
            np.fromiter((to_micros(r.time) for r in chosen), np.int64, len(chosen)),
            np.fromiter((r.ok for r in chosen), np.uint8, len(chosen)),
            np.fromiter((defects_to_mask(r.defects) for r in chosen), np.uint32, len(chosen)),
            np.fromiter(
                (NO_RTT if r.rtt_ms is None else round(r.rtt_ms * 1000) for r in chosen),
                np.uint32,
                len(chosen),
            ),
        )

    def _log_transitions(self, changes: Iterable[DeviceId]) -> None:
        """Each change of state once, at INFO; a device's first state after start at DEBUG."""
        now = to_micros(self.clock.now())
        for device in changes:
            live = self.state.get(device)
            if live is None:
                continue
            state = live.state_at(now)
            before = self._shown.get(device)
            if before is state:
                continue
            self._shown[device] = state
            since = live.since(now)
            when = "" if since is None else f" since {_clock(since)}"
            level = (
                logging.DEBUG
                if before in (None, DeviceState.UNKNOWN) and state is DeviceState.UP
                else logging.INFO
            )
            logger.log(
                level,
                "device %s %s%s (was %s)",
                device,
                state.value,
                when,
                before.value if before else "unseen",
            )

    # --- views ------------------------------------------------------------------------------

    async def refresh_view(self) -> None:
        """A new view of every device now, and the /metrics body rendered from it (in a thread)."""
        async with self._view_lock:
            self._causes = await self._current_causes()
            view = await take_view(self.state, self._causes, to_micros(self.clock.now()))
            self.view = view
            await asyncio.to_thread(
                self.exposition.update, view, self.ports.snapshot(), self.video.snapshot()
            )

    async def _current_causes(self) -> LiveCauses:
        """The causes judged by the exclusions in force in the store, so that an exclusion approved
        through the workflow (in this process or another) counts in the live view as soon as on the
        statement; rebuilt, in a thread, only when those exclusions or the fleet changed. A store
        that cannot be read keeps the exclusions read last (the view goes on)."""
        fleet, causes = self.state.fleet, self._causes
        try:
            found = await asyncio.to_thread(self._exclusions_if_changed, self._exclusions_stamp)
        except (StoreError, ValueError) as e:  # down, locked or a bad row: the next view tries again
            if not self._exclusions_unread:
                logger.warning("the live causes keep the exclusions read before: reading them failed: %s", e)
            self._exclusions_unread = True
            found = None
        else:
            if self._exclusions_unread:
                logger.info("the live causes read the exclusions in force again")
            self._exclusions_unread = False
        if found is not None:
            self._exclusions_stamp, in_force = found
            return await asyncio.to_thread(LiveCauses, fleet, in_force)
        if causes.fleet is not fleet:
            return await asyncio.to_thread(LiveCauses, fleet, causes.exclusions)
        return causes

    def _exclusions_if_changed(
        self, known: tuple[int, int] | None
    ) -> tuple[tuple[int, int], tuple[Exclusion, ...]] | None:
        with self.store.read() as tx:
            stamp = tx.versions.exclusions_stamp()
            return None if stamp == known else (stamp, tx.versions.exclusions())

    # --- upkeep -----------------------------------------------------------------------------

    async def flush(self, *, wait: bool = True) -> None:
        """Write where each device's evidence ends now, and its resume point, if they moved; with
        `wait`, until the store holds it and everything before it."""
        self._queue_flush()
        if wait:
            await self.writer.drained()

    def _queue_flush(self) -> None:
        moves: list[HorizonMove] = []
        resumes: list[tuple[int, Carry, Micros | None]] = []
        marks: dict[DeviceId, tuple[Micros | None, Carry | None]] = {}
        for live in self.state:
            device = live.device.id
            key = self._keys.get(device)
            if key is None:
                continue
            horizon, carry = live.horizon, live.carry
            old_horizon, old_carry = self._flushed.get(device, (None, None))
            if horizon is not None and horizon != old_horizon:
                moves.append(HorizonMove(key, horizon, live.open_last_failure()))
            if carry is not None and carry != old_carry:
                resumes.append((key, carry, live.changed_at))
            marks[device] = (horizon, carry)
        if moves or resumes:
            self.writer.submit(
                Evidence("flush", to_micros(self.clock.now()), moves=tuple(moves), resumes=tuple(resumes))
            )
        self._flushed.update(marks)

    async def compact(self) -> int:
        """Merge the live parts of finished hours into one block each."""
        before = to_micros(self.clock.now()) // HOUR * HOUR
        merged = await self.call(lambda tx: tx.results.compact(before))
        if merged:
            logger.info("compacted %d hourly blocks", merged)
        return merged


class _Taken:
    """A round's results as they come, fed to the live state in batches, in order: a later change
    of a device may start from a carry folded after an earlier one."""

    def __init__(self, state: FleetState, *, feed: bool = True) -> None:
        self.state = state
        self.feed = feed  # False: the results are not reachability evidence (SNMP under reachability: icmp)
        self.results: list[ProbeResult] = []
        self.changes: list[TailChange] = []
        self.pending: list[ProbeResult] = []

    def add(self, batch: list[ProbeResult]) -> None:
        self.pending += batch
        if len(self.pending) >= BATCH:
            self._feed()

    def _feed(self) -> None:
        if self.feed:
            self.changes += self.state.feed(self.pending)
        self.results += self.pending
        self.pending = []

    def finish(self) -> tuple[list[ProbeResult], list[TailChange]]:
        self._feed()
        return self.results, self.changes


def _read_resumed(
    store: Store, resumes: Mapping[int, Carry], unknown_since: Sequence[int], outages_after: Micros
) -> tuple[
    dict[int, tuple[Micros, DeviceState]],
    dict[int, list[tuple[Micros, Micros, bool]]],
    dict[int, tuple[list[tuple[Micros, bool]], list[tuple[Micros, bool]]]],
]:
    """What a resume needs from the store (read-only, off the loop): when the state began of the
    devices whose resume point does not say, their outages that ended after `outages_after` (or are
    open), and their results after the carry (reachability, video) — only the parts of the
    carry's hour written since the carry, not the whole hour, read for the whole fleet at once."""
    with store.read() as tx:
        changes = tx.timelines.last_changes(unknown_since) if unknown_since else {}
        recent = tx.timelines.outages_between(outages_after, 1 << 62)
        outages = {
            k: [(o.start, o.end, o.open) for o in found] for k, found in recent.items() if k in resumes
        }
        by_hour: dict[int, list[int]] = {}
        for key, carry in resumes.items():
            by_hour.setdefault(carry.reach_last // HOUR, []).append(key)
        parts = [
            tx.results.recent(keys, hour * HOUR, min(resumes[k].reach_last for k in keys) // SECOND)
            for hour, keys in sorted(by_hour.items())
        ]
    return changes, outages, _per_device(ResultColumns.concat(parts) if parts else None)


def _per_device(
    cols: ResultColumns | None,
) -> dict[int, tuple[list[tuple[Micros, bool]], list[tuple[Micros, bool]]]]:
    """Sorted columns of many devices -> each device's (reachability, video) results."""
    if cols is None or len(cols) == 0:
        return {}
    video = cols.kind == KIND_CODES[ProbeKind.VIDEO]
    found: dict[int, tuple[list[tuple[Micros, bool]], list[tuple[Micros, bool]]]] = {}
    for is_video, into in ((False, 0), (True, 1)):
        chosen = cols.take(np.flatnonzero(video == is_video))
        if not len(chosen):
            continue
        devices = chosen.device
        starts = np.flatnonzero(np.concatenate(([True], devices[1:] != devices[:-1])))
        pairs = list(zip(chosen.time.tolist(), (chosen.ok == 1).tolist(), strict=True))
        bounds = [*starts.tolist(), len(pairs)]
        for i, key in enumerate(devices[starts].tolist()):
            entry = found.setdefault(key, ([], []))
            entry[into].extend(pairs[bounds[i] : bounds[i + 1]])
    return found


def _clock(us: int) -> str:
    return from_micros(us).isoformat(timespec="seconds")
