"""The one thread that writes live evidence to the store, in the order it was made, and never drops it.

The event loop hands each write over (`submit`) and goes on: it never waits for the database. The
writer applies writes oldest first, each in one transaction that also records its sequence
number. A write the store refuses (locked, unreachable, read-only, …) stays at the head of the
backlog and is retried, with a growing pause, before anything newer: later writes assume the
earlier ones are stored (a flush never moves a horizon past results the store does not hold).

While the backlog is not empty every write waiting in it is also journaled to local disk
(service/journal.py), so a crash or a stop loses at most the write under way; past `memory_limit`
bytes the newest journaled writes leave memory and are read back when their turn comes. A database
that is no longer the one opened (moved or replaced) is fatal: everything is journaled and the
service is told to stop.

Other store work that must not race the evidence (start-up, a reload's versions, compaction,
retention) goes through `call`: ordered with the writes, attempted once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from slamon.errors import StoreError, StoreMoved
from slamon.service.evidence import Evidence, apply
from slamon.service.journal import Journal, JournalError
from slamon.service.memory import give_back
from slamon.store import Store, StoreTx

logger = logging.getLogger(__name__)

T = TypeVar("T")
MEMORY_LIMIT = 128 << 20  # bytes of backlog kept in memory; the rest waits in the journal only
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0
TRIM_AFTER_ROWS = 10_000  # a write this big leaves freed memory worth returning
BUG_ATTEMPTS = 3  # a write that fails with a bug (not a store error) this often is set aside


@dataclass(slots=True)
class _Call:
    fn: Callable[[StoreTx], Any] | None  # None: a marker, resolved when the writes before it are done
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)


@dataclass(slots=True)
class _Item:
    seq: int
    what: str
    rows: int
    nbytes: int
    queued: float  # monotonic seconds
    evidence: Evidence | None = None  # None while it waits on disk only
    path: Path | None = None  # its journal file, once written
    call: _Call | None = None
    failures: int = 0
    held: bool = False  # it waited while the store was refusing writes
    applied: bool = False
    journaling: bool = False  # a thread is writing its journal file now


@dataclass(frozen=True, slots=True)
class WriterStatus:
    """The backlog and the store's recent answers, for /healthz and /metrics."""

    writes: int  # evidence writes waiting
    rows: int  # results and timeline changes in them
    memory_bytes: int
    journaled: int  # of the waiting writes, how many are on disk
    oldest_age_s: float | None  # how long the oldest waiting write has waited
    failing: str | None  # the last attempt failed: why (the store's message), else None
    failures: dict[str, int]  # failed attempts by reason, since start
    replayed: int  # writes stored after they had waited (a failure, or the journal at start)
    written: int  # writes stored
    set_aside: int  # writes that kept failing with a bug: kept on disk as *.failed, not stored
    fatal: str | None  # the writer stopped for good (the database moved): why


class Writer:
    def __init__(
        self,
        store: Store,
        journal: Journal,
        *,
        memory_limit: int = MEMORY_LIMIT,
        retry_first: float = RETRY_FIRST_S,
        retry_max: float = RETRY_MAX_S,
        on_fatal: Callable[[StoreError], None] | None = None,
    ) -> None:
        self.store = store
        self.journal = journal
        self.memory_limit = memory_limit
        self.retry_first, self.retry_max = retry_first, retry_max
        self.on_fatal = on_fatal
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._seq = 0
        self._closing = False
        self._stopped = False
        self._memory = 0
        self._failing: str | None = None
        self._failures: Counter[str] = Counter()
        self._replayed = self._written = self._set_aside = 0
        self._fatal: str | None = None
        self._journaler = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="slamon-journal")
        self._thread = threading.Thread(target=self._run, name="slamon-writer", daemon=True)
        self._thread.start()

    # --- the loop's side --------------------------------------------------------------------

    def submit(self, evidence: Evidence) -> int:
        """Queue a write; returns its sequence number. Never blocks on the store."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the writer is closed")
            self._seq += 1
            item = _Item(self._seq, evidence.what, evidence.rows, evidence.nbytes, time.monotonic(), evidence)
            item.held = self._failing is not None
            behind = bool(self._queue)
            self._queue.append(item)
            self._memory += item.nbytes
            self._cond.notify_all()
        if behind:  # it waits: on disk at once, so a crash does not lose it
            self._journaler.submit(self._journal_one, item)
        return item.seq

    async def call(self, fn: Callable[[StoreTx], T], *, start_within: float | None = None) -> T:
        """Run `fn` in a write transaction after every write queued before it; attempted once.
        When it has not started within `start_within` seconds (the backlog is stuck on a failing
        store) it is withdrawn and TimeoutError raised; once started it is waited for."""
        item = self._enqueue_call(_Call(fn))
        assert item.call is not None
        future = item.call.future
        if start_within is None:
            result: T = await asyncio.wrap_future(future)
            return result
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), start_within)
        except TimeoutError:
            if future.cancel():
                raise
            result = await asyncio.wrap_future(future)  # it had started: let it finish
            return result

    async def drained(self) -> None:
        """Wait until every write queued so far is stored (or set aside)."""
        item = self._enqueue_call(_Call(None))
        assert item.call is not None
        await asyncio.wrap_future(item.call.future)

    def _enqueue_call(self, call: _Call) -> _Item:
        with self._cond:
            if self._stopped:
                raise StoreError(self._fatal or "the writer has stopped")
            item = _Item(0, "call", 0, 0, time.monotonic(), call=call)
            self._queue.append(item)
            self._cond.notify_all()
        return item

    def status(self) -> WriterStatus:
        now = time.monotonic()
        with self._cond:
            writes = [i for i in self._queue if i.call is None]
            return WriterStatus(
                writes=len(writes),
                rows=sum(i.rows for i in writes),
                memory_bytes=self._memory,
                journaled=sum(i.path is not None for i in writes),
                oldest_age_s=now - writes[0].queued if writes else None,
                failing=self._failing,
                failures=dict(self._failures),
                replayed=self._replayed,
                written=self._written,
                set_aside=self._set_aside,
                fatal=self._fatal,
            )

    def load_journal(self, store_id: str, applied: int) -> int:
        """Queue the journal's writes (after a crash, or a stop while the store was away) ahead of
        anything new; those the store already holds (seq ≤ `applied`) are dropped. Returns how many
        were queued."""
        self.journal.claim(store_id)
        queued = 0
        with self._cond:
            for seq, path in self.journal.pending():
                if seq <= applied:
                    self.journal.drop(path)
                    continue
                self._queue.append(_Item(seq, "journaled write", 0, 0, time.monotonic(), path=path))
                self._seq = max(self._seq, seq)
                queued += 1
            self._seq = max(self._seq, applied)
            self._cond.notify_all()
        return queued

    def close(self, timeout: float) -> bool:
        """Stop taking writes, give the backlog `timeout` seconds to be stored, journal whatever is
        left. True when everything reached the store."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            while any(i.call is None for i in self._queue) and not self._stopped:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.05))
            left_over = [i for i in self._queue if i.call is None]
            self._stopped = True
            self._cond.notify_all()
        self._journaler.shutdown(wait=True)
        for item in left_over:
            self._journal_one(item)
        if left_over:
            logger.warning(
                "stopping with %d writes (%d rows) not yet in the store: they wait in the journal %s "
                "and are written at the next start",
                len(left_over),
                sum(i.rows for i in left_over),
                self.journal.directory,
            )
        for item in list(self._queue):
            if item.call is not None and not item.call.future.done():
                item.call.future.set_exception(StoreError("the service is stopping"))
        self._thread.join(timeout=0.5)
        return not left_over

    # --- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        pause = self.retry_first
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                item = self._queue[0]
            if item.call is not None:
                self._run_call(item)
                continue
            error = self._write(item)
            if error is None:
                pause = self.retry_first
                continue
            if isinstance(error, StoreMoved):
                self._stop_for_good(error)
                return
            for waiting in self._waiting():
                self._journal_one(waiting)
            with self._cond:
                if not self._stopped:
                    self._cond.wait(pause)
            pause = min(pause * 2, self.retry_max)

    def _write(self, item: _Item) -> Exception | None:
        """Store one write; None when done (or set aside), else the error to retry after."""
        try:
            evidence = item.evidence
            if evidence is None:
                assert item.path is not None
                _, evidence = self.journal.load(item.path)
            self.store.check_identity()
            with self.store.begin() as tx:
                self.store.check_identity(tx)
                apply(tx, evidence)
                tx.meta.put(self.journal.progress_key, str(item.seq))
        except StoreMoved as exc:
            return exc
        except JournalError as exc:
            logger.error("a journaled write cannot be read, set aside: %s", exc)
            self._done(item, set_aside=True)
            return None
        except StoreError as exc:
            self._failed(item, exc.reason, str(exc))
            return exc
        except Exception as exc:  # a bug: retried a few times, then set aside (kept on disk)
            logger.exception("writing the %s failed", item.what)
            self._failed(item, "bug", f"{type(exc).__name__}: {exc}")
            if item.failures >= BUG_ATTEMPTS:
                self._done(item, set_aside=True)
                return None
            return exc
        self._done(item)
        if item.rows > TRIM_AFTER_ROWS:
            give_back()
        return None

    def _failed(self, item: _Item, reason: str, message: str) -> None:
        with self._cond:
            item.failures += 1
            for waiting in self._queue:
                waiting.held = True
            self._failures[reason] += 1
            first = self._failing is None
            self._failing = message
        if first:
            logger.warning("the store refused a write, keeping it and what follows to retry: %s", message)

    def _done(self, item: _Item, *, set_aside: bool = False) -> None:
        if set_aside and item.path is None and item.evidence is not None:
            self._journal_one(item)  # kept on disk for a person to look at, never silently gone
        with self._cond:
            self._queue.popleft()
            item.applied = True
            # held back by a refusing store, or read back from the journal (kept from the last run,
            # or let go of memory past its bound); a write only copied to the journal while it
            # waited its turn behind a healthy one is not a replay
            from_disk = item.evidence is None
            self._memory -= item.nbytes if item.evidence is not None else 0
            item.evidence = None
            path, item.path = item.path, None
            recovered = self._failing is not None and not set_aside
            if set_aside:
                self._set_aside += 1
            else:
                self._written += 1
                if item.held or from_disk:
                    self._replayed += 1
            if recovered:
                self._failing = None
            waiting = sum(i.call is None for i in self._queue)
            self._cond.notify_all()
        if recovered:
            logger.info("the store takes writes again (%d waiting)", waiting)
        if path is not None:
            if set_aside:
                path.rename(path.with_suffix(".failed"))
                logger.error("set aside the %s: it waits in %s", item.what, path.with_suffix(".failed"))
            else:
                self.journal.drop(path)

    def _run_call(self, item: _Item) -> None:
        call = item.call
        assert call is not None
        if call.future.set_running_or_notify_cancel():
            try:
                if call.fn is None:
                    call.future.set_result(None)
                else:
                    self.store.check_identity()
                    with self.store.begin() as tx:
                        self.store.check_identity(tx)
                        result = call.fn(tx)
                    call.future.set_result(result)  # once committed: the caller may read it at once
            except Exception as exc:  # noqa: BLE001  (handed to the caller, who decides)
                call.future.set_exception(exc)
        with self._cond:
            self._queue.popleft()
            self._cond.notify_all()

    def _waiting(self) -> list[_Item]:
        with self._cond:
            return [i for i in self._queue if i.call is None and i.path is None and not i.applied]

    def _journal_one(self, item: _Item) -> None:
        """Put a waiting write on disk (if it is not stored yet), then keep memory under its limit."""
        with self._cond:
            if item.applied or item.path is not None or item.evidence is None or item.journaling:
                return
            evidence = item.evidence
            item.journaling = True
        try:
            path = self.journal.save(item.seq, evidence)
        except OSError as exc:
            logger.error("cannot journal the %s (it stays in memory only): %s", item.what, exc)
            with self._cond:
                item.journaling = False
            return
        with self._cond:
            item.journaling = False
            if item.applied:
                self.journal.drop(path)
                return
            item.path = path
            self._trim()

    def _trim(self) -> None:
        """Newest first, journaled writes leave memory until the backlog fits `memory_limit`."""
        if self._memory <= self.memory_limit:
            return
        for item in reversed(self._queue):
            if self._memory <= self.memory_limit:
                return
            if item is self._queue[0] or item.path is None or item.evidence is None:
                continue
            item.evidence = None
            self._memory -= item.nbytes

    def _stop_for_good(self, error: StoreError) -> None:
        logger.critical(
            "%s: stopping; the evidence not yet written waits in the journal %s",
            error,
            self.journal.directory,
        )
        for item in self._waiting():
            self._journal_one(item)
        with self._cond:
            self._fatal = str(error)
            self._failing = str(error)
            self._failures[error.reason] += 1
            self._stopped = True
            for item in self._queue:
                if item.call is not None and not item.call.future.done():
                    item.call.future.set_exception(error)
            self._cond.notify_all()
        if self.on_fatal is not None:
            self.on_fatal(error)
