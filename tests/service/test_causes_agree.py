"""One cause authority: metrics, the device API, the outage API and the statement name the same
cause for every second, because they all ask billing.causes (SLA.md §3)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from slamon import workflow
from slamon.access import Actor, Role
from slamon.issuing import statement
from slamon.model import ExclusionCategory, ProbeKind, SlaTerms, to_micros
from slamon.service.web import create_app
from tests.harness.flaky import FlakyStore
from tests.harness.fleets import fleet_of
from tests.service.drive import INTERVAL, PLAN, T0, make_run

SWITCH = "SIM-S1W1"
CAMERA = "SIM-S1W1C1"
BEHIND = ["SIM-S1W1C1", "SIM-S1W1C2", "SIM-S1W1C3"]


def cause_lines(metrics: str, device: str) -> list[str]:
    return re.findall(
        rf'slamon_device_cause{{[^}}]*device="{device}"[^}}]*cause="([^"]+)"', metrics
    ) or re.findall(rf'slamon_device_cause{{device="{device}"[^}}]*cause="([^"]+)"', metrics)


@pytest.mark.parametrize(
    ("linger", "expected"),
    [
        # down from round 2; the switch is back at round 7, the camera 3 rounds later: all upstream
        (3, {"upstream:SIM-S1W1": (7 - 2 + 3) * 60.0}),
        # the camera 8 rounds later: upstream until the grace ends (round 12), its own fault after
        (8, {"upstream:SIM-S1W1": (12 - 2) * 60.0, "device": (7 + 8 - 12) * 60.0}),
    ],
    ids=["within-grace", "past-grace"],
)
async def test_a_camera_down_after_its_switch_is_back(
    tmp_path: Path, aiohttp_client: Any, linger: int, expected: dict[str, float]
) -> None:
    """The switch is silent from round 2 to 6 (down from round 2, back at round 7); CAMERA stays
    silent `linger` rounds longer. Every view, at every round, names the cause SLA.md gives."""
    store = FlakyStore(f"sqlite:///{tmp_path / 'causes.db'}")
    run = make_run(store, tmp_path / "journal")
    await run.monitor.start()
    client = await aiohttp_client(create_app(run.monitor, run.clock, {ProbeKind.ICMP: INTERVAL}))
    back = 7
    seen: list[tuple[int, str | None, str | None]] = []
    for i in range(back + linger + 4):
        run.prober.restore(*run.prober.silent)
        if 2 <= i < back:
            run.prober.silence(SWITCH, *BEHIND)
        if back <= i < back + linger:
            run.prober.silence(CAMERA)
        run.clock.set(T0 + i * INTERVAL)
        await run.monitor.run_round(ProbeKind.ICMP)
        metrics = await (await client.get("/metrics")).text()
        devices = (await (await client.get("/api/v1/devices", params={"state": "down"})).json())["devices"]
        api = next((d["cause"] for d in devices if d["id"] == CAMERA), None)
        shown = cause_lines(metrics, CAMERA)
        seen.append((i, shown[0] if shown else None, api))
    await run.monitor.flush()

    grace_end = back + 5  # the switch was back at round 7; the grace is 5 minutes
    for i, metric, api in seen:
        assert metric == api, f"round {i}: metrics say {metric}, the API {api}"
        if 4 <= i < back + linger:  # down (3 failed rounds) until the camera answers again
            want = "upstream:SIM-S1W1" if i < grace_end else "device"
            assert api == want, f"round {i}: {api}, want {want}"
        elif i >= back + linger + 1:
            assert api is None, f"round {i}: still down"

    window = {"from": T0.isoformat(), "to": run.clock.now().isoformat(), "device": CAMERA}
    outages = (await (await client.get("/api/v1/outages", params=window)).json())["outages"]
    assert [o["causes"] for o in outages] == [expected]

    doc = statement(store, "C1", "2025-07", issue=False, now=datetime(2025, 8, 2, tzinfo=UTC)).document
    charged = [o for o in doc["outages"] if o["device"] == CAMERA]
    assert [o["causes"] for o in charged] == [{k: int(v) for k, v in expected.items()}]
    await run.monitor.close()
    store.close()


async def test_an_exclusion_decided_in_the_store_counts_in_the_live_view_at_the_next_round(
    tmp_path: Path, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The exclusions have one authority too: the live view (metrics and the device API) judges by
    those in force in the store, as the outage API and the statement do. A proposal changes
    nothing; an approval (made outside the service, as `slamon exclusions approve` would) shows
    at the next round; a withdrawal takes it back."""
    store = FlakyStore(f"sqlite:///{tmp_path / 'causes.db'}")
    fleet = fleet_of(PLAN, SlaTerms(exclusions=frozenset({ExclusionCategory.POWER})))
    run = make_run(store, tmp_path / "journal", fleet=fleet)
    await run.monitor.start()
    client = await aiohttp_client(create_app(run.monitor, run.clock, {ProbeKind.ICMP: INTERVAL}))
    rounds = iter(range(100))

    async def causes_after_a_round() -> tuple[str | None, str | None]:
        run.prober.silence(CAMERA)
        run.clock.set(T0 + next(rounds) * INTERVAL)
        await run.monitor.run_round(ProbeKind.ICMP)
        metrics = await (await client.get("/metrics")).text()
        devices = (await (await client.get("/api/v1/devices", params={"state": "down"})).json())["devices"]
        shown = cause_lines(metrics, CAMERA)
        return (shown[0] if shown else None), next((d["cause"] for d in devices if d["id"] == CAMERA), None)

    for _ in range(4):
        seen = await causes_after_a_round()
    assert seen == ("device", "device")

    claim = {
        "category": "power",
        "scope": {"devices": [CAMERA]},
        "start": (T0 - timedelta(hours=1)).isoformat(),
        "end": (T0 + timedelta(hours=2)).isoformat(),
        "reason": "供电局停电",
    }
    ops = Actor("ops", Role.OPS)
    manager = Actor("manager", Role.CONTRACT_MANAGER)
    with store.begin() as tx:
        ident = workflow.propose(tx, fleet, ops, claim, (), run.clock.now()).exclusion.id
    assert await causes_after_a_round() == ("device", "device"), "a proposal changes nothing"

    with store.begin() as tx:
        workflow.approve(tx, fleet, manager, ident, "bureau notice 17", run.clock.now())
    assert await causes_after_a_round() == ("excluded:power", "excluded:power")

    window = {"from": T0.isoformat(), "to": run.clock.now().isoformat(), "device": CAMERA}
    outages = (await (await client.get("/api/v1/outages", params=window)).json())["outages"]
    assert [list(o["causes"]) for o in outages] == [["excluded:power"]], "the outage API agrees"

    store.fail()  # the store cannot be read: the view goes on with the exclusions read last
    store.reads_fail = True
    with caplog.at_level(logging.WARNING, logger="slamon.service.monitor"):
        assert await causes_after_a_round() == ("excluded:power", "excluded:power")
        assert await causes_after_a_round() == ("excluded:power", "excluded:power")
    warned = [r.getMessage() for r in caplog.records if "exclusions read before" in r.getMessage()]
    assert len(warned) == 1, warned
    store.heal()
    await run.monitor.flush()

    with store.begin() as tx:
        tx.exclusions.withdraw(ident, "manager", "cli", to_micros(run.clock.now()), note="wrong site")
    assert await causes_after_a_round() == ("device", "device")
    await run.monitor.close()
    store.close()
