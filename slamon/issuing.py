"""Statements against the store: gather a month's inputs, compute, issue (freeze), verify.

Drafts are computed on demand and never stored. Issuing stores the document as revision n; when
the inputs of an issued month change later (late history for the month, an exclusion approved
after the fact, a change of how the contract judges state), the next computation is a draft of
revision n+1 that names the hash it replaces. Inventory and contract versions that take effect
after the month do not change it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slamon.billing.periods import Period, in_term, months_of_term, parse_month, period_of
from slamon.billing.statement import (
    STATUS_DRAFT,
    STATUS_ISSUED,
    BillingInput,
    compute,
    missed_in,
    statement_hash,
)
from slamon.billing.to_date import MonthToDate
from slamon.engine.timeline import Timeline
from slamon.errors import StatementError
from slamon.model import Micros, from_micros, to_micros
from slamon.store import IssuedStatement, Store, StoreTx

logger = logging.getLogger(__name__)

META = ("status", "revision", "hash", "inputs_sha256", "replaces")


def gather(
    tx: StoreTx, contract_id: str, month: str, until: Micros | None = None, *, with_ports: bool = True
) -> BillingInput:
    """The inputs of one contract's month, as the store knows them up to the month's end (or up to
    `until`, for month-to-date figures)."""
    try:
        parse_month(month)
    except ValueError as exc:
        raise StatementError(f"--month: {exc}") from None
    latest = tx.versions.contract_as_of(contract_id, 1 << 62)
    if latest is None:
        known = (
            ", ".join(sorted(tx.versions.contracts_as_of(1 << 62))) or "none yet: run a command with -c first"
        )
        raise StatementError(f"no contract {contract_id!r} in the database (known: {known})")
    period = period_of(month, latest.timezone)
    contract = tx.versions.contract_as_of(contract_id, period.end - 1) or latest
    if contract.timezone != latest.timezone:
        period = period_of(month, contract.timezone)
    if not in_term(contract, period.month):
        first, last = months_of_term(contract)
        raise StatementError(f"{period.month} is outside contract {contract_id}'s term ({first} to {last})")
    if until is not None and until < period.end:
        period = replace(period, end=max(until, period.start + 1))
    inventory = tx.versions.inventory_as_of(period.end - 1)
    if inventory is None:
        raise StatementError("the database holds no inventory yet")
    inp = BillingInput(contract, period, inventory, {}, ())
    own = inp.devices()
    related = inp.related()
    keys = tx.keys.find(related)
    own_keys = [keys[d] for d in own if d in keys]
    earliest = tx.timelines.earliest_outage_start(own_keys, period.start, period.end)
    from_ = period.start if earliest is None else min(period.start, earliest)
    loaded = tx.timelines.load(list(keys.values()), period.start, period.end, outages_from=from_)
    timelines = {d: as_of_month_end(loaded[k], period) for d, k in keys.items()}
    # only exclusions that can touch this month's figures: those overlapping the month, or the
    # outages that end in it, so an exclusion of another month never changes this one's hash
    window = [
        e for e in tx.versions.exclusions() if to_micros(e.start) < period.end and to_micros(e.end) > from_
    ]
    # the port events of the switches the contract's uplinks name, before the month's end: what an
    # outage's port evidence reads (nothing for a fleet without uplinks or SNMP)
    switches = (
        {u.switch for d in own if (u := inventory.devices[d].uplink) is not None} if with_ports else set()
    )
    port_events = (
        tuple(tx.events.port_history(switches, since=from_, until=period.end - 1)) if with_ports else ()
    )
    # the missed inspections of the month, only for a contract whose score card counts them: a
    # contract that does not keeps its digest whatever operations enter (docs/sla.md §6.6)
    card = contract.sla.score_card
    inspections = (
        tuple(missed_in(tx.versions.inspections(), contract.id, period))
        if card is not None and card.missed_inspection is not None
        else ()
    )
    return replace(
        inp, timelines=timelines, exclusions=tuple(window), port_events=port_events, inspections=inspections
    )


def as_of_month_end(tl: Timeline, period: Period) -> Timeline:
    """What was known when the month ended: an outage running past it is open, ending there.

    Its evidence is its first failure (and its monitoring gaps before the month's end); the last
    failure and the recovery belong to the statement of the month it ends in. That keeps a month's
    statement the same whatever arrives later and after retention has let the raw results go.
    """
    outages = []
    for o in tl.outages:
        if o.end > period.end:
            o = o.cut_at(period.end)
        outages.append(o)
    return Timeline(tl.transitions, tuple(outages))


@dataclass(frozen=True, slots=True)
class Outcome:
    document: dict[str, Any]
    note: str | None  # for the user on stderr: issued, already issued, inputs changed since issue…


def statement(store: Store, contract_id: str, month: str, *, issue: bool, now: datetime) -> Outcome:
    """The month's statement: the issued one when nothing changed, else a draft (issued on request)."""
    with store.begin() as tx:
        inp = gather(tx, contract_id, month)
        st = compute(inp)
        inputs = inp.digest()
        issued = tx.statements.issued(contract_id, inp.period.month)
        last = issued[-1] if issued else None
        draft = st.document(
            status=STATUS_DRAFT,
            revision=1 if last is None else last.revision + 1,
            replaces=None if last is None else last.hash,
            inputs=inputs,
        )
        if last is not None and last.hash == draft["hash"]:
            doc = json.loads(last.body)
            issued_note = (
                f"revision {last.revision} was issued at {_when(last.issued_at, inp)}; inputs unchanged"
            )
            return Outcome(doc, issued_note if issue else None)
        revision = draft["revision"]
        replaces = None if last is None else last.hash
        if not issue:
            doc = draft
            note = (
                None
                if last is None
                else (
                    f"inputs changed since revision {last.revision} was issued: this is draft revision {revision}; "
                    f"use --issue to issue it"
                )
            )
            return Outcome(doc, note)
        doc = {**draft, "status": STATUS_ISSUED, "issued_at": _when(to_micros(now), inp)}
        tx.statements.save(
            IssuedStatement(
                contract_id,
                inp.period.month,
                revision,
                doc["hash"],
                replaces,
                to_micros(now),
                json.dumps(doc, ensure_ascii=False, indent=2),
            )
        )
        logger.info(
            "issued statement contract=%s month=%s revision=%d %s", contract_id, month, revision, doc["hash"]
        )
        what = f"issued revision {revision}" + (f", replacing revision {last.revision}" if last else "")
        return Outcome(doc, what)


def _when(at: Micros, inp: BillingInput) -> str:
    return from_micros(at).astimezone(ZoneInfo(inp.period.timezone)).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    lines: list[str]


def verify(store: Store, doc: Mapping[str, Any]) -> Verdict:
    """Check a statement file: that it is intact, and that the store's evidence gives the same."""
    missing = [k for k in ("contract", "month", "hash", "inputs_sha256") if k not in doc]
    if missing:
        raise StatementError(f"not a slamon statement: missing {', '.join(missing)}")
    lines: list[str] = []
    body = {k: v for k, v in doc.items() if k not in META and k != "issued_at"}
    intact = statement_hash(str(doc["inputs_sha256"]), body) == doc["hash"]
    if not intact:
        lines.append("the file's figures do not match its own hash: it was changed after slamon wrote it")
    with store.begin() as tx:
        inp = gather(tx, str(doc["contract"]), str(doc["month"]))
        st = compute(inp)
        inputs = inp.digest()
        fresh = st.document(status=STATUS_DRAFT, revision=0, replaces=None, inputs=inputs)
    if fresh["hash"] == doc["hash"] and intact:
        return Verdict(
            True,
            [
                (
                    f"verified: {doc['contract']} {doc['month']} revision {doc.get('revision')} "
                    f"recomputes to {doc['hash']}"
                )
            ],
        )
    if inputs != doc["inputs_sha256"]:
        lines.append(
            f"the inputs differ from those the statement was computed from "
            f"(now {inputs}, file {doc['inputs_sha256']})"
        )
    lines += _differences(fresh, doc)
    if fresh["hash"] != doc["hash"]:
        lines.append(f"recomputed hash {fresh['hash']} != file hash {doc['hash']}")
    return Verdict(False, lines)


def _differences(fresh: Mapping[str, Any], doc: Mapping[str, Any]) -> list[str]:
    """The figures that differ, named so a person can find them."""
    out = []
    for key in ("fee_total", "deduction_total", "payable", "rates"):
        if fresh.get(key) != doc.get(key):
            out.append(f"{key}: file {doc.get(key)!r}, recomputed {fresh.get(key)!r}")
    mine = {d["id"]: d for d in fresh.get("devices", [])}
    theirs = {d.get("id"): d for d in doc.get("devices", []) if isinstance(d, dict)}
    for dev in sorted(set(mine) | set(theirs), key=str):
        a, b = mine.get(dev), theirs.get(dev)
        if a != b:
            if a is None or b is None:
                out.append(f"device {dev}: only in the {'file' if a is None else 'recomputation'}")
            else:
                keys = [k for k in a if a.get(k) != b.get(k)]
                out.append(
                    f"device {dev}: "
                    + ", ".join(f"{k} file {b.get(k)!r} recomputed {a.get(k)!r}" for k in keys)
                )
    for key in ("outages", "exclusions", "deductions"):
        if fresh.get(key) != doc.get(key):
            out.append(
                f"{key} differ ({len(doc.get(key, []))} in the file, {len(fresh.get(key, []))} recomputed)"
            )
    return out


def month_to_date(tx: StoreTx, now: Micros) -> MonthToDate:
    """What each contract's statement of the month in progress says so far: rates overall and per
    district, the money if the month ended now, and what is at risk (billing/to_date.py)."""
    out = MonthToDate()
    for cid, contract in tx.versions.contracts_as_of(now).items():
        month = from_micros(now).astimezone(ZoneInfo(contract.timezone)).strftime("%Y-%m")
        if not in_term(contract, month):
            continue
        out.add(compute(gather(tx, cid, month, until=now, with_ports=False)))  # no port evidence
    return out
