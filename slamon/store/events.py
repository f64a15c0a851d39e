"""The `events` table: what SNMP saw that the probe results do not hold (port states as they
changed, reboots, suspected power cuts), appended by the live writer and read back as evidence."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from slamon.canonical import canonical_json
from slamon.model import Event, Micros
from slamon.store import schema as t
from slamon.store.sql import Part

__all__ = ["Event", "Events"]


class Events(Part):
    def append(self, events: Sequence[Event]) -> None:
        if events:
            self.conn.execute(
                t.events.insert(),
                [
                    {
                        "at": e.at,
                        "kind": e.kind,
                        "subject": e.subject,
                        "body": canonical_json(dict(e.body)).decode(),
                    }
                    for e in events
                ],
            )

    def of(self, kind: str, subjects: Iterable[str], until: Micros | None = None) -> list[Event]:
        """Events of a kind about some subjects, oldest first (up to `until`, inclusive)."""
        wanted = sorted(set(subjects))
        if not wanted:
            return []
        query = sa.select(t.events.c.at, t.events.c.kind, t.events.c.subject, t.events.c.body).where(
            t.events.c.kind == kind, t.events.c.subject.in_(wanted)
        )
        if until is not None:
            query = query.where(t.events.c.at <= until)
        rows = self.conn.execute(query.order_by(t.events.c.at, t.events.c.id))
        return [Event(r.at, r.kind, r.subject, json.loads(r.body)) for r in rows]

    def port_history(self, switches: Iterable[str], since: Micros, until: Micros) -> list[Event]:
        """The port events of some switches that say what their ports were from `since` to
        `until` (inclusive): from each switch's latest whole table (`ports`) at or before `since`
        (or its first event), oldest first. Whole tables are written at least daily, so this reads
        about a day before `since`, not the switch's history."""
        wanted = sorted(set(switches))
        if not wanted:
            return []
        e = t.events
        marks = dict(
            self.conn.execute(
                sa.select(e.c.subject, sa.func.max(e.c.at))
                .where(e.c.kind == "ports", e.c.subject.in_(wanted), e.c.at <= since)
                .group_by(e.c.subject)
            ).all()
        )
        lowest = min(marks.values()) if len(marks) == len(wanted) else None
        query = sa.select(e.c.at, e.c.kind, e.c.subject, e.c.body).where(
            e.c.kind.in_(("port", "ports")), e.c.subject.in_(wanted), e.c.at <= until
        )
        if lowest is not None:
            query = query.where(e.c.at >= lowest)
        rows = self.conn.execute(query.order_by(e.c.at, e.c.id))
        return [
            Event(r.at, r.kind, r.subject, json.loads(r.body))
            for r in rows
            if r.at >= marks.get(r.subject, r.at)
        ]

    def between(self, kind: str, start: Micros, end: Micros) -> list[Event]:
        """Events of a kind in [start, end), oldest first."""
        rows = self.conn.execute(
            sa.select(t.events.c.at, t.events.c.kind, t.events.c.subject, t.events.c.body)
            .where(t.events.c.kind == kind, t.events.c.at >= start, t.events.c.at < end)
            .order_by(t.events.c.at, t.events.c.id)
        )
        return [Event(r.at, r.kind, r.subject, json.loads(r.body)) for r in rows]
