"""Fleets for tests, built in code: a scenario plan's devices under one contract."""

from __future__ import annotations

from datetime import UTC, datetime

from slamon.model import (
    Contract,
    ContractId,
    Device,
    DeviceId,
    DeviceKind,
    Fleet,
    Inventory,
    Site,
    SiteId,
    SlaTerms,
)
from tests.harness.scenarios import AddressPlan

KINDS = {"link": DeviceKind.LINK, "switch": DeviceKind.SWITCH, "camera": DeviceKind.CAMERA}
T0 = datetime(2025, 7, 10, 8, 0, tzinfo=UTC)


def fleet_of(plan: AddressPlan, sla: SlaTerms | None = None) -> Fleet:
    """Every device of the plan under contract C1 (Asia/Shanghai, from July 2025, cameras 1 a month)."""
    contract = Contract(
        ContractId("C1"),
        "v",
        "CNY",
        "Asia/Shanghai",
        T0.date().replace(day=1),
        12,
        {DeviceKind.CAMERA: 1, DeviceKind.SWITCH: 0, DeviceKind.LINK: 0},  # type: ignore[dict-item]
        sla=sla or SlaTerms(),
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
