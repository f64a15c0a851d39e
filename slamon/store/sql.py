"""What every part of the store shares: the dialect's upsert, and ids in chunks under every backend's
parameter limit."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

CHUNK = 900  # ids per IN (...) list, under every backend's parameter limit
WHOLE_TABLE_FROM = 5_000  # ids asked for at once past which one pass over the whole table beats IN lists

T = TypeVar("T")

Insert = Callable[..., Any]
"""sqlite.insert or postgresql.insert: both give on_conflict_do_update / on_conflict_do_nothing."""


def insert_for(dialect: str) -> Insert:
    return sqlite.insert if dialect == "sqlite" else postgresql.insert


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


class Part:
    """One concern of a transaction: its connection and its dialect's upsert."""

    def __init__(self, conn: Connection, insert: Insert) -> None:
        self.conn = conn
        self._insert = insert
