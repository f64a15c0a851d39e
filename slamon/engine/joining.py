"""Joining a tail onto a stored timeline: what the store deletes and inserts when a device's
timeline changed from `since` on (live tails, rebuilds from a retention carry).

Pure: no I/O. The store reads each device's StoredEdge (what it holds just before `since`) for
thousands of devices in a few queries, calls join_tail per device, and writes the Joins in bulk.

The tail was built from a carry at `since` (build_timeline(..., carry)), so it starts there. The rules:
- everything stored from `since` on is replaced by the tail;
- a stored `unknown` before `since` that is the very last stored transition was only where the
  evidence ran out when it was written (later results moved past it), so it goes; an `unknown`
  followed by other stored transitions is a real gap and stays;
- the tail's first transition goes when it repeats the state stored before it (consecutive
  states differ);
- an outage stored as open, or running into `since`, is the same outage as the tail's first when
  that starts at `since` (the carry's result was down): it keeps its stored start and first
  failure, its gaps before `since` (the tail holds those after it), and its last failure when
  the tail has none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from slamon.engine.timeline import Outage, Timeline, Transition
from slamon.model import DeviceState, Micros


@dataclass(frozen=True, slots=True)
class StoredEdge:
    """What the store holds of a device just before `since`: all that a join depends on."""

    before: tuple[Transition, ...] = ()  # the last two stored transitions before `since` (or fewer), in order
    last_is_final: bool = False  # before[-1] is the very last stored transition: nothing stored after it
    outage: Outage | None = None  # the latest-starting stored outage from at or before `since`
    # that is open or ends at or after `since`

    @classmethod
    def of(cls, stored: Timeline, since: Micros) -> StoredEdge:
        """The edge of a whole stored timeline: what the store's queries read, in memory."""
        earlier = [x for x in stored.transitions if x.at < since]
        touching = [o for o in stored.outages if o.start <= since and (o.open or o.end >= since)]
        return cls(
            before=tuple(earlier[-2:]),
            last_is_final=bool(earlier) and len(earlier) == len(stored.transitions),
            outage=max(touching, key=lambda o: o.start) if touching else None,
        )


NO_EDGE = StoredEdge()


@dataclass(frozen=True, slots=True)
class Join:
    """What the store writes for one device: delete everything from `since` on, the provisional
    `unknown` and the continued outage if named, then insert the transitions and outages."""

    since: Micros
    drop_transition: Micros | None  # a stored provisional `unknown` before `since` (its instant)
    drop_outage: Micros | None  # the start of the stored outage the tail's first continues
    transitions: tuple[Transition, ...]
    outages: tuple[Outage, ...]  # the first may start before `since` (a continued outage)

    def applied_to(self, stored: Timeline) -> Timeline:
        """The stored timeline once the store has written this join (its meaning, in memory)."""
        kept = [x for x in stored.transitions if x.at < self.since and x.at != self.drop_transition]
        outages = [o for o in stored.outages if o.start < self.since and o.start != self.drop_outage]
        return Timeline(
            (*kept, *self.transitions),
            tuple(sorted([*outages, *self.outages], key=lambda o: o.start)),
        )


def join_tail(stored: StoredEdge, tail: Timeline, since: Micros) -> Join:
    """How a tail that starts at `since` joins what is stored before it (see the module docstring)."""
    before = stored.before
    drop_transition = None
    if before and before[-1].state is DeviceState.UNKNOWN and stored.last_is_final:
        drop_transition = before[-1].at  # a provisional horizon, not a gap
        before = before[:-1]
    transitions = tail.transitions
    if transitions and before and before[-1].state is transitions[0].state:
        transitions = transitions[1:]
    outages = tail.outages
    drop_outage = None
    joined = stored.outage
    if joined is not None and outages and outages[0].start == since:
        first = outages[0]
        outages = (
            replace(
                first,
                start=joined.start,
                first_failure=first.first_failure if joined.first_failure is None else joined.first_failure,
                last_failure=joined.last_failure if first.last_failure is None else first.last_failure,
                gaps=(*(g for g in joined.gaps if g[1] <= since), *first.gaps),
            ),
            *outages[1:],
        )
        drop_outage = joined.start
    return Join(since, drop_transition, drop_outage, transitions, outages)
