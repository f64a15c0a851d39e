"""When cameras are sampled (video/schedule.py): once per interval each, spread over it, whatever
the rounds' timing; sooner after a defect, until `recheck` defective samples in a row."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from slamon.model import SECOND
from slamon.video.schedule import VideoSchedule, phase

MINUTE = 60 * SECOND
INTERVAL = 15 * MINUTE


def cams(n: int) -> list[tuple[str, str]]:
    return [(f"C{i:05d}", f"C{i:05d}") for i in range(n)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 3 * 60), min_size=30, max_size=60), st.integers(0, 10**12))
def test_each_camera_is_sampled_once_per_interval_however_late_the_rounds(gaps: list[int], t0: int) -> None:
    """Rounds come every minute or late (up to 3 min): over whole intervals every camera is due
    exactly once per interval, never twice in one."""
    schedule = VideoSchedule(INTERVAL, MINUTE)
    cameras = cams(200)
    seen: list[tuple[int, str]] = []
    now = t0
    for gap in gaps:
        now += gap * SECOND
        start, end = schedule.window(now)
        seen += [(at, cid) for at, cid in schedule.due(cameras, start, end)]
    first, last = t0 + gaps[0] * SECOND, now + MINUTE  # the span the windows covered
    whole = (last - first) // INTERVAL
    for k in range(whole):
        lo = first + k * INTERVAL
        counts = Counter(cid for at, cid in seen if lo <= at < lo + INTERVAL)
        assert set(counts) == {c for c, _ in cameras}
        assert set(counts.values()) == {1}


def test_samples_are_spread_over_the_interval() -> None:
    per_minute = Counter(phase(cid, INTERVAL) // MINUTE for cid, _ in cams(15_000))
    assert len(per_minute) == 15
    assert max(per_minute.values()) < 1.1 * 1000, per_minute
    assert min(per_minute.values()) > 0.9 * 1000, per_minute


def test_a_defective_camera_is_sampled_again_a_tick_later_until_recheck_samples() -> None:
    schedule = VideoSchedule(INTERVAL, MINUTE, recheck=3)
    cameras = cams(50)
    cid = "C00007"
    at = phase(cid, INTERVAL)
    start, end = schedule.window(at - MINUTE // 2)
    assert cid in [c for _, c in schedule.due(cameras, start, end)]
    times = [at]
    schedule.took(cid, True, at)
    for _ in range(4):
        start, end = schedule.window(end)
        due = [(t, c) for t, c in schedule.due(cameras, start, end) if c == cid]
        if due:
            times.append(due[0][0])
            schedule.took(cid, True, due[0][0])
    assert [t - at for t in times] == [0, MINUTE, 2 * MINUTE], "three defective samples, a minute apart"
    schedule.took(cid, False, times[-1] + MINUTE)  # a clean sample: back on its phase
    assert not schedule._again
    assert not schedule._defective


def test_forget_drops_cameras_gone_from_the_inventory() -> None:
    schedule = VideoSchedule(INTERVAL, MINUTE)
    schedule.took("A", True, 0)
    schedule.took("B", True, 0)
    schedule.forget(["B"])
    assert set(schedule._again) == {"B"}
    assert set(schedule._defective) == {"B"}
