"""The PDF a bureau signs, read back the way a person and a checker read it: poppler's pdftotext
(page by page), pdffonts and pdftoppm on a statement computed from real files."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from slamon.billing.render.capitals import capitals
from slamon.billing.render.context import Context
from slamon.billing.render.fonts import FontFile, choose, cjk_fonts
from slamon.billing.render.pdf import render_pdf
from slamon.errors import StatementError
from slamon.loaders.config import load_config
from slamon.loaders.fleet import load_fleet
from tests.billing.golden_helpers import HEADER, at, cam, contract, dev, inventory, up_all
from tests.billing.harness import statement_of, write_case
from tests.billing.test_golden import AUG1, JUL1, failure_with_a_gap

POPPLER = shutil.which("pdftotext") and shutil.which("pdffonts") and shutil.which("pdftoppm")
pytestmark = pytest.mark.skipif(
    not POPPLER, reason="poppler-utils is not installed (apt-get install poppler-utils)"
)

BUYER = "某某市公安局右江分局"
EXCLUSIONS = """\
- {id: EX-1, category: power, scope: {sites: [S1]},
   start: "2025-07-12T02:00:00+08:00", end: "2025-07-12T05:30:00+08:00",
   reason: 供电局计划停电, status: approved, approved_by: 王经理}
- {id: EX-2, category: customer, scope: {devices: [CAM1]},
   start: "2025-07-10T06:00:00+08:00", end: "2025-07-10T08:00:00+08:00",
   reason: 声称甲方迁移点位, status: rejected, approved_by: 王经理}
"""


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Context]:
    """July for a rural camera down 14 h across a monitoring gap (an overrun), a camera on the switch
    of an urban site with a power cut, and the buyer named in the contract."""
    try:
        cjk_fonts()
    except StatementError as exc:  # .ci/run installs it
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("pdf")
    terms = json.loads(contract())
    terms["buyer"] = BUYER
    inv = inventory(cam("CAM1", 1, site="S2"), dev("SW1", "switch", 1), cam("CAM2", 2, parent="SW1"))
    probes = (
        HEADER + failure_with_a_gap(at(7, 10, 20)) + up_all("SW1", JUL1, AUG1) + up_all("CAM2", JUL1, AUG1)
    )
    config = write_case(
        root, inv, probes, contract=json.dumps(terms, ensure_ascii=False), exclusions=EXCLUSIONS
    )
    doc = statement_of(config, "2025-07")
    fleet = load_fleet(load_config(config))
    return doc, Context.of(fleet.contracts["C1"], fleet.inventory, fleet.exclusions)  # type: ignore[index]


def pdf_of(doc: dict[str, Any], ctx: Context | None, tmp_path: Path) -> Path:
    out = io.BytesIO()
    render_pdf(doc, out, ctx)
    path = tmp_path / "statement.pdf"
    path.write_bytes(out.getvalue())
    return path


def pages(path: Path) -> list[str]:
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return [re.sub(r"\s+", " ", page) for page in text.split("\f")[:-1]]


def test_page_1_has_the_parties_the_totals_in_figures_and_capitals_the_rates_and_the_signatures(
    case: tuple[dict[str, Any], Context], tmp_path: Path
) -> None:
    doc, ctx = case
    first = pages(pdf_of(doc, ctx, tmp_path))[0]
    for text in (
        "甲方（采购人）",
        BUYER,
        "乙方（服务商）",
        "某某科技有限公司",
        "C1",
        "2025年7月",
        "租赁服务费合计",
        f"¥{doc['fee_total']}",
        "扣款合计",
        f"¥{doc['deduction_total']}",
        "应付金额（小写）",
        f"¥{doc['payable']}",
        "应付金额（大写）",
        "人民币" + capitals(Decimal(doc["payable"])),
        "在线率",
        "完好率",
        "≥ 95%",
        "≥ 90%",
        "监测覆盖 Monitored coverage",
        "甲方（盖章）",
        "乙方（盖章）",
        "负责人签字",
    ):
        assert text in first, text
    assert doc["deductions"], "the case has deductions"
    assert "修复超时扣款" in first


def test_the_totals_and_the_signatures_share_a_page_even_after_a_long_cover(
    case: tuple[dict[str, Any], Context], tmp_path: Path
) -> None:
    doc, ctx = case
    assert ctx.contract is not None
    long = replace(
        ctx, contract=replace(ctx.contract, buyer="某某市公安局右江分局（视频专网运维管理办公室）" * 4)
    )
    found = pages(pdf_of({**doc, "vendor": "某某科技有限公司" * 8}, long, tmp_path))
    [with_totals] = [page for page in found if f"¥{doc['payable']}" in page]
    assert "甲方（盖章）" in with_totals
    assert "乙方（盖章）" in with_totals
    assert "人民币" + capitals(Decimal(doc["payable"])) in with_totals


def test_the_totals_in_the_text_equal_the_json(case: tuple[dict[str, Any], Context], tmp_path: Path) -> None:
    doc, ctx = case
    text = " ".join(pages(pdf_of(doc, ctx, tmp_path)))
    for key in ("fee_total", "deduction_total", "payable"):
        assert f"¥{doc[key]}" in text


def test_every_page_carries_the_hash_the_revision_and_a_drafts_mark(
    case: tuple[dict[str, Any], Context], tmp_path: Path
) -> None:
    doc, ctx = case
    found = pages(pdf_of(doc, ctx, tmp_path))
    assert len(found) >= 2
    for i, page in enumerate(found, start=1):
        assert doc["hash"] in page
        assert f"第 {doc['revision']} 版 revision {doc['revision']}" in page
        assert "草稿 DRAFT" in page
        assert f"page {i} of {len(found)}" in page


def test_an_issued_statement_has_no_draft_mark(case: tuple[dict[str, Any], Context], tmp_path: Path) -> None:
    doc, ctx = case
    issued = {**doc, "status": "issued", "issued_at": "2025-08-02T09:00:00+08:00"}
    found = pages(pdf_of(issued, ctx, tmp_path))
    assert not any("DRAFT" in page or "草稿" in page for page in found)
    assert "第 1 版 · 正式 · 签发于 2025-08-02 09:00" in found[0]


def test_the_evidence_pages(case: tuple[dict[str, Any], Context], tmp_path: Path) -> None:
    doc, ctx = case
    text = " ".join(pages(pdf_of(doc, ctx, tmp_path))[1:])
    for part in (
        # deduction lines, in Chinese with the JSON's English beside
        "扣款明细 Deductions",
        "故障累计计入 13小时50分，超过乡镇修复时限 8小时；超时不足 1 小时按 1 小时计，共 6 小时",
        "13h50m > 8h (rural): 6 started hours",
        # per district, the timeline, the outage's evidence with its gap
        "分区县汇总 Per district",
        "右江区",
        "可用性时间轴",
        "CAM1 乡道",
        "首次失败 first failure 07-10 06:00:00",
        "最后失败 last failure 07-10 19:59:00",
        "恢复 recovered 07-10 20:00:00",
        "07-10 12:55:00 至",
        "07-10 13:05:00",
        # exclusions with scope, category, approver, verdict
        "点位 城东路口（S1）",
        "停电",
        "设备 CAM1",
        "王经理",
        "已驳回；不认可",
        # devices with site name, district and unknown time
        "设备明细 Devices",
        "城东路口",
        "监测未知",
    ):
        assert part in text, part


def test_the_chinese_font_is_embedded(case: tuple[dict[str, Any], Context], tmp_path: Path) -> None:
    path = pdf_of(case[0], case[1], tmp_path)
    rows = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    fonts = [line.split() for line in rows.splitlines()[2:]]
    assert fonts, rows
    assert all(row[-5] == "yes" for row in fonts), rows  # emb: every font is in the file
    assert any("WenQuanYi" in row[0] or "UMing" in row[0] or "UKai" in row[0] for row in fonts), rows


def test_the_pages_render(case: tuple[dict[str, Any], Context], tmp_path: Path) -> None:
    path = pdf_of(case[0], case[1], tmp_path)
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(path), str(tmp_path / "page")], check=True)
    assert len(list(tmp_path.glob("page-*.png"))) == len(pages(path))


def test_without_context_it_prints_the_ids(case: tuple[dict[str, Any], Context], tmp_path: Path) -> None:
    doc, _ = case
    found = pages(pdf_of(doc, None, tmp_path))
    assert "甲方（采购人）" in found[0]
    assert BUYER not in found[0]
    assert f"¥{doc['payable']}" in found[0]


def test_the_same_statement_gives_the_same_bytes(case: tuple[dict[str, Any], Context]) -> None:
    first, second = io.BytesIO(), io.BytesIO()
    render_pdf(case[0], first, case[1])
    render_pdf(case[0], second, case[1])
    assert first.getvalue() == second.getvalue()


def test_the_preferred_fonts_come_first() -> None:
    found = [
        FontFile("Noto Sans CJK SC", "/n.ttc", 0),
        FontFile("AR PL UMing CN", "/u.ttc", 0),
        FontFile("WenQuanYi Micro Hei", "/w.ttc", 0),
    ]
    assert [f.family for f in choose(found)] == ["WenQuanYi Micro Hei", "AR PL UMing CN", "Noto Sans CJK SC"]


def test_a_kpi_charged_by_the_point_fails_on_the_cover(
    case: tuple[dict[str, Any], Context], tmp_path: Path
) -> None:
    """A KPI whose only line is a per-point shortfall is failed, not passed, and shows its amount."""
    doc, ctx = case
    shortfall = {"rule": "kpi_shortfall", "kpi": "online_rate", "points": 3, "amount": "12.34", "reason": "x"}
    deductions = [d for d in doc["deductions"] if d["rule"] != "fleet_kpi"] + [shortfall]
    first = pages(pdf_of({**doc, "deductions": deductions}, ctx, tmp_path))[0]
    assert "未达标" in first
    assert "¥12.34" in first
    assert "指标差额按点扣款" in first
