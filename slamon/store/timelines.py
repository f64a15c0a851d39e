"""Each device's stored timeline: transitions, outages, the engine settings they were built with,
the retention carry and the live monitor's resume point."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from slamon.engine.joining import NO_EDGE, Join, StoredEdge, join_tail
from slamon.engine.timeline import Carry, Outage, OutageEnd, Timeline, Transition
from slamon.model import DeviceState, Micros
from slamon.store import schema as t
from slamon.store.sql import WHOLE_TABLE_FROM, Part, chunks

W = TypeVar("W")


@dataclass(frozen=True, slots=True)
class TimelineMeta:
    params: str
    kept_from: Micros | None
    carry: Carry | None
    firm_until: Micros | None


@dataclass(frozen=True, slots=True)
class TimelineWrite:
    """A device's recomputed timeline, with the engine settings and retention state it was built from."""

    key: int
    timeline: Timeline
    params: str
    carry: Carry | None = None
    kept_from: Micros | None = None


def _outage_row(key: int, o: Outage) -> dict[str, Any]:
    return {
        "device": key,
        "start_at": o.start,
        "end_at": o.end,
        "open": o.open,
        "end_reason": o.end_reason.value if o.end_reason else None,
        "first_failure": o.first_failure,
        "last_failure": o.last_failure,
        "recovered": o.recovered,
        "gaps": json.dumps([[a, b] for a, b in o.gaps]) if o.gaps else None,
    }


def _outage(r: sa.Row[Any]) -> Outage:
    return Outage(
        start=r.start_at,
        end=r.end_at,
        open=r.open,
        end_reason=OutageEnd(r.end_reason) if r.end_reason else None,
        first_failure=r.first_failure,
        last_failure=r.last_failure,
        recovered=r.recovered,
        gaps=tuple((int(a), int(b)) for a, b in json.loads(r.gaps)) if r.gaps else (),
    )


def _pairs(part: Sequence[tuple[int, Micros]]) -> sa.CTE:
    """(device, since) pairs as a table to join. The integers are written into the statement (each
    coerced by int(), so nothing else can get in): a bound parameter per value cost more to build
    and compile than the queries took to run."""
    rows = ", ".join(f"({int(key)}, {int(since)})" for key, since in part)
    sql = f"SELECT v.column1 AS device, v.column2 AS since FROM (VALUES {rows}) AS v"  # noqa: S608
    return sa.text(sql).columns(sa.column("device", sa.Integer), sa.column("since", sa.BigInteger)).cte("s")


_FOREVER = sa.literal(-(1 << 63), sa.BigInteger)  # before any instant: no second-last transition


def _last_two_before(pairs: sa.CTE) -> sa.Select[Any]:
    """Each device's last two transitions before its `since`, and whether any is stored from there on."""
    tr, later, second = t.transitions, t.transitions.alias("later"), t.transitions.alias("second")
    second_last = (
        sa.select(second.c.at)
        .where(second.c.device == pairs.c.device, second.c.at < pairs.c.since)
        .order_by(second.c.at.desc())
        .limit(1)
        .offset(1)
        .scalar_subquery()
    )
    more = sa.exists().where(later.c.device == pairs.c.device, later.c.at >= pairs.c.since)
    return (
        sa.select(tr.c.device, tr.c.at, tr.c.state, more.label("more"))
        .join_from(pairs, tr, tr.c.device == pairs.c.device)
        .where(tr.c.at < pairs.c.since, tr.c.at >= sa.func.coalesce(second_last, _FOREVER))
        .order_by(tr.c.device, tr.c.at)
    )


def _outage_into(pairs: sa.CTE) -> sa.Select[Any]:
    """Each device's latest-starting outage from at or before its `since` that is open or ends at
    or after it."""
    ou, o2 = t.outages, t.outages.alias("o2")
    latest = (
        sa.select(o2.c.start_at)
        .where(
            o2.c.device == pairs.c.device,
            o2.c.start_at <= pairs.c.since,
            sa.or_(o2.c.open, o2.c.end_at >= pairs.c.since),
        )
        .order_by(o2.c.start_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.select(ou).join_from(pairs, ou, sa.and_(ou.c.device == pairs.c.device, ou.c.start_at == latest))


def _waves(items: Sequence[W], key: Callable[[W], int]) -> list[list[W]]:
    """The items split so that each device is in a wave at most once, in order: a device's later
    write lands after its earlier one, and a wave can be written in bulk."""
    waves: list[list[W]] = []
    seen: dict[int, int] = {}
    for item in items:
        n = seen.get(key(item), 0)
        seen[key(item)] = n + 1
        if n == len(waves):
            waves.append([])
        waves[n].append(item)
    return waves


def _carry_json(carry: Carry, since: Micros | None = None) -> str:
    doc: dict[str, object] = {
        "reach_down": carry.reach_down,
        "reach_last": carry.reach_last,
        "video_bad": carry.video_bad,
    }
    if carry.last_failure is not None:  # (older carries have none: it defaults to None)
        doc["last_failure"] = carry.last_failure
    if since is not None:  # a resume point: since when the device has been in its state
        doc["since"] = since
    return json.dumps(doc)


class Timelines(Part):
    def params(self) -> dict[int, str]:
        """The engine settings each stored timeline was built with, by device key."""
        return {
            r.device: r.params
            for r in self.conn.execute(sa.select(t.timelines.c.device, t.timelines.c.params))
        }

    def without_resume(self) -> set[int]:
        """The devices with a stored timeline but no resume point (history imported, or rebuilt,
        before resume points were stored)."""
        tl = t.timelines
        return set(self.conn.execute(sa.select(tl.c.device).where(tl.c.resume.is_(None))).scalars())

    def meta(self, key: int) -> TimelineMeta | None:
        return self.metas([key]).get(key)

    def metas(self, keys: Iterable[int]) -> dict[int, TimelineMeta]:
        found: dict[int, TimelineMeta] = {}
        for part in chunks(sorted(set(keys))):
            for r in self.conn.execute(sa.select(t.timelines).where(t.timelines.c.device.in_(part))):
                carry = None if r.carry is None else Carry(**json.loads(r.carry))
                found[r.device] = TimelineMeta(r.params, r.kept_from, carry, r.firm_until)
        return found

    def replace_many(self, writes: Sequence[TimelineWrite], at: Micros) -> None:
        """Store recomputed timelines and their retention state, in bulk: those without a carry
        replace everything stored; those with one keep what is stored before `carry.reach_last`
        and join the rest there (engine.joining)."""
        for wave in _waves(writes, lambda w: w.key):
            self._write([(w.key, w.timeline, None if w.carry is None else w.carry.reach_last) for w in wave])
            self._upsert_metas(
                [
                    {
                        "device": w.key,
                        "params": w.params,
                        "firm_until": w.timeline.firm_until,
                        "updated_at": at,
                        "carry": None if w.carry is None else _carry_json(w.carry),
                        "kept_from": w.kept_from,
                    }
                    for w in wave
                ]
            )

    def replace(
        self,
        key: int,
        tl: Timeline,
        *,
        params: str,
        at: Micros,
        carry: Carry | None = None,
        kept_from: Micros | None = None,
    ) -> None:
        """Store a device's recomputed timeline and its retention state (see replace_many)."""
        self.replace_many([TimelineWrite(key, tl, params, carry, kept_from)], at)

    def write_tail(self, key: int, tail: Timeline, since: Micros | None, *, params: str, at: Micros) -> None:
        """Store the live tail of a device's timeline (see write_tails)."""
        self.write_tails([(key, tail, since, params)], at=at)

    def write_tails(self, writes: Sequence[tuple[int, Timeline, Micros | None, str]], *, at: Micros) -> None:
        """Store live tails, (key, tail, since, params) each: from `since` (the carry the tail was
        built on) on, joined to what is stored before it; with no `since` (a device's first tail,
        or a rebuilt one) the tail replaces everything. The retention state is left alone. All in
        bulk, so a round where thousands of devices change at once (a start on a new database, a
        district's power cut) stays short; a device given twice is written in order."""
        for wave in _waves(writes, lambda w: w[0]):
            self._write([(key, tail, since) for key, tail, since, _ in wave])
            self._upsert_metas(
                [
                    {"device": key, "params": params, "firm_until": tail.firm_until, "updated_at": at}
                    for key, tail, _, params in wave
                ]
            )

    def last_changes(self, keys: Iterable[int]) -> dict[int, tuple[Micros, DeviceState]]:
        """Each device's latest stored transition into a known state: when its current state began."""
        tr = t.transitions
        found: dict[int, tuple[Micros, DeviceState]] = {}
        for part in chunks(sorted(set(keys))):
            latest = (
                sa.select(tr.c.device, sa.func.max(tr.c.at).label("at"))
                .where(tr.c.device.in_(part), tr.c.state != DeviceState.UNKNOWN.value)
                .group_by(tr.c.device)
                .subquery()
            )
            rows = self.conn.execute(
                sa.select(tr.c.device, tr.c.at, tr.c.state).join(
                    latest, sa.and_(tr.c.device == latest.c.device, tr.c.at == latest.c.at)
                )
            )
            found.update({r.device: (r.at, DeviceState(r.state)) for r in rows})
        return found

    def save_resumes(self, items: Sequence[tuple[int, Carry] | tuple[int, Carry, Micros | None]]) -> None:
        """Where each device's engine resumes after a restart: its carry at a firm point, and, when
        the live monitor knows it, since when the device has been in its current state."""
        if items:
            self.conn.execute(
                t.timelines.update()
                .where(t.timelines.c.device == sa.bindparam("key"))
                .values(resume=sa.bindparam("resume")),
                [{"key": item[0], "resume": _carry_json(item[1], *item[2:])} for item in items],
            )

    def resumes(self, keys: Iterable[int]) -> dict[int, Carry]:
        return {k: carry for k, (carry, _) in self.resume_points(keys).items()}

    def resume_points(self, keys: Iterable[int]) -> dict[int, tuple[Carry, Micros | None]]:
        """Each device's resume carry and since when it has been in its state (None: not recorded)."""
        found: dict[int, tuple[Carry, Micros | None]] = {}
        wanted = set(keys)
        if len(wanted) > WHOLE_TABLE_FROM:  # a fleet at start: one pass, rows as the driver gives them
            rows: Iterable[Any] = self.conn.exec_driver_sql(
                "SELECT device, resume FROM timelines WHERE resume IS NOT NULL"
            ).all()
        else:
            tl = t.timelines
            rows = [
                r
                for part in chunks(sorted(wanted))
                for r in self.conn.execute(
                    sa.select(tl.c.device, tl.c.resume).where(tl.c.device.in_(part), tl.c.resume.is_not(None))
                )
            ]
        for device, resume in rows:
            if device in wanted:
                doc = json.loads(resume)
                since = doc.pop("since", None)
                found[device] = (Carry(**doc), since)
        return found

    def move_horizons(self, moves: Sequence[tuple[int, Micros, Micros | None]]) -> None:
        """(key, horizon, last failure) per device whose evidence went on without changing its state:
        its closing `unknown` moves to the new horizon, and so does the end of an open outage."""
        if not moves:
            return
        self.conn.execute(
            sa.text(
                "UPDATE transitions SET at = :horizon WHERE device = :key AND state = 'unknown' "
                "AND at = (SELECT max(at) FROM transitions WHERE device = :key)"
            ),
            [{"key": k, "horizon": h} for k, h, _ in moves],
        )
        self.conn.execute(
            sa.text(
                "UPDATE outages SET end_at = :horizon, last_failure = COALESCE(:last, last_failure) "
                "WHERE device = :key AND open"
            ),
            [{"key": k, "horizon": h, "last": lf} for k, h, lf in moves],
        )

    def _write(self, wave: Sequence[tuple[int, Timeline, Micros | None]]) -> None:
        """Write the timelines of distinct devices, (key, timeline, since) each: with no `since`
        it replaces everything stored, with one it is joined at `since` (engine.joining)."""
        tr, ou = t.transitions, t.outages
        whole = [(key, tl) for key, tl, since in wave if since is None]
        for part in chunks([key for key, _ in whole]):
            self.conn.execute(tr.delete().where(tr.c.device.in_(part)))
            self.conn.execute(ou.delete().where(ou.c.device.in_(part)))
        tails = [(key, tl, since) for key, tl, since in wave if since is not None]
        edges = self._edges([(key, since) for key, _, since in tails])
        joins = [(key, join_tail(edges.get(key, NO_EDGE), tl, since)) for key, tl, since in tails]
        self._delete_joined(joins)
        transitions = [(key, x) for key, tl in whole for x in tl.transitions]
        transitions += [(key, x) for key, j in joins for x in j.transitions]
        if transitions:
            self.conn.execute(
                tr.insert(), [{"device": key, "at": x.at, "state": x.state.value} for key, x in transitions]
            )
        outages = [_outage_row(key, o) for key, tl in whole for o in tl.outages]
        outages += [_outage_row(key, o) for key, j in joins for o in j.outages]
        if outages:
            self.conn.execute(ou.insert(), outages)

    def _edges(self, items: Sequence[tuple[int, Micros]]) -> dict[int, StoredEdge]:
        """What is stored just before `since` of each (key, since): its last two transitions,
        whether the last is the very last stored, and the outage open or running into `since`.
        Two queries per chunk of devices, each an index seek or two per device."""
        before: dict[int, list[Transition]] = {}
        final: dict[int, bool] = {}
        outage: dict[int, Outage] = {}
        for part in chunks(items):
            pairs = _pairs(part)
            for r in self.conn.execute(_last_two_before(pairs)):
                before.setdefault(r.device, []).append(Transition(r.at, DeviceState(r.state)))
                final[r.device] = not r.more
            for r in self.conn.execute(_outage_into(pairs)):
                outage[r.device] = _outage(r)
        return {
            key: StoredEdge(tuple(before.get(key, ())), final.get(key, False), outage.get(key))
            for key, _ in items
            if key in before or key in outage
        }

    def _delete_joined(self, joins: Sequence[tuple[int, Join]]) -> None:
        """Delete what each join replaces, one executemany per kind of deletion."""
        if not joins:
            return
        tr, ou = t.transitions, t.outages
        key: sa.BindParameter[int] = sa.bindparam("key")
        since: sa.BindParameter[int] = sa.bindparam("since")
        at: sa.BindParameter[int] = sa.bindparam("at")
        gone = [{"key": k, "at": j.drop_transition} for k, j in joins if j.drop_transition is not None]
        if gone:
            self.conn.execute(tr.delete().where(tr.c.device == key, tr.c.at == at), gone)
        cut = [{"key": k, "since": j.since} for k, j in joins]
        self.conn.execute(tr.delete().where(tr.c.device == key, tr.c.at >= since), cut)
        continued = [{"key": k, "at": j.drop_outage} for k, j in joins if j.drop_outage is not None]
        if continued:
            self.conn.execute(ou.delete().where(ou.c.device == key, ou.c.start_at == at), continued)
        self.conn.execute(ou.delete().where(ou.c.device == key, ou.c.start_at >= since), cut)

    def _upsert_metas(self, rows: list[dict[str, Any]]) -> None:
        """Insert or update each device's timeline row with the columns given."""
        if not rows:
            return
        stmt = self._insert(t.timelines)
        columns = [c for c in rows[0] if c != "device"]
        self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["device"], set_={c: stmt.excluded[c] for c in columns}
            ),
            rows,
        )

    def set_retention(self, key: int, *, kept_from: Micros, carry: Carry, at: Micros) -> None:
        """Record that results before `kept_from` are gone and where the engine resumes."""
        self.conn.execute(
            t.timelines.update()
            .where(t.timelines.c.device == key)
            .values(kept_from=kept_from, updated_at=at, carry=_carry_json(carry))
        )

    def load(
        self, keys: Sequence[int], start: Micros, end: Micros, *, outages_from: Micros | None = None
    ) -> dict[int, Timeline]:
        """Transitions in [start, end) plus the one in force at `start`; outages that overlap
        [outages_from or start, end) or end inside it."""
        tr, ou = t.transitions, t.outages
        lo = start if outages_from is None else outages_from
        result: dict[int, tuple[list[Transition], list[Outage]]] = {k: ([], []) for k in keys}
        for part in chunks(sorted(set(keys))):
            latest = (
                sa.select(tr.c.device, sa.func.max(tr.c.at).label("at"))
                .where(tr.c.device.in_(part), tr.c.at < start)
                .group_by(tr.c.device)
                .subquery()
            )
            lead = self.conn.execute(
                sa.select(tr.c.device, tr.c.at, tr.c.state).join(
                    latest, sa.and_(tr.c.device == latest.c.device, tr.c.at == latest.c.at)
                )
            )
            rows = self.conn.execute(
                sa.select(tr.c.device, tr.c.at, tr.c.state)
                .where(tr.c.device.in_(part), tr.c.at >= start, tr.c.at < end)
                .order_by(tr.c.device, tr.c.at)
            )
            for r in [*lead, *rows]:
                result[r.device][0].append(Transition(r.at, DeviceState(r.state)))
            orows = self.conn.execute(
                sa.select(ou)
                .where(ou.c.device.in_(part), ou.c.end_at >= lo, ou.c.start_at < end)
                .order_by(ou.c.device, ou.c.start_at)
            )
            for o in orows:
                result[o.device][1].append(_outage(o))
        return {
            k: Timeline(tuple(sorted(trs, key=lambda x: x.at)), tuple(ous))
            for k, (trs, ous) in result.items()
        }

    def outages_between(
        self, start: Micros, end: Micros, keys: Sequence[int] | None = None
    ) -> dict[int, list[Outage]]:
        """Outages that overlap [start, end) or end inside it, by device key (of these devices, or
        of all): a fleet-wide question is read by time through the end_at index, so it costs what
        it finds, not what the fleet holds."""
        ou = t.outages
        found: dict[int, list[Outage]] = {}
        window = (ou.c.end_at >= start, ou.c.start_at < end)
        if keys is None:
            queries = [sa.select(ou).where(*window)]
        else:
            queries = [
                sa.select(ou).where(ou.c.device.in_(part), *window) for part in chunks(sorted(set(keys)))
            ]
        for query in queries:
            for o in self.conn.execute(query.order_by(ou.c.device, ou.c.start_at)):
                found.setdefault(o.device, []).append(_outage(o))
        return found

    def earliest_outage_start(self, keys: Sequence[int], start: Micros, end: Micros) -> Micros | None:
        """The earliest start among outages of these devices that overlap or end in [start, end)."""
        ou = t.outages
        found: list[Micros] = []
        for part in chunks(sorted(set(keys))):
            v = self.conn.execute(
                sa.select(sa.func.min(ou.c.start_at)).where(
                    ou.c.device.in_(part), ou.c.end_at >= start, ou.c.start_at < end
                )
            ).scalar()
            if v is not None:
                found.append(int(v))
        return min(found) if found else None
