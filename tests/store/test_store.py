"""The store against SQLite and PostgreSQL: migrations, results, timelines, versions, statements."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest
import sqlalchemy as sa

from slamon.engine.joining import StoredEdge, join_tail
from slamon.engine.timeline import (
    Carry,
    EngineParams,
    Outage,
    OutageEnd,
    Timeline,
    Transition,
    build_timeline,
    carry_before,
)
from slamon.errors import StoreError
from slamon.model import HOUR, DeviceId, DeviceState, to_micros
from slamon.store import ResultColumns, ResultConflict, ResultsLetGo, Store, TimelineWrite
from slamon.store.blocks import NO_RTT
from slamon.store.schema import SCHEMA_REVISION
from tests.engine.test_joining import Results

T0 = to_micros(datetime(2025, 7, 1, tzinfo=UTC))
MIN = 60_000_000


def cols(device: int, times: list[int], ok: list[int], kind: int = 0, rtt: int = 500) -> ResultColumns:
    n = len(times)
    return ResultColumns(
        np.full(n, device, np.int32),
        np.full(n, kind, np.uint8),
        np.array(times, np.int64),
        np.array(ok, np.uint8),
        np.zeros(n, np.uint32),
        np.array([rtt if o else NO_RTT for o in ok], np.uint32),
        np.arange(2, n + 2, dtype=np.uint32),
    )


def test_a_new_database_is_created_at_the_current_schema(store: Store) -> None:
    with store.begin() as tx:
        rev = tx.conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert rev == SCHEMA_REVISION
    Store(store.url).close()  # opening again is a no-op


def test_an_older_database_is_upgraded_and_keeps_its_data(store_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from slamon.store.database import MIGRATIONS

    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(sa.text("INSERT INTO device_keys (device) VALUES ('CAM1')"))
    engine.dispose()
    s = Store(store_url)
    with s.begin() as tx:
        assert tx.conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_REVISION
        assert tx.keys.find([DeviceId("CAM1")]) == {"CAM1": 1}
        tx.versions.cache_fleet("k", "{}", 1)
        assert tx.versions.cached_fleet("k") == "{}"
    s.close()


def test_a_database_from_a_newer_slamon_is_refused(store: Store) -> None:
    with store.begin() as tx:
        tx.conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="schema revision 9999 is newer than this slamon knows"):
        Store(store.url)


def test_an_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(
        StoreError, match=r"cannot open database postgresql\+psycopg://slamon:\*\*\*@127.0.0.1:1/x"
    ):
        Store("postgresql+psycopg://slamon:secret@127.0.0.1:1/x?connect_timeout=2")


def test_device_keys_are_stable(store: Store) -> None:
    with store.begin() as tx:
        first = tx.keys.ensure([DeviceId("A"), DeviceId("B")])
    with store.begin() as tx:
        again = tx.keys.ensure([DeviceId("B"), DeviceId("C")])
        assert tx.keys.ids(again.values()) == {v: k for k, v in again.items()}
    assert again["B"] == first["B"]
    assert len({*first.values(), again["C"]}) == 3


def test_results_merge_idempotently_across_hours(store: Store) -> None:
    times = [T0 + i * MIN for i in range(150)]  # three hourly blocks
    oks = [1] * 150
    with store.begin() as tx:
        report = tx.results.merge(cols(1, times, oks))
        assert (report.added, report.repeated) == (150, 0)
        assert report.earliest == {1: T0}
    with store.begin() as tx:
        again = tx.results.merge(cols(1, times[::-1], oks))  # any order
        assert (again.added, again.repeated) == (0, 150)
        more = tx.results.merge(cols(1, [T0 + 30 * MIN + 1], [0]))  # between two stored results
        assert (more.added, more.repeated) == (1, 0)
        got = tx.results.of_device(1)
    assert got.reach_time.tolist() == sorted([*times, T0 + 30 * MIN + 1])
    assert got.reach_ok.sum() == 150
    with store.begin() as tx:
        hours = tx.results.rollups(1, T0, T0 + 3 * HOUR)
    assert [(h["n"], h["n_ok"]) for h in hours] == [(61, 60), (60, 60), (30, 30)]
    assert hours[0]["rtt_sum_us"] == 60 * 500


def test_a_result_that_disagrees_with_a_stored_one_is_refused_and_changes_nothing(store: Store) -> None:
    with store.begin() as tx:
        tx.results.merge(cols(1, [T0, T0 + MIN], [1, 1]))
    with pytest.raises(ResultConflict) as err, store.begin() as tx:
        tx.results.merge(cols(1, [T0 + 2 * MIN, T0 + MIN], [1, 0]))
    assert (err.value.device, err.value.time, err.value.line) == (1, T0 + MIN, 3)
    with store.begin() as tx:
        assert tx.results.of_device(1).reach_time.tolist() == [T0, T0 + MIN]  # the whole batch rolled back


def test_disagreeing_results_inside_one_batch_name_both_lines(store: Store) -> None:
    with pytest.raises(ResultConflict) as err, store.begin() as tx:
        tx.results.merge(cols(1, [T0, T0], [1, 0]))
    assert (err.value.line, err.value.other_line) == (3, 2)


def test_timelines_replace_and_load_by_window(store: Store) -> None:
    tl = build_timeline(
        [T0 + i * MIN for i in range(10)],
        [True, True, False, False, False, True, True, True, True, True],
        [],
        [],
        EngineParams(),
    )
    with store.begin() as tx:
        tx.timelines.replace(7, tl, params="{}", at=T0)
        tx.timelines.replace(7, tl, params="{}", at=T0)  # replacing is idempotent
    with store.begin() as tx:
        got = tx.timelines.load([7, 8], T0 + 3 * MIN, T0 + HOUR)
    assert got[8] == Timeline((), ())
    assert got[7].transitions == (
        Transition(T0 + 2 * MIN, DeviceState.DOWN),
        Transition(T0 + 5 * MIN, DeviceState.UP),
        Transition(T0 + 9 * MIN + 5 * MIN, DeviceState.UNKNOWN),
    )
    assert got[7].outages == (
        Outage(
            T0 + 2 * MIN, T0 + 5 * MIN, False, OutageEnd.RECOVERED, T0 + 2 * MIN, T0 + 4 * MIN, T0 + 5 * MIN
        ),
    )
    with store.begin() as tx:
        later = tx.timelines.load([7], T0 + 6 * MIN, T0 + HOUR)
        assert later[7].outages == ()
        assert tx.timelines.earliest_outage_start([7], T0 + 3 * MIN, T0 + HOUR) == T0 + 2 * MIN


def test_results_before_what_retention_let_go_are_refused(store: Store) -> None:
    with store.begin() as tx:
        tx.results.merge(cols(1, [T0 + 2 * HOUR], [1]))
        tx.timelines.replace(1, Timeline((), ()), params="{}", at=T0)
        tx.timelines.set_retention(1, kept_from=T0 + 2 * HOUR, carry=Carry(False, T0 + HOUR), at=T0)
    with pytest.raises(ResultsLetGo) as err, store.begin() as tx:
        tx.results.merge(cols(1, [T0 + 3 * HOUR, T0 + HOUR], [1, 1]))
    assert (err.value.line, err.value.kept_from) == (3, T0 + 2 * HOUR)


def test_the_schema_revision_constant_is_the_alembic_head() -> None:
    from alembic.script import ScriptDirectory

    from slamon.store.database import MIGRATIONS
    from slamon.store.schema import SCHEMA_REVISION

    assert ScriptDirectory(str(MIGRATIONS)).get_current_head() == SCHEMA_REVISION


def test_live_parts_append_merge_on_import_and_compact(store: Store) -> None:
    with store.begin() as tx:
        tx.results.merge(cols(1, [T0, T0 + MIN], [1, 1]))
        tx.results.append(cols(1, [T0 + 2 * MIN], [0]), part=100)
        tx.results.append(cols(1, [T0 + 3 * MIN, T0 + HOUR + MIN], [1, 1]), part=101)
        assert tx.results.of_device(1).reach_time.tolist() == [
            T0,
            T0 + MIN,
            T0 + 2 * MIN,
            T0 + 3 * MIN,
            T0 + HOUR + MIN,
        ]
        assert [(h["n"], h["n_ok"]) for h in tx.results.rollups(1, T0, T0 + 2 * HOUR)] == [(4, 3), (1, 1)]
        # an import into an hour stored in parts merges them all into part 0
        report = tx.results.merge(cols(1, [T0 + 2 * MIN, T0 + 4 * MIN], [0, 1]))
        assert (report.added, report.repeated) == (1, 1)
        parts = tx.conn.execute(
            sa.text("SELECT hour, part FROM result_blocks WHERE device = 1 ORDER BY hour, part")
        ).all()
        assert [p for _, p in parts] == [0, 101]
        assert tx.results.compact(T0 + 2 * HOUR) == 1
        parts = tx.conn.execute(sa.text("SELECT part FROM result_blocks WHERE device = 1")).scalars().all()
        assert parts == [0, 0]
        assert len(tx.results.of_device(1).reach_time) == 6


def test_resume_carries_round_trip(store: Store) -> None:
    with store.begin() as tx:
        tx.timelines.replace(3, Timeline((), ()), params="{}", at=T0)
        tx.timelines.save_resumes([(3, Carry(True, T0 + MIN, False))])
        assert tx.timelines.resumes([3, 4]) == {3: Carry(True, T0 + MIN, False)}


def test_write_tails_in_bulk_equals_one_at_a_time(store: Store) -> None:
    """The monitor writes a round's tails together; new tails go in bulk, continued ones merge."""
    params = EngineParams(3, 2, 2, 5 * MIN)
    reach = [T0 + i * MIN for i in range(8)]
    down = build_timeline(reach, [1, 0, 0, 0, 0, 1, 1, 1], [], [], params)
    up = build_timeline(reach, [1] * 8, [], [], params)
    later = build_timeline(
        [T0 + 9 * MIN, T0 + 10 * MIN], [1, 1], [], [], params, Carry(False, T0 + 7 * MIN, False)
    )
    with store.begin() as tx:
        for key in (11, 21):  # something stored before, which a whole new tail replaces
            tx.timelines.write_tail(key, up, None, params="old", at=T0)
        tx.timelines.write_tail(13, down, None, params="p", at=T0)
        tx.timelines.write_tail(23, down, None, params="p", at=T0)
    with store.begin() as tx:  # one at a time
        tx.timelines.write_tail(11, down, None, params="p", at=T0 + HOUR)
        tx.timelines.write_tail(12, up, None, params="p", at=T0 + HOUR)
        tx.timelines.write_tail(13, later, T0 + 7 * MIN, params="p", at=T0 + HOUR)
    with store.begin() as tx:  # in bulk
        tx.timelines.write_tails(
            [(21, down, None, "p"), (22, up, None, "p"), (23, later, T0 + 7 * MIN, "p")], at=T0 + HOUR
        )
    with store.begin() as tx:
        one = tx.timelines.load([11, 12, 13], -(1 << 62), 1 << 62)
        bulk = tx.timelines.load([21, 22, 23], -(1 << 62), 1 << 62)
        metas = tx.timelines.metas([11, 12, 13, 21, 22, 23])
    assert [bulk[k + 10] for k in (11, 12, 13)] == [one[k] for k in (11, 12, 13)]
    assert one[11].outages, "the replaced tail's outage is stored"
    assert [metas[k + 10] for k in (11, 12, 13)] == [metas[k] for k in (11, 12, 13)]
    assert metas[21].params == "p"


def _scenario(rnd: random.Random, params: EngineParams) -> tuple[Timeline, Timeline, int | None]:
    """A device's stored timeline and a later tail with the `since` it starts at (None: whole)."""
    plan = [
        (rnd.choice(["ok", "ok", "fail", "video-ok", "video-bad", "gap"]), rnd.randint(0, 2))
        for _ in range(rnd.randint(1, 12))
        for _ in range(rnd.randint(1, 5))
    ]
    results = Results.of(plan)
    n = len(results.items)
    stored_n = rnd.randint(0, n)
    stored = results.timeline(stored_n, params)
    known = rnd.randint(stored_n, n)
    firm = results.timeline(known, params).firm_until
    points = [at + 1 for at in results.columns(known)[0] if firm is not None and at < firm]
    if not points or rnd.random() < 0.1:
        return stored, results.timeline(n, params), None
    carry = carry_before(*results.columns(known), params, rnd.choice(points))
    assert carry is not None
    return stored, results.timeline(n, params, carry), carry.reach_last


@pytest.mark.parametrize("how", ["write_tails", "replace_many"])
def test_tails_written_in_bulk_join_as_join_tail_says(store: Store, how: str) -> None:
    """1,200 devices (more than one chunk of the store's queries), some given twice in the same
    call: what the store holds afterwards is each stored timeline with its joins applied in order."""
    rnd = random.Random(20250701)
    params = EngineParams(3, 2, 2, 45_000_000)
    stored: dict[int, Timeline] = {}
    writes: list[tuple[int, Timeline, int | None]] = []
    for key in range(1, 1201):
        stored[key], tail, since = _scenario(rnd, params)
        writes.append((key, tail, since))
        if key % 7 == 0:  # a second, later tail of the same device in the same call
            _, again, since2 = _scenario(random.Random(key), params)
            writes.append((key, again, since2))
    with store.begin() as tx:
        tx.timelines.write_tails([(k, tl, None, "p") for k, tl in stored.items()], at=T0)
    with store.begin() as tx:
        if how == "write_tails":
            tx.timelines.write_tails([(k, tl, since, "q") for k, tl, since in writes], at=T0 + HOUR)
        else:
            tx.timelines.replace_many(
                [
                    TimelineWrite(k, tl, "q", None if since is None else Carry(False, since), T0)
                    for k, tl, since in writes
                ],
                T0 + HOUR,
            )
    want = dict(stored)
    for key, tail, since in writes:
        want[key] = (
            tail
            if since is None
            else join_tail(StoredEdge.of(want[key], since), tail, since).applied_to(want[key])
        )
    with store.begin() as tx:
        got = tx.timelines.load(list(want), -(1 << 62), 1 << 62)
        metas = tx.timelines.metas(want)
    assert {k: (g.transitions, g.outages) for k, g in got.items()} == {
        k: (w.transitions, w.outages) for k, w in want.items()
    }
    assert {m.params for m in metas.values()} == {"q"}
    last = {key: (tail, since) for key, tail, since in writes}
    assert {k: m.firm_until for k, m in metas.items()} == {k: tl.firm_until for k, (tl, _) in last.items()}
    if how == "replace_many":
        assert {k: m.carry for k, m in metas.items()} == {
            k: None if since is None else Carry(False, since) for k, (_, since) in last.items()
        }
