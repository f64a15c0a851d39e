"""SLA at risk for the month in progress, end to end: a camera down for hours under a contract with
tiers, repair deadlines and KPI targets; the month-to-date job's figures (from its child process)
in /metrics and /api/v1/sla agree with the pure rules, and where they are not computed the API says
so."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from slamon.clock import FakeClock
from slamon.model import Kpi, KpiTarget, ProbeKind, RepairOverrun, SlaTerms, Tier, to_micros
from slamon.probers.scripted import ScriptedProber
from slamon.service.journal import Journal
from slamon.service.metrics import Figures
from slamon.service.monitor import Monitor
from slamon.service.mtd import compute_in_child
from slamon.service.web import create_app
from slamon.service.writer import Writer
from slamon.store import Store
from tests.harness.fleets import T0, fleet_of
from tests.service.drive import PLAN

TERMS = SlaTerms(
    availability_tiers=(Tier(Decimal("0.99"), Decimal("0.10")), Tier(Decimal("0.95"), Decimal("0.30"))),
    repair_deadline={"urban": timedelta(hours=4)},
    repair_overrun=RepairOverrun(Decimal(50)),
    fleet_kpis={Kpi.ONLINE_RATE: KpiTarget(Decimal("0.999"), Decimal("0.05"))},
)
CAMERA = "SIM-S1W1C2"
STEP = timedelta(minutes=2)


def samples(body: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


async def test_sla_at_risk_in_metrics_and_the_api(tmp_path: Path, aiohttp_client: Any) -> None:
    clock = FakeClock(T0)
    store = Store(f"sqlite:///{tmp_path / 'slamon.db'}")
    prober = ScriptedProber(clock)
    intervals = {ProbeKind.ICMP: STEP}
    monitor = Monitor(
        fleet_of(PLAN, TERMS), store, clock, {ProbeKind.ICMP: prober}, intervals,
        writer=Writer(store, Journal(tmp_path / "journal")),
    )  # fmt: skip
    await monitor.start()
    figures = Figures()
    client = await aiohttp_client(create_app(monitor, clock, intervals, figures))
    early = await client.get("/api/v1/sla")  # not computed here yet: said, not an error
    assert early.status == 200
    assert (await early.json())["contracts"] == []

    prober.silence(CAMERA)
    for i in range(91):  # 3 h of 2-minute rounds: down from the first failure (i = 0)
        clock.set(T0 + i * STEP)
        await monitor.run_round(ProbeKind.ICMP)
    await monitor.flush()
    now = to_micros(clock.now())
    figures.mtd = await compute_in_child(store.url, now)
    figures.computed_at = now / 1e6
    await monitor.refresh_view()
    await monitor.close()

    body = await (await client.get("/metrics")).text()
    (left,) = samples(body, "slamon_repair_deadline_seconds").items()
    assert dict(left[0])["device"] == CAMERA
    assert left[1] == 3600, "4 h deadline, 3 h down"
    margins = {dict(k)["device"]: v for k, v in samples(body, "slamon_sla_tier_margin_seconds").items()}
    month = 31 * 86_400
    assert margins[CAMERA] == month // 100 - 3 * 3600, "1 % of July less the 3 h so far"
    assert margins["SIM-S1W1C1"] == month // 100
    (kpi,) = samples(body, "slamon_sla_kpi_margin").values()
    assert kpi < 0, "one camera in twelve down for 3 h of 3 h: the online rate is far below 99.9 %"
    (deductions,) = samples(body, "slamon_mtd_deductions").values()
    assert deductions > 0
    availability = {
        dict(k)["device"]: v for k, v in samples(body, "slamon_device_mtd_availability_ratio").items()
    }
    # S so far: July 1 00:00 (Asia/Shanghai) to T0 + 3 h = 235 h; D = 3 h
    assert abs(availability[CAMERA] - (1 - 3 / 235)) < 1e-6

    api = await (await client.get("/api/v1/sla", params={"contract": "C1"})).json()
    (c1,) = api["contracts"]
    assert c1["repair_deadlines"] == [{"device": CAMERA, "left_s": 3600.0, "area": "urban"}]
    assert c1["tier_margins"][0] == {
        "device": CAMERA,
        "left_s": float(month // 100 - 3 * 3600),
        "below": "0.99",
    }
    assert Decimal(c1["fee_total"]) - Decimal(c1["deductions"]) == Decimal(c1["payable"])
    assert (await client.get("/api/v1/sla", params={"contract": "NOPE"})).status == 404
    store.close()
