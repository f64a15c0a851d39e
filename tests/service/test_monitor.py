"""The monitor end to end without root: scripted rounds → live state → store → /metrics and /api/v1,
for every harness scenario; a round's deadline; an open outage's evidence kept current."""

from __future__ import annotations

import asyncio
import gc
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from slamon.model import DeviceId, DeviceState, Kpi, ProbeKind, SlaTerms, to_micros
from slamon.service.monitor import Monitor
from slamon.service.web import create_app
from tests.harness.flaky import FlakyStore
from tests.harness.fleets import T0, fleet_of
from tests.harness.scenarios import Scenario, camera_fails_and_recovers, flapping, site_power, switch_down
from tests.service.drive import INTERVAL, PLAN, make_run

SCENARIOS = {
    "camera": camera_fails_and_recovers(PLAN, "SIM-S1W1C2"),
    "blip": camera_fails_and_recovers(PLAN, "SIM-S1W1C2", down_rounds=2),
    "flapping": flapping(PLAN, "SIM-S2W2C1", flaps=3),
    "switch": switch_down(PLAN, "SIM-S1W2"),
    "site": site_power(PLAN, "SIM-S2"),
}


@pytest.mark.parametrize("name", SCENARIOS)
async def test_scenario_end_to_end(name: str, store_url: str, tmp_path: Path, aiohttp_client: Any) -> None:
    scenario: Scenario = SCENARIOS[name]
    store = FlakyStore(store_url)
    run = make_run(store, tmp_path / "journal")
    await run.monitor.start()
    client = await aiohttp_client(create_app(run.monitor, run.clock, {ProbeKind.ICMP: INTERVAL}))
    causes_seen: dict[str, str] = {}
    for rnd in scenario.timeline(T0, INTERVAL):
        scenario.apply(run.paper, rnd.index)
        run.clock.set(rnd.now)
        await run.monitor.run_round(ProbeKind.ICMP)
        down = (await (await client.get("/api/v1/devices", params={"state": "down"})).json())["devices"]
        causes_seen.update({d["id"]: d["cause"] for d in down})
    await run.monitor.flush()

    resp = await client.get(
        "/api/v1/outages", params={"from": T0.isoformat(), "to": run.clock.now().isoformat()}
    )
    found = (await resp.json())["outages"]
    got = sorted((o["device"], o["start"], o["end"], sorted(o["causes"])) for o in found)
    want = sorted(
        (
            o.device,
            o.start(T0, INTERVAL).astimezone(_cst()).isoformat(),
            None if o.recovered_round is None else o.end(T0, INTERVAL).astimezone(_cst()).isoformat(),
            [o.cause],
        )
        for o in scenario.outages
    )
    assert got == want, scenario.describe()
    assert causes_seen == {o.device: o.cause for o in scenario.outages}
    await run.monitor.close()
    store.close()


async def test_a_round_is_cut_at_its_deadline_and_stores_what_it_got(tmp_path: Path) -> None:
    """The prober answers for the first 10 devices, then hangs: the round ends at its interval, the
    10 results are stored, the timeout is counted, and the next round runs as usual."""
    store = FlakyStore(f"sqlite:///{tmp_path / 'deadline.db'}")
    run = make_run(store, tmp_path / "journal")
    run.monitor.intervals[ProbeKind.ICMP] = timedelta(milliseconds=300)
    run.prober.batch = 10
    await run.monitor.start()
    run.prober.hang = True
    started = time.monotonic()
    await run.monitor.run_round(ProbeKind.ICMP)
    took = time.monotonic() - started
    assert 0.3 <= took < 1.5
    stats = run.monitor.stats[ProbeKind.ICMP]
    assert (stats.rounds, stats.timeouts, stats.probes, stats.overruns) == (1, 1, 10, 0)
    run.prober.hang = False
    run.clock.set(T0 + INTERVAL)
    await run.monitor.run_round(ProbeKind.ICMP)
    assert (stats.rounds, stats.timeouts, stats.probes) == (2, 1, 28)
    await run.monitor.flush()
    with store.read() as tx:
        stored = {k: len(r.reach_time) for k, r in tx.results.of_devices(run.monitor._keys.values())}
    assert sorted(stored.values()).count(2) == 10, "the cut round's 10 results are stored"
    assert sorted(stored.values()).count(1) == 8
    await run.monitor.close()
    store.close()


async def test_a_stop_during_a_round_stores_what_it_got(tmp_path: Path) -> None:
    store = FlakyStore(f"sqlite:///{tmp_path / 'stop.db'}")
    run = make_run(store, tmp_path / "journal")
    run.prober.batch = 5
    await run.monitor.start()
    run.prober.hang = True
    task = asyncio.create_task(run.monitor.run_round(ProbeKind.ICMP))
    await run.prober.hanging.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await run.monitor.close()
    with store.read() as tx:
        stored = sum(len(r.reach_time) for _, r in tx.results.of_devices(run.monitor._keys.values()))
    assert stored == 5
    store.close()


async def test_an_open_outage_keeps_its_latest_failure_current(tmp_path: Path) -> None:
    """docs/monitoring.md: an open outage's last failure is refreshed with every flush (about once a
    minute) and at the stop — also while the device is steady down and its results skip the rebuild."""
    store = FlakyStore(f"sqlite:///{tmp_path / 'lf.db'}")
    run = make_run(store, tmp_path / "journal")
    await run.monitor.start()
    camera = DeviceId("SIM-S1W1C1")
    run.prober.silence(camera)
    key = run.monitor._keys[camera]

    def stored_last_failure() -> int | None:
        with store.read() as tx:
            outages = tx.timelines.load([key], -(1 << 62), 1 << 62)[key].outages
        assert len(outages) == 1
        assert outages[0].open
        return outages[0].last_failure

    for i in range(12):
        run.clock.set(T0 + i * INTERVAL)
        await run.monitor.run_round(ProbeKind.ICMP)
        if i >= 3:
            await run.monitor.flush()
            assert stored_last_failure() == to_micros(T0 + i * INTERVAL), f"round {i}"
    live = run.monitor.state.get(camera)
    assert live is not None
    assert live.state_at(to_micros(run.clock.now())) is DeviceState.DOWN
    run.clock.set(T0 + 12 * INTERVAL)
    await run.monitor.run_round(ProbeKind.ICMP)
    await run.monitor.close()  # the stop's flush refreshes it too
    assert stored_last_failure() == to_micros(T0 + 12 * INTERVAL)
    store.close()


def _cst() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


async def test_month_to_date_figures_come_from_a_child_process_as_in_process(tmp_path: Path) -> None:
    from slamon.issuing import month_to_date
    from slamon.service.mtd import compute_in_child

    store = FlakyStore(f"sqlite:///{tmp_path / 'mtd.db'}")
    run = make_run(store, tmp_path / "journal")
    await run.monitor.start()
    run.prober.silence("SIM-S1W1C1")
    for i in range(8):
        run.clock.set(T0 + i * INTERVAL)
        await run.monitor.run_round(ProbeKind.ICMP)
    await run.monitor.close()
    now = to_micros(run.clock.now())
    with store.read() as tx:
        here = month_to_date(tx, now)
    child = await compute_in_child(store.url, now)
    assert child == here
    assert here.rates["C1"][Kpi.ONLINE_RATE] < 1
    store.close()


async def test_a_restart_keeps_since_when_each_device_has_been_in_its_state(tmp_path: Path) -> None:
    """The resume point carries it: no look through the transitions at start."""
    store = FlakyStore(f"sqlite:///{tmp_path / 'since.db'}")
    run = make_run(store, tmp_path / "journal")
    await run.monitor.start()
    for i in range(10):
        if i == 2:
            run.prober.silence("SIM-S1W1C1")
        run.clock.set(T0 + i * INTERVAL)
        await run.monitor.run_round(ProbeKind.ICMP)
    await run.monitor.close()  # flushes the resume points

    again = make_run(store, tmp_path / "journal", clock=run.clock)
    again.prober.silence("SIM-S1W1C1")
    await again.monitor.start()
    again.clock.set(T0 + 11 * INTERVAL)
    await again.monitor.run_round(ProbeKind.ICMP)
    now = to_micros(again.clock.now())
    camera = again.monitor.state.get(DeviceId("SIM-S1W1C1"))
    switch = again.monitor.state.get(DeviceId("SIM-S1W1"))
    assert camera is not None
    assert switch is not None
    assert (camera.state_at(now), camera.since(now)) == (DeviceState.DOWN, to_micros(T0 + 2 * INTERVAL))
    assert (switch.state_at(now), switch.since(now)) == (DeviceState.UP, to_micros(T0))
    await again.monitor.close()
    store.close()


async def test_the_service_keeps_its_long_lived_objects_out_of_full_collections(tmp_path: Path) -> None:
    """memory.settle runs once after the first round (and again after a reload): what lives then
    (the fleet, its live state) is frozen, so the garbage collector's full passes no longer walk it."""
    store = FlakyStore(f"sqlite:///{tmp_path / 'heap.db'}")
    run = make_run(store, tmp_path / "journal")
    run.monitor._settle_heap = True  # as serve() builds it

    def tracked(obj: object) -> bool:  # in a generation the collector walks (not frozen)
        return any(obj is o for o in gc.get_objects())

    try:
        await run.monitor.start()
        live = next(iter(run.monitor.state))
        assert tracked(live)
        await run.monitor.run_round(ProbeKind.ICMP)
        assert not tracked(live)
        later = [object()]  # made after the first settle
        run.clock.set(T0 + INTERVAL)
        await run.monitor.run_round(ProbeKind.ICMP)
        assert tracked(later)  # not every round: only after the start or a reload
        await run.monitor.reload(run.fleet)
        assert tracked(later)
        run.clock.set(T0 + 2 * INTERVAL)
        await run.monitor.run_round(ProbeKind.ICMP)
        assert not tracked(later)
        assert not tracked(live)
        await run.monitor.close()
    finally:
        gc.unfreeze()
        store.close()


async def test_a_restart_after_the_state_settings_changed_rebuilds_the_timelines(tmp_path: Path) -> None:
    """down_after changed while the service was stopped: the start rebuilds the stored timelines
    under the new setting before resuming them (as a reload or a statement would), so a
    timeline never mixes the two."""
    store = FlakyStore(f"sqlite:///{tmp_path / 'settings.db'}")
    run = make_run(store, tmp_path / "journal")
    await run.monitor.start()
    for i in range(8):
        if i == 3:
            run.prober.silence("SIM-S1W1C1")  # two failed rounds: not down at down_after 3
        if i == 5:
            run.prober.restore("SIM-S1W1C1")
        run.clock.set(T0 + i * INTERVAL)
        await run.monitor.run_round(ProbeKind.ICMP)
    await run.monitor.close()

    def camera_outages() -> list[tuple[int, int]]:
        with store.read() as tx:
            key = tx.keys.find([DeviceId("SIM-S1W1C1")])[DeviceId("SIM-S1W1C1")]
            span = tx.timelines.load([key], to_micros(T0), to_micros(T0 + 100 * INTERVAL))
            return [(o.start, o.end) for o in span[key].outages]

    assert camera_outages() == []
    stricter = fleet_of(PLAN, SlaTerms(down_after=2))
    again = make_run(store, tmp_path / "journal", clock=run.clock)
    again.monitor = Monitor(
        stricter,
        store,
        again.clock,
        {ProbeKind.ICMP: again.prober},
        {ProbeKind.ICMP: INTERVAL},
        writer=again.writer,
    )
    await again.monitor.start()
    assert camera_outages() == [(to_micros(T0 + 3 * INTERVAL), to_micros(T0 + 5 * INTERVAL))]
    await again.monitor.close()
    store.close()
