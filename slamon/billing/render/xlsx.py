"""A statement as an Excel workbook: a summary sheet and one sheet per table.

Each sheet names itself in Chinese and English, and each table has two header rows: the Chinese
headings (the CSV's, render/zh.py), then the JSON's key names, so a formula or a script can still
find a column by its key. Money is written as numbers with two decimals (so sheets can sum them)
and the JSON document stays the authoritative form: the summary sheet carries its hash.

The same statement gives the same bytes: the times openpyxl stamps on the document's properties
and on each part of the file are the statement's own (`issued_at`, a draft's month end).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from slamon.billing.render import zh
from slamon.billing.render.csv import SECTIONS, SUMMARY, headings

MONEY = {"fee", "deduction", "amount", "fee_total", "deduction_total", "payable"}
RATES = {"availability", "online_rate", "intact_rate"}
SHEETS = {
    "statement": "结算单 Statement",
    "devices": "设备 Devices",
    "outages": "故障 Outages",
    "exclusions": "免责 Exclusions",
    "deductions": "扣款 Deductions",
}
HEAD_FILL = PatternFill("solid", fgColor="ECEFF1")
KEY_FONT = Font(color="6B6B6B", size=9)


def _value(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in MONEY and isinstance(value, str):
        return Decimal(value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):  # an outage's gaps
        return "; ".join(f"{g['start']} – {g['end']}" for g in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def _width(value: Any) -> int:
    """Columns as wide as their text, a Chinese character counting twice."""
    text = str(value)
    return len(text) + sum(1 for ch in text if ord(ch) > 0x2E7F)


def _style(ws: Any, columns: tuple[str, ...]) -> None:
    """Both header rows styled and frozen; columns sized; money and rates formatted."""
    for row in (1, 2):
        for cell in ws[row]:
            cell.fill = HEAD_FILL
            cell.alignment = Alignment(vertical="top")
            cell.font = Font(bold=True) if row == 1 else KEY_FONT
    for i, column in enumerate(columns, start=1):
        letter = get_column_letter(i)
        cells = [c.value for c in ws[letter][:200] if c.value is not None]
        ws.column_dimensions[letter].width = min(max([8, *(_width(v) for v in cells)]) + 2, 60)
        fmt = "#,##0.00" if column in MONEY else "0.000000" if column in RATES else None
        if fmt:
            for c in ws[letter][2:]:
                c.number_format = fmt
    ws.freeze_panes = "A3"


def render_xlsx(doc: Mapping[str, Any], out: IO[bytes]) -> None:
    wb = Workbook()
    summary = wb.active
    summary.title = SHEETS["statement"]
    rates = doc.get("rates", {})
    flat = {**doc, "online_rate": rates.get("online_rate"), "intact_rate": rates.get("intact_rate")}
    summary.append(("项目", "字段", "数值"))
    summary.append(("item", "field", "value"))
    for key in SUMMARY:
        summary.append((zh.heading("statement", key), key, _value(key, flat.get(key))))
    _style(summary, ("item", "field", "value"))
    for c in summary["C"][2:]:
        field = summary[f"B{c.row}"].value
        c.number_format = "#,##0.00" if field in MONEY else "0.000000" if field in RATES else "General"
    for section, key, columns in SECTIONS:
        ws = wb.create_sheet(SHEETS[key])
        ws.append(headings(section, columns))
        ws.append(columns)
        for item in doc.get(key, []):
            row = {**item, **item.get("evidence", {})}
            ws.append(tuple(_value(c, row.get(c)) for c in columns))
        _style(ws, columns)
    when = _stamp(doc)
    wb.properties.created = when
    saved = io.BytesIO()
    wb.save(saved)
    out.write(_stamped(saved.getvalue(), when))


def _stamp(doc: Mapping[str, Any]) -> datetime:
    """The statement's own time, naive UTC as openpyxl writes it: issued_at, else its month's end."""
    text = doc.get("issued_at") or doc.get("period", {}).get("end")
    when = datetime.fromisoformat(text) if isinstance(text, str) else datetime(2000, 1, 1, tzinfo=UTC)
    return when.astimezone(UTC).replace(tzinfo=None)


def _stamped(data: bytes, when: datetime) -> bytes:
    """The workbook with `when` for its save time (docProps/core.xml) and every zip entry's time."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp, body)
            entry = zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = info.external_attr
            dst.writestr(entry, body)
    return out.getvalue()
