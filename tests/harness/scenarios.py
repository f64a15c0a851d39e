"""Scripted fleet failures, stepped by probe round, with the outcome each should have.

A scenario never sleeps and never probes: it says what to silence or restore before which probe
round, and the test decides when rounds happen and what "now" is (a FakeClock, or real time):

    plan = AddressPlan.grid(sites=2, switches=2, cameras=3)
    scenario = switch_down(plan, "SIM-S1W1", down_after=3)
    for rnd in scenario.timeline(start=t0, interval=timedelta(seconds=60)):
        scenario.apply(fleet, rnd.index)    # fleet: a FleetNamespace (or a PaperFleet)
        clock.set(rnd.now); probe everything  # rnd.down: the device ids that must fail now
    scenario.outages                        # which devices end with an outage, from when, why

Rounds count from 0. Steps of round i take effect before round i's probes. Expected outages
follow slamon's documented rule (SLA.md §2, slamon/state.py): `down_after` failed rounds in a row
make an outage dated from the first of them; `up_after` good rounds in a row end it, at the first
of them; shorter runs change nothing. The factories write each expectation out by hand;
`derive_outages` computes the same from the schedule, and the harness tests check they agree.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from tests.harness.netns import SilenceBook

DEVICE = "device"  # cause of an outage nobody upstream explains (slamon.billing.causes.DEVICE)


def upstream(device: str) -> str:
    return f"upstream:{device}"


class Silencer(Protocol):
    """What a scenario acts on: a FleetNamespace, or a PaperFleet when no namespace is needed."""

    def silence(self, *addresses: str) -> None: ...

    def restore(self, *addresses: str) -> None: ...


class PaperFleet(SilenceBook):
    """FleetNamespace's silence bookkeeping without a namespace: same rules, no packets, no root."""


# --- the fleet: who is where, who hangs off whom ------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanDevice:
    id: str
    kind: str  # "link", "switch" or "camera", as in inventory.yaml
    address: str
    site: str
    parent: str | None = None


class AddressPlan:
    """Devices with addresses, sites and parents: enough to say what a failure takes down."""

    def __init__(self, devices: Iterable[PlanDevice]) -> None:
        self.devices: dict[str, PlanDevice] = {}
        seen: dict[str, str] = {}
        for device in devices:
            address = str(ipaddress.ip_address(device.address))
            if device.id in self.devices:
                raise ValueError(f"device {device.id} twice")
            if address in seen:
                raise ValueError(f"{device.id} and {seen[address]} share {address}")
            seen[address] = device.id
            self.devices[device.id] = replace(device, address=address)  # canonical text
        for device in self.devices.values():
            if device.parent is not None and device.parent not in self.devices:
                raise ValueError(f"{device.id}: parent {device.parent} is not in the plan")
        for device_id in self.devices:
            self.ancestors(device_id)  # rejects cycles

    @classmethod
    def from_inventory(cls, devices: Iterable[Any]) -> AddressPlan:
        """From slamon's own devices (slamon.model.Device, or anything with the same attributes)."""
        return cls(
            PlanDevice(
                id=str(d.id),
                kind=str(getattr(d.kind, "value", d.kind)),
                address=str(d.address),
                site=str(d.site),
                parent=None if d.parent is None else str(d.parent),
            )
            for d in devices
        )

    @classmethod
    def grid(
        cls, *, sites: int = 2, switches: int = 2, cameras: int = 3, ipv6: bool = False, prefix: str = "SIM"
    ) -> AddressPlan:
        """Per site one link, `switches` switches on it and `cameras` cameras on each switch.

        Site s (from 1), switch k (from 1): link 127.(30+s).0.1, switch 127.(30+s).k.1, camera i
        127.(30+s).k.(10+i); with ipv6, fd00:5a:s:k::h instead (add them with `install`). So a
        switch and what is behind it share a /24 (/64), a site a /16 (/48).
        """
        if not (1 <= sites <= 200 and 1 <= switches <= 250 and 0 <= cameras <= 240):
            raise ValueError("grid too large for its address scheme")

        def address(s: int, k: int, host: int) -> str:
            return f"fd00:5a:{s:x}:{k:x}::{host:x}" if ipv6 else f"127.{30 + s}.{k}.{host}"

        devices = []
        for s in range(1, sites + 1):
            site = f"{prefix}-S{s}"
            link = f"{prefix}-S{s}L"
            devices.append(PlanDevice(link, "link", address(s, 0, 1), site))
            for k in range(1, switches + 1):
                switch = f"{prefix}-S{s}W{k}"
                devices.append(PlanDevice(switch, "switch", address(s, k, 1), site, link))
                devices.extend(
                    PlanDevice(f"{switch}C{i}", "camera", address(s, k, 10 + i), site, switch)
                    for i in range(1, cameras + 1)
                )
        return cls(devices)

    def __len__(self) -> int:
        return len(self.devices)

    def __iter__(self) -> Iterator[PlanDevice]:
        return iter(self.devices.values())

    def address(self, device: str) -> str:
        return self.devices[device].address

    def addresses(self, devices: Iterable[str] | None = None) -> list[str]:
        ids = self.devices if devices is None else devices
        return [self.devices[d].address for d in ids]

    def ids(self, kind: str | None = None) -> list[str]:
        return [d.id for d in self.devices.values() if kind is None or d.kind == kind]

    def sites(self) -> list[str]:
        return list(dict.fromkeys(d.site for d in self.devices.values()))

    def at_site(self, site: str) -> list[str]:
        found = [d.id for d in self.devices.values() if d.site == site]
        if not found:
            raise KeyError(f"no device at site {site}")
        return found

    def ancestors(self, device: str) -> list[str]:
        """Parent, grandparent, … nearest first."""
        chain: list[str] = []
        parent = self.devices[device].parent
        while parent is not None:
            if parent in chain or parent == device:
                raise ValueError(f"parent cycle through {device}")
            chain.append(parent)
            parent = self.devices[parent].parent
        return chain

    def behind(self, device: str) -> list[str]:
        """Everything whose ancestors include `device`, in plan order."""
        if device not in self.devices:
            raise KeyError(device)
        return [d for d in self.devices if device in self.ancestors(d)]

    def install(self, fleet: Any) -> None:
        """Put the plan's addresses on the namespace's lo where they would not answer otherwise."""
        fleet.add_addresses(*self.addresses())


# --- scenarios ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """Before the probes of round `round`: silence these addresses, then restore those."""

    round: int
    silence: tuple[str, ...] = ()
    restore: tuple[str, ...] = ()
    note: str = ""

    def apply(self, fleet: Silencer) -> None:
        if self.silence:
            fleet.silence(*self.silence)
        if self.restore:
            fleet.restore(*self.restore)


@dataclass(frozen=True, slots=True)
class Outage:
    """An outage as slamon should report it, in probe rounds."""

    device: str
    first_round: int  # the first failed round: the outage is back-dated to it
    recovered_round: int | None  # the first round of the good run that ends it; None: still open
    cause: str = DEVICE  # or upstream:<id>, the nearest ancestor down at the same time

    def start(self, t0: datetime, interval: timedelta) -> datetime:
        return t0 + self.first_round * interval

    def end(self, t0: datetime, interval: timedelta) -> datetime | None:
        return None if self.recovered_round is None else t0 + self.recovered_round * interval


@dataclass(frozen=True, slots=True)
class Round:
    """One probe round: when, what changed just before it, which devices must fail in it."""

    index: int
    now: datetime
    steps: tuple[Step, ...]
    down: frozenset[str]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str  # the expected outcome in plain words
    plan: AddressPlan
    steps: tuple[Step, ...]
    rounds: int  # probe rounds to run: enough for every expected outage to open and close
    down_after: int
    up_after: int
    outages: tuple[Outage, ...]  # expected
    _down: tuple[frozenset[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if any(not 0 <= step.round < self.rounds for step in self.steps):
            raise ValueError(f"{self.name}: a step falls outside rounds 0..{self.rounds - 1}")
        paper = PaperFleet()
        down = []
        for index in range(self.rounds):
            for step in self.steps_at(index):
                step.apply(paper)
            down.append(frozenset(d.id for d in self.plan if paper.is_silenced(d.address)))
        object.__setattr__(self, "_down", tuple(down))

    @classmethod
    def from_steps(
        cls,
        name: str,
        summary: str,
        plan: AddressPlan,
        steps: Sequence[Step],
        rounds: int,
        *,
        down_after: int = 3,
        up_after: int = 2,
    ) -> Scenario:
        """A scenario of your own; its expected outages are derived from the schedule."""
        draft = cls(name, summary, plan, tuple(steps), rounds, down_after, up_after, ())
        outages = derive_outages(plan, draft.down_by_round(), down_after, up_after)
        return cls(name, summary, plan, tuple(steps), rounds, down_after, up_after, outages)

    def steps_at(self, index: int) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.round == index)

    def apply(self, fleet: Silencer, index: int) -> tuple[Step, ...]:
        """Carry out round `index`'s steps on `fleet`; returns them."""
        steps = self.steps_at(index)
        for step in steps:
            step.apply(fleet)
        return steps

    def down_during(self, index: int) -> frozenset[str]:
        """Device ids whose address is silenced during round `index`'s probes."""
        return self._down[index]

    def down_by_round(self) -> tuple[frozenset[str], ...]:
        return self._down

    def timeline(self, start: datetime, interval: timedelta) -> Iterator[Round]:
        """The rounds, each with its "now" (start + index × interval)."""
        for index in range(self.rounds):
            yield Round(index, start + index * interval, self.steps_at(index), self._down[index])

    def run(
        self, fleet: Silencer, probe: Callable[[Round], None], start: datetime, interval: timedelta
    ) -> None:
        """Every round in order: apply its steps, then call `probe` (which may advance a clock)."""
        for rnd in self.timeline(start, interval):
            self.apply(fleet, rnd.index)
            probe(rnd)

    def with_outage(self) -> set[str]:
        return {o.device for o in self.outages}

    def outage_of(self, device: str) -> list[Outage]:
        return [o for o in self.outages if o.device == device]

    def describe(self) -> str:
        """The whole script in words, for an assertion message."""
        lines = [f"{self.name}: {self.summary}", f"  rounds 0..{self.rounds - 1}"]
        lines += [
            f"  round {s.round}: silence {list(s.silence)} restore {list(s.restore)} {s.note}".rstrip()
            for s in self.steps
        ]
        lines += [
            f"  outage {o.device}: rounds {o.first_round}..{'open' if o.recovered_round is None else o.recovered_round - 1}"
            f" ({o.cause})"
            for o in self.outages
        ] or ["  no outage"]
        return "\n".join(lines)


def derive_outages(
    plan: AddressPlan, down_by_round: Sequence[frozenset[str]], down_after: int, up_after: int
) -> tuple[Outage, ...]:
    """slamon's rule, applied to one result per device per round (an independent oracle)."""
    spans: dict[str, list[tuple[int, int | None]]] = {}
    for device in plan.devices:
        outcomes = [device not in down for down in down_by_round]  # True: answered
        runs: list[tuple[bool, int, int]] = []  # (ok, first round, length)
        for index, ok in enumerate(outcomes):
            if runs and runs[-1][0] == ok:
                runs[-1] = (ok, runs[-1][1], runs[-1][2] + 1)
            else:
                runs.append((ok, index, 1))
        is_down, since = False, 0
        for ok, first, length in runs:
            if not is_down and not ok and length >= down_after:
                is_down, since = True, first
            elif is_down and ok and length >= up_after:
                spans.setdefault(device, []).append((since, first))
                is_down = False
        if is_down:
            spans.setdefault(device, []).append((since, None))

    def cause(device: str, first: int) -> str:
        for ancestor in plan.ancestors(device):
            for a_first, a_end in spans.get(ancestor, []):
                if a_first <= first and (a_end is None or first < a_end):
                    return upstream(ancestor)
        return DEVICE

    return tuple(
        Outage(device, first, end, cause(device, first))
        for device in plan.devices
        for first, end in spans.get(device, [])
    )


def _check_counts(down_after: int, up_after: int) -> None:
    if down_after < 1 or up_after < 1:
        raise ValueError("down_after and up_after count probe rounds: at least 1")


def _together(
    devices: Sequence[str], first: int, end: int, cause: Callable[[str], str]
) -> tuple[Outage, ...]:
    return tuple(Outage(d, first, end, cause(d)) for d in devices)


def _nearest_in(plan: AddressPlan, group: Sequence[str]) -> Callable[[str], str]:
    """Cause of each device of a group that fails as one: its nearest ancestor in the group."""

    def cause(device: str) -> str:
        for ancestor in plan.ancestors(device):
            if ancestor in group:
                return upstream(ancestor)
        return DEVICE

    return cause


def camera_fails_and_recovers(
    plan: AddressPlan,
    camera: str,
    *,
    fail_at: int = 1,
    down_rounds: int | None = None,
    down_after: int = 3,
    up_after: int = 2,
) -> Scenario:
    """One device stops answering for `down_rounds` rounds (default down_after + 1), then answers.

    With down_rounds < down_after this is a blip: no outage at all.
    """
    _check_counts(down_after, up_after)
    length = down_after + 1 if down_rounds is None else down_rounds
    if fail_at < 0 or length < 1:
        raise ValueError("fail_at >= 0 and down_rounds >= 1")
    back = fail_at + length
    address = plan.address(camera)
    steps = (
        Step(fail_at, silence=(address,), note=f"{camera} fails"),
        Step(back, restore=(address,), note=f"{camera} recovers"),
    )
    if length >= down_after:
        outages: tuple[Outage, ...] = (Outage(camera, fail_at, back, DEVICE),)
        summary = (
            f"{camera} fails in rounds {fail_at}..{back - 1} ({length} >= down_after={down_after}): "
            f"one outage from round {fail_at}, ended at round {back} after {up_after} good rounds; "
            "its own fault; every other device stays up"
        )
    else:
        outages = ()
        summary = (
            f"{camera} fails in rounds {fail_at}..{back - 1} ({length} < down_after={down_after}): "
            "a blip, no outage for anyone"
        )
    return Scenario(
        "camera fails and recovers", summary, plan, steps, back + up_after + 1, down_after, up_after, outages
    )


def flapping(
    plan: AddressPlan,
    device: str,
    *,
    flaps: int = 3,
    down_rounds: int = 1,
    up_rounds: int = 1,
    start: int = 1,
    down_after: int = 3,
    up_after: int = 2,
) -> Scenario:
    """Silence for `down_rounds`, restore for `up_rounds`, `flaps` times: never long enough to count."""
    _check_counts(down_after, up_after)
    if not 1 <= down_rounds < down_after:
        raise ValueError(f"flapping needs 1 <= down_rounds < down_after ({down_after}), got {down_rounds}")
    if flaps < 1 or up_rounds < 1 or start < 0:
        raise ValueError("flaps >= 1, up_rounds >= 1, start >= 0")
    address = plan.address(device)
    steps: list[Step] = []
    for i in range(flaps):
        at = start + i * (down_rounds + up_rounds)
        steps.append(Step(at, silence=(address,), note=f"{device} drops (flap {i + 1})"))
        steps.append(Step(at + down_rounds, restore=(address,), note=f"{device} back (flap {i + 1})"))
    rounds = start + flaps * (down_rounds + up_rounds) + up_after
    summary = (
        f"{device} flaps {flaps} times, down {down_rounds} round(s) each (< down_after={down_after}): "
        "no outage for anyone"
    )
    return Scenario("flapping", summary, plan, tuple(steps), rounds, down_after, up_after, ())


def switch_down(
    plan: AddressPlan,
    switch: str,
    *,
    fail_at: int = 1,
    down_rounds: int | None = None,
    down_after: int = 3,
    up_after: int = 2,
) -> Scenario:
    """A switch and everything behind it go silent together, and come back together."""
    _check_counts(down_after, up_after)
    length = down_after + 1 if down_rounds is None else down_rounds
    if length < down_after:
        raise ValueError("down_rounds < down_after: that is a blip (camera_fails_and_recovers)")
    group = [switch, *plan.behind(switch)]
    addresses = tuple(plan.addresses(group))
    back = fail_at + length
    steps = (
        Step(fail_at, silence=addresses, note=f"{switch} and {len(group) - 1} behind it fail"),
        Step(back, restore=addresses, note=f"{switch} is back"),
    )
    outages = _together(group, fail_at, back, _nearest_in(plan, group))
    summary = (
        f"{switch} and the {len(group) - 1} devices behind it fail in rounds {fail_at}..{back - 1}: "
        f"each has an outage from round {fail_at} to {back}; {switch}'s is its own, every other is "
        f"upstream:<its parent>; the rest of the fleet stays up"
    )
    return Scenario(
        "switch and everything behind it",
        summary,
        plan,
        steps,
        back + up_after + 1,
        down_after,
        up_after,
        outages,
    )


def site_power(
    plan: AddressPlan,
    site: str,
    *,
    fail_at: int = 1,
    down_rounds: int | None = None,
    down_after: int = 3,
    up_after: int = 2,
) -> Scenario:
    """Power cut: every device of a site goes silent, whatever its place in the tree."""
    _check_counts(down_after, up_after)
    length = down_after + 1 if down_rounds is None else down_rounds
    if length < down_after:
        raise ValueError("down_rounds < down_after: nothing would be an outage")
    group = plan.at_site(site)
    addresses = tuple(plan.addresses(group))
    back = fail_at + length
    steps = (
        Step(fail_at, silence=addresses, note=f"power cut at {site}"),
        Step(back, restore=addresses, note=f"power back at {site}"),
    )
    cause = _nearest_in(plan, group)
    outages = _together(group, fail_at, back, cause)
    roots = [d for d in group if cause(d) == DEVICE]
    summary = (
        f"all {len(group)} devices of {site} fail in rounds {fail_at}..{back - 1}: each has an "
        f"outage from round {fail_at} to {back}; {', '.join(roots)} own theirs (their parent is "
        "elsewhere or absent), every other one is upstream:<its parent>; other sites stay up "
        "(whether a power cut is excluded is the contract's business, not the harness's)"
    )
    return Scenario(
        "site power cut", summary, plan, steps, back + up_after + 1, down_after, up_after, outages
    )
