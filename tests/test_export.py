"""`slamon exclusions export` writes the exclusions file's format: whatever the store holds, the
exclusions file loader reads back exactly the same exclusions (hypothesis), in any time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slamon.loaders.contracts import load_contracts
from slamon.loaders.exclusions import load_exclusions
from slamon.loaders.inventory import load_inventory
from slamon.model import (
    ContractId,
    DeviceId,
    Exclusion,
    ExclusionCategory,
    ExclusionId,
    ExclusionStatus,
    Scope,
    SiteId,
)
from slamon.workflow import export_yaml
from tests.conftest import TESTDATA

CONTRACTS = load_contracts(sorted((TESTDATA / "contracts" / "good").glob("*.yaml")))
INVENTORY = load_inventory(TESTDATA / "inventory" / "good.yaml", CONTRACTS)
DEVICES = sorted(INVENTORY.devices)
SITES = sorted(INVENTORY.sites)
TEXT = st.text(st.characters(categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=30).filter(
    str.strip
)


@st.composite
def exclusions(draw: st.DrawFn) -> tuple[Exclusion, ...]:
    count = draw(st.integers(0, 5))
    out = []
    for i in range(count):
        devices = draw(st.sets(st.sampled_from(DEVICES), max_size=3))
        sites = draw(st.sets(st.sampled_from(SITES), max_size=2))
        contracts = draw(st.sets(st.sampled_from(sorted(CONTRACTS)), max_size=1))
        if not devices and not sites and not contracts:
            devices = {DEVICES[0]}
        start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(microseconds=draw(st.integers(0, 10**14)))
        status = draw(st.sampled_from(ExclusionStatus))
        approver = draw(TEXT) if status is ExclusionStatus.APPROVED else draw(st.none() | TEXT)
        out.append(
            Exclusion(
                id=ExclusionId(f"EX-{i}"),
                category=draw(st.sampled_from(ExclusionCategory)),
                scope=Scope(
                    devices=frozenset(DeviceId(d) for d in devices),
                    sites=frozenset(SiteId(s) for s in sites),
                    contracts=frozenset(ContractId(c) for c in contracts),
                ),
                start=start,
                end=start + timedelta(microseconds=draw(st.integers(1, 10**12))),
                reason=draw(TEXT),
                status=status,
                approved_by=approver,
            )
        )
    return tuple(out)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(exclusions(), st.sampled_from(["Asia/Shanghai", "UTC", "America/St_Johns", "Asia/Kathmandu"]))
def test_an_export_reads_back_as_the_same_exclusions(
    tmp_path: Path, found: tuple[Exclusion, ...], zone: str
) -> None:
    path = tmp_path / "exclusions.yaml"
    path.write_text(export_yaml(found, ZoneInfo(zone), "exported by a test"), encoding="utf-8")
    assert load_exclusions(path, INVENTORY, CONTRACTS) == found
