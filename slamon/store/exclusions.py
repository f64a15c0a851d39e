"""Exclusions in the store: every version of every exclusion (`exclusion_records`, append only), the
version in force of each (`exclusions`, what statements read), and their evidence files.

Three channels write versions, each audited (store/audit.py):
- the workflow (`cli`, `api`): propose, amend, approve, reject (slamon/workflow.py checks who may);
- the exclusions file (`file`): an entry is imported when it first appears in the file or when the
  file changes it, superseding whatever is in force; an entry that leaves the file is withdrawn
  only while the file's version is the one in force (a decision taken in the store stands);
- the monitor (`detected`): a suspected power cut, proposed, updated while nobody has acted on it.
Nothing is deleted but the in-force row of an exclusion withdrawn from the file; its versions stay.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from slamon.canonical import canonical_json, exclusion_from_dict, exclusion_to_dict, sha256_hex
from slamon.model import Exclusion, Micros
from slamon.store import schema as t
from slamon.store.audit import Audit
from slamon.store.sql import Part

FILE = "file"  # sources of versions
DETECTED = "detected"
STORE_POSITION = 1_000_000  # exclusions not in the file come after the file's, by id
WITHDRAWN = "withdrawn"  # the status of a version that takes an exclusion out of force


@dataclass(frozen=True, slots=True)
class Attachment:
    """An evidence file attached to a version: its name as given, its bytes' SHA-256, its size."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class ExclusionRecord:
    """One version of one exclusion."""

    seq: int
    version: int
    at: Micros
    action: str  # propose amend approve reject import withdraw detect
    actor: str
    source: str  # cli | api | file | detected
    status: str  # proposed | approved | rejected | withdrawn
    exclusion: Exclusion  # as this version says it (for withdraw: the last version in force)
    sha256: str
    note: str | None
    evidence: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class InForce:
    """An exclusion's version in force, where it came from, and its newest record's number."""

    exclusion: Exclusion
    source: str
    position: int
    sha256: str
    file_sha256: str | None


class ExclusionLedger(Part):
    # --- reading --------------------------------------------------------------------------------

    def in_force(self, ident: str) -> InForce | None:
        row = self.conn.execute(sa.select(t.exclusions).where(t.exclusions.c.id == ident)).first()
        return None if row is None else _in_force(row)

    def all_in_force(self) -> list[InForce]:
        rows = self.conn.execute(sa.select(t.exclusions).order_by(t.exclusions.c.position, t.exclusions.c.id))
        return [_in_force(r) for r in rows]

    def history(self, ident: str) -> list[ExclusionRecord]:
        """Every version of one exclusion, oldest first, each with its evidence."""
        r = t.exclusion_records
        rows = self.conn.execute(sa.select(r).where(r.c.exclusion == ident).order_by(r.c.version)).all()
        evidence = self._evidence_of([row.seq for row in rows])
        return [_record(row, evidence.get(row.seq, ())) for row in rows]

    def latest(self, idents: Iterable[str] | None = None) -> dict[str, ExclusionRecord]:
        """The newest version of each exclusion (of those named, or of all), without evidence."""
        r = t.exclusion_records
        newest = sa.select(r.c.exclusion, sa.func.max(r.c.version).label("version")).group_by(r.c.exclusion)
        if idents is not None:
            newest = newest.where(r.c.exclusion.in_(sorted(set(idents))))
        sub = newest.subquery()
        rows = self.conn.execute(
            sa.select(r).join(sub, sa.and_(r.c.exclusion == sub.c.exclusion, r.c.version == sub.c.version))
        )
        return {row.exclusion: _record(row, ()) for row in rows}

    def known_ids(self) -> set[str]:
        """Every exclusion id the store has held (withdrawn ones too)."""
        return set(self.conn.execute(sa.select(t.exclusion_records.c.exclusion).distinct()).scalars())

    def evidence_of(self, ident: str) -> list[tuple[int, Attachment]]:
        """Every file attached to any version of an exclusion, with the version it came with."""
        r, e = t.exclusion_records, t.exclusion_evidence
        rows = self.conn.execute(
            sa.select(r.c.version, e.c.name, e.c.sha256, e.c.size)
            .join(e, e.c.record == r.c.seq)
            .where(r.c.exclusion == ident)
            .order_by(r.c.version, e.c.position)
        )
        return [(row.version, Attachment(row.name, row.sha256, row.size)) for row in rows]

    def evidence_content(self, sha256: str) -> bytes | None:
        return self.conn.execute(
            sa.select(t.evidence_files.c.content).where(t.evidence_files.c.sha256 == sha256)
        ).scalar()

    # --- writing --------------------------------------------------------------------------------

    def put_evidence(self, name: str, content: bytes, at: Micros) -> Attachment:
        """Store a file by its SHA-256 (once, however often it is attached)."""
        digest = hashlib.sha256(content).hexdigest()
        stmt = self._insert(t.evidence_files).values(
            sha256=digest, size=len(content), content=content, stored_at=at
        )
        self.conn.execute(stmt.on_conflict_do_nothing(index_elements=["sha256"]))
        return Attachment(name, digest, len(content))

    def record(
        self,
        exclusion: Exclusion,
        action: str,
        actor: str,
        source: str,
        at: Micros,
        *,
        note: str | None = None,
        evidence: Sequence[Attachment] = (),
        token: str | None = None,
        position: int | None = None,
        file_sha256: str | None = None,
    ) -> ExclusionRecord:
        """A new version of an exclusion, put in force and audited. `position` and `file_sha256`
        (the file's part) are kept as they are unless given."""
        body = canonical_json(exclusion_to_dict(exclusion))
        sha = sha256_hex(body)
        rec = self._append(
            exclusion.id,
            exclusion,
            action,
            actor,
            source,
            exclusion.status.value,
            body,
            sha,
            at,
            note,
            evidence,
            token,
        )
        old = self.in_force(exclusion.id)
        row: dict[str, object] = {"source": source, "sha256": sha, "body": body.decode(), "updated_at": at}
        if position is not None:
            row["position"] = position
        if file_sha256 is not None:
            row["file_sha256"] = file_sha256
        if old is None:
            row.setdefault("position", STORE_POSITION)
            self.conn.execute(t.exclusions.insert().values(id=exclusion.id, **row))
        else:
            self.conn.execute(t.exclusions.update().where(t.exclusions.c.id == exclusion.id).values(**row))
        return rec

    def withdraw(self, ident: str, actor: str, source: str, at: Micros, *, note: str | None = None) -> None:
        """Take an exclusion out of force: a last version says so, and statements no longer see it."""
        current = self.in_force(ident)
        if current is None:
            return
        body = canonical_json(exclusion_to_dict(current.exclusion))
        self._append(
            ident,
            current.exclusion,
            "withdraw",
            actor,
            source,
            WITHDRAWN,
            body,
            current.sha256,
            at,
            note,
            (),
            None,
        )
        self.conn.execute(t.exclusions.delete().where(t.exclusions.c.id == ident))

    def _append(
        self,
        ident: str,
        exclusion: Exclusion,
        action: str,
        actor: str,
        source: str,
        status: str,
        body: bytes,
        sha: str,
        at: Micros,
        note: str | None,
        evidence: Sequence[Attachment],
        token: str | None,
    ) -> ExclusionRecord:
        r = t.exclusion_records
        version = (
            self.conn.execute(sa.select(sa.func.max(r.c.version)).where(r.c.exclusion == ident)).scalar() or 0
        ) + 1
        inserted = self.conn.execute(
            r.insert().values(
                {
                    "exclusion": ident,
                    "version": version,
                    "at": at,
                    "action": action,
                    "actor": actor,
                    "source": source,
                    "status": status,
                    "sha256": sha,
                    "body": body.decode(),
                    "note": note,
                }
            )
        ).inserted_primary_key
        assert inserted is not None
        seq = int(inserted[0])
        if evidence:
            self.conn.execute(
                t.exclusion_evidence.insert(),
                [
                    {"record": seq, "position": i, "name": a.name, "sha256": a.sha256, "size": a.size}
                    for i, a in enumerate(evidence)
                ],
            )
        audited: dict[str, object] = {
            "version": version,
            "status": status,
            "source": source,
            "sha256": sha,
            "exclusion": json.loads(body),
        }
        if note is not None:
            audited["note"] = note
        if evidence:
            audited["evidence"] = [{"name": a.name, "sha256": a.sha256, "size": a.size} for a in evidence]
        if token is not None:
            audited["token"] = token
        Audit(self.conn, self._insert).append(at, actor, f"exclusion.{action}", ident, audited)
        return ExclusionRecord(
            seq, version, at, action, actor, source, status, exclusion, sha, note, tuple(evidence)
        )

    # --- the file and the monitor ---------------------------------------------------------------

    def mirror_file(self, exclusions: Sequence[Exclusion], at: Micros) -> list[str]:
        """Bring the store in step with the exclusions file as it is now. Returns what changed."""
        stored = {i.exclusion.id: i for i in self.all_in_force()}
        changes: list[str] = []
        seen: set[str] = set()
        for position, ex in enumerate(exclusions):
            seen.add(ex.id)
            sha = sha256_hex(canonical_json(exclusion_to_dict(ex)))
            old = stored.get(ex.id)
            if old is not None and (old.file_sha256 == sha or old.sha256 == sha):
                # the file says what it said before (whatever the store decided since), or says
                # what is in force already (a file exported from the store): nothing to import
                if old.file_sha256 != sha or old.position != position:
                    self.conn.execute(
                        t.exclusions.update()
                        .where(t.exclusions.c.id == ex.id)
                        .values(file_sha256=sha, position=position)
                    )
                continue
            self.record(ex, "import", FILE, FILE, at, position=position, file_sha256=sha)
            changes.append(f"exclusion {ex.id}")
        for ident, old in stored.items():
            if ident in seen or old.file_sha256 is None:
                continue
            if old.source == FILE:
                self.withdraw(ident, FILE, FILE, at, note="no longer in the exclusions file")
                changes.append(f"exclusion {ident} removed")
            else:  # decided in the store after the file's version: the decision stands
                self.conn.execute(
                    t.exclusions.update().where(t.exclusions.c.id == ident).values(file_sha256=None)
                )
        return changes

    def detected(self, exclusion: Exclusion, at: Micros) -> bool:
        """An exclusion the monitor proposes: written, or updated as it grows, while the monitor's
        own version is the one in force (never over the file's, nor over a decision)."""
        old = self.in_force(exclusion.id)
        if old is not None and (old.source != DETECTED):
            return False
        if old is None and self.history(exclusion.id):
            return False  # withdrawn: it stays out
        sha = sha256_hex(canonical_json(exclusion_to_dict(exclusion)))
        if old is not None and old.sha256 == sha:
            return False
        self.record(exclusion, "detect", "monitor", DETECTED, at, position=STORE_POSITION)
        return True

    def _evidence_of(self, seqs: Sequence[int]) -> Mapping[int, tuple[Attachment, ...]]:
        if not seqs:
            return {}
        e = t.exclusion_evidence
        found: dict[int, list[Attachment]] = {}
        rows = self.conn.execute(
            sa.select(e).where(e.c.record.in_(list(seqs))).order_by(e.c.record, e.c.position)
        )
        for row in rows:
            found.setdefault(row.record, []).append(Attachment(row.name, row.sha256, row.size))
        return {k: tuple(v) for k, v in found.items()}


def _in_force(row: sa.Row[tuple[object, ...]]) -> InForce:
    m = row._mapping
    file_sha = m["file_sha256"]
    return InForce(
        exclusion=exclusion_from_dict(json.loads(str(m["body"]))),
        source=str(m["source"]),
        position=int(m["position"]),
        sha256=str(m["sha256"]),
        file_sha256=None if file_sha is None else str(file_sha),
    )


def _record(row: sa.Row[tuple[object, ...]], evidence: tuple[Attachment, ...]) -> ExclusionRecord:
    m = row._mapping
    note = m["note"]
    return ExclusionRecord(
        seq=int(m["seq"]),
        version=int(m["version"]),
        at=int(m["at"]),
        action=str(m["action"]),
        actor=str(m["actor"]),
        source=str(m["source"]),
        status=str(m["status"]),
        exclusion=exclusion_from_dict(json.loads(str(m["body"]))),
        sha256=str(m["sha256"]),
        note=None if note is None else str(note),
        evidence=evidence,
    )
