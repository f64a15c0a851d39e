"""Joining tails onto a stored timeline gives the batch engine's timeline: results split at firm
points, the prefix stored, each later tail built from a carry and joined, end up as build_timeline
of all the results."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from hypothesis import event, given, settings
from hypothesis import strategies as st

from slamon.engine.joining import NO_EDGE, Join, StoredEdge, join_tail
from slamon.engine.timeline import (
    Carry,
    EngineParams,
    Outage,
    OutageEnd,
    Timeline,
    Transition,
    build_timeline,
    carry_before,
)
from slamon.model import DeviceState, SlaTerms
from tests.engine.test_live import steps, terms

SEC = 1_000_000
MIN = 60 * SEC
UP, DOWN, UNKNOWN = DeviceState.UP, DeviceState.DOWN, DeviceState.UNKNOWN

# the live test's plans, several end to end, each step repeated a few times: long enough to have
# firm points to split at, with runs of agreeing results (a steady device the store lags behind)
plans = st.lists(st.tuples(steps, st.integers(1, 4)), min_size=1, max_size=4).map(
    lambda ps: [step for plan, times in ps for step in plan for _ in range(times)]
)


@dataclass(frozen=True, slots=True)
class Results:
    """One device's results in time order: (at, video, ok)."""

    items: tuple[tuple[int, bool, bool], ...]

    @classmethod
    def of(cls, plan: list[tuple[str, int]]) -> Results:
        """The live test's plan as results: 30 s apart, 400 s across a gap, some a little early."""
        items = []
        t = 0
        for i, (what, jitter) in enumerate(plan):
            t += 30 * SEC if what != "gap" else 400 * SEC
            if what != "gap":
                at = t - jitter * SEC if i % 3 == 0 else t
                items.append((at, what.startswith("video"), what in ("ok", "video-ok")))
        return cls(tuple(sorted(items)))

    def columns(self, n: int) -> tuple[list[int], list[bool], list[int], list[bool]]:
        """The first n results as build_timeline's four columns."""
        first = self.items[:n]
        reach = [(at, ok) for at, video, ok in first if not video]
        video = [(at, ok) for at, is_video, ok in first if is_video]
        return [a for a, _ in reach], [o for _, o in reach], [a for a, _ in video], [o for _, o in video]

    def timeline(self, n: int, params: EngineParams, carry: Carry | None = None) -> Timeline:
        return build_timeline(*self.columns(n), params, carry)


def firm_part(tl: Timeline) -> tuple[object, ...]:
    """What a live device's write changes (live._firm_part): not the trailing unknown nor the end
    of an open outage, which move with every agreeing result."""
    trs = tl.transitions[:-1] if tl.transitions and tl.transitions[-1].state is UNKNOWN else tl.transitions
    outages = tuple(replace(o, end=0, last_failure=None) if o.open else o for o in tl.outages)
    return trs, outages


def flushed(stored: Timeline, live: Timeline) -> Timeline:
    """What the monitor's flush (Timelines.move_horizons) makes of a stored timeline whose device
    went on agreeing: its closing unknown at the new horizon, its open outage ending there with
    the latest failure."""
    trs = stored.transitions
    if trs and trs[-1].state is UNKNOWN and live.transitions and live.transitions[-1].state is UNKNOWN:
        trs = (*trs[:-1], live.transitions[-1])
    now_open = live.outages[-1] if live.outages and live.outages[-1].open else None
    outages = tuple(
        replace(o, end=now_open.end, last_failure=now_open.last_failure or o.last_failure)
        if o.open and now_open is not None
        else o
        for o in stored.outages
    )
    return Timeline(trs, outages)


@settings(max_examples=int(os.environ.get("SLAMON_HYPOTHESIS_EXAMPLES", "500")), deadline=None)
@given(plans, terms, st.data())
def test_joined_tails_equal_the_batch_engine(
    plan: list[tuple[str, int]], sla: SlaTerms, data: st.DataObject
) -> None:
    """A chain of writes as the store sees them: the first stores a prefix whole; each later one is
    the tail from a carry at a firm point of the results known at some earlier moment, joined onto
    what is stored, which may lag those results by agreeing ones (a steady device is not written)."""
    params = EngineParams.from_terms(sla)
    results = Results.of(plan)
    n = len(results.items)
    cuts = [*sorted(data.draw(st.lists(st.integers(min(1, n), n), min_size=2, max_size=5), label="cuts")), n]
    stored_n = cuts[0]
    stored = results.timeline(stored_n, params)
    for cut in cuts[1:]:
        # the results seen at the last fold: often those last written, or more that agreed with them
        known = data.draw(
            st.one_of(st.just(stored_n), st.just(cut), st.integers(stored_n, cut)), label="known"
        )
        if firm_part(results.timeline(known, params)) != firm_part(stored):
            known = stored_n  # the device changed after the last write: it was written then
        if known > stored_n:
            event("the store lags the carry by agreeing results")
            if data.draw(st.booleans(), label="flushed"):
                stored = flushed(stored, results.timeline(known, params))
        firm = results.timeline(known, params).firm_until
        reach = results.columns(known)[0]
        firm_points = [at + 1 for at in reach if firm is not None and at < firm]
        if not firm_points:
            event("no carry: the whole timeline")
            stored = results.timeline(cut, params)
        else:
            before = data.draw(  # often the latest, as the live fold takes it
                st.one_of(st.sampled_from(firm_points[-2:]), st.sampled_from(firm_points)), label="before"
            )
            carry = carry_before(*results.columns(known), params, before)
            assert carry is not None
            tail = results.timeline(cut, params, carry)
            join = join_tail(StoredEdge.of(stored, carry.reach_last), tail, carry.reach_last)
            stored = join.applied_to(stored)
            event("a tail joined")
            if join.drop_transition is not None:
                event("a provisional horizon goes")
            if join.drop_outage is not None:
                event("a stored outage goes on")
            if len(join.transitions) < len(tail.transitions):
                event("the tail's first state repeats the stored one")
        stored_n = cut
    want = results.timeline(n, params)
    assert stored.transitions == want.transitions
    assert stored.outages == want.outages  # the carry brings the open outage's latest failure along


def test_a_provisional_horizon_goes_and_the_repeated_state_is_not_stored_twice() -> None:
    stored = Timeline((Transition(0, UP), Transition(5 * MIN, UNKNOWN)), ())
    tail = Timeline((Transition(6 * MIN, UP), Transition(12 * MIN, UNKNOWN)), ())
    join = join_tail(StoredEdge.of(stored, 6 * MIN), tail, 6 * MIN)
    assert join == Join(6 * MIN, 5 * MIN, None, (Transition(12 * MIN, UNKNOWN),), ())
    assert join.applied_to(stored).transitions == (Transition(0, UP), Transition(12 * MIN, UNKNOWN))


def test_a_real_gap_stays() -> None:
    """An unknown followed by stored transitions is a gap in the evidence, not a horizon."""
    stored = Timeline((Transition(0, UP), Transition(5 * MIN, UNKNOWN), Transition(9 * MIN, UP)), ())
    tail = Timeline((Transition(7 * MIN, UP), Transition(20 * MIN, UNKNOWN)), ())
    edge = StoredEdge.of(stored, 7 * MIN)
    assert edge == StoredEdge((Transition(0, UP), Transition(5 * MIN, UNKNOWN)), False, None)
    join = join_tail(edge, tail, 7 * MIN)
    assert join.drop_transition is None
    assert join.applied_to(stored).transitions == (
        Transition(0, UP),
        Transition(5 * MIN, UNKNOWN),
        Transition(7 * MIN, UP),
        Transition(20 * MIN, UNKNOWN),
    )


def test_an_outage_stored_open_is_continued_from_its_start() -> None:
    """The carry's result was down: the tail's first outage is the stored one going on."""
    stored = Timeline(
        (Transition(0, UP), Transition(2 * MIN, DOWN), Transition(9 * MIN, UNKNOWN)),
        (Outage(2 * MIN, 9 * MIN, True, None, 2 * MIN, 4 * MIN, None),),
    )
    tail = Timeline(
        (Transition(4 * MIN, DOWN), Transition(6 * MIN, UP), Transition(12 * MIN, UNKNOWN)),
        (Outage(4 * MIN, 6 * MIN, False, OutageEnd.RECOVERED, None, None, 6 * MIN),),
    )
    join = join_tail(StoredEdge.of(stored, 4 * MIN), tail, 4 * MIN)
    assert join.drop_outage == 2 * MIN
    assert join.outages == (Outage(2 * MIN, 6 * MIN, False, OutageEnd.RECOVERED, 2 * MIN, 4 * MIN, 6 * MIN),)
    assert join.applied_to(stored) == Timeline(
        (
            Transition(0, UP),
            Transition(2 * MIN, DOWN),
            Transition(6 * MIN, UP),
            Transition(12 * MIN, UNKNOWN),
        ),
        join.outages,
    )


def test_a_continued_outage_keeps_its_gaps_before_the_carry() -> None:
    """An outage that spans a monitoring gap (SLA.md §3), continued by a tail from a carry after
    the gap, keeps the gap; the tail's own gaps follow it."""
    stored = Timeline(
        (
            Transition(0, UP),
            Transition(2 * MIN, DOWN),
            Transition(5 * MIN, UNKNOWN),
            Transition(9 * MIN, DOWN),
            Transition(15 * MIN, UNKNOWN),
        ),
        (Outage(2 * MIN, 15 * MIN, True, None, 2 * MIN, 10 * MIN, None, ((5 * MIN, 9 * MIN),)),),
    )
    tail = Timeline(
        (
            Transition(10 * MIN, DOWN),
            Transition(15 * MIN, UNKNOWN),
            Transition(20 * MIN, DOWN),
            Transition(21 * MIN, UP),
            Transition(27 * MIN, UNKNOWN),
        ),
        (
            Outage(
                10 * MIN,
                21 * MIN,
                False,
                OutageEnd.RECOVERED,
                20 * MIN,
                20 * MIN,
                21 * MIN,
                ((15 * MIN, 20 * MIN),),
            ),
        ),
    )
    join = join_tail(StoredEdge.of(stored, 10 * MIN), tail, 10 * MIN)
    assert join.drop_outage == 2 * MIN
    assert join.outages == (
        Outage(
            2 * MIN,
            21 * MIN,
            False,
            OutageEnd.RECOVERED,
            2 * MIN,
            20 * MIN,
            21 * MIN,
            ((5 * MIN, 9 * MIN), (15 * MIN, 20 * MIN)),
        ),
    )


def test_nothing_stored_takes_the_tail_as_it_is() -> None:
    tail = Timeline((Transition(3, UP), Transition(9, UNKNOWN)), ())
    assert join_tail(NO_EDGE, tail, 3) == Join(3, None, None, tail.transitions, ())


def test_joining_imports_no_io_library() -> None:
    """The pure core's rule (tests/test_architecture.py), for this module too."""
    from tests.test_architecture import test_the_pure_core_imports_no_io_library

    test_the_pure_core_imports_no_io_library("slamon.engine.joining")
