"""Each device's stored timeline: transitions, outages, the engine settings they were built with,
the retention carry and the live monitor's resume point."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from slamon.engine.timeline import Carry, Outage, OutageEnd, Timeline, Transition
from slamon.model import DeviceState, Micros
from slamon.store import schema as t
from slamon.store.sql import Part, chunks


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
    }


def _carry_json(carry: Carry) -> str:
    return json.dumps(
        {"reach_down": carry.reach_down, "reach_last": carry.reach_last, "video_bad": carry.video_bad}
    )


class Timelines(Part):
    def params(self) -> dict[int, str]:
        """The engine settings each stored timeline was built with, by device key."""
        return {
            r.device: r.params
            for r in self.conn.execute(sa.select(t.timelines.c.device, t.timelines.c.params))
        }

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
        """Store recomputed timelines: those without a carry replace everything in bulk; those with
        one keep what is stored before it (see replace_timeline)."""
        plain = [w for w in writes if w.carry is None]
        for w in writes:
            if w.carry is not None:
                self.replace(w.key, w.timeline, params=w.params, at=at, carry=w.carry, kept_from=w.kept_from)
        if not plain:
            return
        tr, ou = t.transitions, t.outages
        for part in chunks([w.key for w in plain]):
            self.conn.execute(tr.delete().where(tr.c.device.in_(part)))
            self.conn.execute(ou.delete().where(ou.c.device.in_(part)))
        transitions = [
            {"device": w.key, "at": x.at, "state": x.state.value}
            for w in plain
            for x in w.timeline.transitions
        ]
        if transitions:
            self.conn.execute(tr.insert(), transitions)
        outages = [_outage_row(w.key, o) for w in plain for o in w.timeline.outages]
        if outages:
            self.conn.execute(ou.insert(), outages)
        metas = [
            {
                "device": w.key,
                "params": w.params,
                "firm_until": w.timeline.firm_until,
                "updated_at": at,
                "carry": None,
                "kept_from": w.kept_from,
            }
            for w in plain
        ]
        stmt = self._insert(t.timelines)
        self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["device"],
                set_={
                    c: stmt.excluded[c] for c in ("params", "firm_until", "updated_at", "carry", "kept_from")
                },
            ),
            metas,
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
        """Store a device's recomputed timeline and its retention state. Without `carry` it replaces
        everything; with it, what is stored before `carry.reach_last` stays (see write_tail)."""
        if carry is None:
            self._replace_all(key, tl)
        else:
            self._merge_tail(key, tl, carry.reach_last)
        meta = {
            "params": params,
            "firm_until": tl.firm_until,
            "updated_at": at,
            "carry": None if carry is None else _carry_json(carry),
            "kept_from": kept_from,
        }
        stmt = self._insert(t.timelines).values(device=key, **meta)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["device"], set_=meta))

    def write_tail(self, key: int, tail: Timeline, since: Micros | None, *, params: str, at: Micros) -> None:
        """Store the live tail of a device's timeline, from `since` (the carry it was built on) on;
        the retention state is left alone."""
        if since is None:
            self._replace_all(key, tail)
        else:
            self._merge_tail(key, tail, since)
        meta = {"params": params, "firm_until": tail.firm_until, "updated_at": at}
        stmt = self._insert(t.timelines).values(device=key, **meta)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["device"], set_=meta))

    def write_tails(self, writes: Sequence[tuple[int, Timeline, Micros | None, str]], *, at: Micros) -> None:
        """write_tail for many devices, (key, tail, since, params) each. Tails with no `since` (a
        device's first, or a rebuilt one) replace everything in bulk: a round where thousands of
        devices change at once (a start on a new database, a district's power cut) stays short."""
        if len({w[0] for w in writes}) < len(writes):  # a device twice: in order, one at a time
            for key, tail, since, params in writes:
                self.write_tail(key, tail, since, params=params, at=at)
            return
        whole = [(key, tail, params) for key, tail, since, params in writes if since is None]
        for key, tail, since, params in writes:
            if since is not None:
                self.write_tail(key, tail, since, params=params, at=at)
        if not whole:
            return
        tr, ou = t.transitions, t.outages
        for part in chunks([key for key, _, _ in whole]):
            self.conn.execute(tr.delete().where(tr.c.device.in_(part)))
            self.conn.execute(ou.delete().where(ou.c.device.in_(part)))
        transitions = [
            {"device": key, "at": x.at, "state": x.state.value}
            for key, tail, _ in whole
            for x in tail.transitions
        ]
        if transitions:
            self.conn.execute(tr.insert(), transitions)
        outages = [_outage_row(key, o) for key, tail, _ in whole for o in tail.outages]
        if outages:
            self.conn.execute(ou.insert(), outages)
        stmt = self._insert(t.timelines)
        self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["device"],
                set_={c: stmt.excluded[c] for c in ("params", "firm_until", "updated_at")},
            ),
            [
                {"device": key, "params": params, "firm_until": tail.firm_until, "updated_at": at}
                for key, tail, params in whole
            ],
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

    def save_resumes(self, items: Sequence[tuple[int, Carry]]) -> None:
        """Where each device's engine resumes after a restart: its carry at a firm point."""
        if items:
            self.conn.execute(
                t.timelines.update()
                .where(t.timelines.c.device == sa.bindparam("key"))
                .values(resume=sa.bindparam("resume")),
                [{"key": k, "resume": _carry_json(c)} for k, c in items],
            )

    def resumes(self, keys: Iterable[int]) -> dict[int, Carry]:
        found: dict[int, Carry] = {}
        tl = t.timelines
        for part in chunks(sorted(set(keys))):
            for r in self.conn.execute(
                sa.select(tl.c.device, tl.c.resume).where(tl.c.device.in_(part), tl.c.resume.is_not(None))
            ):
                found[r.device] = Carry(**json.loads(r.resume))
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

    def _replace_all(self, key: int, tl: Timeline) -> None:
        tr, ou = t.transitions, t.outages
        self.conn.execute(tr.delete().where(tr.c.device == key))
        self.conn.execute(ou.delete().where(ou.c.device == key))
        self._insert_timeline(key, list(tl.transitions), list(tl.outages))

    def _merge_tail(self, key: int, tail: Timeline, since: Micros) -> None:
        """Keep what is stored before `since`, take the tail from there, and join the two.

        A stored `unknown` that is the last stored transition and lies before `since` was only where
        the evidence ran out then (later results moved it), so it goes; an `unknown` followed by
        other stored transitions is a real gap and stays. An outage stored as open, or running into
        `since`, is the same outage as the tail's first when that starts at `since` (the carry's
        result): it keeps its start and first failure."""
        tr, ou = t.transitions, t.outages
        transitions = list(tail.transitions)
        outages = list(tail.outages)
        last = self.conn.execute(
            sa.select(tr.c.at, tr.c.state)
            .where(tr.c.device == key, tr.c.at < since)
            .order_by(tr.c.at.desc())
            .limit(2)
        ).all()
        if last and last[0].state == DeviceState.UNKNOWN.value:
            later = self.conn.execute(
                sa.select(sa.func.count()).where(tr.c.device == key, tr.c.at > last[0].at)
            ).scalar()
            if later == 0:  # the very last stored transition: a provisional horizon
                self.conn.execute(tr.delete().where(tr.c.device == key, tr.c.at == last[0].at))
                last = last[1:]
        if transitions and last and last[0].state == transitions[0].state.value:
            transitions = transitions[1:]
        self.conn.execute(tr.delete().where(tr.c.device == key, tr.c.at >= since))
        joined = self.conn.execute(
            sa.select(ou)
            .where(ou.c.device == key, ou.c.start_at <= since, sa.or_(ou.c.open, ou.c.end_at >= since))
            .order_by(ou.c.start_at.desc())
            .limit(1)
        ).first()
        if joined is not None and outages and outages[0].start == since:
            first = outages[0]
            outages[0] = Outage(
                start=joined.start_at,
                end=first.end,
                open=first.open,
                end_reason=first.end_reason,
                first_failure=joined.first_failure
                if joined.first_failure is not None
                else first.first_failure,
                last_failure=first.last_failure if first.last_failure is not None else joined.last_failure,
                recovered=first.recovered,
            )
            self.conn.execute(ou.delete().where(ou.c.device == key, ou.c.start_at == joined.start_at))
        self.conn.execute(ou.delete().where(ou.c.device == key, ou.c.start_at >= since))
        self._insert_timeline(key, transitions, outages)

    def _insert_timeline(self, key: int, transitions: list[Transition], outages: list[Outage]) -> None:
        if transitions:
            self.conn.execute(
                t.transitions.insert(),
                [{"device": key, "at": x.at, "state": x.state.value} for x in transitions],
            )
        if outages:
            self.conn.execute(t.outages.insert(), [_outage_row(key, o) for o in outages])

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
                result[o.device][1].append(
                    Outage(
                        start=o.start_at,
                        end=o.end_at,
                        open=o.open,
                        end_reason=OutageEnd(o.end_reason) if o.end_reason else None,
                        first_failure=o.first_failure,
                        last_failure=o.last_failure,
                        recovered=o.recovered,
                    )
                )
        return {
            k: Timeline(tuple(sorted(trs, key=lambda x: x.at)), tuple(ous))
            for k, (trs, ous) in result.items()
        }

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
