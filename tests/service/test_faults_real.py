"""The same faults for real, as an operator meets them: the SQLite files made immutable, PostgreSQL
stopped for a minute and started again. Each run ends with the undisturbed run's ledger. They need
root (chattr, pg_ctlcluster) and skip without it, unless CI requires them."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import postgres_schema_url
from tests.harness.fixtures import unavailable
from tests.harness.flaky import FlakyStore
from tests.service.drive import ledger, make_run, play, story, undisturbed

ROUNDS = 24


async def _until(check: object, limit: float) -> None:
    for _ in range(int(limit / 0.05)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {limit} s")


async def sh(argv: list[str], *, check: bool) -> None:
    await asyncio.to_thread(subprocess.run, argv, check=check)


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None or os.geteuid() != 0:
        unavailable(f"needs root and `{tool}`")
        raise AssertionError("unreachable")
    return path


@pytest.mark.slow
async def test_sqlite_files_made_immutable_for_a_while(tmp_path: Path) -> None:
    chattr = _need("chattr")
    reference = await undisturbed(
        FlakyStore(f"sqlite:///{tmp_path / 'ref.db'}"), tmp_path / "ref-journal", ROUNDS
    )
    db = tmp_path / "live.db"
    store = FlakyStore(f"sqlite:///{db}", wait_for_writer=0.2)
    run = make_run(store, tmp_path / "journal")
    await run.monitor.start()
    # the database and its write-ahead log; not the -shm file, which SQLite maps into memory: a
    # write to an immutable mapped page is a SIGBUS that no program can catch
    files = [p for p in (db, db.with_name("live.db-wal")) if p.exists()]
    try:
        for i in range(ROUNDS):
            if i == 5:
                await run.writer.drained()
                await sh([chattr, "+i", *map(str, files)], check=True)
            if i == 17:
                await sh([chattr, "-i", *map(str, files)], check=True)
            await play(run, [i], story())
            if i == 5:
                await _until(lambda: run.writer.status().failing is not None, 20)
    finally:
        await sh([chattr, "-i", *map(str, files)], check=False)
    await run.monitor.flush()
    assert sum(run.writer.status().failures.values()) >= 1
    await run.monitor.close()
    assert ledger(store, run.fleet) == reference
    store.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.mark.slow
@pytest.mark.postgres
async def test_postgresql_stopped_for_a_minute(tmp_path: Path, postgres_url: str) -> None:
    """pg_ctlcluster stop … start under the live monitor: 60 s (real time) without a database."""
    ctl = _need("pg_ctlcluster")
    version = min(os.listdir("/etc/postgresql"))
    reference = await undisturbed(
        FlakyStore(f"sqlite:///{tmp_path / 'ref.db'}"), tmp_path / "ref-journal", ROUNDS
    )
    store = FlakyStore(postgres_url, wait_for_writer=1.0)
    run = make_run(store, tmp_path / "journal")
    await run.monitor.start()
    stopped_at = 6
    try:
        for i in range(ROUNDS):
            if i == stopped_at:
                await run.writer.drained()
                await sh([ctl, "--skip-systemctl-redirect", version, "main", "stop"], check=True)
            await play(run, [i], story())
            if i == stopped_at:
                await _until(lambda: run.writer.status().failing is not None, 30)
                await asyncio.sleep(60)  # a minute without PostgreSQL, rounds going on around it
            if i == stopped_at + 10:
                await sh([ctl, "--skip-systemctl-redirect", version, "main", "start"], check=True)
    finally:
        await sh([ctl, "--skip-systemctl-redirect", version, "main", "start"], check=False)
    await run.monitor.flush()
    status = run.writer.status()
    assert status.failures.get("unreachable", 0) >= 1, status
    assert status.replayed >= 10
    await run.monitor.close()
    assert ledger(store, run.fleet) == reference
    store.close()
