"""A monitor to be killed: `python -m tests.service.crash_child DB JOURNAL ROUNDS [FAIL_FROM]` runs
the drive.py story round after round (a FakeClock a minute apart, 20 ms of real time between
rounds, as an idle writer would have), printing each round's number once its write is handed over.
From round FAIL_FROM on the store refuses every write. The test kills it with SIGKILL."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.harness.flaky import FlakyStore
from tests.service.drive import make_run, play, story


async def main(db: str, journal: str, rounds: int, fail_from: int | None) -> None:
    store = FlakyStore(f"sqlite:///{db}")
    run = make_run(store, Path(journal))
    await run.monitor.start()
    for i in range(rounds):
        if fail_from is not None and i == fail_from:
            store.fail("unreachable")
        await play(run, [i], story())
        sys.stdout.write(f"{i}\n")
        sys.stdout.flush()
        await asyncio.sleep(0.02)
    await asyncio.sleep(60)  # waits to be killed


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0], args[1], int(args[2]), int(args[3]) if len(args) > 3 else None))
