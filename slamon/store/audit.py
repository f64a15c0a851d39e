"""The audit log: every write of the workflow, the API and the tokens, append only, hash-chained.

Entry n holds `prev_hash`, the hash of entry n-1 (64 zeros for entry 1), and its own
`hash = sha256(prev_hash + canonical entry)`, where the canonical entry is the canonical JSON of
`{action, actor, at, body, subject}` (`body` as the stored text). `seq` is not hashed: it is
checked to run 1, 2, 3 … without gaps, so that a row moved to another place (rows reordered) is
told apart from a row whose contents changed. The newest entry's seq and hash are also kept in
`store_meta` (`audit_head`), so deleting the last rows is found too; anyone who can rewrite both
tables can rewrite history, which is why `slamon audit verify --head` takes a head noted elsewhere.

Appends happen inside write transactions, which the store runs one at a time (SQLite BEGIN
IMMEDIATE, PostgreSQL's writer lock): two appends never name the same predecessor (and the
unique `prev_hash` would refuse it if they did).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from slamon.canonical import canonical_json
from slamon.model import Micros
from slamon.store import schema as t
from slamon.store.sql import Part

GENESIS = "0" * 64
GENESIS_SEQ = 0  # the place before entry 1
HEAD = "audit_head"  # store_meta key: "<seq> <hash>" of the newest entry


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: Micros
    actor: str
    action: str
    subject: str
    body: str  # canonical JSON
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "body": json.loads(self.body),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def entry_hash(prev_hash: str, at: Micros, actor: str, action: str, subject: str, body: str) -> str:
    """sha256(prev_hash + canonical entry), in hex."""
    entry = canonical_json({"action": action, "actor": actor, "at": at, "body": body, "subject": subject})
    return hashlib.sha256(prev_hash.encode("ascii") + entry).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What `verify` found: the entries walked, the newest one, and each problem in words."""

    entries: int
    head: tuple[int, str] | None  # (seq, hash) of the last entry
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


class Audit(Part):
    def append(
        self, at: Micros, actor: str, action: str, subject: str, body: Mapping[str, object]
    ) -> AuditEntry:
        """Add one entry after the newest; the caller's write transaction holds the writer lock."""
        text = canonical_json(dict(body)).decode()
        seq, prev = self._head() or (0, GENESIS)
        digest = entry_hash(prev, at, actor, action, subject, text)
        entry = AuditEntry(seq + 1, at, actor, action, subject, text, prev, digest)
        self.conn.execute(
            t.audit_log.insert(),
            {
                "seq": entry.seq,
                "at": at,
                "actor": actor,
                "action": action,
                "subject": subject,
                "body": text,
                "prev_hash": prev,
                "hash": digest,
            },
        )
        value = f"{entry.seq} {digest}"
        stmt = self._insert(t.store_meta).values(key=HEAD, value=value)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))
        return entry

    def _head(self) -> tuple[int, str] | None:
        """The newest entry written: the head kept in store_meta (which outlives a deleted last
        row, so a later append leaves the gap visible), else the last row."""
        kept = self._kept_head()
        if kept is not None:
            return kept
        row = self.conn.execute(
            sa.select(t.audit_log.c.seq, t.audit_log.c.hash).order_by(t.audit_log.c.seq.desc()).limit(1)
        ).first()
        return None if row is None else (int(row.seq), str(row.hash))

    def _kept_head(self) -> tuple[int, str] | None:
        value = self.conn.execute(sa.select(t.store_meta.c.value).where(t.store_meta.c.key == HEAD)).scalar()
        if value is None:
            return None
        seq, _, digest = value.partition(" ")
        return int(seq), digest

    def entries(
        self,
        *,
        after: int = 0,
        limit: int | None = None,
        subject: str | None = None,
        actions: Sequence[str] = (),
    ) -> list[AuditEntry]:
        """Entries after seq `after`, oldest first."""
        a = t.audit_log
        query = sa.select(a).where(a.c.seq > after).order_by(a.c.seq)
        if subject is not None:
            query = query.where(a.c.subject == subject)
        if actions:
            query = query.where(a.c.action.in_(list(actions)))
        if limit is not None:
            query = query.limit(limit)
        return [
            AuditEntry(r.seq, r.at, r.actor, r.action, r.subject, r.body, r.prev_hash, r.hash)
            for r in self.conn.execute(query)
        ]

    def verify(self, expected_head: tuple[int, str] | None = None) -> AuditReport:
        """Walk the whole log: each entry's hash, the chain, the numbering, and the head."""
        rows = self.entries()
        seq_of = {r.hash: r.seq for r in rows}
        problems: list[str] = []
        prev_hash, prev_seq = GENESIS, 0
        for r in rows:
            if entry_hash(r.prev_hash, r.at, r.actor, r.action, r.subject, r.body) != r.hash:
                problems.append(f"entry {r.seq} was edited: its hash does not match its contents")
            gap = r.seq > prev_seq + 1
            if gap:
                problems.append(_missing(prev_seq + 1, r.seq - 1))
            elif r.seq <= prev_seq:  # cannot happen with seq as the primary key; kept for clarity
                problems.append(f"entry {r.seq} appears twice")
            if r.prev_hash != prev_hash and not gap:
                named = GENESIS_SEQ if r.prev_hash == GENESIS else seq_of.get(r.prev_hash)
                if named is not None:
                    problems.append(
                        f"entry {r.seq} is out of order: it was written after "
                        f"{_entry(named)}, not after {_entry(prev_seq)} (rows were reordered)"
                    )
                else:
                    problems.append(
                        f"entry {r.seq} does not follow {_entry(prev_seq)}: the hash it names as its "
                        f"predecessor is not in the log ({_entry(prev_seq)} was changed after "
                        f"entry {r.seq} was written)"
                    )
            prev_hash, prev_seq = r.hash, r.seq
        head = (prev_seq, prev_hash) if rows else None
        kept = self._kept_head()
        if kept is not None and head != kept:
            problems.append(_head_mismatch(head, kept))
        if expected_head is not None and expected_head not in {(r.seq, r.hash) for r in rows}:
            seq, digest = expected_head
            found = next((r.hash for r in rows if r.seq == seq), None)
            problems.append(
                f"the head given, entry {seq} sha256:{digest}, is not in the log: "
                + ("there is no entry " + str(seq) if found is None else f"entry {seq} is sha256:{found}")
            )
        return AuditReport(len(rows), head, tuple(problems))


def _entry(seq: int) -> str:
    return "the start of the log" if seq == GENESIS_SEQ else f"entry {seq}"


def _missing(first: int, last: int) -> str:
    if first == last:
        return f"entry {first} is missing (deleted)"
    return f"entries {first} to {last} are missing (deleted)"


def _head_mismatch(head: tuple[int, str] | None, kept: tuple[int, str]) -> str:
    """The rows against the newest entry the store recorded writing."""
    seq, digest = kept
    if head is None:
        return f"the log is empty but entry {seq} was written (sha256:{digest}): every entry was deleted"
    last, last_hash = head
    if seq > last:
        return f"the log ends at entry {last} but entry {seq} was written: " + _missing(last + 1, seq)
    if seq == last:
        return f"entry {last} is not the one written last (sha256:{digest}; the log has sha256:{last_hash})"
    return f"the log goes on to entry {last} but entry {seq} was the last one written (sha256:{digest})"
