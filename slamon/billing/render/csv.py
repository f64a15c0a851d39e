"""A statement as CSV: one block per section, each with its header rows, for spreadsheets.

Every data row starts with its section (statement, device, outage, exclusion, deduction), so a
sheet filtered on the first column gives one table. Each block starts with its Chinese headings
(first cell `栏目`), then the JSON's key names (first cell `section`). The file starts with a UTF-8
byte-order mark, so Excel on a Chinese Windows reads it as UTF-8 (without it, it guesses GBK).
Figures are exactly those of the JSON document.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from typing import IO, Any

from slamon.billing.render import zh

BOM = "\ufeff"

SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "device",
        "devices",
        (
            "id",
            "kind",
            "site",
            "channels",
            "fee",
            "scheduled_s",
            "excluded_s",
            "down_s",
            "degraded_s",
            "unknown_s",
            "availability",
            "deduction",
        ),
    ),
    (
        "outage",
        "outages",
        (
            "device",
            "start",
            "end",
            "open",
            "end_reason",
            "counted_s",
            "counted_total_s",
            "causes",
            "overrun_hours",
            "deduction",
            "first_failure",
            "last_failure",
            "recovered",
            "gaps",
        ),
    ),
    (
        "exclusion",
        "exclusions",
        (
            "id",
            "category",
            "status",
            "start",
            "end",
            "honoured",
            "excluded_s",
            "reason",
            "approved_by",
            "not_honoured_because",
        ),
    ),
    ("deduction", "deductions", ("rule", "device", "kpi", "outage_start", "reason", "amount")),
)
SUMMARY = (
    "contract",
    "vendor",
    "month",
    "currency",
    "status",
    "revision",
    "fee_total",
    "deduction_total",
    "payable",
    "online_rate",
    "intact_rate",
    "hash",
    "inputs_sha256",
    "replaces",
)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return ";".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):  # an outage's gaps: start/end;start/end
        return ";".join(f"{g['start']}/{g['end']}" for g in value)
    return value


def headings(section: str, columns: tuple[str, ...]) -> tuple[str, ...]:
    """The Chinese headings of a block's columns (render/zh.py; the XLSX has the same)."""
    return tuple(zh.heading(section, c) for c in columns)


def render_csv(doc: Mapping[str, Any], out: IO[str]) -> None:
    out.write(BOM)
    w = csv.writer(out, lineterminator="\n")
    rates = doc.get("rates", {})
    summary = {**doc, "online_rate": rates.get("online_rate"), "intact_rate": rates.get("intact_rate")}
    w.writerow(headings("statement", ("section", *SUMMARY)))
    w.writerow(("section", *SUMMARY))
    w.writerow(("statement", *(_cell(summary.get(k)) for k in SUMMARY)))
    for section, key, columns in SECTIONS:
        w.writerow(())
        w.writerow(headings(section, ("section", *columns)))
        w.writerow(("section", *columns))
        for item in doc.get(key, []):
            flat = {**item, **item.get("evidence", {})}
            w.writerow((section, *(_cell(flat.get(c)) for c in columns)))
