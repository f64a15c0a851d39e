"""The availability timeline of a PDF statement: one bar per device over the month, with its outages
(coloured by what they cost the vendor), the monitoring gaps inside them and the honoured
exclusions that cover the device. Only devices with an outage get a bar, to keep it short.

Everything drawn comes from the statement document (outages, their evidence, the devices' counted
downtime) and, for the exclusions' scopes and the site names, from the render context.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.graphics.shapes import Drawing, Line, Polygon, Rect, String
from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth

from slamon.billing.render import zh
from slamon.billing.render.context import Context

COUNTED = colors.HexColor("#c62828")  # an outage with counted downtime: the vendor's
UPSTREAM = colors.HexColor("#ef9a1a")  # upstream only: charged to the switch or link
EXCLUDED = colors.HexColor("#78909c")  # excluded only
GAP = colors.HexColor("#d0d0d0")  # a monitoring gap inside an outage
COVERED = colors.HexColor("#a9c8ea")  # an honoured exclusion covering the device
SERVICE = colors.HexColor("#e8f3e8")  # the month, where nothing happened
GRID = colors.HexColor("#b0b0b0")

ROW = 6.2 * mm
BAR = 3.4 * mm
AXIS = 7 * mm
LABEL = 40 * mm
TOTAL = 20 * mm
MIN_WIDTH = 0.9  # points: a three-minute outage still shows


@dataclass(frozen=True, slots=True)
class Bar:
    device: str
    label: str
    down_s: float
    outages: tuple[tuple[float, float, Any], ...]  # (start, end) in seconds from the month's start, colour
    gaps: tuple[tuple[float, float], ...]
    covered: tuple[tuple[float, float], ...]
    open_end: bool


def _seconds(iso: str, origin: datetime) -> float:
    return (datetime.fromisoformat(iso) - origin).total_seconds()


def _colour(outage: Mapping[str, Any]) -> Any:
    if outage["counted_s"]:
        return COUNTED
    if any(k.startswith("upstream:") for k in outage["causes"]):
        return UPSTREAM
    if any(k.startswith("excluded:") for k in outage["causes"]):
        return EXCLUDED
    return GAP


def bars(doc: Mapping[str, Any], ctx: Context) -> list[Bar]:
    """A bar for each device with an outage in the month, in the devices' order."""
    origin = datetime.fromisoformat(doc["period"]["start"])
    length = _seconds(doc["period"]["end"], origin)

    def clip(a: str | None, b: str | None) -> tuple[float, float] | None:
        start = max(0.0, _seconds(a, origin)) if a else 0.0
        end = min(length, _seconds(b, origin)) if b else length
        return (start, end) if end > start else None

    by_device: dict[str, list[Mapping[str, Any]]] = {}
    for o in doc["outages"]:
        by_device.setdefault(o["device"], []).append(o)
    out = []
    for d in doc["devices"]:
        outages = by_device.get(d["id"])
        if not outages:
            continue
        spans = []
        gaps = []
        for o in outages:
            span = clip(o["start"], o["end"])
            if span is not None:
                spans.append((*span, _colour(o)))
            for g in o["evidence"].get("gaps", []):
                gap = clip(g["start"], g["end"])
                if gap is not None:
                    gaps.append(gap)
        covered = []
        for e in doc["exclusions"]:
            scope = ctx.scopes.get(e["id"])
            if e["honoured"] and scope is not None and ctx.covers(scope, doc["contract"], d):
                span = clip(e["start"], e["end"])
                if span is not None:
                    covered.append(span)
        site = ctx.sites.get(d.get("site", ""))
        out.append(
            Bar(
                device=d["id"],
                label=f"{d['id']} {site.name}" if site else d["id"],
                down_s=d["down_s"],
                outages=tuple(spans),
                gaps=tuple(gaps),
                covered=tuple(covered),
                open_end=any(o["open"] for o in outages),
            )
        )
    return out


def days(doc: Mapping[str, Any]) -> list[tuple[float, int]]:
    """Each local midnight in the month: seconds from its start, day of the month."""
    zone = ZoneInfo(doc.get("timezone") or "UTC")
    start = datetime.fromisoformat(doc["period"]["start"]).astimezone(zone)
    end = datetime.fromisoformat(doc["period"]["end"]).astimezone(zone)
    out: list[tuple[float, int]] = []
    day = start.date()
    while True:
        midnight = datetime.combine(day, datetime.min.time(), zone)
        if midnight >= end:
            return out
        out.append(((midnight - start).total_seconds(), day.day))
        day += timedelta(days=1)


def drawings(
    doc: Mapping[str, Any], ctx: Context, font: str, width: float, per_drawing: int = 30
) -> Iterator[Drawing]:
    """The chart in pieces of at most `per_drawing` bars, each with the day axis, so it breaks
    across pages."""
    all_bars = bars(doc, ctx)
    for i in range(0, len(all_bars), per_drawing):
        yield _drawing(doc, all_bars[i : i + per_drawing], font, width)


def _drawing(doc: Mapping[str, Any], chunk: Sequence[Bar], font: str, width: float) -> Drawing:
    origin = datetime.fromisoformat(doc["period"]["start"])
    length = _seconds(doc["period"]["end"], origin)
    plot = width - LABEL - TOTAL
    height = AXIS + ROW * len(chunk)
    d = Drawing(width, height, initialFontName=font)

    def x(seconds: float) -> float:
        return float(LABEL + plot * seconds / length)

    top = height - AXIS
    for at, day in days(doc):
        d.add(Line(x(at), 0, x(at), top, strokeColor=GRID, strokeWidth=0.5 if day % 5 == 1 else 0.2))
        if day == 1 or day % 5 == 0:  # in the middle of its day
            d.add(String(x(at + 43_200), top + 2, str(day), fontName=font, fontSize=6.5, textAnchor="middle"))
    d.add(String(0, top + 2, "日 day", fontName=font, fontSize=6.5, fillColor=colors.grey))
    d.add(String(width, top + 2, "本月计入停机", fontName=font, fontSize=6.5, textAnchor="end"))
    for row, bar in enumerate(chunk):
        y = top - ROW * (row + 1)
        mid = y + (ROW - BAR) / 2
        for a, b in bar.covered:
            d.add(
                Rect(
                    x(a), y + 0.4, max(x(b) - x(a), MIN_WIDTH), ROW - 0.8, fillColor=COVERED, strokeColor=None
                )
            )
        d.add(Rect(x(0), mid, plot, BAR, fillColor=SERVICE, strokeColor=GRID, strokeWidth=0.3))
        for a, b, colour in bar.outages:
            d.add(Rect(x(a), mid, max(x(b) - x(a), MIN_WIDTH), BAR, fillColor=colour, strokeColor=None))
        for a, b in bar.gaps:
            d.add(
                Rect(
                    x(a),
                    mid + BAR * 0.2,
                    max(x(b) - x(a), MIN_WIDTH),
                    BAR * 0.6,
                    fillColor=GAP,
                    strokeColor=colors.dimgrey,
                    strokeWidth=0.3,
                )
            )
        if bar.open_end:  # still down at the month's end
            end = x(length)
            d.add(
                Polygon(
                    [end, mid - 0.8, end + 3, mid + BAR / 2, end, mid + BAR + 0.8],
                    fillColor=COUNTED,
                    strokeColor=None,
                )
            )
        d.add(String(0, mid + 0.6, bar.label, fontName=font, fontSize=7))
        d.add(String(width, mid + 0.6, zh.duration(bar.down_s), fontName=font, fontSize=7, textAnchor="end"))
    return d


def legend(font: str, width: float) -> Drawing:
    """The colours, in as many lines as the width needs."""
    items = [
        (SERVICE, "正常 no outage"),
        (COUNTED, "含计入停机 counted"),
        (UPSTREAM, "仅上游原因 upstream only"),
        (EXCLUDED, "仅免责 excluded only"),
        (GAP, "监测中断 monitoring gap"),
        (COVERED, "已认可免责期 honoured exclusion"),
    ]
    line = 5 * mm
    placed: list[list[tuple[float, Any, str]]] = [[]]
    x = 0.0
    for colour, text in items:
        advance = 3.8 * mm + stringWidth(text, font, 6.5) + 4 * mm
        if x and x + advance - 4 * mm > width:
            placed.append([])
            x = 0.0
        placed[-1].append((x, colour, text))
        x += advance
    d = Drawing(width, line * len(placed), initialFontName=font)
    for row, entries in enumerate(placed):
        y = line * (len(placed) - 1 - row)
        for x, colour, text in entries:
            d.add(
                Rect(x, y + 1.2 * mm, 3 * mm, 2.4 * mm, fillColor=colour, strokeColor=GRID, strokeWidth=0.3)
            )
            d.add(String(x + 3.8 * mm, y + 1.6 * mm, text, fontName=font, fontSize=6.5))
    return d
