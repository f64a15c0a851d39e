"""The store's identity and the live journals' progress (the `store_meta` table)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from slamon.store import schema as t
from slamon.store.sql import Part

STORE_ID = "store_id"


class Meta(Part):
    def get(self, key: str) -> str | None:
        return self.conn.execute(sa.select(t.store_meta.c.value).where(t.store_meta.c.key == key)).scalar()

    def put(self, key: str, value: str) -> None:
        stmt = self._insert(t.store_meta).values(key=key, value=value)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))

    def store_id(self) -> str:
        """The random id this database was given when it was created (made now if it has none)."""
        found = self.get(STORE_ID)
        if found is None:
            found = uuid.uuid4().hex
            self.conn.execute(
                self._insert(t.store_meta).values(key=STORE_ID, value=found).on_conflict_do_nothing()
            )
            found = self.get(STORE_ID) or found
        return found
