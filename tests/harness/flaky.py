"""A real store that refuses writes on demand: once, for a while, or until told otherwise.

Write transactions (`begin`) fail, as when a database is locked, read-only or gone; reads go on
unless `reads_fail` says the database is gone altogether. The failure is the store's own StoreError, with the reason the writer counts it by.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from slamon.errors import StoreError
from slamon.store import Store, StoreTx


class FlakyStore(Store):
    def __init__(self, url: str, **kwargs: object) -> None:
        self.failing: str | None = None  # the reason writes fail now; None: they work
        self.reads_fail = False  # reads fail too, as when the database is gone
        self._fail_next = 0
        self.refused = 0
        super().__init__(url, **kwargs)  # type: ignore[arg-type]

    def fail(self, reason: str = "unreachable") -> None:
        """Refuse every write from now on, until `heal`."""
        self.failing = reason

    def fail_next(self, count: int = 1, reason: str = "locked") -> None:
        """Refuse the next `count` writes."""
        self._fail_next, self.failing = count, reason

    def heal(self) -> None:
        self.failing, self._fail_next, self.reads_fail = None, 0, False

    @contextmanager
    def read(self) -> Iterator[StoreTx]:
        if self.reads_fail:
            raise StoreError(f"database {self.url}: connection refused (for the test)", "unreachable")
        with super().read() as tx:
            yield tx

    @contextmanager
    def begin(self) -> Iterator[StoreTx]:
        if self.failing is not None:
            self.refused += 1
            reason = self.failing
            if self._fail_next:
                self._fail_next -= 1
                if not self._fail_next:
                    self.failing = None
            raise StoreError(f"database {self.url}: refused for the test ({reason})", reason)
        with super().begin() as tx:
            yield tx
