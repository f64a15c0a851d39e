"""The live state of the fleet: probe results as they come → each device's timeline, equal to what
the batch engine (state.build_timeline) gives for the same results.

Pure: no I/O, no clock (instants come with the results; "now" is passed in).

Per device the state is a carry at a firm point plus the results after it (its *tail*). Most
results change nothing but where the evidence ends (an `up` camera answers again): a device whose
tail has no pending run is *steady*, and a result that agrees with its judged state costs a few
comparisons. Any other result (a failure, a recovery, a gap, a defective video sample) rebuilds
the short tail with build_timeline, the function an import runs, so live and imported evidence
cannot disagree. Results stay in the tail for `slack` after newer ones arrive before they are
folded into the carry, so a result of another probe kind stamped a little earlier (rounds
overlap) still lands in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from slamon.engine.timeline import (
    EMPTY_TIMELINE,
    Carry,
    EngineParams,
    Outage,
    Timeline,
    build_timeline,
    carry_before,
    quality_after,
)
from slamon.model import SECOND, Defect, Device, DeviceId, DeviceState, Fleet, Micros, ProbeResult, to_micros

DEFAULT_SLACK: Micros = 120 * SECOND
_PAIRS_KEPT = 64  # distinct result instants remembered (a round has one per probe kind)
_NO_DETAIL: Mapping[str, object] = MappingProxyType({})  # shared: 100,000 devices need no empty dict each


@dataclass(slots=True)
class DeviceLive:
    """One device's live bookkeeping."""

    device: Device
    params: EngineParams
    carry: Carry | None = None  # the engine at the firm point; None before any result
    reach: list[tuple[Micros, bool]] = field(default_factory=list)  # results after carry.reach_last
    video: list[tuple[Micros, bool]] = field(default_factory=list)  # samples after carry.reach_last
    tail: Timeline = EMPTY_TIMELINE  # build_timeline(reach, video, carry): from carry.reach_last on
    tail_behind: bool = (
        False  # the carry moved on since `tail` was built (nothing flipped): rebuild before use
    )
    steady: bool = False  # no pending run: an agreeing result only moves the horizon
    judged_down: bool = False  # the reachability machine after the last result
    quality_bad: bool = False  # the quality machine after the last sample
    early_video: tuple[tuple[Micros, bool], ...] = ()  # samples before any reach result
    changed_at: Micros | None = None  # when the state after the last result began
    last_failure: Micros | None = None  # the latest failed reachability result
    outage_start: Micros | None = None  # where the outage open at the carry (or in the tail) began
    recent: dict[Micros, Micros] | None = None  # closed outages, start -> end (None: none yet)
    # the latest observation, for people and metrics
    last_probe: Micros | None = None
    rtt_ms: float | None = None
    loss: float | None = None
    error: str | None = None
    defects: frozenset[Defect] = frozenset()
    detail: Mapping[str, object] = field(default_factory=lambda: _NO_DETAIL)

    @property
    def last_reach(self) -> Micros | None:
        if self.reach:
            return self.reach[-1][0]
        return self.carry.reach_last if self.carry else None

    @property
    def horizon(self) -> Micros | None:
        """Where the evidence runs out: the last reachability result plus stale_after."""
        last = self.last_reach
        return None if last is None else last + self.params.stale_after

    def state_at(self, now: Micros) -> DeviceState:
        """The state at `now`, which is at or after the last result."""
        horizon = self.horizon
        if horizon is None or now >= horizon:
            return DeviceState.UNKNOWN
        if self.judged_down:
            return DeviceState.DOWN
        return DeviceState.DEGRADED if self.quality_bad else DeviceState.UP

    def since(self, now: Micros) -> Micros | None:
        """When the state at `now` began (None: not known, e.g. before the first result)."""
        if self.state_at(now) is DeviceState.UNKNOWN:
            return self.horizon
        return self.changed_at

    def open_last_failure(self) -> Micros | None:
        """The latest failure of the open outage (None when not down, or when the outage, which
        began after a monitoring gap, has no failure of its own yet)."""
        if not self.judged_down or self.last_failure is None or self.outage_start is None:
            return None
        return self.last_failure if self.last_failure >= self.outage_start else None

    def outages_near(self, now: Micros) -> list[Outage]:
        """The outages that can still name this device as the cause of a child's downtime at
        `now`: the open one (its end is where the evidence runs out) and the recently closed ones,
        each from its true start however much of it was folded into the carry."""
        found = [
            Outage(start, end, False, None, None, None, None)
            for start, end in sorted((self.recent or {}).items())
        ]
        if self.judged_down and self.outage_start is not None:
            horizon = self.horizon
            end = now + 1 if horizon is None else max(horizon, now + 1)
            found.append(Outage(self.outage_start, end, True, None, None, None, None))
        return found


@dataclass(frozen=True, slots=True)
class TailChange:
    """A device's timeline changed from `since` on: the store replaces what it holds from there."""

    device: DeviceId
    since: Micros | None  # the carry's reach_last the tail starts at; None: the whole history
    tail: Timeline
    params: EngineParams


class FleetState:
    """Every monitored device's live state; see the module docstring."""

    def __init__(self, fleet: Fleet, *, slack: Micros = DEFAULT_SLACK) -> None:
        self.slack = slack
        self._devices: dict[DeviceId, DeviceLive] = {}
        self.late = 0  # results older than a device's firm point: stored, not placed live
        # (time, ok) -> (µs, ok): a round stamps its results with one instant, so 100,000 devices
        # hold a few shared (at, ok) pairs in their tails instead of a pair and an int each (~40 MB)
        self._pairs: dict[tuple[datetime, bool], tuple[Micros, bool]] = {}
        self.reload(fleet)

    # --- the fleet --------------------------------------------------------------------------

    def reload(self, fleet: Fleet) -> None:
        """Take a new inventory (SIGHUP): devices that remain keep their state. Devices are held
        by id, the order views list them in (the same whether the fleet was parsed or cached)."""
        old = self._devices
        self._devices = {}
        by_contract = {cid: EngineParams.from_terms(c.sla) for cid, c in fleet.contracts.items()}
        devices = fleet.inventory.devices
        for d in map(devices.__getitem__, sorted(devices)):
            params = by_contract[d.contract]
            live = old.get(d.id)
            if live is not None and live.params == params:
                live.device = d
                self._devices[d.id] = live
            else:
                self._devices[d.id] = DeviceLive(d, params)
        self.fleet = fleet

    def restore(
        self,
        device: DeviceId,
        carry: Carry | None,
        reach: Iterable[tuple[Micros, bool]],
        video: Iterable[tuple[Micros, bool]],
        *,
        outages: Iterable[tuple[Micros, Micros, bool]] = (),
        since: Micros | None = None,
    ) -> None:
        """Resume a device after a restart: its stored carry and the results stored after it, its
        latest stored outages (start, end, open), which its children's causes may still need, and
        since when it was in its state when the carry was stored."""
        live = self._devices.get(device)
        if live is None:
            return
        if since is not None:
            live.changed_at = since
        for start, end, is_open in outages:
            if is_open:
                live.outage_start = start
            else:
                _remember(live, start, end)
        live.carry = carry
        after = carry.reach_last if carry else None
        live.reach = sorted(r for r in reach if after is None or r[0] > after)
        live.video = sorted(v for v in video if after is None or v[0] > after)
        if carry is not None and not live.video and all(ok is not carry.reach_down for _, ok in live.reach):
            # everything since the carry agrees with it: steady, and the tail can wait (most devices)
            live.judged_down, live.quality_bad = carry.reach_down, carry.video_bad
            live.steady, live.tail_behind = True, True
            if live.changed_at is None:  # at the latest; the store may know better (Monitor._restore)
                live.changed_at = carry.reach_last
            return
        self._rebuild(live)

    def __iter__(self) -> Iterator[DeviceLive]:
        return iter(self._devices.values())

    def __len__(self) -> int:
        return len(self._devices)

    def get(self, device: DeviceId) -> DeviceLive | None:
        return self._devices.get(device)

    # --- evidence ---------------------------------------------------------------------------

    def feed(self, results: Iterable[ProbeResult]) -> list[TailChange]:
        """Take a batch of results; returns the devices whose stored timeline must change."""
        since: dict[DeviceId, Micros | None] = {}
        newest: dict[DeviceId, Micros] = {}
        pairs = self._pairs
        for r in results:
            live = self._devices.get(r.device)
            if live is None:
                continue
            pair = pairs.get((r.time, r.ok))
            if pair is None:
                if len(pairs) >= _PAIRS_KEPT:
                    pairs.clear()
                pair = pairs[r.time, r.ok] = (to_micros(r.time), r.ok)
            at = pair[0]
            self._observe(live, r, at)
            start = live.carry.reach_last if live.carry else None
            changed = self._reach(live, pair) if r.kind.is_reachability else self._video(live, at, r.ok)
            if changed:
                since.setdefault(r.device, start)
            newest[r.device] = max(at, newest.get(r.device, at))
        changes = [TailChange(d, s, self._devices[d].tail, self._devices[d].params) for d, s in since.items()]
        for device, at in newest.items():
            self._fold(self._devices[device], at)
        return changes

    def _observe(self, live: DeviceLive, r: ProbeResult, at: Micros) -> None:
        if r.kind.is_reachability:
            live.last_probe = at if live.last_probe is None else max(at, live.last_probe)
            live.rtt_ms, live.loss, live.error = r.rtt_ms, r.loss, r.error
            if not r.ok and (live.last_failure is None or at > live.last_failure):
                live.last_failure = at
            if r.detail:
                live.detail = r.detail
        else:
            live.defects = r.defects

    def _reach(self, live: DeviceLive, pair: tuple[Micros, bool]) -> bool:
        """Add one reachability result (at, ok); True when the tail changed beyond its horizon."""
        at, ok = pair
        if live.carry is not None and at <= live.carry.reach_last:
            self.late += 1
            return False
        last = live.last_reach
        agrees = live.steady and last is not None and ok is not live.judged_down
        if (
            agrees
            and last is not None
            and last < at <= last + live.params.stale_after
            and (not live.video or live.video[-1][0] <= last)  # no sample waits beyond the horizon
        ):
            live.reach.append(pair)  # steady and on time: only the horizon moves
            return False
        live.reach.append(pair)
        if last is not None and at < last:
            live.reach.sort()
        if live.early_video and live.carry is None:
            live.video = sorted([*live.video, *live.early_video])
            live.early_video = ()
        return self._rebuild(live)

    def _video(self, live: DeviceLive, at: Micros, ok: bool) -> bool:
        """Add one video sample; True when the tail changed beyond its horizon."""
        if live.carry is not None and at <= live.carry.reach_last:
            self.late += 1
            return False
        if live.last_reach is None:
            live.early_video = (
                *live.early_video,
                (at, ok),
            )  # placed once the first reachability result comes
            return False
        in_order = not live.video or at > live.video[-1][0]
        if live.steady and in_order and ok is not live.quality_bad and not (ok and live.tail.outages):
            # agrees with the quality machine and cannot end an outage: a passing sample inside a
            # monitoring gap between two `down` stretches is a repair (SLA.md §3), so while the
            # tail holds an outage every passing sample rebuilds it
            live.video.append((at, ok))
            return False
        live.video.append((at, ok))
        if not in_order:
            live.video.sort()
        return self._rebuild(live)

    def _rebuild(self, live: DeviceLive) -> bool:
        old = live.tail
        rt, rok = [t for t, _ in live.reach], [ok for _, ok in live.reach]
        vt, vok = [t for t, _ in live.video], [ok for _, ok in live.video]
        live.tail = build_timeline(rt, rok, vt, vok, live.params, live.carry)
        last = live.last_reach
        live.steady = last is not None and live.tail.settled
        live.judged_down = (
            live.tail.state_at(live.reach[-1][0]) is DeviceState.DOWN
            if live.reach
            else bool(live.carry and live.carry.reach_down)
        )
        _note_change(live, old)
        _note_outages(live)
        live.quality_bad = quality_after(
            vt, vok, live.params.degrade_after, bool(live.carry and live.carry.video_bad)
        )
        behind, live.tail_behind = live.tail_behind, False
        return behind or _firm_part(old) != _firm_part(live.tail)

    def _fold(self, live: DeviceLive, newest: Micros) -> None:
        """Move results older than `slack` (and firm) into the carry, keeping the tail short."""
        if not live.reach:
            return
        limit = newest - self.slack
        # a steady device's agreeing results skip the rebuild, so its tail's firm_until stays where
        # the last rebuild left it; nothing is pending, so everything up to the last result is firm
        firm = live.last_reach if live.steady else live.tail.firm_until
        if firm is not None:
            limit = min(limit, firm)
        if live.reach[0][0] >= limit:
            return
        carry = live.carry
        cut = 0
        while cut < len(live.reach) and live.reach[cut][0] < limit:
            cut += 1
        gone_last = live.reach[cut - 1][0]
        if (
            carry is None
            and not live.judged_down
            and not any(v[0] <= gone_last for v in live.video)
            and all(ok for _, ok in live.reach[:cut])
        ):
            # the first fold of a device that has answered every time: it is up at the cut, with no
            # video judged yet (what carry_before gives), and its tail can wait
            live.carry = Carry(False, gone_last, False)
            del live.reach[:cut]
            _tail_behind(live)
            return
        if (
            carry is not None
            and carry.reach_down is live.judged_down
            and not any(v[0] <= gone_last for v in live.video)
            and all(ok is not carry.reach_down for _, ok in live.reach[:cut])
        ):
            # nothing flipped among the results to drop: the carry only moves forward, and the tail
            # is rebuilt when next needed (for a steady device: when something changes), not now
            # down: every result dropped was a failure, the last of them the open outage's latest
            live.carry = Carry(
                carry.reach_down, gone_last, carry.video_bad, gone_last if carry.reach_down else None
            )
            del live.reach[:cut]
            _tail_behind(live)
            return
        else:
            rt, rok = [t for t, _ in live.reach], [ok for _, ok in live.reach]
            vt, vok = [t for t, _ in live.video], [ok for _, ok in live.video]
            moved = carry_before(rt, rok, vt, vok, live.params, limit, carry)
            if moved is None or moved == carry:
                return
            live.carry = moved
            live.reach = [r for r in live.reach if r[0] > moved.reach_last]
            live.video = [v for v in live.video if v[0] > moved.reach_last]
        self._rebuild(live)


def _note_change(live: DeviceLive, old: Timeline) -> None:
    """Keep `changed_at`: where the tail's last state began, unless the tail only starts there
    because older results were folded into the carry and the state went on unchanged."""
    trs = list(live.tail.transitions)
    if trs and trs[-1].state is DeviceState.UNKNOWN:
        trs.pop()  # the provisional end of the evidence
    if not trs:
        return
    last = trs[-1]
    carried = live.carry is not None and last.at == live.carry.reach_last and len(trs) == 1
    before = (
        old.transitions[:-1]
        if old.transitions and old.transitions[-1].state is DeviceState.UNKNOWN
        else (old.transitions)
    )
    if carried and live.changed_at is not None and (not before or before[-1].state is last.state):
        return
    live.changed_at = last.at


def _tail_behind(live: DeviceLive) -> None:
    """The carry moved on: the tail is rebuilt before it is next used. A steady device's is let go
    now (it is rebuilt from the carry when something changes); one with a pending run keeps it,
    its firm point still bounds the next fold."""
    live.tail_behind = True
    if live.steady:
        live.tail = EMPTY_TIMELINE


RECENT_OUTAGES = 8  # closed outages a device remembers for its children's causes (upstream_grace)


def _note_outages(live: DeviceLive) -> None:
    """Keep `outage_start` and `recent` in step with the tail. An outage the tail starts at the
    carry (it was already open there) began at `outage_start`, which an earlier tail recorded."""
    carry = live.carry
    for o in live.tail.outages:
        start = o.start
        if (
            carry is not None
            and carry.reach_down
            and start == carry.reach_last
            and live.outage_start is not None
        ):
            start = min(start, live.outage_start)
        if o.open:
            live.outage_start = start
        else:
            _remember(live, start, o.end)
            if live.outage_start == start:
                live.outage_start = None


def _remember(live: DeviceLive, start: Micros, end: Micros) -> None:
    """A closed outage, among the device's last RECENT_OUTAGES."""
    if live.recent is None:
        live.recent = {}
    live.recent[start] = end
    if len(live.recent) > RECENT_OUTAGES:
        for old in sorted(live.recent, key=live.recent.__getitem__)[:-RECENT_OUTAGES]:
            del live.recent[old]


def _firm_part(tl: Timeline) -> tuple[object, ...]:
    """A tail without what moves with every agreeing result: the trailing unknown and the end of
    an open outage."""
    transitions = (
        tl.transitions[:-1]
        if tl.transitions and tl.transitions[-1].state is DeviceState.UNKNOWN
        else (tl.transitions)
    )
    outages = tuple(
        (
            o.start,
            None if o.open else o.end,
            o.open,
            o.end_reason,
            o.first_failure,
            None if o.open else o.last_failure,
            o.recovered,
            o.gaps,
        )
        for o in tl.outages
    )
    return transitions, outages
