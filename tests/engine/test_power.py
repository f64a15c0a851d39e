"""Suspected power cuts: a site whose devices all fail in one round while its upstream answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slamon.engine.power import PowerWatch
from slamon.model import (
    Contract,
    ContractId,
    Device,
    DeviceId,
    DeviceKind,
    ExclusionCategory,
    ExclusionStatus,
    Fleet,
    Inventory,
    ProbeKind,
    ProbeResult,
    Site,
    SiteId,
    to_micros,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def fleet() -> Fleet:
    """L1 at S1 feeds SW2 at S2 (cameras C21, C22) and SW3 at S3 (one camera); S4 hangs off nothing."""
    sites = {SiteId(s): Site(SiteId(s), s, "d", "urban") for s in ("S1", "S2", "S3", "S4")}

    def dev(i: str, kind: DeviceKind, site: str, parent: str | None = None) -> Device:
        return Device(
            DeviceId(i),
            kind,
            f"127.0.0.{len(i)}",
            SiteId(site),
            ContractId("C"),
            DeviceId(parent) if parent else None,
        )

    devices = [
        dev("L1", DeviceKind.LINK, "S1"),
        dev("SW2", DeviceKind.SWITCH, "S2", "L1"),
        dev("C21", DeviceKind.CAMERA, "S2", "SW2"),
        dev("C22", DeviceKind.CAMERA, "S2", "SW2"),
        dev("SW3", DeviceKind.SWITCH, "S3", "L1"),
        dev("SW4", DeviceKind.SWITCH, "S4"),
        dev("C41", DeviceKind.CAMERA, "S4", "SW4"),
    ]
    contract = Contract(ContractId("C"), "v", "CNY", "Asia/Shanghai", T0.date(), 36, {})
    return Fleet(Inventory(sites, {d.id: d for d in devices}), {contract.id: contract})


def results(
    second: int, down: set[str], ids: tuple[str, ...] = ("L1", "SW2", "C21", "C22", "SW3", "SW4", "C41")
) -> list[ProbeResult]:
    at = T0 + timedelta(seconds=second)
    return [ProbeResult(DeviceId(i), ProbeKind.ICMP, at, i not in down) for i in ids]


def test_a_site_dark_in_one_round_with_its_upstream_up_is_suspected_until_it_answers() -> None:
    watch = PowerWatch.of(fleet())
    assert watch.round(results(0, set())) == ([], [])
    opened, closed = watch.round(results(30, {"SW2", "C21", "C22"}))
    assert closed == []
    assert [(s.site, s.since, s.devices, dict(s.upstream)) for s in opened] == [
        ("S2", to_micros(T0) + 30_000_000, ("C21", "C22", "SW2"), {"L1": True})
    ]
    proposal = opened[0].proposal(to_micros(T0) + 60_000_000)
    assert proposal.id == "PWR-S2-20261201T000030Z"
    assert (proposal.category, proposal.status) == (ExclusionCategory.POWER, ExclusionStatus.PROPOSED)
    assert proposal.scope.sites == {"S2"}
    assert (proposal.start, proposal.end) == (T0 + timedelta(seconds=30), T0 + timedelta(seconds=60))
    assert "all 3 devices of site S2 failed in one round while L1 answered" in proposal.reason
    assert watch.round(results(60, {"SW2", "C21", "C22"})) == ([], [])  # still dark: nothing new
    opened, closed = watch.round(results(90, {"C21"}))  # the switch is back
    assert opened == []
    assert [(s.site, s.until) for s in closed] == [("S2", to_micros(T0) + 90_000_000)]
    assert closed[0].proposal(0).end == T0 + timedelta(seconds=90)
    assert watch.open == {}


def test_an_upstream_dark_too_is_upstream_s_outage_not_power() -> None:
    watch = PowerWatch.of(fleet())
    watch.round(results(0, set()))
    assert watch.round(results(30, {"L1", "SW2", "C21", "C22", "SW3"})) == ([], [])


def test_devices_failing_one_by_one_are_not_one_event() -> None:
    watch = PowerWatch.of(fleet())
    watch.round(results(0, set()))
    watch.round(results(30, {"C21"}))
    assert watch.round(results(60, {"SW2", "C21", "C22"})) == ([], [])  # C21 was already down


def test_a_site_of_one_device_or_without_upstream_is_never_suspected() -> None:
    watch = PowerWatch.of(fleet())
    assert "S3" not in watch.members  # SW3 alone
    assert "S4" not in watch.upstream  # SW4 hangs off nothing outside S4
    watch.round(results(0, set()))
    assert watch.round(results(30, {"SW3", "SW4", "C41"})) == ([], [])


def test_a_site_not_all_in_the_round_is_not_judged() -> None:
    watch = PowerWatch.of(fleet())
    watch.round(results(0, set()))
    assert watch.round(results(30, {"SW2", "C21"}, ids=("L1", "SW2", "C21"))) == ([], [])
