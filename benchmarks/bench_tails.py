"""A round where thousands of devices change at once (a district's power cut), as the store writes it.

    python benchmarks/bench_tails.py [--devices 10000] [--history 40] [--runs 3] [--postgres] [--json FILE]

Each run, in a fresh store: every device gets a month of stored history (`--history` outages, as a
timeline written in bulk) and a resume carry at its end; a `FleetState` resumes from those carries
and is fed 30-second rounds: two answered, three unanswered (the third flips every device to
`down`, back-dated: the *cut* round), two answered (the second brings every device back: the
*restore* round, whose tails continue the outage stored open). Each round's tails are written with
`Timelines.write_tails` in one transaction, as the monitor writes them; only that is timed. Last,
the *rebuild*: the restore round's tails written again with `Timelines.replace_many` as carried
rebuilds (what a contract change or retention does). Statements are counted at the cursor (an
executemany is one). The digest covers every stored transition, outage and timeline row, so two
versions of slamon can be checked to store the same thing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from common import OUT, Postgres, remove_sqlite

from slamon.engine.live import FleetState, TailChange
from slamon.engine.timeline import Carry, Outage, OutageEnd, Timeline, Transition
from slamon.model import (
    SECOND,
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
    from_micros,
    to_micros,
)
from slamon.store import Store, TimelineWrite

T_END = to_micros(datetime(2025, 7, 31, tzinfo=UTC))  # where each device's stored history ends
MINUTE = 60 * SECOND
HOURS = 60 * MINUTE
STALE = 5 * MINUTE
PARAMS = '{"degrade_after": 2, "down_after": 3, "stale_after": 300000000, "up_after": 2}'


def make_fleet(n: int) -> Fleet:
    contract = Contract(ContractId("C"), "v", "CNY", "Asia/Shanghai", date(2025, 1, 1), 12, {})
    devices = {
        DeviceId(f"CAM{i:06d}"): Device(
            DeviceId(f"CAM{i:06d}"),
            DeviceKind.CAMERA,
            f"127.2.{i // 250}.{i % 250 + 1}",
            SiteId("S"),
            contract.id,
        )
        for i in range(n)
    }
    return Fleet(Inventory({}, devices), {contract.id: contract})


def history(rng: random.Random, outages: int) -> Timeline:
    """A month of a device's past: `outages` recovered outages, up between them, up at the end."""
    at = T_END - 30 * 24 * 60 * MINUTE
    gaps = sorted(rng.sample(range(1, 30 * 24 * 60 - 30), outages))  # outage starts, minutes in
    transitions = [Transition(at, DeviceState.UP)]
    found = []
    for start in gaps:
        s = at + start * MINUTE
        if s <= transitions[-1].at:
            continue
        e = s + rng.randint(3, 25) * MINUTE
        transitions += [Transition(s, DeviceState.DOWN), Transition(e, DeviceState.UP)]
        found.append(Outage(s, e, False, OutageEnd.RECOVERED, s, e - MINUTE, e))
    transitions.append(Transition(T_END + STALE, DeviceState.UNKNOWN))
    return Timeline(tuple(transitions), tuple(found), T_END)


@contextmanager
def counting(store: Store) -> Iterator[list[int]]:
    """Counts the statements sent to the database (an executemany is one)."""
    count = [0]

    def on_execute(*_: Any) -> None:
        count[0] += 1

    sa.event.listen(store.engine, "before_cursor_execute", on_execute)
    try:
        yield count
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", on_execute)


def digest(store: Store) -> str:
    """The SHA-256 of every stored transition, outage and timeline row, in key order."""
    h = hashlib.sha256()
    with store.begin() as tx:
        for sql in (
            "SELECT device, at, state FROM transitions ORDER BY device, at",
            (
                "SELECT device, start_at, end_at, open, end_reason, first_failure, last_failure, recovered "
                "FROM outages ORDER BY device, start_at"
            ),
            "SELECT device, params, kept_from, carry, firm_until, updated_at FROM timelines ORDER BY device",
        ):
            for row in tx.conn.execute(sa.text(sql)):
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def one_run(url: str, n: int, outages: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    fleet = make_fleet(n)
    store = Store(url)
    try:
        with store.begin() as tx:
            keys = tx.keys.ensure(list(fleet.inventory.devices))
            carries = {k: Carry(False, T_END) for k in keys.values()}
            writes = [TimelineWrite(k, history(rng, outages), PARAMS) for k in keys.values()]
            for i in range(0, len(writes), 2000):
                tx.timelines.replace_many(writes[i : i + 2000], T_END)
            tx.timelines.save_resumes(list(carries.items()))
        state = FleetState(fleet)
        for device, key in keys.items():
            state.restore(device, carries[key], [], [])

        figures: dict[str, Any] = {}
        plan = [
            ("ok", ""),
            ("ok", ""),
            ("fail", ""),
            ("fail", ""),
            ("fail", "cut"),
            ("ok", ""),
            ("ok", "restore"),
        ]
        last: list[TailChange] = []
        for i, (what, label) in enumerate(plan, start=1):
            at = from_micros(T_END + i * 30 * SECOND)
            results = [ProbeResult(d, ProbeKind.ICMP, at, what == "ok") for d in fleet.inventory.devices]
            changes = state.feed(results)
            tails = [(keys[c.device], c.tail, c.since, PARAMS) for c in changes]
            with counting(store) as count:
                started = time.perf_counter()
                with store.begin() as tx:
                    tx.timelines.write_tails(tails, at=to_micros(at))
                spent = time.perf_counter() - started
            if label:
                figures[label] = {"changed": len(changes), "seconds": spent, "statements": count[0]}
                last = changes
        rebuild = [
            TimelineWrite(
                keys[c.device],
                c.tail,
                PARAMS,
                Carry(c.tail.state_at(c.since) is DeviceState.DOWN, c.since),
                T_END,
            )
            for c in last
            if c.since is not None
        ]
        with counting(store) as count:
            started = time.perf_counter()
            with store.begin() as tx:
                tx.timelines.replace_many(rebuild, T_END + HOURS)
            figures["rebuild"] = {
                "changed": len(rebuild),
                "seconds": time.perf_counter() - started,
                "statements": count[0],
            }
        figures["digest"] = digest(store)
        return figures
    finally:
        store.close()


def sqlite_url(out: Path) -> Callable[[], str]:
    db = out / "tails.db"

    def fresh() -> str:
        remove_sqlite(db)
        return f"sqlite:///{db}"

    return fresh


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=10_000)
    p.add_argument("--history", type=int, default=40, help="stored outages per device before the round")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--postgres", action="store_true", help="PostgreSQL (127.0.0.1:5432/test) instead of SQLite"
    )
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    pg = Postgres()
    runs = []
    for _ in range(args.runs):
        if args.postgres:
            schema = f"bench_tails_{uuid.uuid4().hex[:8]}"
            pg.fresh_schema(schema)
            try:
                runs.append(one_run(pg.url(schema), args.devices, args.history, args.seed))
            finally:
                pg.drop_schema(schema)
        else:
            runs.append(one_run(sqlite_url(args.out)(), args.devices, args.history, args.seed))
    backend = "postgresql" if args.postgres else "sqlite"
    import slamon

    print(f"{args.devices:,} devices, {args.history} stored outages each, {backend}, {args.runs} runs")
    print(f"  slamon from {Path(slamon.__file__).parent}")
    summary: dict[str, Any] = {"devices": args.devices, "history": args.history, "backend": backend}
    for phase in ("cut", "restore", "rebuild"):
        seconds = [r[phase]["seconds"] for r in runs]
        first = runs[0][phase]
        summary[phase] = {
            **first,
            "seconds": statistics.median(seconds),
            "min": min(seconds),
            "max": max(seconds),
        }
        print(
            f"  {phase:8} {first['changed']:>7,} tails  {statistics.median(seconds):7.2f} s "
            f"({min(seconds):.2f}–{max(seconds):.2f})  {first['statements']:>7,} statements"
        )
    digests = {r["digest"] for r in runs}
    summary["digest"] = runs[0]["digest"]
    print(f"  stored digest {runs[0]['digest'][:16]}" + ("" if len(digests) == 1 else " (runs differ!)"))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
