"""Driving the real monitor with a scripted prober: rounds on a FakeClock, faults on a FlakyStore, and
the ledger the store ends with, to compare a disturbed run with an undisturbed one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from slamon.clock import FakeClock
from slamon.model import DeviceId, Fleet, ProbeKind, to_micros
from slamon.probers.scripted import ScriptedProber
from slamon.service.journal import Journal
from slamon.service.monitor import Monitor
from slamon.service.writer import Writer
from slamon.store import Store
from tests.harness.fleets import T0, fleet_of
from tests.harness.scenarios import AddressPlan, PaperFleet, Scenario, camera_fails_and_recovers, switch_down

INTERVAL = timedelta(seconds=60)
PLAN = AddressPlan.grid(sites=2, switches=2, cameras=3)


@dataclass
class Run:
    """A monitor over PLAN with a scripted prober; `paper` says who is silent."""

    monitor: Monitor
    prober: ScriptedProber
    paper: PaperFleet
    clock: FakeClock
    store: Store
    writer: Writer

    @property
    def fleet(self) -> Fleet:
        return self.monitor.fleet


def make_run(
    store: Store, journal_dir: Path, clock: FakeClock | None = None, fleet: Fleet | None = None, **writer: Any
) -> Run:
    clock = clock or FakeClock(T0)
    paper = PaperFleet()
    prober = ScriptedProber(clock, silent_if=lambda d: paper.is_silenced(d.address))
    w = Writer(store, Journal(journal_dir), retry_first=0.005, retry_max=0.02, **writer)
    monitor = Monitor(
        fleet or fleet_of(PLAN), store, clock, {ProbeKind.ICMP: prober}, {ProbeKind.ICMP: INTERVAL}, writer=w
    )
    return Run(monitor, prober, paper, clock, store, w)


def story() -> list[Scenario]:
    """A camera fails and recovers, then a switch fails with the cameras behind it."""
    return [
        camera_fails_and_recovers(PLAN, "SIM-S1W1C2", fail_at=3, down_rounds=6),
        switch_down(PLAN, "SIM-S2W2", fail_at=11, down_rounds=7),
    ]


async def play(
    run: Run,
    rounds: Iterable[int],
    scenarios: list[Scenario],
    before: Callable[[int], None] = lambda i: None,
) -> None:
    """Round i at T0 + i × INTERVAL, each scenario's steps applied first, `before(i)` too; a flush
    is queued after every round (without waiting for the store), as the service does each minute."""
    for i in rounds:
        for s in scenarios:
            s.apply(run.paper, i)
        before(i)
        run.clock.set(T0 + i * INTERVAL)
        await run.monitor.run_round(ProbeKind.ICMP)
        await run.monitor.flush(wait=False)


Ledger = dict[str, tuple[list[tuple[int, str]], list[tuple[Any, ...]], list[tuple[int, bool]]]]


def ledger(store: Store, fleet: Fleet) -> Ledger:
    """Per device: stored transitions, outages (every field) and raw reachability results."""
    ids = sorted(fleet.inventory.devices)
    with store.read() as tx:
        keys = tx.keys.find(ids)
        timelines = tx.timelines.load(list(keys.values()), -(1 << 62), 1 << 62)
        results = dict(tx.results.of_devices(keys.values()))
    out: Ledger = {}
    for d in ids:
        k = keys.get(DeviceId(d))
        if k is None:
            continue
        tl = timelines[k]
        got = results.get(k)
        out[d] = (
            [(t.at, t.state.value) for t in tl.transitions],
            [
                (o.start, o.end, o.open, o.end_reason, o.first_failure, o.last_failure, o.recovered)
                for o in tl.outages
            ],
            [] if got is None else list(zip(got.reach_time.tolist(), got.reach_ok.tolist(), strict=True)),
        )
    return out


async def undisturbed(store: Store, journal_dir: Path, rounds: int) -> Ledger:
    run = make_run(store, journal_dir)
    await run.monitor.start()
    await play(run, range(rounds), story())
    await run.monitor.close()
    return ledger(store, run.fleet)


def at(i: int) -> int:
    return to_micros(T0 + i * INTERVAL)
