"""Exclusions as a workflow (docs/sla.md §4): propose, amend, approve, reject, list, export.

Each function takes the transaction, the fleet as the files describe it now (to check scopes and
find the contracts an exclusion reaches), the actor (slamon/access.py) and the instant; it checks
what the actor may do, writes a new version (store/exclusions.py, which audits it) and returns it.
The command line and the HTTP API are thin layers over these.

- **Propose**: a new exclusion, `proposed`, with its evidence files. Refused after the filing
  deadline of a contract it reaches (`sla.filing_deadline`): the month of its start closes that
  long after the month ends, in the contract's time zone.
- **Amend**: a new version of an exclusion with some fields changed; it goes back to `proposed`
  (whatever it was), under the same deadline for its new interval.
- **Approve**, **reject**: a contract manager's decision, with a reason; either may reverse an
  earlier decision. Neither is bound by the deadline: a late approval of an issued month makes
  the next `statement --issue` revision n+1, naming the one it replaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import yaml

from slamon.access import Actor, Permission
from slamon.billing.periods import period_of
from slamon.canonical import exclusion_to_dict
from slamon.errors import ExclusionError, WorkflowError
from slamon.loaders.exclusions import load_scope
from slamon.loaders.yamlio import Source, key_path
from slamon.model import (
    ContractId,
    Exclusion,
    ExclusionCategory,
    ExclusionId,
    ExclusionStatus,
    Fleet,
    Inventory,
    Scope,
    from_micros,
    to_micros,
)
from slamon.store import StoreTx
from slamon.store.exclusions import Attachment, ExclusionRecord
from slamon.units import format_duration, quote

MAX_EVIDENCE_BYTES = 20 * 1024 * 1024  # one attachment
MAX_EVIDENCE_FILES = 20  # per version
MAX_NOTE = 2000  # characters of a decision's reason
PROPOSAL_KEYS = ("id", "category", "scope", "start", "end", "reason")
AMEND_KEYS = ("category", "scope", "start", "end", "reason")
_NAME = re.compile(r"[^/\\\x00-\x1f]{1,255}")


@dataclass(frozen=True, slots=True)
class Evidence:
    """A file handed in with a proposal: its name (no folders) and its bytes."""

    name: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Filed:
    """An exclusion in force, as the workflow lists it."""

    exclusion: Exclusion
    source: str  # of the version in force: cli, api, file, detected
    version: int
    updated_at: datetime
    updated_by: str
    note: str | None
    contracts: tuple[ContractId, ...]  # those its scope reaches
    evidence: tuple[tuple[int, Attachment], ...]  # (version it came with, file)

    def to_dict(self, zone: tzinfo | None = None) -> dict[str, object]:
        """The JSON form: the exclusion's canonical fields (instants in UTC), then the workflow's."""
        out: dict[str, object] = exclusion_to_dict(self.exclusion)
        out.update(
            {
                "version": self.version,
                "source": self.source,
                "updated_at": _when(self.updated_at, zone),
                "updated_by": self.updated_by,
                "note": self.note,
                "contracts": list(self.contracts),
                "evidence": [
                    {"name": a.name, "sha256": a.sha256, "size": a.size, "version": v}
                    for v, a in self.evidence
                ],
            }
        )
        return out


def record_to_dict(r: ExclusionRecord, zone: tzinfo | None = None) -> dict[str, object]:
    """One version as the CLI's `show --json` and the API give it."""
    return {
        "id": r.exclusion.id,
        "version": r.version,
        "at": _when(from_micros(r.at), zone),
        "action": r.action,
        "actor": r.actor,
        "source": r.source,
        "status": r.status,
        "note": r.note,
        "sha256": r.sha256,
        "exclusion": exclusion_to_dict(r.exclusion),
        "evidence": [{"name": a.name, "sha256": a.sha256, "size": a.size} for a in r.evidence],
    }


class Reach:
    """The contracts an exclusion's scope reaches: those it names, its devices' and the contracts
    of the devices at its sites."""

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory
        self._by_site: dict[str, set[ContractId]] = {}
        for d in inventory.devices.values():
            self._by_site.setdefault(d.site, set()).add(d.contract)

    def of(self, scope: Scope) -> tuple[ContractId, ...]:
        devices = self._inventory.devices
        found: set[ContractId] = set(scope.contracts)
        found.update(devices[d].contract for d in scope.devices if d in devices)
        for site in scope.sites:
            found.update(self._by_site.get(site, ()))
        return tuple(sorted(found))


# --- writing ------------------------------------------------------------------------------------


def propose(
    tx: StoreTx,
    fleet: Fleet,
    actor: Actor,
    fields: Mapping[str, object],
    evidence: Sequence[Evidence],
    now: datetime,
    *,
    where: str = "proposal",
) -> ExclusionRecord:
    """File a new exclusion, `proposed`. `fields`: id (optional: one is made), category, scope
    ({devices, sites, contracts}), start, end (instants with offsets), reason."""
    actor.require(Permission.PROPOSE)
    src = Source(where, ExclusionError)
    given = src.mapping("", fields, PROPOSAL_KEYS, required=("category", "scope", "start", "end", "reason"))
    reach = Reach(fleet.inventory)
    ident = ExclusionId(src.ident("id", given["id"])) if "id" in given else None
    draft = _exclusion(src, given, ident or ExclusionId("?"), fleet)
    contracts = reach.of(draft.scope)
    actor.require_reach(contracts, "propose exclusions")
    if ident is None:
        ident = _new_id(tx, fleet, draft, contracts)
        draft = _with(draft, id=ident)
    else:
        current = tx.exclusions.in_force(ident)
        if current is not None:
            raise WorkflowError(
                f"exclusion {ident} exists already ({current.exclusion.status.value}): "
                "change it with amend, or give another id",
                "conflict",
            )
        if any(e.id == ident for e in fleet.exclusions):
            raise WorkflowError(f"exclusion {ident} is in the exclusions file: give another id", "conflict")
    check_deadline(draft, fleet, contracts, now)
    files = _store_evidence(tx, evidence, now)
    return tx.exclusions.record(
        draft, "propose", actor.name, actor.channel, to_micros(now), evidence=files, token=actor.token
    )


def amend(
    tx: StoreTx,
    fleet: Fleet,
    actor: Actor,
    ident: str,
    fields: Mapping[str, object],
    evidence: Sequence[Evidence],
    now: datetime,
    *,
    note: str | None = None,
    where: str = "amendment",
) -> ExclusionRecord:
    """A new version of an exclusion with the fields given changed (and any files added); it is
    `proposed` again until decided. Evidence added alone leaves its status as it is."""
    actor.require(Permission.PROPOSE)
    current = _in_force(tx, ident)
    reach = Reach(fleet.inventory)
    actor.require_reach(reach.of(current.scope), "amend exclusions")
    src = Source(where, ExclusionError)
    given = src.mapping("", fields, AMEND_KEYS)
    merged: dict[str, object] = {
        "category": current.category.value,
        "scope": {
            "devices": sorted(current.scope.devices),
            "sites": sorted(current.scope.sites),
            "contracts": sorted(current.scope.contracts),
        },
        "start": current.start.isoformat(),
        "end": current.end.isoformat(),
        "reason": current.reason,
    }
    merged.update(given)
    draft = _exclusion(src, merged, current.id, fleet)
    contracts = reach.of(draft.scope)
    actor.require_reach(contracts, "amend exclusions")
    if _with(draft, status=current.status, approved_by=current.approved_by) == current:
        if not evidence:
            raise WorkflowError(f"exclusion {ident} already says this: nothing to change", "conflict")
        draft = current  # evidence added, nothing else: the decision stands (and no deadline)
    else:
        check_deadline(draft, fleet, contracts, now)
    files = _store_evidence(tx, evidence, now)
    return tx.exclusions.record(
        draft,
        "amend",
        actor.name,
        actor.channel,
        to_micros(now),
        note=_note(note, required=False),
        evidence=files,
        token=actor.token,
    )


def approve(
    tx: StoreTx, fleet: Fleet, actor: Actor, ident: str, reason: str | None, now: datetime
) -> ExclusionRecord:
    """A contract manager approves an exclusion: from now on it counts where its category is honoured."""
    return _decide(tx, fleet, actor, ident, ExclusionStatus.APPROVED, reason, now)


def reject(
    tx: StoreTx, fleet: Fleet, actor: Actor, ident: str, reason: str | None, now: datetime
) -> ExclusionRecord:
    """A contract manager rejects an exclusion: it is shown on statements and changes nothing."""
    return _decide(tx, fleet, actor, ident, ExclusionStatus.REJECTED, reason, now)


def _decide(
    tx: StoreTx,
    fleet: Fleet,
    actor: Actor,
    ident: str,
    status: ExclusionStatus,
    reason: str | None,
    now: datetime,
) -> ExclusionRecord:
    actor.require(Permission.DECIDE)
    verb = "approve" if status is ExclusionStatus.APPROVED else "reject"
    current = _in_force(tx, ident)
    actor.require_reach(Reach(fleet.inventory).of(current.scope), f"{verb} exclusions")
    note = _note(reason, required=True, what=f"a reason to {verb} it")
    if current.status is status:
        last = tx.exclusions.latest([ident])[ident]
        raise WorkflowError(
            f"exclusion {ident} is already {status.value} (version {last.version}, by {last.actor} "
            f"at {_when(from_micros(last.at), _zone_of(fleet, current))})",
            "conflict",
        )
    decided = _with(
        current, status=status, approved_by=actor.name if status is ExclusionStatus.APPROVED else None
    )
    return tx.exclusions.record(
        decided, verb, actor.name, actor.channel, to_micros(now), note=note, token=actor.token
    )


# --- reading ------------------------------------------------------------------------------------


def listing(
    tx: StoreTx,
    fleet: Fleet,
    actor: Actor,
    *,
    statuses: Iterable[ExclusionStatus] = (),
    contract: str | None = None,
) -> list[Filed]:
    """The exclusions in force the actor may see, by start then id; optionally only those of some
    statuses, or reaching one contract."""
    actor.require(Permission.READ)
    wanted = frozenset(statuses)
    reach = Reach(fleet.inventory)
    found = tx.exclusions.all_in_force()
    latest = tx.exclusions.latest([f.exclusion.id for f in found]) if found else {}
    out: list[Filed] = []
    for f in found:
        e = f.exclusion
        contracts = reach.of(e.scope)
        if wanted and e.status not in wanted:
            continue
        if contract is not None and contract not in contracts:
            continue
        if not actor.sees(contracts):
            continue
        last = latest.get(e.id)
        out.append(
            Filed(
                exclusion=e,
                source=f.source,
                version=0 if last is None else last.version,
                updated_at=from_micros(0 if last is None else last.at),
                updated_by="" if last is None else last.actor,
                note=None if last is None else last.note,
                contracts=contracts,
                evidence=tuple(tx.exclusions.evidence_of(e.id)),
            )
        )
    out.sort(key=lambda f: (f.exclusion.start, f.exclusion.id))
    return out


def history(tx: StoreTx, fleet: Fleet, actor: Actor, ident: str) -> list[ExclusionRecord]:
    """Every version of one exclusion the actor may see, oldest first."""
    actor.require(Permission.READ)
    records = tx.exclusions.history(ident)
    reach = Reach(fleet.inventory)
    if not records or not any(actor.sees(reach.of(r.exclusion.scope)) for r in records):
        raise WorkflowError(f"no exclusion {ident!r}", "not_found")
    return records


def evidence_file(
    tx: StoreTx, fleet: Fleet, actor: Actor, ident: str, sha256: str
) -> tuple[Attachment, bytes]:
    """One evidence file of an exclusion the actor may see."""
    history(tx, fleet, actor, ident)  # checks that the actor sees it
    for _, a in tx.exclusions.evidence_of(ident):
        if a.sha256 == sha256:
            content = tx.exclusions.evidence_content(sha256)
            if content is not None:
                return a, content
    raise WorkflowError(f"exclusion {ident} has no evidence file sha256:{sha256}", "not_found")


def export_yaml(exclusions: Iterable[Exclusion], zone: tzinfo, header: str | None = None) -> str:
    """The exclusions in the exclusions file's format (docs/formats.md): `load_exclusions` reads
    back the same exclusions. Instants are shown in `zone`."""
    items: list[dict[str, object]] = []
    for e in exclusions:
        scope = {
            name: sorted(ids)
            for name, ids in (
                ("devices", e.scope.devices),
                ("sites", e.scope.sites),
                ("contracts", e.scope.contracts),
            )
            if ids
        }
        item: dict[str, object] = {
            "id": e.id,
            "category": e.category.value,
            "scope": scope,
            "start": e.start.astimezone(zone).isoformat(),
            "end": e.end.astimezone(zone).isoformat(),
            "reason": e.reason,
            "status": e.status.value,
        }
        if e.approved_by is not None:
            item["approved_by"] = e.approved_by
        items.append(item)
    text = "" if not items else yaml.safe_dump(items, allow_unicode=True, sort_keys=False, width=100)
    top = "".join(f"# {line}\n" for line in header.splitlines()) if header else ""
    return top + (text or "[]\n")


def issued_months(tx: StoreTx, fleet: Fleet, exclusion: Exclusion) -> list[tuple[ContractId, str, int]]:
    """The issued months an exclusion's interval touches, under the contracts it reaches, with
    their latest revision: those whose next statement may be a draft revision."""
    found: list[tuple[ContractId, str, int]] = []
    for cid in Reach(fleet.inventory).of(exclusion.scope):
        contract = fleet.contracts.get(cid)
        if contract is None:
            continue
        zone = ZoneInfo(contract.timezone)
        month = exclusion.start.astimezone(zone).strftime("%Y-%m")
        last = (exclusion.end - timedelta(microseconds=1)).astimezone(zone).strftime("%Y-%m")
        while month <= last:
            issued = tx.statements.issued(cid, month)
            if issued:
                found.append((cid, month, issued[-1].revision))
            year, mon = int(month[:4]), int(month[5:])
            month = f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"
    return found


# --- the filing deadline -----------------------------------------------------------------------


def filing_closes(exclusion: Exclusion, fleet: Fleet, contract: ContractId) -> tuple[str, datetime] | None:
    """When proposals for the month of the exclusion's start close under a contract: (month,
    instant); None when the contract sets no deadline."""
    c = fleet.contracts.get(contract)
    if c is None or c.sla.filing_deadline is None:
        return None
    zone = ZoneInfo(c.timezone)
    month = exclusion.start.astimezone(zone).strftime("%Y-%m")
    closes = from_micros(period_of(month, c.timezone).end) + c.sla.filing_deadline
    return month, closes.astimezone(zone)


def check_deadline(
    exclusion: Exclusion, fleet: Fleet, contracts: Iterable[ContractId], now: datetime
) -> None:
    """Refuse a proposal filed after a reached contract's deadline, naming month, contract and time."""
    for cid in contracts:
        found = filing_closes(exclusion, fleet, cid)
        if found is None:
            continue
        month, closes = found
        if now >= closes:
            deadline = fleet.contracts[cid].sla.filing_deadline
            assert deadline is not None
            raise WorkflowError(
                f"too late: exclusions for {month} under contract {cid} could be proposed until "
                f"{closes.isoformat()} (sla.filing_deadline: {format_duration(deadline)} after the month); "
                f"it is {now.astimezone(closes.tzinfo).isoformat(timespec='seconds')}",
                "late",
            )


# --- helpers ------------------------------------------------------------------------------------


def _exclusion(src: Source, given: Mapping[str, object], ident: ExclusionId, fleet: Fleet) -> Exclusion:
    category = src.choice("category", given["category"], ExclusionCategory, "a category")
    scope = load_scope(src, "scope", given["scope"], fleet.inventory, fleet.contracts)
    start = src.instant("start", _text_instant(given["start"]))
    end = src.instant("end", _text_instant(given["end"]))
    if end <= start:
        src.fail("end", "must be after start")
    reason = src.text("reason", given["reason"])
    return Exclusion(
        id=ident,
        category=category,
        scope=scope,
        start=start,
        end=end,
        reason=reason,
        status=ExclusionStatus.PROPOSED,
        approved_by=None,
    )


def _text_instant(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def _with(e: Exclusion, **changes: object) -> Exclusion:
    fields = {
        "id": e.id,
        "category": e.category,
        "scope": e.scope,
        "start": e.start,
        "end": e.end,
        "reason": e.reason,
        "status": e.status,
        "approved_by": e.approved_by,
    }
    fields.update(changes)
    return Exclusion(**fields)  # type: ignore[arg-type]


def _in_force(tx: StoreTx, ident: str) -> Exclusion:
    current = tx.exclusions.in_force(ident)
    if current is None:
        raise WorkflowError(f"no exclusion {ident!r}", "not_found")
    return current.exclusion


def _note(text: str | None, *, required: bool, what: str = "a note") -> str | None:
    if text is None or not text.strip():
        if required:
            raise WorkflowError(f"give {what} (--reason)", "invalid")
        return None
    if len(text) > MAX_NOTE:
        raise WorkflowError(f"the reason is {len(text):,} characters long (at most {MAX_NOTE:,})", "invalid")
    return text.strip()


def _store_evidence(tx: StoreTx, evidence: Sequence[Evidence], now: datetime) -> list[Attachment]:
    if len(evidence) > MAX_EVIDENCE_FILES:
        raise WorkflowError(
            f"{len(evidence)} evidence files (at most {MAX_EVIDENCE_FILES} at a time)", "invalid"
        )
    files: list[Attachment] = []
    for i, ev in enumerate(evidence):
        where = key_path("evidence", i)
        if not _NAME.fullmatch(ev.name):
            raise WorkflowError(
                f"{where}: {quote(ev.name)} is not a file name (no folders, 1 to 255 characters)"
            )
        if len(ev.content) > MAX_EVIDENCE_BYTES:
            raise WorkflowError(
                f"{where}: {ev.name} is {len(ev.content):,} bytes (at most {MAX_EVIDENCE_BYTES:,})", "invalid"
            )
        if not ev.content:
            raise WorkflowError(f"{where}: {ev.name} is empty", "invalid")
        files.append(tx.exclusions.put_evidence(ev.name, ev.content, to_micros(now)))
    return files


def _new_id(tx: StoreTx, fleet: Fleet, draft: Exclusion, contracts: Sequence[ContractId]) -> ExclusionId:
    """EX-<month of its start>-<nn>: the first number free in the store and in the file."""
    zone = ZoneInfo(fleet.contracts[contracts[0]].timezone) if contracts else ZoneInfo("UTC")
    month = draft.start.astimezone(zone).strftime("%Y-%m")
    taken = tx.exclusions.known_ids() | {e.id for e in fleet.exclusions}
    n = 1
    while f"EX-{month}-{n:02d}" in taken:
        n += 1
    return ExclusionId(f"EX-{month}-{n:02d}")


def _zone_of(fleet: Fleet, e: Exclusion) -> tzinfo:
    contracts = Reach(fleet.inventory).of(e.scope)
    zones = {fleet.contracts[c].timezone for c in contracts if c in fleet.contracts}
    return ZoneInfo(zones.pop()) if len(zones) == 1 else ZoneInfo("UTC")


def _when(at: datetime, zone: tzinfo | None) -> str:
    return at.astimezone(zone or ZoneInfo("UTC")).isoformat(timespec="seconds")


def zone_of_fleet(fleet: Fleet) -> tzinfo:
    """The contracts' zone when they share one, else UTC: how lists and exports show instants."""
    zones = {c.timezone for c in fleet.contracts.values()}
    return ZoneInfo(zones.pop()) if len(zones) == 1 else ZoneInfo("UTC")
