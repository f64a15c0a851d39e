"""Live monitoring end to end, in a network namespace where scripted devices go silent:
real ICMP rounds → live state → store → /metrics and /api/v1. The engine's time is a FakeClock set
to each round's "now"; nothing sleeps to wait for state."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from slamon.clock import FakeClock
from slamon.model import (
    Contract,
    ContractId,
    Device,
    DeviceId,
    DeviceKind,
    DeviceState,
    Fleet,
    Inventory,
    ProbeKind,
    Site,
    SiteId,
    SlaTerms,
    to_micros,
)
from slamon.probers.icmp import IcmpProber
from slamon.service.monitor import Monitor
from slamon.service.web import create_app
from slamon.store import Store
from tests.harness.netns import FleetNamespace
from tests.harness.scenarios import (
    AddressPlan,
    Scenario,
    camera_fails_and_recovers,
    flapping,
    site_power,
    switch_down,
)

# real ICMP in a namespace (root): the same scenarios run without root, scripted, in test_monitor.py;
# these are slow only as a whole (~15 s), which keeps `-m "not slow"` a loop under a minute
pytestmark = pytest.mark.slow

T0 = datetime(2025, 7, 10, 8, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=60)
PLAN = AddressPlan.grid(sites=2, switches=2, cameras=3)
KINDS = {"link": DeviceKind.LINK, "switch": DeviceKind.SWITCH, "camera": DeviceKind.CAMERA}


def fleet_of(plan: AddressPlan) -> Fleet:
    contract = Contract(
        ContractId("C1"),
        "v",
        "CNY",
        "Asia/Shanghai",
        T0.date().replace(day=1),
        12,
        {DeviceKind.CAMERA: 1, DeviceKind.SWITCH: 0, DeviceKind.LINK: 0},
        sla=SlaTerms(),
    )
    sites = {SiteId(s): Site(SiteId(s), s, f"D{s[-1]}", "urban") for s in plan.sites()}
    devices = {
        DeviceId(d.id): Device(
            DeviceId(d.id),
            KINDS[d.kind],
            d.address,
            SiteId(d.site),
            contract.id,
            DeviceId(d.parent) if d.parent else None,
        )
        for d in plan
    }
    return Fleet(Inventory(sites, devices), {contract.id: contract})


SCENARIOS = {
    "camera": camera_fails_and_recovers(PLAN, "SIM-S1W1C2"),
    "blip": camera_fails_and_recovers(PLAN, "SIM-S1W1C2", down_rounds=2),
    "flapping": flapping(PLAN, "SIM-S2W2C1", flaps=3),
    "switch": switch_down(PLAN, "SIM-S1W2"),
    "site": site_power(PLAN, "SIM-S2"),
}


def monitor_for(store: Store, clock: FakeClock) -> Monitor:
    prober = IcmpProber(clock, timeout=timedelta(milliseconds=200))
    return Monitor(fleet_of(PLAN), store, clock, {ProbeKind.ICMP: prober}, {ProbeKind.ICMP: INTERVAL})


def sample(text: str, name: str, device: str) -> list[tuple[dict[str, str], str]]:
    """(labels beyond the device's own, value) of a metric's samples for one device."""
    out = []
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels_text, value = line[len(name) + 1 :].rsplit("} ", 1)
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels_text))
        if labels.get("device") == device:
            out.append(
                (
                    {
                        k: v
                        for k, v in labels.items()
                        if k not in ("device", "kind", "site", "district", "contract")
                    },
                    value,
                )
            )
    return out


@pytest.mark.parametrize("name", SCENARIOS)
async def test_scenario_end_to_end(
    name: str, fleet_ns: FleetNamespace, tmp_path: Path, aiohttp_client: Any
) -> None:
    scenario: Scenario = SCENARIOS[name]
    clock = FakeClock(T0)
    with fleet_ns.inside():
        store = Store(f"sqlite:///{tmp_path / 'live.db'}")
        monitor = monitor_for(store, clock)
        await monitor.start()
        client = await aiohttp_client(create_app(monitor, clock, {ProbeKind.ICMP: INTERVAL}))
        during: str | None = None
        for rnd in scenario.timeline(T0, INTERVAL):
            scenario.apply(fleet_ns, rnd.index)
            clock.set(rnd.now)
            await monitor.run_round(ProbeKind.ICMP)
            states = {live.device.id: live.state_at(to_micros(rnd.now)) for live in monitor.state}
            assert not [d for d, s in states.items() if s is DeviceState.UNKNOWN]
            if rnd.down and during is None and any(s is DeviceState.DOWN for s in states.values()):
                during = await (await client.get("/metrics")).text()
                devices = await (await client.get("/api/v1/devices", params={"state": "down"})).json()
        await monitor.flush()

        # the store and the API agree with the script
        resp = await client.get(
            "/api/v1/outages", params={"from": T0.isoformat(), "to": clock.now().isoformat()}
        )
        assert resp.status == 200
        found = (await resp.json())["outages"]
        got = sorted((o["device"], o["start"], o["end"], sorted(o["causes"])) for o in found)
        want = sorted(
            (
                o.device,
                o.start(T0, INTERVAL).astimezone(_cst()).isoformat(),
                None if o.recovered_round is None else o.end(T0, INTERVAL).astimezone(_cst()).isoformat(),
                [o.cause],
            )
            for o in scenario.outages
        )
        assert got == want, scenario.describe()
        await monitor.close()
        store.close()

    if scenario.outages:
        assert during is not None
        for o in scenario.outages:
            assert sample(during, "slamon_device_up", o.device) == [({}, "0")]
            assert sample(during, "slamon_device_state", o.device) == [({"state": "down"}, "1")]
            assert sample(during, "slamon_device_cause", o.device) == [({"cause": o.cause}, "1")]
        assert {d["id"] for d in devices["devices"]} == scenario.with_outage()
        assert {d["id"]: d["cause"] for d in devices["devices"]} == {
            o.device: o.cause for o in scenario.outages
        }
    else:
        assert during is None, "a blip never makes a device down"


def _cst() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


async def test_a_restart_resumes_without_losing_or_inventing_downtime(
    fleet_ns: FleetNamespace, tmp_path: Path
) -> None:
    """Stop in the middle of an outage, start again: the outage continues; time the monitor was
    away is unknown, not down, and nothing stored before the stop is lost."""
    camera = "SIM-S1W1C1"
    clock = FakeClock(T0)
    url = f"sqlite:///{tmp_path / 'live.db'}"
    with fleet_ns.inside():
        store = Store(url)
        monitor = monitor_for(store, clock)
        await monitor.start()
        for i in range(6):  # the camera fails from round 2 on: down from round 2
            if i == 2:
                fleet_ns.silence(PLAN.address(camera))
            clock.set(T0 + i * INTERVAL)
            await monitor.run_round(ProbeKind.ICMP)
        await monitor.close()
        store.close()

        # away for 20 minutes (more than stale_after), then back; the camera recovers meanwhile
        fleet_ns.restore(PLAN.address(camera))
        store = Store(url)
        monitor = monitor_for(store, clock)
        await monitor.start()
        restarted = T0 + 25 * INTERVAL
        for i in range(4):
            clock.set(restarted + i * INTERVAL)
            await monitor.run_round(ProbeKind.ICMP)
        await monitor.flush()
        keys = monitor._keys
        with store.begin() as tx:
            tl = tx.timelines.load(
                [keys[DeviceId(camera)], keys[DeviceId("SIM-S1W1C2")]], -(1 << 62), 1 << 62
            )
        await monitor.close()
        store.close()

    cam = tl[keys[DeviceId(camera)]]
    stale = timedelta(minutes=5)
    last_before = T0 + 5 * INTERVAL
    assert [(t.at, t.state) for t in cam.transitions] == [
        (to_micros(T0), DeviceState.UP),
        (to_micros(T0 + 2 * INTERVAL), DeviceState.DOWN),  # back-dated to the first failure
        (to_micros(last_before + stale), DeviceState.UNKNOWN),  # the monitor was away
        (to_micros(restarted), DeviceState.UP),  # answered twice in a row after the restart
        (to_micros(restarted + 3 * INTERVAL + stale), DeviceState.UNKNOWN),
    ]
    assert [(o.start, o.end, o.open) for o in cam.outages] == [
        (to_micros(T0 + 2 * INTERVAL), to_micros(last_before + stale), False)
    ]
    neighbour = tl[keys[DeviceId("SIM-S1W1C2")]]
    assert [t.state for t in neighbour.transitions] == [
        DeviceState.UP,
        DeviceState.UNKNOWN,
        DeviceState.UP,
        DeviceState.UNKNOWN,
    ]
    assert neighbour.outages == ()


async def test_a_reload_never_overwrites_stored_history(fleet_ns: FleetNamespace, tmp_path: Path) -> None:
    """SIGHUP with a contract that judges state differently, and with a device dropped then put back:
    each device's stored outage survives, rebuilt with the new settings, and monitoring goes on."""
    from dataclasses import replace

    camera = DeviceId("SIM-S1W1C1")
    clock = FakeClock(T0)
    with fleet_ns.inside():
        store = Store(f"sqlite:///{tmp_path / 'live.db'}")
        monitor = monitor_for(store, clock)
        await monitor.start()
        fleet_ns.silence(PLAN.address(camera))
        for i in range(5):  # down from round 0
            clock.set(T0 + i * INTERVAL)
            await monitor.run_round(ProbeKind.ICMP)
        fleet_ns.restore(PLAN.address(camera))

        base = fleet_of(PLAN)
        contract = base.contracts[ContractId("C1")]
        stricter = replace(contract, sla=replace(contract.sla, down_after=2))
        without = replace(
            base,
            inventory=Inventory(
                base.inventory.sites, {k: v for k, v in base.inventory.devices.items() if k != camera}
            ),
        )
        for step, fleet in enumerate(
            [
                replace(base, contracts={contract.id: stricter}),
                without,
                replace(base, contracts={contract.id: stricter}),
            ]
        ):
            await monitor.reload(fleet)
            for i in range(3):
                clock.set(T0 + (5 + 3 * step + i) * INTERVAL)
                await monitor.run_round(ProbeKind.ICMP)
        await monitor.flush()
        key = monitor._keys[camera]
        with store.begin() as tx:
            tl = tx.timelines.load([key], -(1 << 62), 1 << 62)[key]
        await monitor.close()
        store.close()

    assert [(o.start, o.end, o.open) for o in tl.outages] == [
        (to_micros(T0), to_micros(T0 + 5 * INTERVAL), False)
    ], "the outage of rounds 0-4 is still stored"
    assert tl.transitions[0].at == to_micros(T0)


async def test_the_outage_list_stops_at_max_outages_and_says_so(
    fleet_ns: FleetNamespace, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site loses power: an outage for each of its devices. With the cap below that, the list
    holds exactly the first outages (by device id) up to the cap, and `truncated` says so."""
    import slamon.service.api

    scenario = SCENARIOS["site"]
    clock = FakeClock(T0)
    with fleet_ns.inside():
        store = Store(f"sqlite:///{tmp_path / 'live.db'}")
        monitor = monitor_for(store, clock)
        await monitor.start()
        client = await aiohttp_client(create_app(monitor, clock, {ProbeKind.ICMP: INTERVAL}))
        for rnd in scenario.timeline(T0, INTERVAL):
            scenario.apply(fleet_ns, rnd.index)
            clock.set(rnd.now)
            await monitor.run_round(ProbeKind.ICMP)
        await monitor.flush()
        window = {"from": T0.isoformat(), "to": clock.now().isoformat()}

        async def listed(cap: int) -> dict[str, Any]:
            monkeypatch.setattr(slamon.service.api, "MAX_OUTAGES", cap)
            resp = await client.get("/api/v1/outages", params=window)
            assert resp.status == 200
            body: dict[str, Any] = await resp.json()
            return body

        full = await listed(10_000)
        exact = await listed(len(full["outages"]))
        cut = await listed(3)
        await monitor.close()
        store.close()

    n = len(scenario.outages)
    assert n > 3
    assert cut["count"] == len(cut["outages"]) == 3
    assert cut["outages"] == full["outages"][:3]
    assert cut["truncated"] is True
    assert (full["count"], full["truncated"], len(full["outages"])) == (n, False, n)
    assert exact == full, "exactly as many outages as the cap: nothing was left out"
    assert (cut["from"], cut["to"]) == (full["from"], full["to"])
