"""A statement for people at a terminal: the totals, every deduction with its reason, the outages
and exclusions. The figures are those of the JSON document; only the layout differs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import IO, Any

from slamon.billing.render.context import Context
from slamon.billing.render.figures import KpiVerdict, kpi_verdicts, percent_cut, target_percent
from slamon.units import format_duration


def _money(value: str) -> str:
    return f"{Decimal(value):,.2f}"


def _when(iso: str | None) -> str:
    return "…" if iso is None else iso[5:16].replace("T", " ")


def _span(seconds: float) -> str:
    return format_duration(timedelta(seconds=seconds)) if seconds else "0s"


def _seconds(gap: Mapping[str, str]) -> float:
    return (datetime.fromisoformat(gap["end"]) - datetime.fromisoformat(gap["start"])).total_seconds()


def _verdict(v: KpiVerdict, cur: str) -> str:
    goal = None if v.target is None else f"target ≥ {target_percent(v.target)} %"
    if v.met is False:  # the statement charged it, whatever the renderer knows of the target
        return f"{goal or 'below its target'}: missed, {_money(str(v.charged))} {cur}"
    return f"{goal}: met" if goal else "no target"


def render_text(doc: Mapping[str, Any], out: IO[str], context: Context | None = None) -> None:
    """`context` (render/context.py) adds what the document names only by id: the buyer and the
    contract's KPI targets."""
    cur = doc["currency"]
    w = out.write
    w(f"{doc['contract']}  {doc['month']} ({doc.get('timezone', '')})  {doc.get('vendor', '')}\n")
    if context is not None and context.buyer:
        w(f"for {context.buyer}\n")
    w(f"{doc['status']}, revision {doc['revision']}  {doc['hash']}\n\n")
    w(f"  fee total    {_money(doc['fee_total']):>14} {cur}   ({len(doc['devices'])} devices in service)\n")
    w(f"  deductions   {_money(doc['deduction_total']):>14} {cur}\n")
    w(f"  payable      {_money(doc['payable']):>14} {cur}\n")
    for v in kpi_verdicts(doc, context.contract if context else None):
        label = v.key.replace("_", " ")
        w(f"  {label:<12} {percent_cut(v.rate):>13} %    {_verdict(v, cur)}\n")
    if "coverage" in doc:  # the share of the devices' scheduled time with evidence (not unknown)
        coverage = "—" if doc["coverage"] is None else f"{percent_cut(doc['coverage'])} %"
        w(f"  coverage     {coverage:>15}    (scheduled time with evidence)\n")
    if "hd" in doc:  # the HD rate: cameras sampled at the required resolution
        hd = doc["hd"]
        rate = "—" if hd["hd_rate"] is None else f"{percent_cut(hd['hd_rate'])} %"
        w(f"  HD rate      {rate:>15}    ({hd['hd_cameras']} of {hd['cameras_sampled']} cameras sampled)\n")
    accepted = doc.get("coverage_override")
    if accepted:
        w(f"  issued below the minimum coverage, accepted by {accepted['by']}: {accepted['reason']}\n")

    w("\nDeductions\n")
    if not doc["deductions"]:
        w("  none\n")
    for line in doc["deductions"]:
        who = line.get("device") or line.get("kpi") or ""
        w(f"  {line['rule']:<18} {who:<12} {line['reason']:<62} {_money(line['amount']):>10}\n")

    w("\nOutages (counted downtime inside the month, and why each minute was down)\n")
    if not doc["outages"]:
        w("  none\n")
    for o in doc["outages"]:
        causes = ", ".join(f"{k} {_span(v)}" for k, v in o["causes"].items())
        charged = f"{o['overrun_hours']} h overrun {_money(o['deduction'])}" if o["overrun_hours"] else ""
        row = (
            f"  {o['device']:<12} {_when(o['start'])} → {_when(o['end']):<11} counted {_span(o['counted_s']):<9}"
            f" {causes:<44} {charged}"
        )
        w(row.rstrip() + "\n")
        for g in o["evidence"].get("gaps", []):  # SLA.md §3: the outage goes on across them
            w(
                f"  {'':<12}   monitoring gap {_when(g['start'])} → {_when(g['end'])} ({_span(_seconds(g))}, no cause)\n"
            )

    w("\nExclusions\n")
    if not doc["exclusions"]:
        w("  none\n")
    for e in doc["exclusions"]:
        verdict = (
            f"honoured, {_span(e['excluded_s'])}"
            if e["honoured"]
            else f"not honoured: {e['not_honoured_because']}"
        )
        w(f"  {e['id']:<16} {e['category']:<14} {e['status']:<9} {verdict}\n")
