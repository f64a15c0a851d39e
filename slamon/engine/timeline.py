"""The state engine (SLA.md §2): a device's probe results → its timeline of states and its outages.

Pure: no I/O, no clock. The timeline is a function of the *set* of results, so rows may arrive in
any order and in any number of imports; callers hand in everything they have for a device.

How the rules become code:
- Reachability results (ICMP and SNMP, merged in time order) are cut into runs of equal outcome.
  A failure run of `down_after` or more flips an `up` device to `down` from the run's first result
  (back-dating); a success run of `up_after` or more flips it back, from its first result. Shorter
  runs change nothing, so blips cost nothing. Runs ignore the time between results.
- Each result's state holds until the next result; a gap longer than `stale_after` turns the rest
  of the gap `unknown`, and so is everything before the first result and after the last one plus
  `stale_after`.
- Video samples run the same machine (`degrade_after` defective samples in a row, one good sample to
  clear); a quality state holds until the next sample. `down` and `unknown` win over `degraded`.
- An outage is a maximal `down` interval, except that it goes on across a monitoring gap (SLA.md §3):
  `down`, then `unknown`, then `down` again is one outage when no successful result (a
  reachability success or a passing video sample) falls inside the `unknown` or is the first
  result after it. Nothing shows the fault was repaired, so the outage spans both stretches and
  the gap, and names the gap (`Outage.gaps`); the gap's seconds are not `down` and carry no cause.
  A `down` stretch followed by `unknown` and then a success ends where the `unknown` began.
  An outage is *open* when it runs into the end of the evidence.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from slamon.model import DeviceState, Micros, SlaTerms, to_micros

BoolArray = npt.NDArray[np.bool_]
TimeArray = npt.NDArray[np.int64]


# The engine's rule set. A stored timeline remembers the EngineParams it was built with, and the store
# rebuilds it from the raw results it still holds when they differ (store.upkeep.sync_fleet): raise
# this when the rules change what a timeline or its outages are. 2: outages span monitoring gaps.
RULES = 2


@dataclass(frozen=True, slots=True)
class EngineParams:
    """The part of a contract that shapes a timeline (and the engine's rule set)."""

    down_after: int = 3
    up_after: int = 2
    degrade_after: int = 2
    stale_after: Micros = 300_000_000
    rules: int = RULES

    @classmethod
    def from_terms(cls, terms: SlaTerms) -> EngineParams:
        return cls(terms.down_after, terms.up_after, terms.degrade_after, to_micros(terms.stale_after))


@dataclass(frozen=True, slots=True)
class Transition:
    """From `at` on (until the next transition) the device is in `state`."""

    at: Micros
    state: DeviceState


class OutageEnd(StrEnum):
    RECOVERED = "recovered"  # a run of up_after successes
    UNKNOWN = "unknown"  # a monitoring gap longer than stale_after, then a success


Span: TypeAlias = tuple[Micros, Micros]


@dataclass(frozen=True, slots=True)
class Outage:
    """An outage [start, end): its `down` stretches and the monitoring gaps between them (SLA.md §3),
    with the probes that prove it."""

    start: Micros
    end: Micros  # for an open outage: where the evidence runs out (last result + stale_after)
    open: bool  # still down at the end of the evidence: not ended, so never charged yet
    end_reason: OutageEnd | None  # None while open
    first_failure: Micros | None
    last_failure: Micros | None
    recovered: Micros | None  # the first success of the recovering run
    # the `unknown` stretches [a, b) between its `down` stretches, in order, strictly inside it: no
    # successful result in them, so they did not end it; their seconds are not `down`
    gaps: tuple[Span, ...] = ()

    def stretches(self) -> list[Span]:
        """Its `down` stretches: [start, end) without its gaps, in order."""
        out: list[Span] = []
        at = self.start
        for a, b in self.gaps:
            if a > at:
                out.append((at, a))
            at = max(at, b)
        if at < self.end:
            out.append((at, self.end))
        return out

    def cut_at(self, at: Micros) -> Outage:
        """What was known of it at `at` (start < at < end): still open and ending there, its
        evidence only its first failure before `at`, and its gaps before `at`."""
        first = self.first_failure if self.first_failure is not None and self.first_failure < at else None
        gaps = tuple((a, min(b, at)) for a, b in self.gaps if a < at)
        return Outage(self.start, at, True, None, first, None, None, gaps)

    def row(self) -> list[object]:
        """Its fields as JSON-able values, in order (hashed digests and journals keep it so). The
        gaps come last and only when there are some: an outage without gaps has the row it had
        before outages spanned gaps, so statements without such outages keep their digest."""
        reason = self.end_reason.value if self.end_reason else None
        row: list[object] = [
            self.start,
            self.end,
            self.open,
            reason,
            self.first_failure,
            self.last_failure,
            self.recovered,
        ]
        if self.gaps:
            row.append([[a, b] for a, b in self.gaps])
        return row

    @classmethod
    def from_row(cls, row: list[Any]) -> Outage:
        start, end, is_open, reason, first, last, recovered = row[:7]
        gaps = tuple((int(a), int(b)) for a, b in row[7]) if len(row) > 7 else ()
        return cls(start, end, is_open, OutageEnd(reason) if reason else None, first, last, recovered, gaps)


@dataclass(frozen=True, slots=True)
class Carry:
    """The engine's state where older results were let go (retention), so later results resume it.

    It is taken at a result boundary where no run is pending, so the dropped results can no
    longer change anything: only the judged states and the time of the last dropped reachability
    result (for the staleness of the gap that follows) are needed.
    """

    reach_down: bool
    reach_last: Micros
    video_bad: bool = False
    # down at the carry: the latest failure of the outage open there (its evidence, which a timeline
    # resumed from the carry cannot see among its own results); None when up
    last_failure: Micros | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    transitions: tuple[Transition, ...]  # strictly increasing, consecutive states differ
    outages: tuple[Outage, ...]
    firm_until: Micros | None = None  # results at or after this instant may still change the timeline
    settled: bool = True  # no run waits for its threshold: a result that agrees changes nothing

    def state_at(self, at: Micros) -> DeviceState:
        """The state at an instant (unknown before the first transition)."""
        i = bisect_right([t.at for t in self.transitions], at)
        return self.transitions[i - 1].state if i else DeviceState.UNKNOWN


EMPTY_TIMELINE = Timeline((), (), None)


def run_states(
    bad: BoolArray, bad_after: int, good_after: int, start_bad: bool = False
) -> tuple[BoolArray, int]:
    """Per sample, whether the machine is in its bad state once the sample's run is judged.

    The machine starts in `start_bad`; a run of equal samples flips it when the run is at least as
    long as the threshold for that direction, and the flip is dated from the run's first sample.
    Also returns the index where the last run starts if that run still waits for its threshold
    (more samples could flip it, back-dated), else len(bad).
    """
    n = len(bad)
    if n == 0:
        return np.zeros(0, dtype=bool), 0
    starts = np.flatnonzero(np.concatenate(([True], bad[1:] != bad[:-1])))
    lengths = np.diff(np.append(starts, n))
    judged: list[bool] = []
    state = start_bad
    for value, length in zip(bad[starts].tolist(), lengths.tolist(), strict=True):
        if value != state and length >= (bad_after if value else good_after):
            state = value
        judged.append(state)
    pending = int(starts[-1]) if bool(bad[-1]) != state else n
    return np.repeat(np.array(judged, dtype=bool), lengths), pending


def build_timeline(
    reach_times: Sequence[int] | TimeArray,
    reach_ok: Sequence[bool] | BoolArray,
    video_times: Sequence[int] | TimeArray,
    video_ok: Sequence[bool] | BoolArray,
    params: EngineParams,
    carry: Carry | None = None,
) -> Timeline:
    """The timeline of one device from its results (any order; ties keep input order).

    Without `carry` it covers all time. With `carry` the timeline starts at `carry.reach_last`
    (the caller keeps what it stored before that) and results at or before it are ignored.
    """
    rt = np.asarray(reach_times, dtype=np.int64)
    rok = np.asarray(reach_ok, dtype=bool)
    vt = np.asarray(video_times, dtype=np.int64)
    vok = np.asarray(video_ok, dtype=bool)
    if len(rt) != len(rok) or len(vt) != len(vok):
        raise ValueError("times and outcomes differ in length")
    if carry is not None:
        rt, rok = rt[rt > carry.reach_last], rok[rt > carry.reach_last]
        vt, vok = vt[vt > carry.reach_last], vok[vt > carry.reach_last]
    order = np.argsort(rt, kind="stable")
    rt, rok = rt[order], rok[order]
    down, pending = run_states(~rok, params.down_after, params.up_after, carry.reach_down if carry else False)
    if carry is not None:  # the last dropped result leads, with its judged state
        rt = np.concatenate(([carry.reach_last], rt))
        rok = np.concatenate(([not carry.reach_down], rok))
        down = np.concatenate(([carry.reach_down], down))
        pending += 1
    if len(rt) == 0:
        return EMPTY_TIMELINE
    reach = _reach_segments(rt, down, params.stale_after)
    quality, video_pending = _quality_changes(
        vt, vok, params.degrade_after, carry.video_bad if carry else False
    )
    transitions = _combine(reach, quality, carry.video_bad if carry else False)
    outages = _outages(reach, rt, rok, vt, vok, carry)
    firm_until = int(rt[pending]) if pending < len(rt) else int(rt[-1])
    if video_pending is not None:
        firm_until = min(firm_until, video_pending)
    return Timeline(transitions, outages, firm_until, settled=pending >= len(rt) and video_pending is None)


# A reachability segment: [start, end) in one state; end None means "forever" (only for unknown).
_Segment = tuple[int, int | None, DeviceState]


def _reach_segments(t: TimeArray, down: BoolArray, stale: Micros) -> list[_Segment]:
    n = len(t)
    gap_after = np.flatnonzero(np.diff(t) > stale)  # result i is followed by a stale gap
    changes = np.flatnonzero(down[1:] != down[:-1]) + 1
    bounds = np.union1d(np.union1d(changes, gap_after + 1), [0]).tolist()
    times = t.tolist()
    states = down.tolist()
    segments: list[_Segment] = []
    for k, b in enumerate(bounds):
        nxt = bounds[k + 1] if k + 1 < len(bounds) else n
        last = nxt - 1
        end = times[nxt] if nxt < n else None
        state = DeviceState.DOWN if states[b] else DeviceState.UP
        if end is None or end - times[last] > stale:  # the segment goes stale before the next result
            stale_at = times[last] + stale
            _append(segments, (times[b], stale_at, state))
            _append(segments, (stale_at, end, DeviceState.UNKNOWN))
        else:
            _append(segments, (times[b], end, state))
    return segments


def _append(segments: list[_Segment], seg: _Segment) -> None:
    """Skip empty segments (ties in time) and merge a segment into an equal neighbour."""
    start, end, state = seg
    if end is not None and end <= start:
        return
    if segments and segments[-1][2] is state and segments[-1][1] == start:
        segments[-1] = (segments[-1][0], end, state)
    else:
        segments.append(seg)


def _quality_changes(
    times: Sequence[int] | TimeArray, ok: Sequence[bool] | BoolArray, degrade_after: int, start_bad: bool
) -> tuple[list[tuple[int, bool]], int | None]:
    """Instants where the quality state changes, with the new state (True = degraded), and where a
    still-pending run of defective samples starts (None when none is pending)."""
    vt = np.asarray(times, dtype=np.int64)
    if len(vt) == 0:
        return [], None
    order = np.argsort(vt, kind="stable")
    vt = vt[order]
    bad, pending = run_states(~np.asarray(ok, dtype=bool)[order], degrade_after, 1, start_bad)
    at = np.flatnonzero(np.concatenate(([bad[0] != start_bad], bad[1:] != bad[:-1])))
    changes = list(zip(vt[at].tolist(), bad[at].tolist(), strict=True))
    return changes, int(vt[pending]) if pending < len(vt) else None


def _combine(
    reach: list[_Segment], quality: list[tuple[int, bool]], start_bad: bool
) -> tuple[Transition, ...]:
    """Overlay quality on the `up` parts of the reachability segments."""
    q_times = [q[0] for q in quality]
    out: list[Transition] = []

    def emit(at: int, state: DeviceState) -> None:
        if out and out[-1].state is state:
            return
        if out and out[-1].at == at:
            out.pop()
            if out and out[-1].state is state:
                return
        out.append(Transition(at, state))

    for start, end, state in reach:
        if state is not DeviceState.UP:
            emit(start, state)
            continue
        i = bisect_right(q_times, start)
        degraded = quality[i - 1][1] if i else start_bad
        emit(start, DeviceState.DEGRADED if degraded else DeviceState.UP)
        while i < len(quality) and (end is None or quality[i][0] < end):
            degraded = quality[i][1]
            emit(quality[i][0], DeviceState.DEGRADED if degraded else DeviceState.UP)
            i += 1
    return tuple(out)


def _outages(
    reach: list[_Segment], t: TimeArray, ok: BoolArray, vt: TimeArray, vok: BoolArray, carry: Carry | None
) -> tuple[Outage, ...]:
    """The outages: each `down` segment, joined across an `unknown` segment to the next `down` one
    when no successful result lies in the `unknown` or at its end (the first result after it)."""
    failures = t[1:][~ok[1:]] if carry is not None else t[~ok]  # a carried lead result is not evidence
    successes = np.sort(np.concatenate((t[ok], vt[vok])))

    def repaired(gap_start: int, gap_end: int) -> bool:
        """A successful result inside [gap_start, gap_end] (the gap and the result that ends it)."""
        lo = int(np.searchsorted(successes, gap_start, side="left"))
        return lo < len(successes) and int(successes[lo]) <= gap_end

    outages: list[Outage] = []
    k, n = 0, len(reach)
    while k < n:
        start, _, state = reach[k]
        if state is not DeviceState.DOWN:
            k += 1
            continue
        gaps: list[Span] = []
        while (
            k + 2 < n
            and reach[k + 1][2] is DeviceState.UNKNOWN
            and reach[k + 2][2] is DeviceState.DOWN
            and not repaired(reach[k + 1][0], reach[k + 2][0])
        ):
            gaps.append((reach[k + 1][0], reach[k + 2][0]))
            k += 2
        end = reach[k][1]
        assert end is not None  # only unknown segments run forever
        following = reach[k + 1][2] if k + 1 < n else None
        is_open = following is DeviceState.UNKNOWN and reach[k + 1][1] is None
        lo = int(np.searchsorted(failures, start, side="left"))
        hi = int(np.searchsorted(failures, end, side="left"))
        last = int(failures[hi - 1]) if lo < hi else None
        if carry is not None and start == carry.reach_last and last is None:
            last = carry.last_failure  # the outage was open at the carry: its failures are behind it
        reason = (
            None
            if is_open
            else (OutageEnd.UNKNOWN if following is DeviceState.UNKNOWN else OutageEnd.RECOVERED)
        )
        outages.append(
            Outage(
                start=start,
                end=end,
                open=is_open,
                end_reason=reason,
                first_failure=int(failures[lo]) if lo < hi else None,
                last_failure=last,
                recovered=end if reason is OutageEnd.RECOVERED else None,
                gaps=tuple(gaps),
            )
        )
        k += 1
    return tuple(outages)


def carry_before(
    reach_times: Sequence[int] | TimeArray,
    reach_ok: Sequence[bool] | BoolArray,
    video_times: Sequence[int] | TimeArray,
    video_ok: Sequence[bool] | BoolArray,
    params: EngineParams,
    before: Micros,
    carry: Carry | None = None,
) -> Carry | None:
    """The carry that lets reachability results earlier than `before` go, or None when there are
    none. Video samples may go only up to `reach_last`: the resumed timeline starts there.
    `before` must not pass the timeline's `firm_until`."""
    rt = np.asarray(reach_times, dtype=np.int64)
    order = np.argsort(rt, kind="stable")
    rt = rt[order]
    rok = np.asarray(reach_ok, dtype=bool)[order]
    dropped = int(np.searchsorted(rt, before, side="left"))
    if dropped == 0:
        return carry
    start = carry.reach_down if carry else False
    down, _ = run_states(~rok, params.down_after, params.up_after, start)
    vt = np.asarray(video_times, dtype=np.int64)
    vorder = np.argsort(vt, kind="stable")
    vt = vt[vorder]
    vgone = int(np.searchsorted(vt, rt[dropped - 1], side="right"))
    video_bad = carry.video_bad if carry else False
    if vgone:
        bad, _ = run_states(~np.asarray(video_ok, dtype=bool)[vorder], params.degrade_after, 1, video_bad)
        video_bad = bool(bad[vgone - 1])
    down_at_cut = bool(down[dropped - 1])
    return Carry(
        reach_down=down_at_cut,
        reach_last=int(rt[dropped - 1]),
        video_bad=video_bad,
        last_failure=_outage_last_failure(rt, rok, down, dropped - 1, params.stale_after, carry)
        if down_at_cut
        else None,
    )


def _outage_last_failure(
    rt: TimeArray, rok: BoolArray, down: BoolArray, i: int, stale: Micros, carry: Carry | None
) -> Micros | None:
    """The latest failure at or before result `i` within the outage result `i` is down in: back
    from `i` until the outage began (the device was up before, or a monitoring gap split it)."""
    while True:
        if not rok[i]:
            return int(rt[i])
        if i == 0:
            continued = carry is not None and carry.reach_down and rt[0] - carry.reach_last <= stale
            return carry.last_failure if continued and carry is not None else None
        if not down[i - 1] or rt[i] - rt[i - 1] > stale:
            return None
        i -= 1


def quality_after(
    video_times: Sequence[int] | TimeArray,
    video_ok: Sequence[bool] | BoolArray,
    degrade_after: int,
    start_bad: bool,
) -> bool:
    """Whether the quality machine is degraded after the last of these samples."""
    if len(video_times) == 0:
        return start_bad
    order = np.argsort(np.asarray(video_times, dtype=np.int64), kind="stable")
    bad, _ = run_states(~np.asarray(video_ok, dtype=bool)[order], degrade_after, 1, start_bad)
    return bool(bad[-1])
