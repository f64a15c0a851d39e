"""A statement as a PDF to sign: totals, every deduction with its reason, outages, exclusions, the
devices, a signature block, and the hash on every page so a printed copy can be checked.

Chinese names print with the CID font every PDF reader ships (STSong-Light), so no font file is
needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import IO, Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from slamon.units import format_duration

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))
BODY = ParagraphStyle("body", fontName=FONT, fontSize=8, leading=10)
TITLE = ParagraphStyle("title", fontName=FONT, fontSize=15, leading=19, spaceAfter=4)
HEADING = ParagraphStyle("heading", fontName=FONT, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4)


def _money(value: str) -> str:
    return f"{Decimal(value):,.2f}"


def _span(seconds: float) -> str:
    return format_duration(timedelta(seconds=seconds)) if seconds else "0"


def _seconds(gap: Mapping[str, str]) -> float:
    return (datetime.fromisoformat(gap["end"]) - datetime.fromisoformat(gap["start"])).total_seconds()


def _when(iso: str | None) -> str:
    return "—" if iso is None else iso[:16].replace("T", " ")


def _table(header: list[str], rows: list[list[Any]], widths: list[float], numeric: set[int]) -> LongTable:
    cells = [[Paragraph(str(h), BODY) for h in header]]
    cells += [
        [Paragraph(str(v), BODY) if i not in numeric else str(v) for i, v in enumerate(r)] for r in rows
    ]
    table = LongTable(cells, colWidths=[w * mm for w in widths], repeatRows=1)
    style = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    style += [("ALIGN", (i, 1), (i, -1), "RIGHT") for i in numeric]
    table.setStyle(TableStyle(style))
    return table


def render_pdf(doc: Mapping[str, Any], out: IO[bytes]) -> None:
    """The statement as a landscape A4 PDF: each section in turn, the hash in every page's footer."""
    cur = doc["currency"]
    story: list[Any] = [
        *_title(doc),
        _summary(doc),
        Paragraph("Deductions 扣款明细", HEADING),
        _deductions(doc["deductions"], cur),
        Paragraph("Outages 故障 (counted downtime inside the month)", HEADING),
        _outages(doc["outages"], cur),
        Paragraph("Exclusions 免责", HEADING),
        _exclusions(doc["exclusions"]),
        Paragraph("Devices 设备", HEADING),
        _devices(doc["devices"], cur),
        Spacer(0, 10 * mm),
        _signatures(),
    ]
    footer = _footer(f"{doc['contract']} {doc['month']} revision {doc['revision']}  {doc['hash']}")
    pdf = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=14 * mm,
        title=f"SLA statement {doc['contract']} {doc['month']}",
        author="slamon",
    )
    pdf.build(story, onFirstPage=footer, onLaterPages=footer)


def _title(doc: Mapping[str, Any]) -> list[Any]:
    period = doc.get("period", {})
    replaces = f" (replaces {doc['replaces'][:19]}…)" if doc.get("replaces") else ""
    return [
        Paragraph(f"SLA statement 服务考核结算单 — {doc['contract']} — {doc['month']}", TITLE),
        Paragraph(
            f"Vendor 供应商: {doc.get('vendor', '')} &nbsp; Period: {_when(period.get('start'))} to "
            f"{_when(period.get('end'))} ({doc.get('timezone', '')}) &nbsp; Status: {doc['status']}, revision "
            f"{doc['revision']}" + replaces,
            BODY,
        ),
        Spacer(0, 4 * mm),
    ]


def _summary(doc: Mapping[str, Any]) -> Table:
    """The figures a signer reads first: fees, deductions, payable, the fleet rates."""
    cur = doc["currency"]
    rates = doc["rates"]
    summary = Table(
        [
            ["Fee total 租赁服务费", f"{_money(doc['fee_total'])} {cur}"],
            ["Deductions 扣款", f"{_money(doc['deduction_total'])} {cur}"],
            ["Payable 应付", f"{_money(doc['payable'])} {cur}"],
            ["Online rate 在线率", f"{rates['online_rate'] * 100:.4f} %"],
            ["Intact rate 完好率", f"{rates['intact_rate'] * 100:.4f} %"],
            ["Devices in service", str(len(doc["devices"]))],
        ],
        colWidths=[55 * mm, 45 * mm],
    )
    summary.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), FONT),
                ("FONTSIZE", (0, 0), (-1, -1), 10),
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("LINEBELOW", (0, 2), (-1, 2), 0.75, colors.black),
            ]
        )
    )
    return summary


def _deductions(deductions: list[Mapping[str, Any]], cur: str) -> LongTable:
    return _table(
        ["rule", "device / KPI", "reason", f"amount ({cur})"],
        [
            [d["rule"], d.get("device") or d.get("kpi") or "", d["reason"], _money(d["amount"])]
            for d in deductions
        ]
        or [["none", "", "", ""]],
        [30, 30, 170, 30],
        {3},
    )


def _outages(outages: list[Mapping[str, Any]], cur: str) -> LongTable:
    return _table(
        ["device", "start", "end", "counted", "causes", "overrun h", f"deduction ({cur})"],
        [
            [
                o["device"],
                _when(o["start"]),
                _when(o["end"]) if o["end"] else "still down",
                _span(o["counted_s"]),
                ", ".join(
                    [
                        *(f"{k} {_span(v)}" for k, v in o["causes"].items()),
                        *(f"monitoring gap {_span(_seconds(g))}" for g in o["evidence"].get("gaps", [])),
                    ]
                ),
                o["overrun_hours"],
                _money(o["deduction"]),
            ]
            for o in outages
        ]
        or [["none", "", "", "", "", "", ""]],
        [30, 32, 32, 22, 94, 20, 30],
        {3, 5, 6},
    )


def _exclusions(exclusions: list[Mapping[str, Any]]) -> LongTable:
    return _table(
        ["id", "category", "status", "from", "to", "honoured", "excluded"],
        [
            [
                e["id"],
                e["category"],
                e["status"],
                _when(e.get("start")),
                _when(e.get("end")),
                "yes" if e["honoured"] else f"no: {e.get('not_honoured_because', '')}",
                _span(e["excluded_s"]),
            ]
            for e in exclusions
        ]
        or [["none", "", "", "", "", "", ""]],
        [32, 26, 20, 30, 30, 96, 26],
        {6},
    )


def _devices(devices: list[Mapping[str, Any]], cur: str) -> LongTable:
    return _table(
        [
            "device",
            "kind",
            "site",
            "ch",
            f"fee ({cur})",
            "scheduled",
            "excluded",
            "down",
            "degraded",
            "availability",
            f"deduction ({cur})",
        ],
        [
            [
                d["id"],
                d.get("kind", ""),
                d.get("site", ""),
                d.get("channels", ""),
                _money(d["fee"]),
                _span(d["scheduled_s"]),
                _span(d["excluded_s"]),
                _span(d["down_s"]),
                _span(d["degraded_s"]),
                f"{d['availability']:.6f}",
                _money(d["deduction"]),
            ]
            for d in devices
        ],
        [30, 16, 24, 8, 22, 24, 22, 24, 22, 22, 26],
        {3, 4, 5, 6, 7, 8, 9, 10},
    )


def _signatures() -> Table:
    return Table(
        [
            ["Contract manager 合同管理方", "", "Vendor 供应商", ""],
            ["Signature 签字: ____________________", "", "Signature 签字: ____________________", ""],
            ["Date 日期: ____________________", "", "Date 日期: ____________________", ""],
        ],
        colWidths=[90 * mm, 30 * mm, 90 * mm, 30 * mm],
        style=TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), FONT),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("TOPPADDING", (0, 1), (-1, -1), 8),
            ]
        ),
    )


def _footer(stamp: str) -> Callable[[Canvas, Any], None]:
    """Draws the statement's hash and the page number on every page, so a printed copy can be checked."""

    def footer(canvas: Canvas, _doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.drawString(12 * mm, 8 * mm, stamp)
        canvas.drawRightString(landscape(A4)[0] - 12 * mm, 8 * mm, f"page {canvas.getPageNumber()}")
        canvas.restoreState()

    return footer
