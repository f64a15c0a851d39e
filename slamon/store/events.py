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

    def between(self, kind: str, start: Micros, end: Micros) -> list[Event]:
        """Events of a kind in [start, end), oldest first."""
        rows = self.conn.execute(
            sa.select(t.events.c.at, t.events.c.kind, t.events.c.subject, t.events.c.body)
            .where(t.events.c.kind == kind, t.events.c.at >= start, t.events.c.at < end)
            .order_by(t.events.c.at, t.events.c.id)
        )
        return [Event(r.at, r.kind, r.subject, json.loads(r.body)) for r in rows]
