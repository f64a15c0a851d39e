"""A unit of live evidence on its way to the store: what a round found, or what a flush moved.

A round's write holds its raw results and the timeline tails they changed, so a stored transition
always has its evidence stored with it; a flush's write moves where each device's evidence ends
(horizons, with the open outage's latest failure) and where its engine resumes after a restart.
Writes are applied in the order they were made (service/writer.py): a later write assumes every
earlier one is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slamon.engine.timeline import Carry, Timeline
from slamon.model import Event, Exclusion, Micros
from slamon.store import ResultColumns, StoreTx


@dataclass(frozen=True, slots=True)
class TailWrite:
    """A device's timeline from `since` (the carry its tail was built on; None: all of it) on."""

    key: int
    tail: Timeline
    since: Micros | None
    params: str  # the engine settings, as the store records them


@dataclass(frozen=True, slots=True)
class HorizonMove:
    """A device's evidence went on without changing its state: its closing `unknown` moves to
    `horizon`, and so does the end of its open outage, whose latest failure is `last_failure`."""

    key: int
    horizon: Micros
    last_failure: Micros | None


@dataclass(frozen=True, slots=True)
class Evidence:
    """One write: a round's (`results`, `tails`) or a flush's (`moves`, `resumes`)."""

    what: str  # "icmp round", "flush": for logs
    at: Micros  # when it was made (the store's updated_at)
    results: ResultColumns | None = None
    part: int = 0  # the result blocks' part number: new for every hour this write touches
    tails: tuple[TailWrite, ...] = ()
    moves: tuple[HorizonMove, ...] = ()
    resumes: tuple[tuple[int, Carry, Micros | None], ...] = field(default=())  # key, carry, since
    events: tuple[Event, ...] = ()  # what SNMP saw: port changes, reboots, suspected power cuts
    proposals: tuple[Exclusion, ...] = ()  # exclusions slamon proposes (a suspected power cut)

    @property
    def rows(self) -> int:
        """Results and timeline changes it carries: the backlog's size in rows."""
        results = 0 if self.results is None else len(self.results)
        return results + len(self.tails) + len(self.moves) + len(self.events) + len(self.proposals)

    @property
    def nbytes(self) -> int:
        """About how much memory it holds."""
        results = 0 if self.results is None else 30 * len(self.results)
        tails = sum(200 + 60 * len(t.tail.transitions) + 120 * len(t.tail.outages) for t in self.tails)
        return 200 + results + tails + 60 * (len(self.moves) + len(self.resumes)) + 300 * len(self.events)


WRITE_SLICE = 10_000  # timelines written per statement batch: a fleet's first round is 100,000


def apply(tx: StoreTx, evidence: Evidence) -> None:
    """Write one unit of evidence in the caller's transaction, a slice at a time (in order: a
    device's later tail after its earlier one), so a round where a whole fleet changes does not
    build every row of it in memory at once."""
    if evidence.results is not None and len(evidence.results):
        tx.results.append(evidence.results, evidence.part)
    for i in range(0, len(evidence.tails), WRITE_SLICE):
        tails = evidence.tails[i : i + WRITE_SLICE]
        tx.timelines.write_tails([(w.key, w.tail, w.since, w.params) for w in tails], at=evidence.at)
    for i in range(0, len(evidence.moves), WRITE_SLICE):
        tx.timelines.move_horizons(
            [(m.key, m.horizon, m.last_failure) for m in evidence.moves[i : i + WRITE_SLICE]]
        )
    for i in range(0, len(evidence.resumes), WRITE_SLICE):
        tx.timelines.save_resumes(list(evidence.resumes[i : i + WRITE_SLICE]))
    tx.events.append(evidence.events)
    for exclusion in evidence.proposals:
        tx.versions.propose(exclusion, evidence.at)
