"""A statement as an Excel workbook: a summary sheet and one sheet per table.

Money is written as numbers with two decimals (so sheets can sum them) and the JSON document stays
the authoritative form: the summary sheet carries its hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from slamon.billing.render.csv import SECTIONS, SUMMARY

MONEY = {"fee", "deduction", "amount", "fee_total", "deduction_total", "payable"}
RATES = {"availability", "online_rate", "intact_rate"}


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


def _style(ws: Any, columns: tuple[str, ...]) -> None:
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(vertical="top")
    for i, column in enumerate(columns, start=1):
        letter = get_column_letter(i)
        width = max(len(column), *(len(str(c.value)) for c in ws[letter][1:200] if c.value is not None), 8)
        ws.column_dimensions[letter].width = min(width + 2, 60)
        fmt = "#,##0.00" if column in MONEY else "0.000000" if column in RATES else None
        if fmt:
            for c in ws[letter][1:]:
                c.number_format = fmt
    ws.freeze_panes = "A2"


def render_xlsx(doc: Mapping[str, Any], out: IO[bytes]) -> None:
    wb = Workbook()
    summary = wb.active
    summary.title = "Statement"
    rates = doc.get("rates", {})
    flat = {**doc, "online_rate": rates.get("online_rate"), "intact_rate": rates.get("intact_rate")}
    summary.append(("field", "value"))
    for key in SUMMARY:
        summary.append((key, _value(key, flat.get(key))))
    for c in summary["B"][1:]:
        if summary[f"A{c.row}"].value in MONEY:
            c.number_format = "#,##0.00"
    _style(summary, ("field", "value"))
    for _section, key, columns in SECTIONS:
        ws = wb.create_sheet(key.capitalize())
        ws.append(columns)
        for item in doc.get(key, []):
            row = {**item, **item.get("evidence", {})}
            ws.append(tuple(_value(c, row.get(c)) for c in columns))
        _style(ws, columns)
    wb.save(out)
