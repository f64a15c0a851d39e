"""One transaction, split by concern: `tx.keys`, `tx.versions`, `tx.results`, `tx.timelines`,
`tx.statements`, `tx.meta`, `tx.events`, `tx.exclusions` (the workflow's records), `tx.audit` and
`tx.tokens` share its connection."""

from __future__ import annotations

from sqlalchemy import Connection

from slamon.store.audit import Audit
from slamon.store.events import Events
from slamon.store.exclusions import ExclusionLedger
from slamon.store.keys import DeviceKeys
from slamon.store.meta import Meta
from slamon.store.results import Results
from slamon.store.sql import insert_for
from slamon.store.statements import Statements
from slamon.store.timelines import Timelines
from slamon.store.tokens import Tokens
from slamon.store.versions import Versions


class StoreTx:
    """The store's operations, inside one transaction."""

    def __init__(self, conn: Connection, dialect: str, *, writable: bool = True) -> None:
        """`writable`: False in a read-only transaction (Store.read), where nothing is remembered."""
        self.conn = conn
        insert = insert_for(dialect)
        self.keys = DeviceKeys(conn, insert)
        self.versions = Versions(conn, insert)
        self.results = Results(conn, insert)
        self.results.writable = writable
        self.timelines = Timelines(conn, insert)
        self.statements = Statements(conn, insert)
        self.meta = Meta(conn, insert)
        self.events = Events(conn, insert)
        self.exclusions = ExclusionLedger(conn, insert)
        self.audit = Audit(conn, insert)
        self.tokens = Tokens(conn, insert)
