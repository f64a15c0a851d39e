"""Evidence survives faults: whatever the store does, what it ends up holding is what an undisturbed
run stores — the same transitions, outages and raw results — and nothing is invented.

The monitor is the real one, with a scripted prober on a FakeClock; the store is real (SQLite and
PostgreSQL) and refuses writes on demand (FlakyStore), or is locked by a real second writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from slamon.errors import StoreError
from slamon.model import Device, DeviceId, DeviceKind, Fleet, Inventory, ProbeKind, SiteId
from slamon.service.monitor import ReloadPostponed
from tests.harness.flaky import FlakyStore
from tests.service.drive import ledger, make_run, play, story, undisturbed

ROUNDS = 24


async def until(check: object, limit: float = 10.0) -> None:
    """Wait for the writer thread to get somewhere (it runs on its own, in real time)."""
    for _ in range(int(limit / 0.005)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the writer did not get there")


@pytest.fixture
def flaky(store_url: str) -> FlakyStore:
    s = FlakyStore(store_url)
    yield s  # type: ignore[misc]
    s.close()


@pytest.fixture
def reference(tmp_path: Path) -> dict[str, object]:
    """The ledger of the same story with nothing going wrong (on SQLite: the ledger is the same data
    on either backend)."""
    store = FlakyStore(f"sqlite:///{tmp_path / 'reference.db'}")
    try:
        return asyncio.run(undisturbed(store, tmp_path / "reference-journal", ROUNDS))  # type: ignore[return-value]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("first", "last", "reason"),
    [
        (4, 4, "locked"),  # one round's write refused once
        (5, 16, "unreachable"),  # 12 minutes: past the live state's fold (2 minutes), over a recovery
        (10, 23, "read_only"),  # to the end of the run: only the stop's wait gets it written
    ],
    ids=["once", "twelve-minutes", "until-the-end"],
)
async def test_a_store_refusing_writes_ends_with_the_undisturbed_ledger(
    flaky: FlakyStore, tmp_path: Path, reference: dict[str, object], first: int, last: int, reason: str
) -> None:
    run = make_run(flaky, tmp_path / "journal")
    await run.monitor.start()
    seen_backlog = []

    async def rounds() -> None:
        for i in range(ROUNDS):
            if i == first:
                await run.writer.drained()  # this round's write is the first the store refuses
                if first == last:
                    flaky.fail_next(1, reason)
                else:
                    flaky.fail(reason)
            if i == last + 1:
                flaky.heal()
            await play(run, [i], story())
            if i == first:
                await until(lambda: flaky.refused > 0)
            seen_backlog.append(run.writer.status().writes)

    await rounds()
    flaky.heal()
    await run.monitor.flush()
    status = run.writer.status()
    assert (status.writes, status.failing) == (0, None)
    assert status.failures.get(reason, 0) >= 1
    assert status.replayed >= 1
    assert max(seen_backlog) >= (1 if first == last else last - first)
    assert flaky.refused >= 1
    await run.monitor.close()
    assert ledger(flaky, run.fleet) == reference
    assert not list((tmp_path / "journal").glob("*.npz")), "every journaled write was applied and dropped"


async def test_a_store_that_stays_away_keeps_everything_in_the_journal_for_the_next_start(
    flaky: FlakyStore, tmp_path: Path, reference: dict[str, object]
) -> None:
    run = make_run(flaky, tmp_path / "journal", memory_limit=20_000)
    await run.monitor.start()
    await play(run, range(6), story())
    flaky.fail("unreachable")
    await play(run, range(6, ROUNDS), story())
    await until(lambda: run.writer.status().journaled == run.writer.status().writes)
    status = run.writer.status()
    assert status.writes >= ROUNDS - 6, "every waiting write is on disk"
    assert status.memory_bytes < 20_000 + 10_000, "past the limit, journaled writes leave memory"
    assert await run.monitor.close(store_within=0.1) is False
    journaled = sorted((tmp_path / "journal").glob("*.npz"))
    assert len(journaled) >= ROUNDS - 6

    flaky.heal()  # the next start: a new monitor, the same store and journal
    again = make_run(flaky, tmp_path / "journal")
    await again.monitor.start()
    await again.monitor.close()
    assert ledger(flaky, again.fleet) == reference
    assert not list((tmp_path / "journal").glob("*.npz"))


async def test_a_journal_replayed_twice_applies_each_write_once(
    flaky: FlakyStore, tmp_path: Path, reference: dict[str, object]
) -> None:
    """A crash between a write's commit and its journal file's removal: the next start finds the
    file, and the store's record of the last applied write says to drop it, not apply it again."""
    run = make_run(flaky, tmp_path / "journal")
    await run.monitor.start()
    flaky.fail("unreachable")
    await play(run, range(ROUNDS), story())
    await run.monitor.close(store_within=0.05)
    kept = {p.name: p.read_bytes() for p in (tmp_path / "journal").glob("*.npz")}
    assert kept
    flaky.heal()
    again = make_run(flaky, tmp_path / "journal")
    await again.monitor.start()
    await again.monitor.close()
    for name, data in kept.items():  # as if the files had never been removed
        (tmp_path / "journal" / name).write_bytes(data)
    third = make_run(flaky, tmp_path / "journal")
    await third.monitor.start()
    assert third.writer.status().replayed == 0
    await third.monitor.close()
    assert ledger(flaky, third.fleet) == reference


def test_the_journal_belongs_to_one_store(tmp_path: Path) -> None:
    from slamon.service.journal import Journal, JournalError

    journal = Journal(tmp_path / "journal")
    journal.claim("store-a")
    (tmp_path / "journal" / "0000000000000001.npz").write_bytes(b"x")
    with pytest.raises(JournalError, match="holds 1 writes of another store"):
        journal.claim("store-b")


async def test_a_lock_held_by_another_writer_past_the_fold(
    tmp_path: Path, reference: dict[str, object]
) -> None:
    """A real second writer holds SQLite's write lock for 14 rounds: the live writes wait (each
    attempt gives up after 50 ms and is retried), rounds go on, and the ledger ends complete."""
    db = tmp_path / "live.db"
    store = FlakyStore(f"sqlite:///{db}", wait_for_writer=0.05)
    run = make_run(store, tmp_path / "journal")
    await run.monitor.start()
    other = sqlite3.connect(db, isolation_level=None, timeout=0)

    for i in range(ROUNDS):
        if i == 5:
            await run.writer.drained()
            other.execute("BEGIN IMMEDIATE")
        if i == 19:
            other.execute("ROLLBACK")
        await play(run, [i], story())
        if i == 5:
            await until(lambda: run.writer.status().failures.get("locked", 0) > 0)
    await run.monitor.flush()
    assert run.writer.status().failures.get("locked", 0) >= 1
    await run.monitor.close()
    other.close()
    assert ledger(store, run.fleet) == reference
    store.close()


async def test_a_moved_database_stops_the_writer_and_keeps_the_evidence(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    store = FlakyStore(f"sqlite:///{db}")
    stopped: list[StoreError] = []
    run = make_run(store, tmp_path / "journal", on_fatal=stopped.append)
    await run.monitor.start()
    await play(run, range(3), story())
    await run.monitor.flush()
    db.rename(tmp_path / "elsewhere.db")
    await play(run, range(3, 5), story())
    await until(lambda: stopped)
    assert "is gone while slamon was using it" in str(stopped[0])
    status = run.writer.status()
    assert status.fatal is not None
    assert status.failures["moved"] == 1
    assert not db.exists(), "no new, empty database was made where the old one was"
    # the rounds after the move wait on disk
    await until(lambda: len(list((tmp_path / "journal").glob("*.npz"))) >= 4)
    await run.monitor.close(store_within=0.05)
    store.close()


async def test_a_reload_while_the_store_is_away_changes_nothing_until_it_goes_through(
    flaky: FlakyStore, tmp_path: Path
) -> None:
    """SIGHUP with a camera moved to a new address while the store refuses writes: the reload is
    postponed and the service goes on exactly as before (API, prober and store agree on the old
    address); once the store is back the reload goes through, all of it."""
    run = make_run(flaky, tmp_path / "journal")
    await run.monitor.start()
    await play(run, range(3), story())
    camera = DeviceId("SIM-S1W1C1")
    old = run.fleet
    moved = replace(old.inventory.devices[camera], address="127.99.0.1")
    new = replace(old, inventory=Inventory(old.inventory.sites, {**old.inventory.devices, camera: moved}))

    flaky.fail("unreachable")
    await play(run, [3], story())
    run.monitor.reload_start_within = 0.5
    reloading = asyncio.create_task(run.monitor.reload(new))
    await asyncio.sleep(0)  # it starts, and waits for the store
    started = asyncio.get_running_loop().time()
    await play(run, [4], story())  # rounds go on while the reload waits for the store
    assert asyncio.get_running_loop().time() - started < 0.3
    with pytest.raises(ReloadPostponed, match="the store is not taking writes"):
        await reloading
    assert run.monitor.fleet is old
    assert run.monitor.state.fleet is old
    assert run.monitor.view is not None
    assert run.monitor.view.fleet is old
    await play(run, [5], story())
    addresses = {d.id: d.address for d in run.monitor._devices_of(ProbeKind.ICMP)}
    assert addresses[camera] == old.inventory.devices[camera].address

    flaky.heal()
    await run.monitor.reload(new)
    assert run.monitor.fleet is new
    assert {d.id: d.address for d in run.monitor._devices_of(ProbeKind.ICMP)}[camera] == "127.99.0.1"
    with flaky.read() as tx:
        assert tx.versions.inventory_as_of(1 << 62).devices[camera].address == "127.99.0.1"  # type: ignore[union-attr]
    await run.monitor.close()


async def test_an_import_waits_for_the_live_writer_and_rounds_stay_on_time(tmp_path: Path) -> None:
    """`slamon import` into the SQLite file a live service writes every round: the import waits for
    the writer's lock instead of failing with 'database is locked', and the rounds go on meanwhile
    (their writes wait their turn)."""
    import threading
    import time

    from slamon.history import import_history
    from tests.service.drive import INTERVAL, T0

    db = tmp_path / "live.db"
    store = FlakyStore(f"sqlite:///{db}")
    run = make_run(store, tmp_path / "journal")
    await run.monitor.start()
    csv = tmp_path / "history.csv"
    with csv.open("w") as f:  # a day of minutely history for every device, the day before
        f.write("device,time,probe,ok,rtt_ms,defects\n")
        for minute in range(24 * 60):
            at = (T0 - (24 * 60 - minute) * INTERVAL).isoformat()
            for d in run.fleet.inventory.devices:
                f.write(f"{d},{at},icmp,1,0.5,\n")
    importer = FlakyStore(f"sqlite:///{db}")
    outcome: list[object] = []

    def imports() -> None:
        try:
            outcome.append(import_history(csv, importer, run.fleet, run.clock.now()))
        except Exception as exc:  # noqa: BLE001  (the test looks at it)
            outcome.append(exc)

    thread = threading.Thread(target=imports)
    thread.start()
    gaps = []
    i = 0
    while thread.is_alive():
        started = time.monotonic()
        await play(run, [i], story())
        gaps.append(time.monotonic() - started)
        i += 1
        await asyncio.sleep(0.01)
    thread.join()
    assert not isinstance(outcome[0], Exception), outcome[0]
    assert outcome[0].rows == 24 * 60 * 18  # type: ignore[attr-defined]
    assert i >= 2, "rounds ran while the import did"
    assert max(gaps) < 0.5, f"a round waited for the import: {max(gaps):.2f} s"
    await run.monitor.flush()
    assert run.writer.status().writes == 0
    await run.monitor.close()
    importer.close()
    store.close()


async def test_a_reload_during_a_store_outage_ends_with_the_ledger_of_a_reload_without_one(
    tmp_path: Path,
) -> None:
    """SIGHUP while the store refuses writes (a camera moved, a camera added): postponed, retried,
    and once the store is back it goes through; the ledger equals that of a run where the same
    reload simply happened at that round."""

    def changed(old: Fleet) -> Fleet:
        devices = dict(old.inventory.devices)
        camera = DeviceId("SIM-S1W1C1")
        devices[camera] = replace(devices[camera], address="127.99.0.1")
        added = DeviceId("SIM-S1W1C9")
        devices[added] = Device(
            added,
            DeviceKind.CAMERA,
            "127.99.0.9",
            SiteId("SIM-S1"),
            old.inventory.devices[camera].contract,
            DeviceId("SIM-S1W1"),
        )
        return replace(old, inventory=Inventory(old.inventory.sites, devices))

    async def run_it(db: str, outage: bool) -> dict[str, object]:
        store = FlakyStore(f"sqlite:///{tmp_path / db}")
        run = make_run(store, tmp_path / f"{db}.journal")
        run.monitor.reload_start_within = 0.2
        await run.monitor.start()
        new = changed(run.fleet)
        for i in range(ROUNDS):
            if outage and i == 6:
                await run.writer.drained()
                store.fail("unreachable")
            if outage and i == 8:
                with pytest.raises(ReloadPostponed):
                    await run.monitor.reload(new)
            if outage and i == 12:
                store.heal()
            if i == 12:
                await run.monitor.reload(new)
            await play(run, [i], story())
        await run.monitor.close()
        got = ledger(store, run.monitor.fleet)
        store.close()
        return got  # type: ignore[return-value]

    assert await run_it("outage.db", True) == await run_it("reference.db", False)


async def test_a_write_that_only_waited_its_turn_is_not_counted_as_a_replay(
    flaky: FlakyStore, tmp_path: Path
) -> None:
    """slamon_store_replays_total counts writes retried after a failure or read back from the
    journal, not the copy a healthy write gets on disk while it waits behind another."""
    run = make_run(flaky, tmp_path / "journal")
    await run.monitor.start()
    started, gate = threading.Event(), threading.Event()

    def hold(tx: object) -> None:  # a long write ahead of the rounds' (a compaction, say)
        started.set()
        gate.wait(10)

    holding = asyncio.create_task(run.writer.call(hold))
    await until(started.is_set)
    await play(run, [0, 1], story())
    await until(lambda: run.writer.status().journaled >= 2)  # they wait, copied to the journal
    gate.set()
    await holding
    await run.monitor.flush()
    status = run.writer.status()
    assert (status.writes, status.replayed, flaky.refused) == (0, 0, 0)
    await run.monitor.close()


def test_the_journal_keeps_events_and_proposed_exclusions(tmp_path: Path) -> None:
    """SNMP's evidence (port events) and a proposed exclusion survive the journal byte for byte."""
    from datetime import UTC, datetime

    from slamon.model import (
        ContractId,
        DeviceId,
        Exclusion,
        ExclusionCategory,
        ExclusionId,
        ExclusionStatus,
        Scope,
        SiteId,
    )
    from slamon.service.evidence import Evidence
    from slamon.service.journal import Journal
    from slamon.store.events import Event

    journal = Journal(tmp_path / "journal")
    journal.claim("store-a")
    proposal = Exclusion(
        ExclusionId("PWR-S1-20261201T020000"),
        ExclusionCategory.POWER,
        Scope(sites=frozenset({SiteId("S1")}), contracts=frozenset({ContractId("C")})),
        datetime(2026, 12, 1, 2, tzinfo=UTC),
        datetime(2026, 12, 1, 3, tzinfo=UTC),
        "suspected power cut: every device of the site failed in one round",
        ExclusionStatus.PROPOSED,
    )
    events = (
        Event(1, "port", DeviceId("SW1"), {"full": True, "ports": {"Gi0/5": {"index": 5, "oper": "down"}}}),
        Event(2, "reboot", DeviceId("SW1"), {"uptime_before_s": 9, "uptime_s": 1}),
    )
    written = Evidence("snmp round", 3, events=events, proposals=(proposal,))
    path = journal.save(7, written)
    seq, read = journal.load(path)
    assert seq == 7
    assert read == written
