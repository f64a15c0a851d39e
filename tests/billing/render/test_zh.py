"""The statement's Chinese: every reason slamon/billing/deductions.py writes has its translation,
and every column of the CSV and XLSX has a Chinese heading."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slamon.billing.causes import why_not_honoured
from slamon.billing.deductions import Line, cap_line, kpi_lines, overrun_line, tier_line
from slamon.billing.render import zh
from slamon.billing.render.csv import SECTIONS, SUMMARY
from slamon.model import (
    HOUR,
    Contract,
    ContractId,
    Device,
    DeviceId,
    DeviceKind,
    Exclusion,
    ExclusionCategory,
    ExclusionId,
    ExclusionStatus,
    Kpi,
    KpiTarget,
    RepairOverrun,
    Scope,
    SiteId,
    SlaTerms,
    Tier,
)

CAMERA = Device(DeviceId("YJ-C0007"), DeviceKind.CAMERA, "10.0.0.7", SiteId("S1"), ContractId("C1"))


def contract(**sla: object) -> Contract:
    return Contract(
        id=ContractId("YJ-2025"),
        vendor="v",
        currency="CNY",
        timezone="Asia/Shanghai",
        term_start=date(2025, 1, 1),
        term_months=36,
        fees={DeviceKind.CAMERA: Decimal("92.29")},
        sla=SlaTerms(**sla),  # type: ignore[arg-type]
    )


def test_the_reasons_of_the_july_example() -> None:
    assert (
        zh.reason_zh("availability_tier", "availability 0.9592 < 0.99")
        == "本月可用率 0.9592，低于分档线 0.99"
    )
    assert zh.reason_zh(
        "repair_overrun", "1d6h20m > 4h (urban): 27 started hours, capped at 500.00 per incident"
    ) == (
        "故障累计计入 1天6小时20分，超过城区修复时限 4小时；超时不足 1 小时按 1 小时计，共 27 小时，单次封顶 500.00"
    )
    assert zh.reason_zh("repair_overrun", "10h > 8h (rural): 2 started hours") == (
        "故障累计计入 10小时，超过乡镇修复时限 8小时；超时不足 1 小时按 1 小时计，共 2 小时"
    )
    assert zh.reason_zh("fleet_kpi", "online_rate 0.9300 < 0.95") == "本月在线率 0.9300，低于考核目标 0.95"
    assert (
        zh.reason_zh("cap", "deductions 718.46 exceed the cap of 30% of the fee total 1896.41 = 568.92")
        == "扣款合计 718.46 超过封顶额（服务费合计 1896.41 × 30% = 568.92），核减超出部分"
    )


def test_a_reason_slamon_does_not_write_has_no_translation() -> None:
    assert zh.reason_zh("availability_tier", "availability fell") is None
    assert zh.reason_zh("new_rule", "availability 0.9592 < 0.99") is None


def translated(line: Line) -> str:
    text = zh.reason_zh(line.rule, line.reason)
    assert text is not None, line.reason
    return text


@given(
    availability=st.fractions(min_value=0, max_value=1),
    below=st.decimals(min_value="0.000001", max_value=1, places=6),
)
def test_every_tier_reason(availability: Fraction, below: Decimal) -> None:
    line = tier_line(CAMERA, Decimal("92.29"), availability, [Tier(below=below, deduct=Decimal("0.1"))])
    if line is not None:
        assert str(below) in translated(line)


@given(
    counted=st.integers(min_value=1, max_value=400 * 24 * HOUR),
    deadline_s=st.integers(min_value=1, max_value=365 * 86_400),
    area=st.sampled_from(["urban", "rural", "mountain_2"]),
    per_hour=st.decimals(min_value=0, max_value=1000, places=2),
    cap=st.none() | st.decimals(min_value=0, max_value=10_000, places=2),
)
def test_every_overrun_reason(
    counted: int, deadline_s: int, area: str, per_hour: Decimal, cap: Decimal | None
) -> None:
    terms = contract(
        repair_deadline={area: timedelta(seconds=deadline_s)},
        repair_overrun=RepairOverrun(per_started_hour=per_hour, max_per_incident=cap),
    )
    line = overrun_line(CAMERA, area, 0, counted, terms)
    if line is not None:
        text = translated(line)
        assert f"共 {line.hours} 小时" in text
        assert (f"单次封顶 {cap}" in text) == ("capped" in line.reason)
        assert zh.word(zh.AREA, area) in text


@given(
    rate=st.fractions(min_value=0, max_value=1),
    target=st.decimals(min_value="0.000001", max_value=1, places=6),
    kpi=st.sampled_from(list(Kpi)),
)
def test_every_kpi_reason(rate: Fraction, target: Decimal, kpi: Kpi) -> None:
    terms = contract(fleet_kpis={kpi: KpiTarget(target=target, deduct=Decimal("0.05"))})
    for line in kpi_lines({Kpi.ONLINE_RATE: rate, Kpi.INTACT_RATE: rate}, terms, Decimal("1896.41")):
        assert translated(line).startswith(f"本月{zh.KPI[kpi.value]}")


@given(
    amounts=st.lists(st.decimals(min_value=0, max_value=10**6, places=2), min_size=1, max_size=5),
    fee_total=st.decimals(min_value=0, max_value=10**7, places=2),
    cap=st.decimals(min_value=0, max_value=1, places=6),
)
def test_every_cap_reason(amounts: list[Decimal], fee_total: Decimal, cap: Decimal) -> None:
    lines = [Line("availability_tier", a, "x") for a in amounts]
    line = cap_line(lines, contract(cap=cap), fee_total)
    if line is not None:
        assert translated(line).endswith("核减超出部分")


@pytest.mark.parametrize(
    ("status", "category", "words"),
    [
        (ExclusionStatus.PROPOSED, ExclusionCategory.POWER, "状态为待审批"),
        (ExclusionStatus.REJECTED, ExclusionCategory.CUSTOMER, "状态为已驳回"),
        (ExclusionStatus.APPROVED, ExclusionCategory.FORCE_MAJEURE, "合同 YJ-2025 不认可“不可抗力”类免责"),
    ],
)
def test_why_an_exclusion_is_not_honoured(
    status: ExclusionStatus, category: ExclusionCategory, words: str
) -> None:
    from datetime import UTC, datetime

    e = Exclusion(
        id=ExclusionId("EX-1"),
        category=category,
        scope=Scope(devices=frozenset({CAMERA.id})),
        start=datetime(2025, 7, 1, tzinfo=UTC),
        end=datetime(2025, 7, 2, tzinfo=UTC),
        reason="r",
        status=status,
        approved_by="x",
    )
    assert (
        zh.why_not_honoured(why_not_honoured(e, contract(exclusions=frozenset({ExclusionCategory.POWER}))))
        == words
    )


def test_durations_and_causes() -> None:
    assert [zh.duration(s) for s in (0, 180, 12_600, 109_200, 2_678_400, 1.5)] == [
        "0",
        "3分",
        "3小时30分",
        "1天6小时20分",
        "31天",
        "1秒500毫秒",
    ]
    assert [zh.cause(c) for c in ("device", "upstream:YJ-SW004", "excluded:fiber_cut", "other")] == [
        "设备自身",
        "上游 YJ-SW004",
        "免责（光缆中断）",
        "other",
    ]


def test_every_column_has_a_chinese_heading() -> None:
    columns = [("statement", c) for c in SUMMARY] + [(s, c) for s, _, cols in SECTIONS for c in cols]
    missing = [f"{s}.{c}" for s, c in columns if zh.heading(s, c) == c]
    assert missing == []
    for words in (zh.RULE, zh.CATEGORY, zh.EXCLUSION_STATUS, zh.KIND, zh.KPI, zh.STATUS):
        assert all(v and v != k for k, v in words.items())
    assert set(zh.RULE) == {
        "availability_tier",
        "repair_overrun",
        "fleet_kpi",
        "kpi_shortfall",
        "score_card",
        "cap",
    }
    assert set(zh.CATEGORY) == {c.value for c in ExclusionCategory}
    assert set(zh.KIND) == {k.value for k in DeviceKind}
