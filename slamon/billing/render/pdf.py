"""A statement as the PDF a bureau signs: A4, Chinese first with English beside it.

Page 1 is what the signers read and sign: the contract, the parties (甲方 buyer, 乙方 vendor), the
month, the fee total, the deductions by rule, the payable amount in figures and in Chinese capitals
(大写金额), each fleet rate beside its target with pass or fail, how much of the month was
monitored, and the signature and seal (盖章) blocks. The pages after it hold the evidence: every
deduction line with its reason in Chinese (and the JSON's English beside it), a summary per
district, the availability timeline of every device with an outage, the outages with their
evidence, the exclusions with their scope and approver, and every device.

Every page carries the contract, month, revision, status and the statement's hash, so a printed
page can be matched to its JSON file; a draft has a large DRAFT mark on every page. The figures are
the JSON document's, printed as they are there; a renderer computes nothing a statement holds.
The Chinese font is embedded (render/fonts.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import IO, Any
from xml.sax.saxutils import escape

from reportlab.graphics.shapes import Circle, Drawing, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    KeepTogether,
    LongTable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from slamon.billing.render import chart, zh
from slamon.billing.render.capitals import capitals
from slamon.billing.render.context import Context
from slamon.billing.render.figures import KPIS, kpi_verdicts, percent_cut, target_percent
from slamon.billing.render.fonts import Fonts, cjk_fonts
from slamon.model import SlaTerms

PAGE = A4
MARGIN = 15 * mm
WIDTH = PAGE[0] - 2 * MARGIN
INK = colors.HexColor("#1a1a1a")
MUTED = colors.HexColor("#6b6b6b")
RULE = colors.HexColor("#9e9e9e")
HEAD = colors.HexColor("#eceff1")
WATERMARK = colors.Color(0.8, 0.1, 0.1, alpha=0.13)
RULE_ORDER = ("availability_tier", "repair_overrun", "fleet_kpi", "kpi_shortfall", "score_card", "cap")


@dataclass(frozen=True, slots=True)
class Styles:
    body: ParagraphStyle
    small: ParagraphStyle
    cell: ParagraphStyle
    num: ParagraphStyle
    head: ParagraphStyle
    title: ParagraphStyle
    subtitle: ParagraphStyle
    heading: ParagraphStyle
    note: ParagraphStyle
    font: str
    big: ParagraphStyle
    bignum: ParagraphStyle
    headnum: ParagraphStyle

    @classmethod
    def of(cls, font: str) -> Styles:
        def style(name: str, size: float, leading: float, **kw: Any) -> ParagraphStyle:
            return ParagraphStyle(
                name, fontName=font, fontSize=size, leading=leading, **{"textColor": INK, **kw}
            )

        return cls(
            font=font,
            body=style("body", 9, 12.5),
            small=style("small", 7, 9, textColor=MUTED),
            cell=style("cell", 7.2, 9),
            num=style("num", 7.2, 9, alignment=TA_RIGHT),
            head=style("head", 7.2, 8.8),
            title=style("title", 17, 22, alignment=TA_CENTER),
            subtitle=style("subtitle", 9, 12, alignment=TA_CENTER, textColor=MUTED),
            heading=style("heading", 11.5, 15, spaceBefore=4, spaceAfter=5),
            note=style("note", 7, 9.5, textColor=MUTED, spaceBefore=3),
            big=style("big", 12, 15),
            bignum=style("bignum", 12.5, 15, alignment=TA_RIGHT),
            headnum=style("headnum", 7.2, 8.8, alignment=TA_RIGHT),
        )


# --- text ---------------------------------------------------------------------------------------


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(_markup(text), style)


def _both(zh_text: str, en_text: str, style: ParagraphStyle, en_size: float = 6.3) -> Paragraph:
    """Chinese, with the English under it in small grey type."""
    english = f'<br/><font size="{en_size}" color="#6b6b6b">{_markup(en_text)}</font>' if en_text else ""
    return Paragraph(_markup(zh_text) + english, style)


def _markup(text: str) -> str:
    """Text for a Paragraph: escaped, its line breaks kept."""
    return "<br/>".join(escape(line) for line in text.split("\n"))


def _at(iso: str | None) -> str:
    """`07-20 10:00:00`: the month is on every page."""
    return "—" if iso is None else iso[5:19].replace("T", " ")


def _day(iso: str) -> str:
    return iso[:16].replace("T", " ")


def _money(value: str, currency: str) -> str:
    """The JSON's own digits, with the currency's sign: ¥1327.49 (as a Chinese invoice writes it)."""
    sign, digits = ("-", value[1:]) if value.startswith("-") else ("", value)
    return f"{sign}¥{digits}" if currency == "CNY" else f"{value} {currency}"


def _percent(rate: float) -> str:
    return f"{percent_cut(rate)}%"


def _fraction_percent(value: Decimal) -> str:
    return f"{target_percent(value)}%"


def _month(doc: Mapping[str, Any]) -> str:
    year, month = doc["month"].split("-")
    return f"{year}年{int(month)}月"


def _words(amount: str, currency: str) -> str:
    prefix = "人民币" if currency == "CNY" else f"{currency} "
    try:
        return prefix + capitals(Decimal(amount))
    except ValueError:
        return "—"


# --- tables -------------------------------------------------------------------------------------


def _grid(
    header: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    st: Styles,
    numeric: Iterable[int] = (),
    total: Sequence[Any] | None = None,
) -> LongTable:
    """A table with a two-language header repeated on every page; `numeric` columns align right."""
    numeric = set(numeric)
    cells: list[list[Any]] = [
        [_both(z, e, st.headnum if i in numeric else st.head, 5.8) for i, (z, e) in enumerate(header)]
    ]
    for row in [*rows, *([total] if total is not None else [])]:
        cells.append(
            [
                v if not isinstance(v, str) else _p(v, st.num if i in numeric else st.cell)
                for i, v in enumerate(row)
            ]
        )
    table = LongTable(cells, colWidths=[w * mm for w in widths], repeatRows=1)
    style: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), st.font),
        ("BACKGROUND", (0, 0), (-1, 0), HEAD),
        ("LINEABOVE", (0, 0), (-1, 0), 0.8, INK),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, INK),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2.5),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2.5),
        ("TOPPADDING", (0, 0), (-1, -1), 1.8),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.2),
    ]
    if total is not None:
        style += [("LINEABOVE", (0, -1), (-1, -1), 0.8, INK), ("BACKGROUND", (0, -1), (-1, -1), HEAD)]
    table.setStyle(TableStyle(style))
    return table


def _heading(zh_text: str, en_text: str, st: Styles) -> Paragraph:
    return Paragraph(
        f'{escape(zh_text)} <font size="8.5" color="#6b6b6b">{escape(en_text)}</font>', st.heading
    )


def _none(st: Styles, width_count: int) -> list[Any]:
    return [_both("无", "none", st.cell), *([""] * (width_count - 1))]


# --- page 1 -------------------------------------------------------------------------------------


def _cover(doc: Mapping[str, Any], ctx: Context, st: Styles, fonts: Fonts) -> list[Any]:
    cur = doc["currency"]
    period = doc.get("period", {})
    status = zh.word(zh.STATUS, doc["status"])
    revision = f"第 {doc['revision']} 版 · {status}"
    if doc.get("replaces"):
        revision += f"（替代 {doc['replaces'][:19]}…）"
    if doc.get("issued_at"):
        revision += f" · 签发于 {_day(doc['issued_at'])}"
    kinds: dict[str, int] = {}
    for d in doc["devices"]:
        kinds[d.get("kind", "")] = kinds.get(d.get("kind", ""), 0) + 1
    fleet = "，".join(f"{zh.word(zh.KIND, k)} {n}" for k, n in sorted(kinds.items()))
    parties = [
        (("合同编号", "Contract"), doc["contract"]),
        (("甲方（采购人）", "Buyer"), ctx.buyer or "—"),
        (("乙方（服务商）", "Vendor"), doc.get("vendor") or "—"),
        (
            ("考核月份", "Month"),
            f"{_month(doc)}（{_day(period['start'])} 至 {_day(period['end'])}，{doc.get('timezone', '')}）"
            if period
            else _month(doc),
        ),
        (("结算单版本", "Revision"), revision),
        (("在册设备", "Devices"), f"{len(doc['devices'])} 台（{fleet}）" if fleet else "0"),
    ]
    info = Table(
        [[_both(z, e, st.cell), _p(v, st.body)] for (z, e), v in parties],
        colWidths=[34 * mm, WIDTH - 34 * mm],
        style=TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st.font),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
                ("LINEABOVE", (0, 0), (-1, 0), 0.8, INK),
                ("LINEBELOW", (0, -1), (-1, -1), 0.8, INK),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        ),
    )
    return [
        _p("视频监控设备租赁服务 月度考核结算单", st.title),
        _p(f"SLA statement — leased video surveillance — {doc['contract']} — {doc['month']}", st.subtitle),
        Spacer(0, 5 * mm),
        info,
        Spacer(0, 5 * mm),
        # the totals and the signatures go on one page whatever comes before them
        KeepTogether(
            [
                _amounts(doc, cur, st),
                Spacer(0, 4 * mm),
                _kpis(doc, ctx, cur, st),
                Spacer(0, 2.5 * mm),
                _coverage(doc, ctx, st),
                Spacer(0, 5 * mm),
                *_signatures(doc, ctx, st, fonts),
            ]
        ),
    ]


def _amounts(doc: Mapping[str, Any], cur: str, st: Styles) -> Table:
    """Fee total, the deductions by rule (sums of the JSON's lines), their total, payable in figures
    and in capitals."""
    by_rule: dict[str, list[Decimal]] = {}
    for line in doc["deductions"]:
        by_rule.setdefault(line["rule"], []).append(Decimal(line["amount"]))
    english = {
        "availability_tier": "availability tiers",
        "repair_overrun": "repair overruns",
        "fleet_kpi": "fleet KPIs",
        "kpi_shortfall": "KPI shortfall by the point",
        "score_card": "score card",
        "cap": "cap adjustment",
    }
    rows: list[list[Any]] = [
        [_both("租赁服务费合计", "Fee total", st.body), "", "", _p(_money(doc["fee_total"], cur), st.bignum)],
    ]
    for rule in sorted(by_rule, key=lambda r: RULE_ORDER.index(r) if r in RULE_ORDER else len(RULE_ORDER)):
        amounts = by_rule[rule]
        rows.append(
            [
                "",
                _both(
                    f"其中：{zh.word(zh.RULE, rule)}（{len(amounts)} 项）",
                    f"of which {english.get(rule, rule)} ({len(amounts)})",
                    st.cell,
                ),
                _p(_money(str(sum(amounts, Decimal("0.00"))), cur), st.num),
                "",
            ]
        )
    if not by_rule:
        rows.append(["", _both("本月无扣款", "no deductions this month", st.cell), "", ""])
    rows += [
        [
            _both("扣款合计", "Deductions", st.body),
            "",
            "",
            _p(_money(doc["deduction_total"], cur), st.bignum),
        ],
        [_both("应付金额（小写）", "Payable", st.body), "", "", _p(_money(doc["payable"], cur), st.bignum)],
        [
            _both("应付金额（大写）", "Payable in words", st.body),
            _p(_words(doc["payable"], cur), st.big),
            "",
            "",
        ],
    ]
    n = len(rows)
    table = Table(rows, colWidths=[40 * mm, WIDTH - 40 * mm - 28 * mm - 44 * mm, 28 * mm, 44 * mm])
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st.font),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("BOX", (0, 0), (-1, -1), 0.9, INK),
                ("LINEABOVE", (0, n - 3), (-1, n - 3), 0.4, RULE),
                ("LINEABOVE", (0, n - 2), (-1, n - 2), 0.9, INK),
                ("LINEABOVE", (0, n - 1), (-1, n - 1), 0.4, RULE),
                ("BACKGROUND", (0, n - 2), (-1, -1), colors.HexColor("#f5f5f0")),
                ("SPAN", (1, n - 1), (3, n - 1)),
                ("LEFTPADDING", (0, 0), (-1, -1), 5),
                ("RIGHTPADDING", (0, 0), (-1, -1), 5),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
            ]
        )
    )
    return table


def _kpis(doc: Mapping[str, Any], ctx: Context, cur: str, st: Styles) -> Table:
    """Each fleet rate beside its target; pass or fail as the statement's KPI lines say (a flat
    deduction, a per-point one, or both: their sum)."""
    rows: list[list[Any]] = [
        [
            _both(z, e, st.headnum if i in (1, 2, 4) else st.head, 5.8)
            for i, (z, e) in enumerate(
                (
                    ("考核指标", "KPI"),
                    ("本月实际", "Actual"),
                    ("考核目标", "Target"),
                    ("结果", "Result"),
                    ("扣款", "Deduction"),
                )
            )
        ]
    ]
    english = dict(KPIS)
    for v in kpi_verdicts(doc, ctx.contract):
        if v.met is False:
            result, colour = ("未达标", "fail"), "#c62828"
        elif v.met:
            result, colour = ("达标", "pass"), "#2e7d32"
        else:
            result, colour = ("不考核", "no target"), "#6b6b6b"
        rows.append(
            [
                _both(zh.word(zh.KPI, v.key), english[v.key], st.cell),
                _p(_percent(v.rate), st.num),
                _p(f"≥ {_fraction_percent(v.target)}" if v.target is not None else "—", st.num),
                Paragraph(
                    f'<font color="{colour}">{result[0]}</font><br/>'
                    f'<font size="6.3" color="{colour}">{result[1]}</font>',
                    st.cell,
                ),
                _p(_money(str(v.charged), cur) if v.charged is not None else "—", st.num),
            ]
        )
    table = Table(rows, colWidths=[40 * mm, 35 * mm, 35 * mm, 35 * mm, WIDTH - 145 * mm])
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st.font),
                ("BACKGROUND", (0, 0), (-1, 0), HEAD),
                ("LINEABOVE", (0, 0), (-1, 0), 0.8, INK),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
                ("LINEBELOW", (0, -1), (-1, -1), 0.8, INK),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def _coverage(doc: Mapping[str, Any], ctx: Context, st: Styles) -> Paragraph:
    """How much of the devices' scheduled time the monitor saw, from the devices' unknown_s."""
    scheduled = sum(Fraction(str(d["scheduled_s"])) for d in doc["devices"])
    unknown = sum(Fraction(str(d.get("unknown_s", 0))) for d in doc["devices"])
    seen = "—" if not scheduled else _percent(float(1 - unknown / scheduled))
    terms = ctx.contract.sla if ctx.contract else None
    rule = ""
    if terms is not None:
        how = terms.unknown_counts_as.value
        rule = f"按合同约定，监测未知时长{zh.word(zh.UNKNOWN_COUNTS_AS, how)}（unknown counts as {how}）。"
    text = (
        f"监测覆盖 Monitored coverage：{seen}。全部 {len(doc['devices'])} 台设备计划服务时长合计 "
        f"{zh.duration(float(scheduled))}，其中监测未知（监测系统未取得探测结果）"
        f"{zh.duration(float(unknown))}（unknown {float(unknown):g} s）。{rule}"
    )
    return _p(text, st.cell)


def _seal(font: str) -> Drawing:
    """Where the seal goes: a dashed circle, 36 mm across (a Chinese official seal is 40–45 mm)."""
    grey = colors.HexColor("#b8b8b8")
    d = Drawing(38 * mm, 38 * mm, initialFontName=font)
    d.add(Circle(19 * mm, 19 * mm, 18 * mm, strokeColor=grey, strokeDashArray=[2, 2], fillColor=None))
    d.add(String(19 * mm, 19 * mm, "盖章处", fontName=font, fontSize=8, fillColor=grey, textAnchor="middle"))
    d.add(
        String(19 * mm, 15.5 * mm, "seal", fontName=font, fontSize=6.5, fillColor=grey, textAnchor="middle")
    )
    return d


def _signatures(doc: Mapping[str, Any], ctx: Context, st: Styles, fonts: Fonts) -> list[Any]:
    """The two parties side by side: each its name, a signature line, a date line and room for its
    seal, with nothing between them and the totals above (so they stay on page 1)."""
    gap = "\u00a0"

    def block(zh_role: str, en_role: str, name: str | None) -> Table:
        text = [
            _both(f"{zh_role}（盖章）", f"{en_role} (seal)", st.body),
            Spacer(0, 1.5 * mm),
            _p(name or "", st.body),
            Spacer(0, 7 * mm),
            _both("负责人签字：" + gap + "_" * 14, "Authorised signature", st.body),
            Spacer(0, 5 * mm),
            _both(f"日期：{gap * 8}年{gap * 5}月{gap * 5}日", "Date", st.body),
        ]
        return Table(
            [[text, _seal(fonts.text)]],
            colWidths=[WIDTH / 2 - 44 * mm, 40 * mm],
            style=TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), st.font),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ]
            ),
        )

    half = WIDTH / 2
    table = Table(
        [[block("甲方", "Buyer", ctx.buyer), block("乙方", "Vendor", doc.get("vendor"))]],
        colWidths=[half, half],
        style=TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st.font),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BOX", (0, 0), (0, 0), 0.6, RULE),
                ("BOX", (1, 0), (1, 0), 0.6, RULE),
                ("LEFTPADDING", (0, 0), (-1, -1), 5),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        ),
    )
    note = _p(
        "双方确认上述考核结果与应付金额。本结算单依据探测证据按合同 SLA 条款计算，以同名 JSON 文件为准："
        "用 slamon statement verify 复核，应得到页脚所示哈希。"
        " Both parties confirm the figures above. The JSON file is authoritative: "
        "slamon statement verify recomputes the hash printed at the foot of every page.",
        st.note,
    )
    return [table, note]


# --- the pages after it -------------------------------------------------------------------------


def _deductions(doc: Mapping[str, Any], ctx: Context, cur: str, st: Styles) -> list[Any]:
    sites = _site_names(doc, ctx)
    rows = []
    for i, line in enumerate(doc["deductions"], start=1):
        who = line.get("device") or zh.word(zh.KPI, line.get("kpi")) or "全合同"
        if line.get("device") in sites:
            who += f"\n{sites[line['device']]}"
        reason = zh.reason_zh(line["rule"], line["reason"])
        when = f"\n故障开始 {_at(line['outage_start'])}" if line.get("outage_start") else ""
        rows.append(
            [
                str(i),
                _both(zh.word(zh.RULE, line["rule"]), line["rule"], st.cell),
                who,
                _both((reason or line["reason"]) + when, line["reason"] if reason else "", st.cell),
                line["amount"],
            ]
        )
    total = ["", _both("扣款合计", "total", st.cell), "", "", doc["deduction_total"]]
    return [
        _heading("一、扣款明细", "Deductions", st),
        _grid(
            [
                ("序号", "No."),
                ("扣款规则", "Rule"),
                ("对象", "Device / KPI"),
                ("原因", "Reason"),
                (f"金额（{cur}）", "Amount"),
            ],
            rows or [_none(st, 5)],
            [9, 28, 27, 94, 22],
            st,
            numeric=(0, 4),
            total=total,
        ),
    ]


def _site_names(doc: Mapping[str, Any], ctx: Context) -> dict[str, str]:
    """Device id → its site's name, where the context knows the site."""
    return {d["id"]: ctx.sites[d["site"]].name for d in doc["devices"] if d.get("site") in ctx.sites}


def _districts(doc: Mapping[str, Any], ctx: Context, cur: str, st: Styles) -> list[Any]:
    """Per district: the devices' fees, their own deduction lines, downtime and unknown time, and the
    online rate over the contract's fleet kinds (SLA.md §5 over the district's devices)."""
    kinds = {k.value for k in (ctx.contract.sla if ctx.contract else SlaTerms()).fleet_kinds}
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for d in doc["devices"]:
        site = ctx.sites.get(d.get("site", ""))
        groups.setdefault(site.district if site else "—", []).append(d)
    rows = []
    for district in sorted(groups):
        devices = groups[district]
        fleet = [d for d in devices if d.get("kind") in kinds]
        basis = sum(Fraction(str(d["scheduled_s"])) - Fraction(str(d["excluded_s"])) for d in fleet)
        down = sum(Fraction(str(d["down_s"])) for d in fleet)
        rate = "—" if not fleet else _percent(1.0) if basis == 0 else _percent(float(1 - down / basis))
        rows.append(
            [
                district,
                str(len({d.get("site") for d in devices})),
                str(len(devices)),
                str(sum((Decimal(d["fee"]) for d in devices), Decimal("0.00"))),
                str(sum((Decimal(d["deduction"]) for d in devices), Decimal("0.00"))),
                zh.duration(float(sum(Fraction(str(d["down_s"])) for d in devices))),
                zh.duration(float(sum(Fraction(str(d.get("unknown_s", 0))) for d in devices))),
                rate,
            ]
        )
    total = [
        _both("全合同", "contract", st.cell),
        str(len({d.get("site") for d in doc["devices"]})),
        str(len(doc["devices"])),
        doc["fee_total"],
        str(sum((Decimal(d["deduction"]) for d in doc["devices"]), Decimal("0.00"))),
        zh.duration(float(sum(Fraction(str(d["down_s"])) for d in doc["devices"]))),
        zh.duration(float(sum(Fraction(str(d.get("unknown_s", 0))) for d in doc["devices"]))),
        _percent(doc["rates"]["online_rate"]),
    ]
    return [
        _heading("二、分区县汇总", "Per district", st),
        _grid(
            [
                ("区县", "District"),
                ("点位", "Sites"),
                ("设备", "Devices"),
                (f"服务费（{cur}）", "Fees"),
                (f"设备扣款（{cur}）", "Device deductions"),
                ("计入停机", "Counted downtime"),
                ("监测未知", "Unknown"),
                ("在线率", "Online rate"),
            ],
            rows,
            [30, 14, 14, 24, 26, 26, 22, 24],
            st,
            numeric=(1, 2, 3, 4, 5, 6, 7),
            total=total,
        ),
        _p(
            "设备扣款为分档扣款与修复超时扣款之和，不含整体指标扣款与封顶核减；在线率按合同考核设备类型计算。"
            " Device deductions are tier and overrun lines, before fleet KPI lines and the cap; online rates "
            "are over the contract's fleet kinds.",
            st.note,
        ),
    ]


def _timeline(doc: Mapping[str, Any], ctx: Context, st: Styles, fonts: Fonts) -> list[Any]:
    pieces = list(chart.drawings(doc, ctx, fonts.text, WIDTH, per_drawing=12))
    head: list[Any] = [
        _heading("三、可用性时间轴", "Availability timeline: devices with an outage", st),
        chart.legend(fonts.text, WIDTH),
        Spacer(0, 2 * mm),
    ]
    if not pieces:
        return [*head, _both("本月无故障", "no outage this month", st.cell)]
    out: list[Any] = [KeepTogether([*head, pieces[0]])]
    for piece in pieces[1:]:
        out += [Spacer(0, 2 * mm), piece]
    return out


def _outages(doc: Mapping[str, Any], ctx: Context, cur: str, st: Styles) -> list[Any]:
    sites = _site_names(doc, ctx)
    rows = []
    for o in doc["outages"]:
        ev = o["evidence"]
        evidence = []
        if o["start"] != ev.get("first_failure"):
            evidence.append(f"开始 start {_at(o['start'])}")
        evidence += [
            f"首次失败 first failure {_at(ev.get('first_failure'))}",
            f"最后失败 last failure {_at(ev.get('last_failure'))}",
            f"恢复 recovered {_at(ev.get('recovered'))}",
        ]
        if o.get("end") and o["end"] != ev.get("recovered"):
            evidence.append(f"结束 end {_at(o['end'])}")
        if port := ev.get("port"):
            evidence.append(
                f"端口 port {port['switch']} {port['port']}：{port['fault']}（{_at(port['at'])}）"
            )
        if o["open"]:
            ended = ("月末仍未恢复", "open at month end")
        else:
            ended = (zh.word(zh.END_REASON, o.get("end_reason")), o.get("end_reason") or "")
        gaps = ev.get("gaps", [])
        gap_text = "\n".join(f"{_at(g['start'])} 至\n{_at(g['end'])}" for g in gaps) if gaps else "—"
        causes = "\n".join(f"{zh.cause(k)} {zh.duration(v)}" for k, v in o["causes"].items()) or "—"
        counted = f"{zh.duration(o['counted_s'])}\n累计 {zh.duration(o['counted_total_s'])}"
        charged = f"{o['overrun_hours']} 小时\n{o['deduction']}" if o["overrun_hours"] else "—"
        who = o["device"] + (f"\n{sites[o['device']]}" if o["device"] in sites else "")
        rows.append(
            [
                who,
                "\n".join(evidence),
                _both(*ended, st.cell),
                gap_text,
                counted,
                causes,
                charged,
            ]
        )
    return [
        _heading("四、故障明细与证据", "Outages and their evidence", st),
        _grid(
            [
                ("设备", "Device"),
                ("探测证据", "Evidence (MM-DD hh:mm:ss)"),
                ("结束原因", "End"),
                ("监测中断", "Monitoring gaps"),
                ("本月计入", "Counted"),
                ("原因分解（本月）", "Causes"),
                ("超时扣款", f"Overrun {cur}"),
            ],
            rows or [_none(st, 7)],
            [22, 54, 18, 22, 20, 27, 17],
            st,
        ),
        _p(
            "计入停机仅含设备自身原因时段（上游设备故障、已认可免责不计）；修复超时按整次故障累计计入时长计算，"
            "于故障结束当月扣款。 Counted downtime is the device's own; a repair overrun is charged on the "
            "whole outage in the month it ends.",
            st.note,
        ),
    ]


def _exclusions(doc: Mapping[str, Any], ctx: Context, st: Styles) -> list[Any]:
    rows = []
    for e in doc["exclusions"]:
        status = e.get("status") or ""
        why = e.get("not_honoured_because") or ""
        if e["honoured"]:
            verdict = (f"{zh.word(zh.EXCLUSION_STATUS, status)}；认可", f"{status}; honoured")
        elif why.startswith("status is "):  # the status says why
            verdict = (f"{zh.word(zh.EXCLUSION_STATUS, status)}；不认可", f"{status}; not honoured")
        else:
            verdict = (
                f"{zh.word(zh.EXCLUSION_STATUS, status)}；不认可：{zh.why_not_honoured(why)}",
                f"{status}; not honoured: {why}",
            )
        rows.append(
            [
                e["id"],
                _both(zh.word(zh.CATEGORY, e.get("category")), e.get("category") or "", st.cell),
                ctx.scope_text(e["id"]) or "—",
                f"{_at(e.get('start'))} 至\n{_at(e.get('end'))}",
                e.get("reason") or "",
                e.get("approved_by") or "—",
                _both(*verdict, st.cell),
                zh.duration(e["excluded_s"]),
            ]
        )
    return [
        _heading("五、免责事项", "Exclusions", st),
        _grid(
            [
                ("编号", "ID"),
                ("类别", "Category"),
                ("范围", "Scope"),
                ("时段", "Period"),
                ("原因", "Reason"),
                ("审批人", "Approver"),
                ("状态", "Status"),
                ("免责时长", "Excluded"),
            ],
            rows or [_none(st, 8)],
            [21, 16, 24, 23, 32, 19, 31, 14],
            st,
            numeric=(7,),
        ),
    ]


def _devices(doc: Mapping[str, Any], ctx: Context, cur: str, st: Styles) -> list[Any]:
    rows = []
    for d in doc["devices"]:
        site = ctx.sites.get(d.get("site", ""))
        rows.append(
            [
                d["id"],
                f"{site.name}\n{d['site']}" if site else d.get("site", ""),
                site.district if site else "—",
                zh.word(zh.KIND, d.get("kind")),
                str(d.get("channels", "")),
                d["fee"],
                zh.duration(d["scheduled_s"]),
                zh.duration(d["excluded_s"]),
                zh.duration(d["down_s"]),
                zh.duration(d["degraded_s"]),
                zh.duration(d.get("unknown_s", 0)),
                _percent(d["availability"]),
                d["deduction"],
            ]
        )
    return [
        _heading("六、设备明细", "Devices", st),
        _grid(
            [
                ("设备", "Device"),
                ("点位", "Site"),
                ("区县", "District"),
                ("类型", "Kind"),
                ("路", "Ch"),
                ("服务费", f"Fee {cur}"),
                ("计划服务", "Scheduled"),
                ("免责", "Excluded"),
                ("计入停机", "Down"),
                ("降质", "Degraded"),
                ("监测未知", "Unknown"),
                ("可用率", "Availability"),
                ("扣款", f"Deduction {cur}"),
            ],
            rows,
            [18, 18, 12, 12, 5, 12, 14, 14, 19, 14, 14, 15, 13],
            st,
            numeric=(4, 5, 6, 7, 8, 9, 10, 11, 12),
        ),
    ]


# --- every page ---------------------------------------------------------------------------------


def _page_canvas(doc: Mapping[str, Any], fonts: Fonts) -> type[Canvas]:
    """A canvas that knows the page count when it saves: every page gets the statement's stamp
    (contract, month, revision, status, hash), `page i of n`, and a draft's watermark."""
    draft = doc["status"] != "issued"
    stamp = f"{doc['contract']} · {doc['month']} · 第 {doc['revision']} 版 revision {doc['revision']} · {zh.word(zh.STATUS, doc['status'])} {doc['status']}"
    title = f"视频监控设备租赁服务 月度考核结算单 · {doc['contract']} · {_month(doc)}"

    class StatementCanvas(Canvas):  # type: ignore[misc]  # reportlab is untyped
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "initialFontName": fonts.text})
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _decorate(self, total: int) -> None:
            number = self.getPageNumber()
            width, height = PAGE
            self.saveState()
            if draft:
                self.setFillColor(WATERMARK)
                self.translate(width / 2, height / 2)
                self.rotate(52)
                self.setFont(fonts.text, 92)
                self.drawCentredString(0, 10, "草稿  DRAFT")
                self.setFont(fonts.text, 20)
                self.drawCentredString(0, -30, "未签发 · 不作结算依据 · not issued, not for payment")
            self.restoreState()
            self.saveState()
            self.setStrokeColor(RULE)
            self.setLineWidth(0.4)
            self.line(MARGIN, 12.5 * mm, width - MARGIN, 12.5 * mm)
            self.setFillColor(MUTED)
            self.setFont(fonts.text, 7)
            self.drawString(MARGIN, 9 * mm, stamp)
            self.drawRightString(
                width - MARGIN, 9 * mm, f"第 {number} 页 / 共 {total} 页  page {number} of {total}"
            )
            self.setFont(fonts.mono, 6.5)
            self.drawString(MARGIN, 5.5 * mm, f"hash {doc['hash']}")
            if number > 1:
                self.setFont(fonts.text, 7.5)
                self.drawString(MARGIN, height - 9 * mm, title)
                self.line(MARGIN, height - 10.5 * mm, width - MARGIN, height - 10.5 * mm)
            if draft:  # the mark again where a reader (or pdftotext) finds it in one piece
                self.setFillColor(colors.HexColor("#c62828"))
                self.setFont(fonts.text, 8)
                self.drawRightString(width - MARGIN, height - 9 * mm, "草稿 DRAFT · 未签发，不作结算依据")
            self.restoreState()

    return StatementCanvas


def render_pdf(doc: Mapping[str, Any], out: IO[bytes], context: Context | None = None) -> None:
    """The statement to sign: page 1 with the totals and the signature and seal blocks, then the
    evidence. `context` names the buyer, the sites and the exclusions' scopes."""
    fonts = cjk_fonts()
    st = Styles.of(fonts.text)
    ctx = context or Context()
    cur = doc["currency"]
    story: list[Any] = [
        *_cover(doc, ctx, st, fonts),
        PageBreak(),
        *_deductions(doc, ctx, cur, st),
        Spacer(0, 4 * mm),
        CondPageBreak(40 * mm),
        *_districts(doc, ctx, cur, st),
        Spacer(0, 4 * mm),
        *_timeline(doc, ctx, st, fonts),
        Spacer(0, 4 * mm),
        CondPageBreak(50 * mm),
        *_outages(doc, ctx, cur, st),
        Spacer(0, 4 * mm),
        CondPageBreak(40 * mm),
        *_exclusions(doc, ctx, st),
        Spacer(0, 4 * mm),
        CondPageBreak(40 * mm),
        *_devices(doc, ctx, cur, st),
    ]
    pdf = SimpleDocTemplate(
        out,
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=14 * mm,
        bottomMargin=17 * mm,
        title=f"视频监控设备租赁服务月度考核结算单 SLA statement {doc['contract']} {doc['month']}",
        author="slamon",
        invariant=True,  # the same statement gives the same bytes
        subject=f"{doc['contract']} {doc['month']} revision {doc['revision']} {doc['status']} {doc['hash']}",
    )
    pdf.build(story, canvasmaker=_page_canvas(doc, fonts))
