"""A site that goes dark while its upstream answers, through the service: the site event and a
proposed power exclusion reach the store, the outages API and the metrics show it, and
`slamon exclusions list --proposed` lists it for a contract manager; nothing is approved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from slamon.cli import main
from slamon.clock import FakeClock
from slamon.loaders.config import load_config
from slamon.loaders.fleet import load_fleet
from slamon.model import ProbeKind, to_micros
from slamon.probers.scripted import ScriptedProber
from slamon.service.api import outage_report
from slamon.service.metrics import SiteCollector
from slamon.service.monitor import Monitor
from slamon.store import Store

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def files(where: Path) -> Path:
    (where / "contracts").mkdir()
    (where / "contracts" / "c.yaml").write_text(
        "id: C\nvendor: v\ncurrency: CNY\ntimezone: Asia/Shanghai\nterm: {start: 2026-01-01, months: 36}\n"
        'fees: {camera: "100.00", switch: "0", link: "0"}\nsla: {exclusions: [power]}\n',
        encoding="utf-8",
    )
    (where / "inventory.yaml").write_text(
        "sites:\n"
        "  - {id: S1, name: 机房, district: 右江区, area: urban}\n"
        "  - {id: S2, name: 四塘镇, district: 右江区, area: urban}\n"
        "devices:\n"
        "  - {id: L1, kind: link, address: 127.0.61.1, site: S1, contract: C}\n"
        "  - {id: SW2, kind: switch, address: 127.0.61.2, site: S2, contract: C, parent: L1}\n"
        "  - {id: C21, kind: camera, address: 127.0.61.21, site: S2, contract: C, parent: SW2}\n"
        "  - {id: C22, kind: camera, address: 127.0.61.22, site: S2, contract: C, parent: SW2}\n",
        encoding="utf-8",
    )
    config = where / "slamon.yaml"
    config.write_text(
        "database: sqlite:///slamon.db\ninventory: inventory.yaml\ncontracts: [contracts/*.yaml]\n",
        encoding="utf-8",
    )
    return config


async def test_a_dark_site_gets_a_proposed_power_exclusion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(files(tmp_path))
    clock = FakeClock(T0)
    icmp = ScriptedProber(clock)
    store = Store(config.database)
    monitor = Monitor(
        load_fleet(config), store, clock, {ProbeKind.ICMP: icmp}, {ProbeKind.ICMP: timedelta(seconds=30)}
    )
    await monitor.start()
    await monitor.run_round(ProbeKind.ICMP)
    icmp.silence("SW2", "C21", "C22")
    for i in range(1, 5):
        clock.set(T0 + timedelta(seconds=30 * i))
        await monitor.run_round(ProbeKind.ICMP)
    assert list(monitor.power.open) == ["S2"]
    registry = CollectorRegistry()
    registry.register(SiteCollector(lambda: list(monitor.power.open), lambda: monitor.trap_counts))
    assert registry.get_sample_value("slamon_site_power_suspected", {"site": "S2"}) == 1

    icmp.restore("SW2", "C21", "C22")
    clock.set(T0 + timedelta(seconds=150))
    await monitor.run_round(ProbeKind.ICMP)
    assert monitor.power.open == {}
    await monitor.flush()
    report = outage_report(store, monitor.fleet, {}, to_micros(T0), to_micros(clock.now()))
    [proposal] = report["proposed_exclusions"]
    assert proposal["id"] == "PWR-S2-20261201T020030Z"
    assert (proposal["category"], proposal["status"]) == ("power", "proposed")
    assert (proposal["start"], proposal["end"]) == ("2026-12-01T02:00:30Z", "2026-12-01T02:02:30Z")
    # nothing is excused: the cameras' outages stay upstream:SW2 and the switch's own stays device
    causes = {o["device"]: set(o["causes"]) for o in report["outages"]}
    assert causes == {"SW2": {"device"}, "C21": {"upstream:SW2"}, "C22": {"upstream:SW2"}}
    with store.read() as tx:
        events = tx.events.of("power", ["S2"])
    assert [e.body["until"] for e in events] == [None, to_micros(T0) + 150_000_000]
    assert events[0].body["upstream"] == {"L1": True}
    await monitor.close()
    store.close()

    assert main(["-c", str(config.path), "exclusions", "list", "--proposed"], clock) == 0
    shown = capsys.readouterr()
    assert "PWR-S2-20261201T020030Z  proposed power" in shown.out
    assert "sites S2  2026-12-01T10:00:30+08:00 – 2026-12-01T10:02:30+08:00" in shown.out
    assert "suspected power cut: all 3 devices of site S2 failed in one round while L1 answered" in shown.out
    assert shown.err == "1 proposed exclusion\n"


async def test_a_site_still_dark_at_a_restart_is_still_suspected_after_it(tmp_path: Path) -> None:
    """The service stops while a site is dark (it may share its power): after the restart the
    suspicion goes on from the ledger, and the proposal covers the whole cut once the site answers."""
    config = load_config(files(tmp_path))
    clock = FakeClock(T0)
    store = Store(config.database)

    def monitor_of(icmp: ScriptedProber) -> Monitor:
        return Monitor(
            load_fleet(config), store, clock, {ProbeKind.ICMP: icmp}, {ProbeKind.ICMP: timedelta(seconds=30)}
        )

    icmp = ScriptedProber(clock)
    first = monitor_of(icmp)
    await first.start()
    await first.run_round(ProbeKind.ICMP)
    icmp.silence("SW2", "C21", "C22")
    clock.set(T0 + timedelta(seconds=30))
    await first.run_round(ProbeKind.ICMP)
    assert list(first.power.open) == ["S2"]
    await first.close()

    clock.set(T0 + timedelta(minutes=10))
    again = monitor_of(ScriptedProber(clock))  # everyone answers again
    await again.start()
    assert list(again.power.open) == ["S2"]
    await again.run_round(ProbeKind.ICMP)
    assert again.power.open == {}
    await again.flush()
    with store.read() as tx:
        [proposal] = [e for e in tx.versions.exclusions() if e.id.startswith("PWR-S2-")]
    assert (proposal.start, proposal.end) == (T0 + timedelta(seconds=30), T0 + timedelta(minutes=10))
    await again.close()
    store.close()
