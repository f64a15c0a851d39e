"""Statements against the store: gather a month's inputs, compute, issue (freeze), verify.

Drafts are computed on demand and never stored. Issuing stores the document as revision n; when
the inputs of an issued month change later (late history for the month, an exclusion approved
after the fact, a change of how the contract judges state), the next computation is a draft of
revision n+1 that names the hash it replaces. Inventory and contract versions that take effect
after the month do not change it.

A month is issued only once it has ended, and only when its coverage (the share of the devices'
scheduled seconds with evidence) reaches the contract's `sla.min_coverage`, unless the person
issuing it gives a reason (an Override, kept with the statement and printed on it). Issuing and
verifying read the month's raw result blocks and check each against its digest; every read of an
issued revision checks that its stored body is the one that was issued (docs/sla.md §7).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from slamon.billing.periods import Period, in_term, months_of_term, parse_month, period_of
from slamon.billing.statement import (
    STATUS_DRAFT,
    STATUS_ISSUED,
    BillingInput,
    Statement,
    compute,
    missed_in,
    statement_hash,
)
from slamon.billing.to_date import MonthToDate
from slamon.engine.timeline import Timeline
from slamon.errors import StatementError
from slamon.model import SECOND, Micros, from_micros, to_micros
from slamon.store import IssuedStatement, Store, StoreTx
from slamon.store.digests import Tampered

logger = logging.getLogger(__name__)

META = ("status", "revision", "hash", "inputs_sha256", "replaces")
ISSUE_META = ("issued_at", "coverage_override")  # only on issued statements
UNHASHED = META + ISSUE_META  # what the hash leaves out: a draft and its issued copy share it


def gather(
    tx: StoreTx,
    contract_id: str,
    month: str,
    until: Micros | None = None,
    *,
    with_ports: bool = True,
    check: bool = False,
) -> BillingInput:
    """The inputs of one contract's month, as the store knows them up to the month's end (or up to
    `until`, for month-to-date figures, which have no evidence digest). `check` reads every raw
    result block of the month and checks it against its digest (Tampered names one that does not
    match), as issuing and verifying do."""
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
    # the month's raw result blocks of these devices, as one digest (docs/sla.md, "The hash")
    evidence = tx.results.evidence(keys, period.start, period.end, check=check) if until is None else None
    # the cameras' video samples of the month and how many were below the resolution minimum: the
    # HD rate (billing/hd.py), from the blocks' rollups
    mine = set(own)
    by_key = {k: d for d, k in keys.items() if d in mine}
    tally = tx.results.video_tally(by_key, period.start, period.end)
    return replace(
        inp,
        timelines=timelines,
        exclusions=tuple(window),
        port_events=port_events,
        inspections=inspections,
        evidence=evidence,
        video={by_key[k]: counts for k, counts in tally.items()},
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
    text: str | None = None  # an issued document's JSON as stored: written out byte for byte
    context: str | None = None  # an issued document's PDF labels as stored (None: the files' own)


@dataclass(frozen=True, slots=True)
class Override:
    """Issuing a month whose coverage is below the contract's minimum anyway: who, and why."""

    reason: str
    by: str


def statement(
    store: Store,
    contract_id: str,
    month: str,
    *,
    issue: bool,
    now: datetime,
    override: Override | None = None,
    context: Callable[[Mapping[str, Any]], str] | None = None,
    by: str = "slamon",
) -> Outcome:
    """The month's statement: the issued one when nothing changed, else a draft (issued on request).

    Issuing refuses a month that has not ended, and one whose coverage is below the contract's
    minimum unless `override` says who accepts it and why. `context` gives the PDF labels to keep
    with an issued statement (canonical JSON), so its PDF can be written again the same later."""
    with store.begin() as tx:
        inp = gather(tx, contract_id, month, check=issue)
        st = compute(inp)
        inputs = inp.digest()
        issued = [_intact(s) for s in tx.statements.issued(contract_id, inp.period.month)]
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
            return Outcome(doc, issued_note if issue else None, last.body, last.context)
        revision = draft["revision"]
        replaces = None if last is None else last.hash
        short = _short_of(st)
        if not issue:
            notes = (
                []
                if short is None
                else [f"{short}: this month cannot be issued without --accept-low-coverage"]
            )
            if last is not None:
                notes.insert(
                    0,
                    f"inputs changed since revision {last.revision} was issued: this is draft revision {revision}; "
                    f"use --issue to issue it",
                )
            return Outcome(draft, "\n".join(notes) or None)
        if to_micros(now) < inp.period.end:
            raise StatementError(
                f"{contract_id} {inp.period.month} cannot be issued before the month has ended "
                f"({_when(inp.period.end, inp)}): compute a draft instead (without --issue)"
            )
        if short is not None and override is None:
            raise StatementError(
                f"{contract_id} {inp.period.month} cannot be issued: {short}. Import the missing evidence, "
                "or issue it anyway with --accept-low-coverage REASON (kept with the statement)"
            )
        accepted = override if short is not None else None
        doc = {**draft, "status": STATUS_ISSUED, "issued_at": _when(to_micros(now), inp)}
        if accepted is not None:
            doc["coverage_override"] = {"reason": accepted.reason, "by": accepted.by}
        text = json.dumps(doc, ensure_ascii=False, indent=2)
        labels = None if context is None else context(doc)
        tx.statements.save(
            IssuedStatement(
                contract_id,
                inp.period.month,
                revision,
                doc["hash"],
                replaces,
                to_micros(now),
                text,
                None if accepted is None else accepted.by,
                None if accepted is None else accepted.reason,
                labels,
            ),
            by=by,  # recorded in the audit log
        )
        logger.info(
            "issued statement contract=%s month=%s revision=%d %s", contract_id, month, revision, doc["hash"]
        )
        what = f"issued revision {revision}" + (f", replacing revision {last.revision}" if last else "")
        if accepted is not None:
            what += f" below the minimum coverage, accepted by {accepted.by}: {accepted.reason}"
        elif override is not None:
            what += f" (coverage {_percent(st.coverage)} meets the minimum: nothing to accept)"
        return Outcome(doc, what, text, labels)


def issued_revision(store: Store, contract_id: str, month: str, revision: int) -> Outcome:
    """An issued revision exactly as it was stored (statement --revision N)."""
    try:
        year, number = parse_month(month)
    except ValueError as exc:
        raise StatementError(f"--month: {exc}") from None
    month = f"{year:04d}-{number:02d}"
    with store.begin() as tx:
        found = tx.statements.issued(contract_id, month)
    chosen = next((s for s in found if s.revision == revision), None)
    if chosen is None:
        have = ", ".join(str(s.revision) for s in found) or "none"
        raise StatementError(
            f"no issued revision {revision} of {contract_id} {month} (issued revisions: {have})"
        )
    _intact(chosen)
    return Outcome(json.loads(chosen.body), None, chosen.body, chosen.context)


def _intact(s: IssuedStatement) -> IssuedStatement:
    """An issued revision whose stored body is the statement that was issued: its figures still
    give its hash, and what it says of itself is what its row says. (The store has checked the
    body's bytes against their digest; this catches a body rewritten with a new digest.)"""
    try:
        doc = json.loads(s.body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise Tampered(s.name, None, "not a statement") from None
    problems = []
    body = {k: v for k, v in doc.items() if k not in UNHASHED}
    if statement_hash(str(doc.get("inputs_sha256")), body) != doc.get("hash"):
        problems.append("its figures do not give its hash")
    override = None if s.override_reason is None else {"reason": s.override_reason, "by": s.override_by}
    row: Sequence[tuple[str, object]] = (
        ("contract", s.contract),
        ("month", s.month),
        ("status", STATUS_ISSUED),
        ("revision", s.revision),
        ("hash", s.hash),
        ("replaces", s.replaces),
        ("coverage_override", override),
    )
    problems += [
        f"{key} {doc.get(key)!r} where the row says {want!r}" for key, want in row if doc.get(key) != want
    ]
    if problems:
        raise StatementError(
            f"{s.name} in the database is not the statement that was issued ({'; '.join(problems)}): "
            "it was changed after it was issued"
        )
    return s


def _short_of(st: Statement) -> str | None:
    """Why the month falls short of the contract's minimum coverage; None when it does not."""
    needed = st.input.contract.sla.coverage_needed
    if st.coverage is None or st.coverage >= Fraction(needed):
        return None
    scheduled = sum(f.scheduled for f in st.devices) // SECOND
    unknown = sum(f.unknown for f in st.devices) // SECOND
    return (
        f"coverage {_percent(st.coverage)} is below the contract's minimum of {_percent(Fraction(needed))} "
        f"(sla.min_coverage): {unknown:,} of the devices' {scheduled:,} scheduled seconds have no evidence"
    )


def _percent(share: Fraction | None) -> str:
    return "—" if share is None else f"{float(share) * 100:.4f} %"


def _when(at: Micros, inp: BillingInput) -> str:
    return from_micros(at).astimezone(ZoneInfo(inp.period.timezone)).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    lines: list[str]


def verify(store: Store, doc: Mapping[str, Any]) -> Verdict:
    """Check a statement file: that it is intact, that what it says of itself (status, revision,
    replaces, issued_at, an accepted low coverage) is what the database holds, that the month's raw
    results are those the database wrote, and that they still give the same statement."""
    missing = [k for k in ("contract", "month", "hash", "inputs_sha256") if k not in doc]
    if missing:
        raise StatementError(f"not a slamon statement: missing {', '.join(missing)}")
    lines: list[str] = []
    body = {k: v for k, v in doc.items() if k not in UNHASHED}
    intact = statement_hash(str(doc["inputs_sha256"]), body) == doc["hash"]
    if not intact:
        lines.append("the file's figures do not match its own hash: it was changed after slamon wrote it")
    contract, month = str(doc["contract"]), str(doc["month"])
    try:
        with store.begin() as tx:
            issued = tx.statements.issued(contract, month)
            inp = gather(tx, contract, month, check=True)
    except Tampered as exc:
        return Verdict(False, [*lines, str(exc)])
    st = compute(inp)
    inputs = inp.digest()
    fresh = st.document(status=STATUS_DRAFT, revision=0, replaces=None, inputs=inputs)
    try:
        issued = [_intact(s) for s in issued]
    except StatementError as exc:
        return Verdict(False, [*lines, str(exc)])
    lines += _against_store(doc, issued)
    if fresh["hash"] == doc["hash"] and not lines:
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


def _against_store(doc: Mapping[str, Any], issued: Sequence[IssuedStatement]) -> list[str]:
    """What the file says of itself that the database contradicts: an issued file must be one of
    the month's issued revisions as stored; a draft must follow the revisions issued before it."""
    status, revision = doc.get("status"), doc.get("revision")
    name = f"{doc['contract']} {doc['month']}"
    if status not in (STATUS_DRAFT, STATUS_ISSUED):
        return [f"status: {status!r} is neither {STATUS_DRAFT!r} nor {STATUS_ISSUED!r}"]
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        return [f"revision: {revision!r} is not a revision number"]
    by_revision = {s.revision: s for s in issued}
    have = ", ".join(str(s.revision) for s in issued) or "none"
    stored = by_revision.get(revision)
    if status == STATUS_ISSUED:
        if stored is None:
            return [f"revision {revision} of {name} was never issued (issued revisions: {have})"]
        kept = json.loads(stored.body)
        return [
            f"{key}: file {doc.get(key)!r}, issued revision {revision} {kept.get(key)!r}"
            for key in (*META, *ISSUE_META)
            if doc.get(key) != kept.get(key)
        ]
    out = [f"{key}: a draft has none, the file says {doc[key]!r}" for key in ISSUE_META if key in doc]
    before = by_revision.get(revision - 1)
    if revision > 1 and before is None:
        out.append(
            f"revision: draft revision {revision} follows revision {revision - 1}, never issued (issued revisions: {have})"
        )
    if doc.get("replaces") != (None if before is None else before.hash):
        out.append(
            f"replaces: file {doc.get('replaces')!r}, "
            + (
                f"revision {revision - 1} was issued as {before.hash!r}"
                if before
                else "nothing was issued before it"
            )
        )
    if stored is not None and stored.hash != doc["hash"]:
        out.append(f"revision {revision} was issued as {stored.hash}, not as this draft")
    return out


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
