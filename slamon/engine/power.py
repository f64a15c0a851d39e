"""Sites that go dark at once while their upstream answers: a suspected power cut (pure).

When every device of a site was answering and then all of them fail in the same round, while the
devices they hang off outside the site still answer, the likeliest cause is the site's power, not
ten separate faults. slamon does not decide that: it records the evidence and proposes a `power`
exclusion for the site, from the round the site went dark until its first device answers again,
for a contract manager to approve or reject (SLA.md §4: only approved exclusions count).

A site of one device is never suspected (a device that fails alone is just that), nor a site whose
devices hang off nothing outside it (a dark upstream tells nothing apart).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from slamon.model import (
    DeviceId,
    Event,
    Exclusion,
    ExclusionCategory,
    ExclusionId,
    ExclusionStatus,
    Fleet,
    Micros,
    ProbeResult,
    Scope,
    SiteId,
    from_micros,
    to_micros,
)

MIN_DEVICES = 2


@dataclass(frozen=True, slots=True)
class Suspicion:
    """A site that went dark in one round while its upstream answered."""

    site: SiteId
    since: Micros  # the round in which every device failed
    devices: tuple[DeviceId, ...]
    upstream: Mapping[DeviceId, bool]  # the devices it hangs off outside the site: answering?
    until: Micros | None = None  # the first answer of one of its devices; None: still dark

    @property
    def exclusion_id(self) -> ExclusionId:
        return ExclusionId(f"PWR-{self.site}-{from_micros(self.since).strftime('%Y%m%dT%H%M%SZ')}")

    def proposal(self, now: Micros) -> Exclusion:
        """The exclusion slamon proposes: the site, from `since` to its recovery (or `now`)."""
        end = self.until if self.until is not None else max(now, self.since + 1)
        answering = ", ".join(sorted(d for d, ok in self.upstream.items() if ok))
        return Exclusion(
            id=self.exclusion_id,
            category=ExclusionCategory.POWER,
            scope=Scope(sites=frozenset({self.site})),
            start=_utc(self.since),
            end=_utc(end),
            reason=(
                f"suspected power cut: all {len(self.devices)} devices of site {self.site} failed in one "
                f"round while {answering} answered (proposed by slamon)"
            ),
            status=ExclusionStatus.PROPOSED,
        )

    def evidence(self) -> dict[str, object]:
        """The site event's body in the ledger."""
        return {
            "since": self.since,
            "until": self.until,
            "devices": list(self.devices),
            "upstream": dict(sorted(self.upstream.items())),
            "exclusion": self.exclusion_id,
        }


@dataclass(slots=True)
class PowerWatch:
    """Each site's devices and its upstream, the latest outcome of every device, and the open
    suspicions. `round` takes a round's reachability results."""

    members: dict[SiteId, tuple[DeviceId, ...]] = field(default_factory=dict)
    upstream: dict[SiteId, tuple[DeviceId, ...]] = field(default_factory=dict)
    last: dict[DeviceId, bool] = field(default_factory=dict)
    open: dict[SiteId, Suspicion] = field(default_factory=dict)

    @classmethod
    def of(cls, fleet: Fleet, unpinged: Iterable[DeviceId] = ()) -> PowerWatch:
        watch = cls()
        watch.reload(fleet, unpinged)
        return watch

    def reload(self, fleet: Fleet, unpinged: Iterable[DeviceId] = ()) -> None:
        """The sites of a fleet, judged by ping: `unpinged` devices (switches polled by SNMP alone)
        are left out of their site, as a round of pings cannot say they are dark."""
        devices = fleet.inventory.devices
        skip = set(unpinged)
        members: dict[SiteId, list[DeviceId]] = {}
        for d in devices.values():
            if d.id not in skip:
                members.setdefault(d.site, []).append(d.id)
        self.members = {s: tuple(sorted(ids)) for s, ids in members.items() if len(ids) >= MIN_DEVICES}
        self.upstream = {}
        for site, ids in self.members.items():
            outside = {
                p
                for i in ids
                if (p := devices[i].parent) is not None and p in devices and devices[p].site != site
            }
            if outside:
                self.upstream[site] = tuple(sorted(outside))
        self.open = {s: x for s, x in self.open.items() if s in self.upstream}
        self.last = {d: ok for d, ok in self.last.items() if d in devices}

    def resume(self, events: Iterable[Event]) -> list[SiteId]:
        """After a restart: the sites whose latest `power` event (oldest first in `events`) left
        them dark are dark still, until one of their devices answers (a service that shares the
        site's power may well have stopped with it). Their devices were answering before."""
        latest: dict[str, Event] = {}
        for e in events:
            if e.kind == "power":
                latest[e.subject] = e
        reopened: list[SiteId] = []
        for site, e in latest.items():
            body = e.body
            if body.get("until") is not None or SiteId(site) not in self.upstream:
                continue
            since, devices, upstream = body.get("since"), body.get("devices"), body.get("upstream")
            if not isinstance(since, int) or not isinstance(devices, list) or not isinstance(upstream, dict):
                continue
            self.open[SiteId(site)] = Suspicion(
                SiteId(site),
                since,
                tuple(DeviceId(str(d)) for d in devices),
                {DeviceId(str(d)): bool(ok) for d, ok in upstream.items()},
            )
            reopened.append(SiteId(site))
        return reopened

    def round(self, results: Iterable[ProbeResult]) -> tuple[list[Suspicion], list[Suspicion]]:
        """(suspicions opened, suspicions closed) by a round's reachability results."""
        now: dict[DeviceId, tuple[bool, Micros]] = {}
        for r in results:
            if r.kind.is_reachability:
                now[r.device] = (r.ok, to_micros(r.time))
        opened: list[Suspicion] = []
        closed: list[Suspicion] = []
        for site, open_one in list(self.open.items()):
            back = [got[1] for d in self.members.get(site, ()) if (got := now.get(d)) is not None and got[0]]
            if back:
                done = Suspicion(site, open_one.since, open_one.devices, open_one.upstream, min(back))
                closed.append(done)
                del self.open[site]
        for site, up in self.upstream.items():
            if site in self.open:
                continue
            ids = self.members[site]
            seen = [now.get(d) for d in ids]
            if any(s is None or s[0] for s in seen):
                continue  # not all of them in this round, or one answers
            if not all(self.last.get(d, False) for d in ids):
                continue  # they did not all answer before: not one event
            answering = {u: self._answers(u, now) for u in up}
            if not all(answering.values()):
                continue  # its upstream is dark too (or part of it): that outage is upstream's
            since = min(s[1] for s in seen if s is not None)
            suspicion = Suspicion(site, since, ids, answering)
            self.open[site] = suspicion
            opened.append(suspicion)
        for device, (ok, _) in now.items():
            self.last[device] = ok
        return opened, closed

    def _answers(self, device: DeviceId, now: Mapping[DeviceId, tuple[bool, Micros]]) -> bool:
        seen = now.get(device)
        return seen[0] if seen is not None else self.last.get(device, False)


def _utc(us: Micros) -> datetime:
    return from_micros(us).astimezone(UTC)
