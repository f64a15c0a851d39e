"""The database tables. Instants are BIGINT microseconds since the Unix epoch (UTC), exact on every
backend; versioned inputs are stored as canonical JSON so a past month recomputes as it was."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

SCHEMA_REVISION = "0012"
"""The Alembic head this code expects (tests check it against the migrations), so opening a
current database costs one query and no Alembic import."""

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

device_keys = Table(
    "device_keys",
    metadata,
    Column("key", Integer, primary_key=True, autoincrement=True),
    Column("device", String(200), nullable=False),
    UniqueConstraint("device"),
)
"""A small integer per device id, so results and timelines stay compact."""

inventory_versions = Table(
    "inventory_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("effective_from", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("body", Text, nullable=False),
)

contract_versions = Table(
    "contract_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contract", String(200), nullable=False),
    Column("effective_from", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Index(None, "contract", "effective_from"),
)

exclusions = Table(
    "exclusions",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("source", String(20), nullable=False),  # file | api
    Column("sha256", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("file_sha256", String(64)),  # what the exclusions file last said of this id; NULL: not in it
)
"""Each exclusion as it is in force (the newest of its records, exclusion_records): what statements read."""

inspections = Table(
    "inspections",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("position", Integer, nullable=False),  # in the file
    Column("sha256", String(64), nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON (canonical.inspection_to_dict)
    Column("updated_at", BigInteger, nullable=False),
)
"""Missed inspections as the inspections file last said (docs/sla.md §6.6), mirrored like exclusions."""

result_blocks = Table(
    "result_blocks",
    metadata,
    Column("device", Integer, primary_key=True),
    Column("kind", SmallInteger, primary_key=True),  # 0 icmp, 1 snmp, 2 video
    Column("hour", BigInteger, primary_key=True),  # hours since the epoch
    Column("part", Integer, primary_key=True, server_default="0"),  # 0: merged; live rounds append others
    Column("n", Integer, nullable=False),
    Column("n_ok", Integer, nullable=False),
    Column("rtt_n", Integer, nullable=False),
    Column("rtt_sum_us", BigInteger, nullable=False),
    Column("rtt_min_us", BigInteger),
    Column("rtt_max_us", BigInteger),
    Column("n_low_res", Integer),  # video samples below the resolution minimum (NULL: not counted)
    Column("data", LargeBinary),  # packed results; NULL once retention has let them go
    Column("sha256", String(64)),  # of `data` as written (kept when it is let go); checked on every read
    # the evidence digest reads the digests without the bytes (migration 0011): of the merged
    # blocks (part 0, written by imports and compaction), and which hours hold live parts (a small
    # index: compaction merges them hourly); live rounds' appends touch only the second
    Index(
        "result_blocks_digests",
        "device",
        "hour",
        "kind",
        "sha256",
        sqlite_where=text("part = 0"),
        postgresql_where=text("part = 0"),
    ),
    Index(
        "result_blocks_live",
        "device",
        "hour",
        sqlite_where=text("part > 0"),
        postgresql_where=text("part > 0"),
        postgresql_include=["kind"],
    ),
    sqlite_with_rowid=False,
)

evidence_digests = Table(
    "evidence_digests",
    metadata,
    Column("device", Integer, primary_key=True),
    Column("lo", BigInteger, primary_key=True),  # the hours [lo, hi] a statement's month touches
    Column("hi", BigInteger, primary_key=True),
    Column("digest", String(64), nullable=False),  # the device's line of the evidence digest
    Index("evidence_digests_by_hi", "hi"),
)
"""Each device's evidence digest over a month's hours, as a statement last computed it: a draft
reads it rather than every block's digest again. Any block written into those hours forgets it
(store/results.py); issuing and verifying never read it."""

timelines = Table(
    "timelines",
    metadata,
    Column("device", Integer, primary_key=True),
    Column("params", Text, nullable=False),  # the engine settings the stored timeline was built with
    Column("kept_from", BigInteger),  # results before this instant were let go (retention)
    Column("carry", Text),  # JSON state.Carry at kept_from
    Column("firm_until", BigInteger),
    Column("updated_at", BigInteger, nullable=False),
    Column("resume", Text),  # JSON state.Carry at the firm point: where a restarted monitor resumes
)

transitions = Table(
    "transitions",
    metadata,
    Column("device", Integer, primary_key=True),
    Column("at", BigInteger, primary_key=True),
    Column("state", String(10), nullable=False),
    sqlite_with_rowid=False,
)

outages = Table(
    "outages",
    metadata,
    Column("device", Integer, primary_key=True),
    Column("start_at", BigInteger, primary_key=True),
    Column("end_at", BigInteger, nullable=False),
    Column("open", Boolean, nullable=False),
    Column("end_reason", String(20)),
    Column("first_failure", BigInteger),
    Column("last_failure", BigInteger),
    Column("recovered", BigInteger),
    Column("gaps", Text),  # JSON [[start, end], ...]: the monitoring gaps it spans; NULL: none
    Index(None, "end_at"),
)

statements = Table(
    "statements",
    metadata,
    Column("contract", String(200), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("status", String(10), nullable=False),  # issued (drafts are not stored)
    Column("hash", String(80), nullable=False),
    Column("replaces", String(80)),
    Column("issued_at", BigInteger, nullable=False),
    Column("body", Text, nullable=False),  # the issued JSON, byte for byte as it was written
    Column("sha256", String(64)),  # of `body` (UTF-8); checked whenever it is read
    Column("override_by", String(200)),  # who issued it below the contract's min_coverage, and why
    Column("override_reason", Text),
    Column("context", Text),  # canonical JSON: the labels its PDF printed (contract, sites, exclusions)
    Column("context_sha256", String(64)),
)

fleet_cache = Table(
    "fleet_cache",
    metadata,
    Column("key", String(80), primary_key=True),  # sha256 of slamon's version and every input file
    Column("body", Text, nullable=False),  # canonical JSON of the validated fleet
    Column("created_at", BigInteger, nullable=False),
    Column("sha256", String(64)),  # of `body` (UTF-8); checked whenever it is read
)

store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(100), primary_key=True),  # store_id; journal:<id> (last applied write)
    Column("value", Text, nullable=False),
)
"""The store's identity (a random id made with the database) and each live journal's progress."""

events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),  # µs: when it was seen
    Column("kind", String(20), nullable=False),  # port | reboot | power
    Column("subject", String(200), nullable=False),  # the switch (port, reboot) or the site (power)
    Column("body", Text, nullable=False),  # canonical JSON: what was seen
    Index("events_by_subject", "kind", "subject", "at"),
)
"""Evidence the probe results alone do not hold: a switch port's state when it changed, a
reboot, a site that went dark while its upstream answered. Append only."""

exclusion_records = Table(
    "exclusion_records",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("exclusion", String(200), nullable=False),
    Column("version", Integer, nullable=False),  # 1, 2, …: each supersedes the one before
    Column("at", BigInteger, nullable=False),
    Column("action", String(20), nullable=False),  # propose amend approve reject import withdraw detect
    Column("actor", String(200), nullable=False),
    Column("source", String(20), nullable=False),  # cli | api | file | detected
    Column("status", String(10), nullable=False),  # proposed | approved | rejected | withdrawn
    Column("sha256", String(64), nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON of the exclusion as this version says it
    Column("note", Text),  # the decision's reason, or why it was changed
    UniqueConstraint("exclusion", "version"),
)
"""Every version of every exclusion, append only: a change is a new version, the old one stays."""

evidence_files = Table(
    "evidence_files",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("stored_at", BigInteger, nullable=False),
)
"""Evidence attached to exclusions (photos, the power company's notice …), by the SHA-256 of its bytes."""

exclusion_evidence = Table(
    "exclusion_evidence",
    metadata,
    Column("record", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),  # exclusion_records.seq
    Column("position", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),  # 1, 2, … without gaps
    Column("at", BigInteger, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(50), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),  # the entry before's hash (64 zeros for the first)
    Column("hash", String(64), nullable=False),  # sha256(prev_hash + canonical entry)
    UniqueConstraint("prev_hash"),
)
"""Every write through the workflow, the API and the tokens, append only and hash-chained."""

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(40), primary_key=True),  # public: the part of the token before the secret
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),  # viewer | ops | contract_manager | admin
    Column("contracts", Text),  # JSON list of contract ids it is limited to; NULL: all
    Column("sha256", String(64), nullable=False),  # of the whole token; the token itself is never stored
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked_at", BigInteger),
    Column("revoked_by", String(200)),
)
