"""A small integer per device id, so results and timelines stay compact."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from slamon.model import DeviceId
from slamon.store import schema as t
from slamon.store.sql import WHOLE_TABLE_FROM, Part, chunks


class DeviceKeys(Part):
    def find(self, ids: Iterable[DeviceId]) -> dict[DeviceId, int]:
        """The keys these ids already have (an id never stored has none)."""
        return self._lookup(t.device_keys.c.device, t.device_keys.c.key, ids)

    def ensure(self, ids: Iterable[DeviceId]) -> dict[DeviceId, int]:
        """The key of every id, created for the ids that have none yet."""
        wanted = sorted(set(ids))
        found = self.find(wanted)
        missing = [i for i in wanted if i not in found]
        if missing:
            self.conn.execute(t.device_keys.insert(), [{"device": i} for i in missing])
            found.update(self.find(missing))
        return found

    def ids(self, keys: Iterable[int]) -> dict[int, DeviceId]:
        return self._lookup(t.device_keys.c.key, t.device_keys.c.device, keys)

    def _lookup(self, given: sa.Column[Any], wanted: sa.Column[Any], values: Iterable[Any]) -> dict[Any, Any]:
        """The result is keyed by the caller's own objects (a fleet's ids are held once, not twice)."""
        mine = {v: v for v in values}
        if len(mine) > WHOLE_TABLE_FROM:  # a fleet: one pass over the table beats 100 IN lists
            rows = self.conn.exec_driver_sql(f"SELECT {given.name}, {wanted.name} FROM device_keys")  # noqa: S608
            return {mine[g]: w for g, w in rows if g in mine}
        found: dict[Any, Any] = {}
        for part in chunks(sorted(mine)):
            found.update(
                (mine[g], w) for g, w in self.conn.execute(sa.select(given, wanted).where(given.in_(part)))
            )
        return found
