"""The state engine against SLA.md §2: worked examples, then properties against a naive oracle."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from slamon.engine.timeline import (
    EngineParams,
    Outage,
    OutageEnd,
    Timeline,
    Transition,
    build_timeline,
    carry_before,
)
from slamon.model import DeviceState

UP, DOWN, DEG, UNK = DeviceState.UP, DeviceState.DOWN, DeviceState.DEGRADED, DeviceState.UNKNOWN
P = EngineParams(down_after=3, up_after=2, degrade_after=2, stale_after=300)


def reach(pattern: str, step: int = 60, start: int = 0) -> tuple[list[int], list[bool]]:
    """'1' a success, '0' a failure, one every `step` µs (the engine does not care about the unit)."""
    return [start + i * step for i in range(len(pattern))], [c == "1" for c in pattern]


def timeline(pattern: str, video: str = "", params: EngineParams = P, vstep: int = 60) -> Timeline:
    t, ok = reach(pattern)
    vt, vok = reach(video, vstep)
    return build_timeline(t, ok, vt, vok, params)


def test_blips_shorter_than_down_after_cost_nothing() -> None:
    tl = timeline("1100110011")
    assert tl.transitions == (Transition(0, UP), Transition(9 * 60 + 300, UNK))
    assert tl.outages == ()


def test_down_is_back_dated_to_the_first_failure_and_up_to_the_first_success() -> None:
    tl = timeline("1100011011")
    assert tl.transitions == (
        Transition(0, UP),
        Transition(120, DOWN),
        Transition(300, UP),  # the run "11" at 300 reaches up_after
        Transition(9 * 60 + 300, UNK),
    )
    assert tl.outages == (Outage(120, 300, False, OutageEnd.RECOVERED, 120, 240, 300),)


def test_a_short_success_run_while_down_stays_down() -> None:
    tl = timeline("10001000011")
    # down from 60; the single success at 240 does not recover; "11" at 540 does
    assert tl.transitions == (
        Transition(0, UP),
        Transition(60, DOWN),
        Transition(540, UP),
        Transition(900, UNK),
    )
    assert tl.outages[0].first_failure == 60
    assert tl.outages[0].last_failure == 480


def test_down_at_the_end_of_the_evidence_is_an_open_outage() -> None:
    tl = timeline("11000")
    assert tl.transitions == (Transition(0, UP), Transition(120, DOWN), Transition(540, UNK))
    assert tl.outages == (Outage(120, 540, True, None, 120, 240, None),)


def test_a_gap_between_two_down_stretches_does_not_end_the_outage() -> None:
    # SLA.md §3: down, unknown, down with no success in the gap: one outage spanning the gap
    t = [0, 60, 120, 180, 1000, 1060, 1120]
    ok = [True, False, False, False, False, True, True]
    tl = build_timeline(t, ok, [], [], P)
    assert tl.transitions == (
        Transition(0, UP),
        Transition(60, DOWN),
        Transition(480, UNK),
        Transition(1000, DOWN),
        Transition(1060, UP),
        Transition(1420, UNK),
    )
    assert tl.outages == (Outage(60, 1060, False, OutageEnd.RECOVERED, 60, 1000, 1060, ((480, 1000),)),)
    assert tl.outages[0].stretches() == [(60, 480), (1000, 1060)]


def test_a_gap_then_a_success_ends_the_outage_where_the_gap_began() -> None:
    t = [0, 60, 120, 180, 1000, 1060]
    ok = [True, False, False, False, True, True]
    tl = build_timeline(t, ok, [], [], P)
    assert tl.transitions == (
        Transition(0, UP),
        Transition(60, DOWN),
        Transition(480, UNK),
        Transition(1000, UP),
        Transition(1360, UNK),
    )
    assert tl.outages == (Outage(60, 480, False, OutageEnd.UNKNOWN, 60, 180, None),)


def test_one_success_after_the_gap_ends_the_outage_although_the_device_stays_down() -> None:
    # the success at 1000 is fewer than up_after: still down from 1000 (§2), but it is a success
    # after the gap, so the outage before the gap ended where the gap began (§3); the `down` from
    # 1000 is a new outage, starting at that success
    t = [0, 60, 120, 180, 1000, 1060, 1120]
    ok = [True, False, False, False, True, False, False]
    tl = build_timeline(t, ok, [], [], P)
    assert tl.transitions == (
        Transition(0, UP),
        Transition(60, DOWN),
        Transition(480, UNK),
        Transition(1000, DOWN),
        Transition(1420, UNK),
    )
    assert tl.outages == (
        Outage(60, 480, False, OutageEnd.UNKNOWN, 60, 180, None),
        Outage(1000, 1420, True, None, 1060, 1120, None),
    )


def test_a_passing_video_sample_inside_the_gap_ends_the_outage() -> None:
    t = [0, 60, 120, 180, 1000, 1060, 1120, 1180]
    ok = [True, False, False, False, False, False, True, True]
    # a defective sample inside the gap proves nothing; a passing one is a successful result
    for vok, outages in [
        (False, [(60, 1120, OutageEnd.RECOVERED, ((480, 1000),))]),
        (True, [(60, 480, OutageEnd.UNKNOWN, ()), (1000, 1120, OutageEnd.RECOVERED, ())]),
    ]:
        tl = build_timeline(t, ok, [700], [vok], P)
        assert [(o.start, o.end, o.end_reason, o.gaps) for o in tl.outages] == outages
    # at the gap's end it counts too; before the gap (inside the last `down` stretch) it does not
    assert len(build_timeline(t, ok, [1000], [True], P).outages) == 2
    assert len(build_timeline(t, ok, [479], [True], P).outages) == 1


def test_several_gaps_make_one_outage() -> None:
    t = [0, 60, 120, 180, 1000, 1060, 2000, 2060, 2120, 2180]
    ok = [True, False, False, False, False, False, False, False, True, True]
    tl = build_timeline(t, ok, [], [], P)
    assert tl.outages == (
        Outage(60, 2120, False, OutageEnd.RECOVERED, 60, 2060, 2120, ((480, 1000), (1360, 2000))),
    )
    assert tl.outages[0].stretches() == [(60, 480), (1000, 1360), (2000, 2120)]


def test_an_outage_open_across_a_gap_keeps_its_gap_when_cut() -> None:
    tl = build_timeline([0, 60, 120, 180, 1000, 1060], [True, False, False, False, False, False], [], [], P)
    [o] = tl.outages
    assert (o.start, o.end, o.open, o.gaps) == (60, 1360, True, ((480, 1000),))
    # as known at 700 (a month's end inside the gap): open there, the gap up to 700
    assert o.cut_at(700) == Outage(60, 700, True, None, 60, None, None, ((480, 700),))
    assert o.cut_at(300) == Outage(60, 300, True, None, 60, None, None, ())


def test_an_outage_row_keeps_its_gaps_and_one_without_keeps_its_old_shape() -> None:
    plain = Outage(60, 480, False, OutageEnd.UNKNOWN, 60, 180, None)
    spanning = Outage(60, 1060, False, OutageEnd.RECOVERED, 60, 1000, 1060, ((480, 1000),))
    assert plain.row() == [60, 480, False, "unknown", 60, 180, None]  # hashed: statement digests stay
    assert spanning.row() == [60, 1060, False, "recovered", 60, 1000, 1060, [[480, 1000]]]
    assert Outage.from_row(plain.row()) == plain
    assert Outage.from_row(spanning.row()) == spanning


def test_a_gap_of_exactly_stale_after_is_not_stale() -> None:
    tl = build_timeline([0, 300], [True, True], [], [], P)
    assert tl.transitions == (Transition(0, UP), Transition(600, UNK))


def test_a_failure_run_across_a_gap_still_counts_as_consecutive() -> None:
    # runs ignore time: 2 failures, a gap, 1 failure = 3 consecutive failures
    tl = build_timeline([0, 60, 120, 2000], [True, False, False, False], [], [], P)
    assert tl.transitions == (
        Transition(0, UP),
        Transition(60, DOWN),
        Transition(420, UNK),
        Transition(2000, DOWN),
        Transition(2300, UNK),
    )
    # and the outage, back-dated before the gap, goes on across it
    assert tl.outages == (Outage(60, 2300, True, None, 60, 2000, None, ((420, 2000),)),)


def test_failures_from_the_first_result_make_an_outage() -> None:
    tl = timeline("000")
    assert tl.transitions == (Transition(0, DOWN), Transition(420, UNK))


def test_degraded_needs_degrade_after_defective_samples_and_clears_on_one_good_sample() -> None:
    tl = timeline("1" * 10, video="1001101", vstep=60)
    # video samples at 0,60,…: 60 and 120 defective (a run of 2) degrade from 60; 180 clears;
    # 300 alone is a blip
    assert tl.transitions == (
        Transition(0, UP),
        Transition(60, DEG),
        Transition(180, UP),
        Transition(840, UNK),
    )


def test_down_wins_over_degraded_and_degraded_resumes_after_recovery() -> None:
    t, ok = reach("1100011111")
    tl = build_timeline(t, ok, [0, 10], [False, False], P)
    assert tl.transitions == (
        Transition(0, DEG),  # degraded from the first of the two defective samples
        Transition(120, DOWN),
        Transition(300, DEG),
        Transition(840, UNK),
    )


def test_no_reachability_results_is_all_unknown() -> None:
    assert build_timeline([], [], [0], [False], P) == Timeline((), ())


# --- properties against a naive oracle --------------------------------------------------------


def naive_judged(bad: list[bool], bad_after: int, good_after: int) -> list[bool]:
    out: list[bool] = []
    state, i = False, 0
    while i < len(bad):
        j = i
        while j < len(bad) and bad[j] == bad[i]:
            j += 1
        if bad[i] != state and j - i >= (bad_after if bad[i] else good_after):
            state = bad[i]
        out += [state] * (j - i)
        i = j
    return out


def naive_state(
    at: int, rt: list[int], rok: list[bool], vt: list[int], vok: list[bool], p: EngineParams
) -> DeviceState:
    r = sorted(zip(rt, rok, strict=True), key=lambda x: x[0])
    judged = naive_judged([not ok for _, ok in r], p.down_after, p.up_after)
    idx = [i for i, (t, _) in enumerate(r) if t <= at]
    if not idx:
        return UNK
    i = idx[-1]
    t_i = r[i][0]
    nxt = r[i + 1][0] if i + 1 < len(r) else None
    if (nxt is None or nxt - t_i > p.stale_after) and at >= t_i + p.stale_after:
        return UNK
    if judged[i]:
        return DOWN
    v = sorted(zip(vt, vok, strict=True), key=lambda x: x[0])
    vj = naive_judged([not ok for _, ok in v], p.degrade_after, 1)
    vidx = [j for j, (t, _) in enumerate(v) if t <= at]
    return DEG if vidx and vj[vidx[-1]] else UP


results = st.lists(st.tuples(st.integers(0, 3000), st.booleans()), max_size=40)
params = st.builds(
    EngineParams,
    down_after=st.integers(1, 4),
    up_after=st.integers(1, 3),
    degrade_after=st.integers(1, 3),
    stale_after=st.integers(1, 500),
)


@settings(max_examples=300, deadline=None)
@given(results, results, params)
def test_every_instant_matches_the_definition(
    r: list[tuple[int, bool]], v: list[tuple[int, bool]], p: EngineParams
) -> None:
    # distinct times keep "the next result" unambiguous for the oracle
    r = list(dict(r).items())
    v = list(dict(v).items())
    rt, rok = [t for t, _ in r], [ok for _, ok in r]
    vt, vok = [t for t, _ in v], [ok for _, ok in v]
    tl = build_timeline(rt, rok, vt, vok, p)
    for at in range(-1, 3600, 7):
        assert tl.state_at(at) is naive_state(at, rt, rok, vt, vok, p), at


@settings(max_examples=300, deadline=None)
@given(results, results, params)
def test_every_instant_has_exactly_one_state(
    r: list[tuple[int, bool]], v: list[tuple[int, bool]], p: EngineParams
) -> None:
    tl = build_timeline([t for t, _ in r], [ok for _, ok in r], [t for t, _ in v], [ok for _, ok in v], p)
    ats = [t.at for t in tl.transitions]
    assert ats == sorted(set(ats)), "transition instants strictly increase"
    assert all(a.state is not b.state for a, b in zip(tl.transitions, tl.transitions[1:], strict=False))
    if tl.transitions:
        assert tl.transitions[-1].state is UNK, "the evidence always runs out"
    downs = [
        (a.at, b.at) for a, b in zip(tl.transitions, tl.transitions[1:], strict=False) if a.state is DOWN
    ]
    assert [s for o in tl.outages for s in o.stretches()] == downs, (
        "outages' stretches are the down intervals"
    )


def naive_outages(
    tl: Timeline, rt: list[int], rok: list[bool], vt: list[int], vok: list[bool]
) -> list[tuple[int, int, tuple[tuple[int, int], ...]]]:
    """SLA.md §3 read off the transitions: each `down` interval, joined to the next across an
    `unknown` interval when no successful result lies in [unknown start, unknown end]."""
    trs = tl.transitions
    pieces = [(a.at, b.at, a.state) for a, b in itertools.pairwise(trs)]
    successes = [t for t, ok in zip(rt, rok, strict=True) if ok] + [
        t for t, ok in zip(vt, vok, strict=True) if ok
    ]
    out: list[tuple[int, int, tuple[tuple[int, int], ...]]] = []
    for i, (a, b, state) in enumerate(pieces):
        if state is not DOWN:
            continue
        if (
            out
            and i >= 2
            and pieces[i - 1][2] is UNK
            and out[-1][1] == pieces[i - 1][0]
            and not any(pieces[i - 1][0] <= t <= a for t in successes)
        ):
            out[-1] = (out[-1][0], b, (*out[-1][2], (pieces[i - 1][0], a)))
        else:
            out.append((a, b, ()))
    return out


@settings(max_examples=300, deadline=None)
@given(results, results, params)
def test_outages_span_the_gaps_that_no_success_ended(
    r: list[tuple[int, bool]], v: list[tuple[int, bool]], p: EngineParams
) -> None:
    rt, rok = [t for t, _ in r], [ok for _, ok in r]
    vt, vok = [t for t, _ in v], [ok for _, ok in v]
    tl = build_timeline(rt, rok, vt, vok, p)
    assert [(o.start, o.end, o.gaps) for o in tl.outages] == naive_outages(tl, rt, rok, vt, vok)


@settings(max_examples=300, deadline=None)
@given(results, results, params)
def test_outages_never_contain_a_successful_result(
    r: list[tuple[int, bool]], v: list[tuple[int, bool]], p: EngineParams
) -> None:
    """No success lies in an outage's gaps or ends one, and a reachability success inside an outage
    is one the run rule leaves `down` (fewer than up_after): none ends it or sits in it unheeded."""
    rt, rok = [t for t, _ in r], [ok for _, ok in r]
    vt, vok = [t for t, _ in v], [ok for _, ok in v]
    tl = build_timeline(rt, rok, vt, vok, p)
    successes = [t for t, ok in zip(rt, rok, strict=True) if ok] + [
        t for t, ok in zip(vt, vok, strict=True) if ok
    ]
    for o in tl.outages:
        for a, b in o.gaps:
            assert o.start < a < b < o.end
            assert (tl.state_at(a), tl.state_at(b - 1), tl.state_at(b)) == (UNK, UNK, DOWN)
            assert not [t for t in successes if a <= t <= b], "a success in a gap (or ending it)"
        for t, ok in zip(rt, rok, strict=True):
            if ok and o.start <= t < o.end:
                assert tl.state_at(t) is DOWN, "a reachability success inside an outage that brought it up"
        if o.end_reason is OutageEnd.RECOVERED:
            assert tl.state_at(o.end) in (UP, DEG)
        if o.end_reason is OutageEnd.UNKNOWN:
            assert tl.state_at(o.end) is UNK
        assert o.stretches()
        assert all(tl.state_at(a) is DOWN for a, _ in o.stretches())


@settings(max_examples=300, deadline=None)
@given(results, results, params, st.integers(0, 3000))
def test_merging_is_stable_as_results_arrive(
    r: list[tuple[int, bool]], v: list[tuple[int, bool]], p: EngineParams, cut: int
) -> None:
    """An outage that has ended, before the point later results can still change (firm_until), is
    the same once every later result is known: later evidence never joins it to a later outage nor
    reopens its gaps. And the outages do not depend on how the results are split or ordered."""
    r = list(dict(r).items())
    v = list(dict(v).items())

    def cols(rows: list[tuple[int, bool]]) -> tuple[list[int], list[bool]]:
        return [t for t, _ in rows], [ok for _, ok in rows]

    full = build_timeline(*cols(r), *cols(v), p)
    early = build_timeline(*cols([x for x in r if x[0] < cut]), *cols([x for x in v if x[0] < cut]), p)
    if early.firm_until is None:
        return
    for o in early.outages:
        if not o.open and o.end <= early.firm_until:
            assert o in full.outages
    again = build_timeline(*cols(list(reversed(r))), *cols(list(reversed(v))), p)
    assert again.outages == full.outages


@settings(max_examples=300, deadline=None)
@given(st.lists(st.booleans(), max_size=60), params)
def test_failure_runs_shorter_than_down_after_never_make_an_outage(oks: list[bool], p: EngineParams) -> None:
    # cut every failure run down to below down_after
    capped, run = [], 0
    for ok in oks:
        run = 0 if ok else run + 1
        if run < p.down_after:
            capped.append(ok)
        else:
            capped.append(True)
            run = 0
    tl = build_timeline(list(range(0, 60 * len(capped), 60)), capped, [], [], p)
    assert tl.outages == ()
    assert DOWN not in {t.state for t in tl.transitions}


@settings(max_examples=200, deadline=None)
@given(results, results, params, st.randoms(use_true_random=False))
def test_the_order_results_arrive_in_does_not_matter(
    r: list[tuple[int, bool]], v: list[tuple[int, bool]], p: EngineParams, rnd: random.Random
) -> None:
    r = list(dict(r).items())
    v = list(dict(v).items())
    first = build_timeline([t for t, _ in r], [ok for _, ok in r], [t for t, _ in v], [ok for _, ok in v], p)
    rnd.shuffle(r)
    rnd.shuffle(v)
    again = build_timeline([t for t, _ in r], [ok for _, ok in r], [t for t, _ in v], [ok for _, ok in v], p)
    assert first == again


@settings(max_examples=300, deadline=None)
@given(results, results, results, results, params, st.integers(0, 3000))
def test_letting_old_results_go_and_resuming_gives_the_same_timeline(
    r_old: list[tuple[int, bool]],
    v_old: list[tuple[int, bool]],
    r_new: list[tuple[int, bool]],
    v_new: list[tuple[int, bool]],
    p: EngineParams,
    cut: int,
) -> None:
    """Retention: results before a firm point are dropped with a carry; later results resume it."""
    r_old = sorted(dict(r_old).items())
    v_old = sorted(dict(v_old).items())
    shift = 3001
    r_new = sorted({t + shift: ok for t, ok in r_new}.items())
    v_new = sorted({t + shift: ok for t, ok in v_new}.items())

    def cols(rows: list[tuple[int, bool]]) -> tuple[list[int], list[bool]]:
        return [t for t, _ in rows], [ok for _, ok in rows]

    before_prune = build_timeline(*cols(r_old), *cols(v_old), p)
    if before_prune.firm_until is None:
        return
    horizon = min(cut, before_prune.firm_until)
    carry = carry_before(*cols(r_old), *cols(v_old), p, horizon)
    if carry is None:
        return
    kept_r = [x for x in r_old if x[0] >= horizon] + r_new
    kept_v = v_old + v_new  # the store drops video by the hour: the engine ignores what the carry covers
    resumed = build_timeline(*cols(kept_r), *cols(kept_v), p, carry)
    full = build_timeline(*cols(r_old + r_new), *cols(v_old + v_new), p)
    assert resumed.transitions[0].at == carry.reach_last
    assert resumed.transitions[0].state is full.state_at(carry.reach_last)
    assert resumed.transitions[1:] == tuple(t for t in full.transitions if t.at > carry.reach_last)
    full_outages = [o for o in full.outages if o.end > carry.reach_last]
    # the first failure of an outage open at the carry is behind it (the store keeps it on the stored
    # outage); its latest failure the carry remembers
    assert [(o.end, o.open, o.end_reason, o.last_failure) for o in resumed.outages] == [
        (o.end, o.open, o.end_reason, o.last_failure) for o in full_outages
    ]
