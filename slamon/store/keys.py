"""A small integer per device id, so results and timelines stay compact."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from slamon.model import DeviceId
from slamon.store import schema as t
from slamon.store.sql import Part, chunks


class DeviceKeys(Part):
    def find(self, ids: Iterable[DeviceId]) -> dict[DeviceId, int]:
        """The keys these ids already have (an id never stored has none)."""
        found: dict[DeviceId, int] = {}
        for part in chunks(sorted(set(ids))):
            rows = self.conn.execute(
                sa.select(t.device_keys.c.device, t.device_keys.c.key).where(t.device_keys.c.device.in_(part))
            )
            found.update({r.device: r.key for r in rows})
        return found

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
        found: dict[int, DeviceId] = {}
        for part in chunks(sorted(set(keys))):
            rows = self.conn.execute(
                sa.select(t.device_keys.c.key, t.device_keys.c.device).where(t.device_keys.c.key.in_(part))
            )
            found.update({r.key: r.device for r in rows})
        return found
