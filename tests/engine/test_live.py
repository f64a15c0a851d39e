"""Live feeding gives the batch engine's timeline: the same results, fed round by round, folded into
carries and written as tails, end up as build_timeline's transitions and outages."""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slamon.engine.live import FleetState, TailChange
from slamon.engine.timeline import Carry, EngineParams, build_timeline
from slamon.model import (
    Contract,
    ContractId,
    Device,
    DeviceId,
    DeviceKind,
    DeviceState,
    Fleet,
    Inventory,
    ProbeKind,
    ProbeResult,
    SiteId,
    SlaTerms,
    from_micros,
)
from slamon.store import Store

T0 = datetime(2025, 7, 1, tzinfo=UTC)
SEC = 1_000_000


def fleet(terms: SlaTerms) -> Fleet:
    contract = Contract(
        ContractId("C"), "v", "CNY", "Asia/Shanghai", T0.date(), 12, {DeviceKind.CAMERA: 1}, sla=terms
    )
    cam = Device(DeviceId("CAM"), DeviceKind.CAMERA, "127.0.0.2", SiteId("S"), ContractId("C"))
    return Fleet(Inventory({}, {cam.id: cam}), {contract.id: contract})


steps = st.lists(
    st.tuples(
        st.sampled_from(["ok", "fail", "video-ok", "video-bad", "gap"]),
        st.integers(0, 2),  # jitter in seconds (results of another round stamped a bit earlier)
    ),
    min_size=1,
    max_size=80,
)
terms = st.builds(
    SlaTerms,
    down_after=st.integers(1, 4),
    up_after=st.integers(1, 3),
    degrade_after=st.integers(1, 3),
    stale_after=st.sampled_from([timedelta(seconds=45), timedelta(minutes=5)]),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path_factory.mktemp('live') / 'live.db'}")
    yield s
    s.close()


KEYS = itertools.count(1)


@settings(
    max_examples=int(os.environ.get("SLAMON_HYPOTHESIS_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@pytest.mark.slow
@given(steps, terms, st.integers(1, 6), st.randoms(use_true_random=False))
def test_live_feeding_equals_the_batch_engine(
    store: Store, plan: list[tuple[str, int]], sla: SlaTerms, batch: int, rnd: random.Random
) -> None:
    """Tails written with write_tails and horizons moved with move_horizons, in the real store."""
    check_live_against_batch(store, plan, sla, batch, rnd)


def test_live_feeding_equals_the_batch_engine_with_a_video_ok_in_a_gap(store: Store) -> None:
    """A passing video sample inside a monitoring gap between two failures ends the outage (SLA.md
    §3), also when it arrives after the failure that follows the gap (found by the property above:
    the live state took an agreeing sample without a rebuild and joined the outage across)."""
    plan = [("ok", 0), ("fail", 0), ("gap", 0), ("video-ok", 0), ("fail", 0)]
    sla = SlaTerms(down_after=1, up_after=1, degrade_after=1, stale_after=timedelta(seconds=45))
    for seed in range(20):  # the order results arrive in within a batch
        check_live_against_batch(store, plan, sla, 2, random.Random(seed))


def check_live_against_batch(
    store: Store, plan: list[tuple[str, int]], sla: SlaTerms, batch: int, rnd: random.Random
) -> None:
    state = FleetState(fleet(sla), slack=5 * SEC)
    key = next(KEYS)

    def write(changes: list[TailChange]) -> None:
        with store.begin() as tx:  # as the monitor writes them
            tx.timelines.write_tails([(key, c.tail, c.since, "{}") for c in changes], at=0)

    fed: list[tuple[int, ProbeKind, bool]] = []
    t = 0
    pending: list[ProbeResult] = []
    for i, (what, jitter) in enumerate(plan):
        t += 30 * SEC if what != "gap" else 400 * SEC
        if what == "gap":
            continue
        kind = ProbeKind.VIDEO if what.startswith("video") else ProbeKind.ICMP
        at = t - jitter * SEC if i % 3 == 0 else t
        ok = what in ("ok", "video-ok")
        pending.append(ProbeResult(DeviceId("CAM"), kind, from_micros(at), ok))
        fed.append((at, kind, ok))
        if len(pending) >= batch:
            rnd.shuffle(pending)
            write(state.feed(pending))
            pending = []
    rnd.shuffle(pending)
    write(state.feed(pending))
    live = state.get(DeviceId("CAM"))
    assert live is not None
    reach = sorted((at, ok) for at, kind, ok in fed if kind is ProbeKind.ICMP)
    video = sorted((at, ok) for at, kind, ok in fed if kind is ProbeKind.VIDEO)
    want = build_timeline(
        [a for a, _ in reach],
        [o for _, o in reach],
        [a for a, _ in video],
        [o for _, o in video],
        EngineParams.from_terms(sla),
    )
    if live.horizon is not None:  # as the monitor's flush does
        with store.begin() as tx:
            tx.timelines.move_horizons([(key, live.horizon, live.open_last_failure())])
    with store.begin() as tx:
        got = tx.timelines.load([key], -(1 << 62), 1 << 62)[key]
    if state.late:
        return  # a result older than the firm point: live skips it, a rebuild from the store takes it
    assert got.transitions == want.transitions
    assert [(o.start, o.end, o.open, o.end_reason, o.first_failure, o.last_failure) for o in got.outages] == [
        (o.start, o.end, o.open, o.end_reason, o.first_failure, o.last_failure) for o in want.outages
    ]
    if not fed:
        return
    now = max(a for a, _, _ in fed)  # the live state is asked about "now", after every result
    assert live.state_at(now) is want.state_at(now)


def test_since_survives_folding_and_points_at_the_change() -> None:
    """A device up for hours is up since its first answer, not since the last fold of its tail."""
    state = FleetState(fleet(SlaTerms()), slack=5 * SEC)
    cam = DeviceId("CAM")
    for i in range(200):  # one answer a minute for 200 minutes, folded as it goes
        state.feed([ProbeResult(cam, ProbeKind.ICMP, from_micros(i * 60 * SEC), True)])
    live = state.get(cam)
    assert live is not None
    assert live.since(199 * 60 * SEC) == 0
    for i in range(200, 203):  # three misses: down since the first miss
        state.feed([ProbeResult(cam, ProbeKind.ICMP, from_micros(i * 60 * SEC), False)])
    assert live.since(202 * 60 * SEC) == 200 * 60 * SEC
    for i in range(203, 300):
        state.feed([ProbeResult(cam, ProbeKind.ICMP, from_micros(i * 60 * SEC), False)])
    assert live.since(299 * 60 * SEC) == 200 * 60 * SEC


@pytest.mark.parametrize("answers", [True, False], ids=["up", "down"])
@pytest.mark.parametrize("resumed", [False, True], ids=["fresh", "resumed"])
def test_a_steady_device_keeps_a_short_tail(answers: bool, resumed: bool) -> None:
    """Results of a device whose state never changes are folded into its carry too: its tail stays
    a few results long (memory is flat) and it has a resume point to store."""
    state = FleetState(fleet(SlaTerms()), slack=5 * SEC)
    cam = DeviceId("CAM")
    if resumed:
        state.restore(cam, Carry(reach_down=not answers, reach_last=-30 * SEC, video_bad=False), [], [])
    for i in range(300):  # one result every 30 s for 2.5 hours
        state.feed([ProbeResult(cam, ProbeKind.ICMP, from_micros(i * 30 * SEC), answers)])
    live = state.get(cam)
    assert live is not None
    assert len(live.reach) <= 3
    assert live.carry is not None
    assert live.carry.reach_last >= 297 * 30 * SEC
    assert live.state_at(299 * 30 * SEC) is (DeviceState.UP if answers else DeviceState.DOWN)
    since = live.since(299 * 30 * SEC)
    assert since is not None
    assert since == 0 if not resumed else since <= 0
