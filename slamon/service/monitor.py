"""Live monitoring: a round of one probe kind → the live state → the store.

The event loop runs the probers and the live state (memory only); every database call goes to one
writer thread, in the order it was asked for, so SQLite sees a single writer and the loop never
waits on disk. A round's raw results and the timeline tails it changed are written in one
transaction: a stored transition always has its evidence stored with it. The end of the evidence
(horizons) and the resume carries of steady devices are flushed every `flush_every` and at
shutdown; after a crash the gap since the last flush is `unknown`, as SLA.md wants, and nothing
that was written is contradicted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np

from slamon.clock import Clock
from slamon.engine.live import DeviceLive, FleetState, TailChange
from slamon.engine.timeline import Carry
from slamon.model import (
    HOUR,
    Device,
    DeviceId,
    DeviceKind,
    DeviceState,
    Fleet,
    ProbeKind,
    ProbeResult,
    defects_to_mask,
    from_micros,
    to_micros,
)
from slamon.probers import Prober
from slamon.store import DeviceResults, ResultColumns, Store, StoreTx
from slamon.store.blocks import KIND_CODES, NO_RTT
from slamon.store.upkeep import params_json, rebuild_timelines, sync_fleet

logger = logging.getLogger(__name__)

T = TypeVar("T")
BATCH = 5000  # results handed to the live state at a time while a round runs


def devices_for(fleet: Fleet, kind: ProbeKind) -> list[Device]:
    """Which devices a probe kind watches: everyone answers ping; SNMP for switches that have it;
    video for cameras with a stream."""
    devices = fleet.inventory.devices.values()
    if kind is ProbeKind.ICMP:
        return sorted(devices, key=lambda d: d.id)
    if kind is ProbeKind.SNMP:
        return sorted((d for d in devices if d.kind is DeviceKind.SWITCH and d.snmp), key=lambda d: d.id)
    return sorted((d for d in devices if d.kind is DeviceKind.CAMERA and d.stream), key=lambda d: d.id)


@dataclass(slots=True)
class RoundStats:
    """What the last rounds of one probe kind did, for slamon's own metrics."""

    rounds: int = 0
    overruns: int = 0  # rounds that took longer than the interval
    errors: int = 0  # rounds that failed with an exception (a bug: logged, counted, survived)
    probes: int = 0
    failed: int = 0
    last_duration: float = 0.0
    last_started: float = 0.0  # wall-clock seconds


@dataclass(slots=True)
class Monitor:
    fleet: Fleet
    store: Store
    clock: Clock
    probers: Mapping[ProbeKind, Prober]
    intervals: Mapping[ProbeKind, timedelta] = field(default_factory=dict)
    flush_every: timedelta = timedelta(minutes=1)
    state: FleetState = field(init=False)
    stats: dict[ProbeKind, RoundStats] = field(init=False)
    _writer: ThreadPoolExecutor = field(init=False)
    _keys: dict[DeviceId, int] = field(init=False, default_factory=dict)
    _flushed: dict[DeviceId, tuple[int | None, Carry | None]] = field(init=False, default_factory=dict)
    _shown: dict[DeviceId, DeviceState] = field(init=False, default_factory=dict)
    _last_part: int = field(init=False, default=0)
    _round_devices: dict[ProbeKind, tuple[Fleet, list[Device]]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.state = FleetState(self.fleet)
        self.stats = {kind: RoundStats() for kind in self.probers}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slamon-store")

    async def db(self, fn: Callable[[StoreTx], T]) -> T:
        """Run `fn` in a transaction on the writer thread."""

        def work() -> T:
            with self.store.begin() as tx:
                return fn(tx)

        return await asyncio.get_running_loop().run_in_executor(self._writer, work)

    # --- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        """Give every device a key and resume each one where the store left it."""
        fleet = self.fleet
        now = to_micros(self.clock.now())

        def load(tx: StoreTx) -> tuple[dict[DeviceId, int], dict[int, Carry], list[DeviceId]]:
            tx.versions.record(fleet, now)
            keys = tx.keys.ensure(fleet.inventory.devices)
            resumes = tx.timelines.resumes(keys.values())
            stored = tx.timelines.params()
            # a device with a stored timeline but no resume point (history imported before
            # resume points existed): rebuild it once from its results, which stores one
            missing = [d for d, k in keys.items() if k in stored and k not in resumes]
            if missing:
                rebuild_timelines(tx, fleet.inventory, fleet.contracts, missing, now)
                resumes = tx.timelines.resumes(keys.values())
            return keys, resumes, missing

        self._keys, resumes, rebuilt = await self.db(load)
        if rebuilt:
            logger.info("rebuilt %d timelines that had no resume point", len(rebuilt))
        await self._restore(resumes)
        for live in self.state:
            self._flushed[live.device.id] = (live.horizon, live.carry)
            self._shown[live.device.id] = live.state_at(now)
        logger.info("monitoring %d devices (%d resumed from the store)", len(self.state), len(resumes))

    async def _restore(self, resumes: Mapping[int, Carry]) -> None:
        """Put devices back where the store left them: their resume carry, the results after it, and
        when their current state began."""
        ids = {k: d for d, k in self._keys.items()}
        changes = await self.db(lambda tx: tx.timelines.last_changes(resumes))
        by_hour: dict[int, list[int]] = {}
        for key, carry in resumes.items():
            if key in ids:
                by_hour.setdefault(carry.reach_last // HOUR, []).append(key)
        for hour, keys in sorted(by_hour.items()):
            since = hour * HOUR

            def read(tx: StoreTx, keys: list[int] = keys, since: int = since) -> dict[int, DeviceResults]:
                return dict(tx.results.of_devices(keys, since=since))

            found = await self.db(read)
            for key in keys:
                results = found.get(key)
                reach = (
                    []
                    if results is None
                    else zip(results.reach_time.tolist(), results.reach_ok.tolist(), strict=True)
                )
                video = (
                    []
                    if results is None
                    else zip(results.video_time.tolist(), results.video_ok.tolist(), strict=True)
                )
                self.state.restore(ids[key], resumes[key], reach, video)
                live = self.state.get(ids[key])
                change = changes.get(key)
                now = to_micros(self.clock.now())
                if (
                    live is not None
                    and change is not None
                    and live.state_at(max(now, change[0])) is change[1]
                ):
                    live.changed_at = min(change[0], live.changed_at or change[0])

    async def reload(self, fleet: Fleet) -> None:
        """A new inventory (SIGHUP): new devices get keys, the rest keep their live state. A device
        whose contract now judges state differently is rebuilt from its stored results (like an
        import would) and resumed from there, so its stored history is never overwritten."""
        now = to_micros(self.clock.now())
        self.state.reload(fleet)
        fresh = [live.device.id for live in self.state if live.carry is None and not live.reach]

        def record(tx: StoreTx) -> tuple[dict[DeviceId, int], dict[int, Carry]]:
            sync_fleet(tx, fleet, now)  # records the versions; rebuilds timelines whose settings changed
            keys = tx.keys.ensure(fleet.inventory.devices)
            return keys, tx.timelines.resumes(keys[d] for d in fresh)

        self._keys, resumes = await self.db(record)
        self.fleet = fleet
        await self._restore(resumes)
        for device in fresh:
            live = self.state.get(device)
            if live is not None:
                self._flushed[device] = (live.horizon, live.carry)
        logger.info(
            "inventory reloaded: %d devices (%d resumed from the store)", len(self.state), len(resumes)
        )

    async def close(self) -> None:
        """Flush what is in memory and stop the writer."""
        await self.flush()
        for prober in self.probers.values():
            await prober.aclose()
        self._writer.shutdown(wait=True)

    # --- rounds -----------------------------------------------------------------------------

    def _devices_of(self, kind: ProbeKind) -> list[Device]:
        """devices_for, worked out once per inventory: the same list every round lets the prober
        keep what it built for these addresses (and sorting 100,000 ids is not free)."""
        memo = self._round_devices.get(kind)
        if memo is None or memo[0] is not self.fleet:
            memo = self._round_devices[kind] = (self.fleet, devices_for(self.fleet, kind))
        return memo[1]

    async def run_round(self, kind: ProbeKind) -> None:
        """One round of `kind` over its devices; results go through the live state into the store."""
        prober = self.probers[kind]
        stats = self.stats[kind]
        devices = self._devices_of(kind)
        started = time.monotonic()
        stats.last_started = time.time()
        results: list[ProbeResult] = []
        changes: list[TailChange] = []
        pending: list[ProbeResult] = []
        writing = False
        try:
            async for batch in prober.round(devices):
                pending += batch
                if len(pending) >= BATCH:
                    self._take(pending, changes)
                    results += pending
                    pending = []
            self._take(pending, changes)
            results += pending
            pending = []
            writing = True
            await self._write_round(results, changes)
        except asyncio.CancelledError:
            if not writing:
                # a stop cut the round short: store what it got so far, so the flush that follows
                # never moves a device's horizon past results the store does not hold
                self._take(pending, changes)
                await self._write_round([*results, *pending], changes)
            raise
        except Exception:
            stats.errors += 1
            logger.exception("%s round failed", kind.value)
            return
        finally:
            stats.rounds += 1
            stats.last_duration = time.monotonic() - started
            interval = self.intervals.get(kind)
            if interval is not None and stats.last_duration > interval.total_seconds():
                stats.overruns += 1
                logger.warning(
                    "%s round took %.1f s, longer than its interval", kind.value, stats.last_duration
                )
        stats.probes += len(results)
        stats.failed += sum(not r.ok for r in results)
        self._log_transitions({c.device for c in changes})

    def _take(self, results: list[ProbeResult], changes: list[TailChange]) -> None:
        # in order: a later change of a device may start from a carry folded after the earlier one
        changes += self.state.feed(results)

    async def _write_round(self, results: Sequence[ProbeResult], changes: Sequence[TailChange]) -> None:
        if not results:
            return
        cols = self._columns(results)
        part = self._next_part()
        now = to_micros(self.clock.now())
        keys = self._keys
        writes = [
            (keys[c.device], c.tail, c.since, params_json(c.params)) for c in changes if c.device in keys
        ]

        def write(tx: StoreTx) -> None:
            tx.results.append(cols, part)
            tx.timelines.write_tails(writes, at=now)

        await self.db(write)
        for c in changes:  # the horizon the store now holds is the one in the tail written last
            last = c.tail.transitions[-1] if c.tail.transitions else None
            horizon = last.at if last is not None and last.state is DeviceState.UNKNOWN else None
            self._flushed[c.device] = (horizon, self._flushed.get(c.device, (None, None))[1])

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

    # --- upkeep -----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write where each device's evidence ends now, and its resume point, if they moved."""
        moves: list[tuple[int, int, int | None]] = []
        resumes: list[tuple[int, Carry]] = []
        marks: dict[DeviceId, tuple[int | None, Carry | None]] = {}
        for live in self.state:
            device = live.device.id
            key = self._keys.get(device)
            if key is None:
                continue
            horizon, carry = live.horizon, live.carry
            old_horizon, old_carry = self._flushed.get(device, (None, None))
            if horizon is not None and horizon != old_horizon:
                outage = live.open_outage()
                moves.append((key, horizon, outage.last_failure if outage else None))
            if carry is not None and carry != old_carry:
                resumes.append((key, carry))
            marks[device] = (horizon, carry)

        def write(tx: StoreTx) -> None:
            tx.timelines.move_horizons(moves)
            tx.timelines.save_resumes(resumes)

        if moves or resumes:
            await self.db(write)
        self._flushed.update(marks)

    async def compact(self) -> int:
        """Merge the live parts of finished hours into one block each."""
        before = to_micros(self.clock.now()) // HOUR * HOUR
        merged = await self.db(lambda tx: tx.results.compact(before))
        if merged:
            logger.info("compacted %d hourly blocks", merged)
        return merged


def _clock(us: int) -> str:
    return from_micros(us).isoformat(timespec="seconds")


def live_view(live: DeviceLive, now: int) -> dict[str, Any]:
    """A device's current state as the API shows it."""
    state = live.state_at(now)
    since = live.since(now)
    return {
        "id": live.device.id,
        "state": state.value,
        "since": None if since is None else _clock(since),
        "last_probe": None if live.last_probe is None else _clock(live.last_probe),
        "rtt_ms": live.rtt_ms,
        "loss": live.loss,
        "error": live.error,
        "defects": sorted(d.value for d in live.defects),
    }
