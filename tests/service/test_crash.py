"""A kill -9 at any moment loses at most the round in flight: after a restart, the store holds every
other round's results, and its timelines are exactly what the state engine makes of the results it
holds (what an import of the same evidence would store) — no outage is invented, nothing written
before the crash is contradicted."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from slamon.engine.timeline import EngineParams, build_timeline
from slamon.model import to_micros
from tests.harness.flaky import FlakyStore
from tests.service.drive import INTERVAL, T0, ledger, make_run, play, story

ROOT = Path(__file__).parents[2]
ROUNDS = 24


def run_child_until(db: Path, journal: Path, kill_after: int, fail_from: int | None) -> None:
    argv = [sys.executable, "-m", "tests.service.crash_child", str(db), str(journal), str(ROUNDS)]
    if fail_from is not None:
        argv.append(str(fail_from))
    child = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if int(line) == kill_after:
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kill_after", "fail_from"),
    [(2, None), (9, None), (15, None), (12, 4)],
    ids=["early", "during-an-outage", "after-recovery", "while-the-store-refuses"],
)
async def test_a_kill_loses_at_most_the_round_in_flight(
    tmp_path: Path, kill_after: int, fail_from: int | None
) -> None:
    db, journal = tmp_path / "crash.db", tmp_path / "journal"
    run_child_until(db, journal, kill_after, fail_from)
    if fail_from is not None:
        assert len(list(journal.glob("*.npz"))) >= 2 * (kill_after - fail_from), (
            "the refused writes are on disk"
        )

    # the restart, 10 minutes later (past stale_after: the time away is unknown), then the rest
    store = FlakyStore(f"sqlite:///{db}")
    run = make_run(store, journal)
    await run.monitor.start()
    await play(run, range(kill_after + 11, ROUNDS + 10), story())
    await run.monitor.close()
    got = ledger(store, run.fleet)
    store.close()

    stored = {t for _, _, results in got.values() for t, _ in results}
    missing = [i for i in range(kill_after + 1) if to_micros(T0 + i * INTERVAL) not in stored]
    assert missing in ([], [kill_after]), f"rounds missing after the kill: {missing}"
    params = EngineParams()
    for device, (transitions, outages, results) in got.items():
        times = [t for t, _ in results]
        oks = [ok for _, ok in results]
        tl = build_timeline(times, oks, [], [], params)
        assert transitions == [(t.at, t.state.value) for t in tl.transitions], device
        assert outages == [
            (o.start, o.end, o.open, o.end_reason, o.first_failure, o.last_failure, o.recovered)
            for o in tl.outages
        ], device
