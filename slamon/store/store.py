"""The SLA ledger in a database: SQLite by default (one file, WAL), PostgreSQL for scale.

Everything happens inside `with store.begin() as tx:`; a block that raises leaves the database as
it was, which is how a rejected import changes nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy import Connection, Engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from slamon.canonical import (
    canonical_json,
    contract_from_dict,
    contract_to_dict,
    exclusion_from_dict,
    exclusion_to_dict,
    inventory_from_dict,
    inventory_to_dict,
)
from slamon.engine.timeline import Carry, Outage, OutageEnd, Timeline, Transition
from slamon.errors import StoreError
from slamon.model import (
    HOUR,
    Contract,
    ContractId,
    DeviceId,
    DeviceState,
    Exclusion,
    Fleet,
    Inventory,
    Micros,
    ProbeKind,
)
from slamon.store import blocks as blk
from slamon.store import schema as t
from slamon.store.blocks import ResultColumns, ResultConflict

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
_CHUNK = 900  # ids per IN (...) list, under every backend's parameter limit


def redact(url: str) -> str:
    """The database URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return "<unparsable database url>"


class ResultsLetGo(Exception):
    """New results fall before what retention has already let go for a device."""

    def __init__(self, device: int, kept_from: Micros, time: Micros, line: int | None) -> None:
        self.device, self.kept_from, self.time, self.line = device, kept_from, time, line
        super().__init__(f"device key {device}: results before {kept_from} were let go")


@dataclass(frozen=True, slots=True)
class MergeReport:
    added: int
    repeated: int  # already stored, identical: importing twice changes nothing
    earliest: Mapping[int, Micros]  # per device key that gained results, its earliest new one


@dataclass(frozen=True, slots=True)
class DeviceResults:
    """All retained results of one device, each kind sorted by time (reachability: ICMP before SNMP on ties)."""

    reach_time: blk.I64
    reach_ok: npt.NDArray[np.bool_]
    video_time: blk.I64
    video_ok: npt.NDArray[np.bool_]

    def columns(self) -> tuple[blk.I64, npt.NDArray[np.bool_], blk.I64, npt.NDArray[np.bool_]]:
        """The engine's inputs: state.build_timeline(*results.columns(), params)."""
        return self.reach_time, self.reach_ok, self.video_time, self.video_ok


_NO_RESULTS = DeviceResults(
    np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.int64), np.zeros(0, bool)
)


@dataclass(frozen=True, slots=True)
class TimelineMeta:
    params: str
    kept_from: Micros | None
    carry: Carry | None
    firm_until: Micros | None


@dataclass(frozen=True, slots=True)
class TimelineWrite:
    """A device's recomputed timeline, with the engine settings and retention state it was built from."""

    key: int
    timeline: Timeline
    params: str
    carry: Carry | None = None
    kept_from: Micros | None = None


@dataclass(frozen=True, slots=True)
class IssuedStatement:
    contract: str
    month: str
    revision: int
    hash: str
    replaces: str | None
    issued_at: Micros
    body: str


class Store:
    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except SQLAlchemyError as exc:
            raise StoreError(f"database: {url!r} is not a database URL ({exc})") from exc
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"database: {redact(url)}: only sqlite and postgresql are supported")
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = sa.create_engine(parsed, future=True)
        if self.dialect == "sqlite":
            _sqlite_pragmas(self.engine)
        if upgrade:
            try:
                self.upgrade()
            except BaseException:
                self.engine.dispose()
                raise

    def upgrade(self) -> None:
        """Bring the schema to this slamon's version (Alembic); refuse a database from a newer one."""
        try:
            with self.engine.begin() as conn:
                if _current_revision(conn) == t.SCHEMA_REVISION:
                    return
                self._migrate(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open database {redact(self.url)}: {_reason(exc)}") from exc

    def _migrate(self, conn: Connection) -> None:
        from alembic import command  # Alembic is needed only when the schema moves
        from alembic.config import Config as AlembicConfig
        from alembic.script import ScriptDirectory

        script = ScriptDirectory(str(MIGRATIONS))
        current = _current_revision(conn)
        if current is not None and current not in {s.revision for s in script.walk_revisions()}:
            raise StoreError(
                f"{redact(self.url)}: schema revision {current} is newer than this slamon knows "
                f"(head {script.get_current_head()}); upgrade slamon"
            )
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        logger.info("database %s upgraded to schema %s", redact(self.url), script.get_current_head())

    @contextmanager
    def begin(self) -> Iterator[StoreTx]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        try:
            with self.engine.begin() as conn:
                yield StoreTx(conn, self.dialect)
        except SQLAlchemyError as exc:
            raise StoreError(f"database {redact(self.url)}: {_reason(exc)}") from exc

    def close(self) -> None:
        self.engine.dispose()


def _current_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


def _sqlite_pragmas(engine: Engine) -> None:
    """WAL for concurrent readers, and SQLAlchemy (not the driver) in charge of BEGIN."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _decode_results(rows: Iterable[Any]) -> DeviceResults:
    """One device's blocks, ordered by kind then hour, as the engine's sorted columns."""
    times: dict[int, list[blk.I64]] = {0: [], 1: [], 2: []}
    oks: dict[int, list[blk.U8]] = {0: [], 1: [], 2: []}
    for r in rows:
        rec = blk.decode(r.data)
        times[r.kind].append(rec["off"].astype(np.int64) + r.hour * HOUR)
        oks[r.kind].append(rec["ok"])

    def cat(parts: list[Any], dtype: Any) -> Any:
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    reach_t = cat(times[0] + times[1], np.int64)
    reach_ok = cat(oks[0] + oks[1], np.uint8)
    order = np.argsort(reach_t, kind="stable")  # ICMP blocks come first, so ties keep ICMP first
    return DeviceResults(
        reach_t[order],
        reach_ok[order].astype(bool),
        cat(times[2], np.int64),
        cat(oks[2], np.uint8).astype(bool),
    )


def _block_row(device: int, kind: int, hour: int, part: int, records: blk.Records) -> dict[str, Any]:
    n, n_ok, rtt_n, rtt_sum, rtt_min, rtt_max = blk.rollup(records)
    return {
        "device": device,
        "kind": kind,
        "hour": hour,
        "part": part,
        "n": n,
        "n_ok": n_ok,
        "rtt_n": rtt_n,
        "rtt_sum_us": rtt_sum,
        "rtt_min_us": rtt_min,
        "rtt_max_us": rtt_max,
        "data": records.tobytes(),
    }


def _outage_row(key: int, o: Outage) -> dict[str, Any]:
    return {
        "device": key,
        "start_at": o.start,
        "end_at": o.end,
        "open": o.open,
        "end_reason": o.end_reason.value if o.end_reason else None,
        "first_failure": o.first_failure,
        "last_failure": o.last_failure,
        "recovered": o.recovered,
    }


def _carry_json(carry: Carry) -> str:
    return json.dumps(
        {"reach_down": carry.reach_down, "reach_last": carry.reach_last, "video_bad": carry.video_bad}
    )


def _chunks(values: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


class StoreTx:
    """The store's operations, inside one transaction."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self._insert = sqlite.insert if dialect == "sqlite" else postgresql.insert

    # --- device keys ------------------------------------------------------------------------

    def device_keys(self, ids: Iterable[DeviceId], *, create: bool = True) -> dict[DeviceId, int]:
        wanted = sorted(set(ids))
        found: dict[DeviceId, int] = {}
        for part in _chunks(wanted):
            rows = self.conn.execute(
                sa.select(t.device_keys.c.device, t.device_keys.c.key).where(t.device_keys.c.device.in_(part))
            )
            found.update({r.device: r.key for r in rows})
        missing = [i for i in wanted if i not in found]
        if missing and create:
            self.conn.execute(t.device_keys.insert(), [{"device": i} for i in missing])
            for part in _chunks(missing):
                rows = self.conn.execute(
                    sa.select(t.device_keys.c.device, t.device_keys.c.key).where(
                        t.device_keys.c.device.in_(part)
                    )
                )
                found.update({r.device: r.key for r in rows})
        return found

    def device_ids(self, keys: Iterable[int]) -> dict[int, DeviceId]:
        found: dict[int, DeviceId] = {}
        for part in _chunks(sorted(set(keys))):
            rows = self.conn.execute(
                sa.select(t.device_keys.c.key, t.device_keys.c.device).where(t.device_keys.c.key.in_(part))
            )
            found.update({r.key: r.device for r in rows})
        return found

    # --- versioned inputs -------------------------------------------------------------------

    def record_fleet(self, fleet: Fleet, at: Micros) -> list[str]:
        """Store what changed since the last versions, effective from `at`. Returns what changed."""
        changes: list[str] = []
        body = canonical_json(inventory_to_dict(fleet.inventory))
        sha = _sha(body)
        latest = self.conn.execute(
            sa.select(t.inventory_versions.c.sha256).order_by(t.inventory_versions.c.id.desc()).limit(1)
        ).scalar()
        if latest != sha:
            self.conn.execute(
                t.inventory_versions.insert().values(effective_from=at, sha256=sha, body=body.decode())
            )
            changes.append("inventory")
        for cid, contract in sorted(fleet.contracts.items()):
            body = canonical_json(contract_to_dict(contract))
            sha = _sha(body)
            latest = self.conn.execute(
                sa.select(t.contract_versions.c.sha256)
                .where(t.contract_versions.c.contract == cid)
                .order_by(t.contract_versions.c.id.desc())
                .limit(1)
            ).scalar()
            if latest != sha:
                self.conn.execute(
                    t.contract_versions.insert().values(
                        contract=cid, effective_from=at, sha256=sha, body=body.decode()
                    )
                )
                changes.append(f"contract {cid}")
        changes += self._mirror_exclusions(fleet.exclusions, at)
        self.device_keys(fleet.inventory.devices)
        return changes

    def _mirror_exclusions(self, exclusions: Sequence[Exclusion], at: Micros) -> list[str]:
        stored = {
            r.id: r
            for r in self.conn.execute(
                sa.select(
                    t.exclusions.c.id, t.exclusions.c.sha256, t.exclusions.c.position, t.exclusions.c.source
                )
            )
        }
        changes: list[str] = []
        seen: set[str] = set()
        for position, ex in enumerate(exclusions):
            body = canonical_json(exclusion_to_dict(ex))
            sha = _sha(body)
            seen.add(ex.id)
            old = stored.get(ex.id)
            if old is not None and old.sha256 == sha and old.position == position:
                continue
            row = {
                "position": position,
                "source": "file",
                "sha256": sha,
                "body": body.decode(),
                "updated_at": at,
            }
            if old is None:
                self.conn.execute(t.exclusions.insert().values(id=ex.id, **row))
            else:
                self.conn.execute(t.exclusions.update().where(t.exclusions.c.id == ex.id).values(**row))
            if old is None or old.sha256 != sha:
                changes.append(f"exclusion {ex.id}")
        gone = [i for i, r in stored.items() if r.source == "file" and i not in seen]
        if gone:
            self.conn.execute(t.exclusions.delete().where(t.exclusions.c.id.in_(gone)))
            changes += [f"exclusion {i} removed" for i in gone]
        return changes

    def inventory_as_of(self, at: Micros) -> Inventory | None:
        """The inventory in effect at `at`: the newest version from before it, else the oldest one."""
        v = t.inventory_versions
        body = self.conn.execute(
            sa.select(v.c.body)
            .where(v.c.effective_from <= at)
            .order_by(v.c.effective_from.desc(), v.c.id.desc())
            .limit(1)
        ).scalar()
        if body is None:
            body = self.conn.execute(sa.select(v.c.body).order_by(v.c.id).limit(1)).scalar()
        return None if body is None else inventory_from_dict(json.loads(body))

    def contract_as_of(self, contract: str, at: Micros) -> Contract | None:
        v = t.contract_versions
        where = v.c.contract == contract
        body = self.conn.execute(
            sa.select(v.c.body)
            .where(where, v.c.effective_from <= at)
            .order_by(v.c.effective_from.desc(), v.c.id.desc())
            .limit(1)
        ).scalar()
        if body is None:
            body = self.conn.execute(sa.select(v.c.body).where(where).order_by(v.c.id).limit(1)).scalar()
        return None if body is None else contract_from_dict(json.loads(body))

    def contracts_as_of(self, at: Micros) -> dict[ContractId, Contract]:
        ids = self.conn.execute(sa.select(t.contract_versions.c.contract).distinct()).scalars().all()
        found = {cid: self.contract_as_of(cid, at) for cid in ids}
        return {ContractId(k): c for k, c in found.items() if c is not None}

    def exclusions(self) -> tuple[Exclusion, ...]:
        rows = self.conn.execute(
            sa.select(t.exclusions.c.body).order_by(t.exclusions.c.position, t.exclusions.c.id)
        )
        return tuple(exclusion_from_dict(json.loads(r.body)) for r in rows)

    def cached_fleet(self, key: str) -> str | None:
        return self.conn.execute(sa.select(t.fleet_cache.c.body).where(t.fleet_cache.c.key == key)).scalar()

    def cache_fleet(self, key: str, body: str, at: Micros, keep: int = 4) -> None:
        """Remember a validated fleet; only the newest few are kept."""
        fc = t.fleet_cache
        self.conn.execute(self._insert(fc).values(key=key, body=body, created_at=at).on_conflict_do_nothing())
        old = self.conn.execute(
            sa.select(fc.c.key).order_by(fc.c.created_at.desc(), fc.c.key).offset(keep)
        ).scalars()
        stale = list(old)
        if stale:
            self.conn.execute(fc.delete().where(fc.c.key.in_(stale)))

    # --- raw results ------------------------------------------------------------------------

    def merge_results(self, cols: ResultColumns) -> MergeReport:
        """Add results to their hourly blocks. Identical repeats are skipped; a result that
        disagrees with a stored one raises ResultConflict, one older than retention ResultsLetGo.
        Every part of a touched hour is merged into its part 0."""
        cols, repeated = blk.sort_and_dedupe(cols)
        if len(cols) == 0:
            return MergeReport(0, repeated, {})
        starts = np.concatenate(([0], np.flatnonzero(cols.device[1:] != cols.device[:-1]) + 1))
        earliest = dict(
            zip(cols.device[starts].tolist(), np.minimum.reduceat(cols.time, starts).tolist(), strict=True)
        )
        self._check_retention(cols, earliest)
        groups = list(blk.block_groups(cols))
        existing = self._existing_blocks([(dev, kind, hour) for dev, kind, hour, _, _ in groups])
        rows: list[dict[str, Any]] = []
        split: list[tuple[int, int, int]] = []  # hours stored in several parts, merged now
        added = 0
        gained: set[int] = set()
        for dev, kind, hour, a, b in groups:
            new = blk.encode(cols, hour, a, b)
            parts = existing.get((dev, kind, hour))
            if parts is None:
                records, n_new = new, b - a
            else:
                lines = None if cols.line is None else cols.line[a:b]
                try:
                    records, n_new = blk.merge(blk.join_parts(parts), new, lines)
                except ResultConflict as exc:
                    raise ResultConflict(dev, kind, hour * HOUR + exc.time, exc.line, None) from None
                repeated += (b - a) - n_new
                if n_new == 0 and len(parts) == 1:
                    continue
                if len(parts) > 1:
                    split.append((dev, kind, hour))
            if n_new:
                added += n_new
                gained.add(dev)
            rows.append(_block_row(dev, kind, hour, 0, records))
        self._write_blocks(rows, split)
        return MergeReport(added, repeated, {d: t for d, t in earliest.items() if d in gained})

    def _write_blocks(self, rows: list[dict[str, Any]], split: list[tuple[int, int, int]]) -> None:
        """Upsert merged blocks (part 0) and drop the parts they were merged from."""
        rb = t.result_blocks
        for part in _chunks(split, _CHUNK // 3):
            self.conn.execute(
                rb.delete().where(sa.tuple_(rb.c.device, rb.c.kind, rb.c.hour).in_(part), rb.c.part > 0)
            )
        if rows:
            stmt = self._insert(rb)
            stmt = stmt.on_conflict_do_update(
                index_elements=["device", "kind", "hour", "part"],
                set_={
                    c: stmt.excluded[c]
                    for c in ("n", "n_ok", "rtt_n", "rtt_sum_us", "rtt_min_us", "rtt_max_us", "data")
                },
            )
            self.conn.execute(stmt, rows)

    def append_results(self, cols: ResultColumns, part: int) -> None:
        """Store live results as new parts of their hours, without reading what is stored: a round
        of 100,000 devices adds 100,000 small rows rather than rewriting 100,000 hourly blocks.
        `part` (> 0) must be new for these hours: the monitor uses its flush time in seconds."""
        cols, _ = blk.sort_and_dedupe(cols)
        rows = [
            _block_row(dev, kind, hour, part, blk.encode(cols, hour, a, b))
            for dev, kind, hour, a, b in blk.block_groups(cols)
        ]
        if rows:
            self.conn.execute(self._insert(t.result_blocks).on_conflict_do_nothing(), rows)

    def compact(self, before: Micros) -> int:
        """Merge the live parts of every hour that ended before `before` into part 0; returns how
        many hours were merged."""
        rb = t.result_blocks
        keys = [
            tuple(r)
            for r in self.conn.execute(
                sa.select(rb.c.device, rb.c.kind, rb.c.hour)
                .where(rb.c.part > 0, rb.c.hour < before // HOUR)
                .group_by(rb.c.device, rb.c.kind, rb.c.hour)
            )
        ]
        merged = 0
        for chunk in _chunks(keys, 3000):
            existing = self._existing_blocks(list(chunk))
            rows = [_block_row(d, k, h, 0, blk.join_parts(parts)) for (d, k, h), parts in existing.items()]
            self._write_blocks(rows, list(existing))
            merged += len(rows)
        return merged

    def _check_retention(self, cols: ResultColumns, earliest: Mapping[int, Micros]) -> None:
        tl = t.timelines
        for part in _chunks(sorted(earliest)):
            rows = self.conn.execute(
                sa.select(tl.c.device, tl.c.kept_from).where(
                    tl.c.device.in_(part), tl.c.kept_from.is_not(None)
                )
            )
            for r in rows:
                if earliest[r.device] < r.kept_from:
                    i = int(np.flatnonzero((cols.device == r.device) & (cols.time < r.kept_from))[0])
                    line = None if cols.line is None else int(cols.line[i])
                    raise ResultsLetGo(r.device, r.kept_from, int(cols.time[i]), line)

    def _existing_blocks(self, keys: list[tuple[int, int, int]]) -> dict[tuple[int, int, int], list[bytes]]:
        """The stored parts of these (device, kind, hour) keys: per chunk of devices, over the
        keys' hours (the primary key leads with the device)."""
        if not keys:
            return {}
        rb = t.result_blocks
        wanted = set(keys)
        hours = [h for _, _, h in keys]
        lo, hi = min(hours), max(hours)
        found: dict[tuple[int, int, int], list[bytes]] = {}
        for part in _chunks(sorted({d for d, _, _ in keys})):
            rows = self.conn.execute(
                sa.select(rb.c.device, rb.c.kind, rb.c.hour, rb.c.data)
                .where(rb.c.device.in_(part), rb.c.hour.between(lo, hi), rb.c.data.is_not(None))
                .order_by(rb.c.device, rb.c.kind, rb.c.hour, rb.c.part)
            )
            for r in rows:
                key = (r.device, r.kind, r.hour)
                if key in wanted:
                    found.setdefault(key, []).append(r.data)
        return found

    def device_results(self, key: int) -> DeviceResults:
        """All retained results of one device."""
        return next((r for _, r in self.results_of([key])), _NO_RESULTS)

    def results_of(
        self, keys: Iterable[int], since: Micros | None = None
    ) -> Iterator[tuple[int, DeviceResults]]:
        """(key, results) for each of these devices that has retained results (from the hour of
        `since` on, when given), streamed device by device so memory holds one device at a time."""
        rb = t.result_blocks
        lower = [] if since is None else [rb.c.hour >= since // HOUR]
        for part in _chunks(sorted(set(keys))):
            rows = self.conn.execute(
                sa.select(rb.c.device, rb.c.kind, rb.c.hour, rb.c.data)
                .where(rb.c.device.in_(part), rb.c.data.is_not(None), *lower)
                .order_by(rb.c.device, rb.c.kind, rb.c.hour, rb.c.part)
                .execution_options(yield_per=1024)
            )
            try:
                for device, group in itertools.groupby(rows, key=lambda r: r.device):
                    yield device, _decode_results(group)
            finally:
                rows.close()

    def iter_results(
        self, start: Micros, end: Micros, keys: Sequence[int] | None = None
    ) -> Iterator[tuple[int, int, int, blk.Records]]:
        """(device key, kind, hour, records) per stored block in [start, end), by device then hour."""
        rb = t.result_blocks
        where = [rb.c.hour >= start // HOUR, rb.c.hour <= (end - 1) // HOUR, rb.c.data.is_not(None)]
        if keys is not None:
            where.append(rb.c.device.in_(list(keys)))
        rows = self.conn.execute(
            sa.select(rb.c.device, rb.c.kind, rb.c.hour, rb.c.data)
            .where(*where)
            .order_by(rb.c.device, rb.c.hour, rb.c.kind)
            .execution_options(yield_per=2000)
        )
        try:
            for r in rows:
                yield r.device, r.kind, r.hour, blk.decode(r.data)
        finally:
            rows.close()

    def rollups(self, key: int, start: Micros, end: Micros) -> list[dict[str, Any]]:
        """Hourly probe counts, successes and RTT of a device, whatever parts they are stored in."""
        rb = t.result_blocks
        rows = self.conn.execute(
            sa.select(
                rb.c.kind,
                rb.c.hour,
                sa.func.sum(rb.c.n).label("n"),
                sa.func.sum(rb.c.n_ok).label("n_ok"),
                sa.func.sum(rb.c.rtt_n).label("rtt_n"),
                sa.func.sum(rb.c.rtt_sum_us).label("rtt_sum_us"),
                sa.func.min(rb.c.rtt_min_us).label("rtt_min_us"),
                sa.func.max(rb.c.rtt_max_us).label("rtt_max_us"),
                sa.func.max(sa.case((rb.c.data.is_(None), 1), else_=0)).label("let_go"),
            )
            .where(rb.c.device == key, rb.c.hour >= start // HOUR, rb.c.hour < -(-end // HOUR))
            .group_by(rb.c.hour, rb.c.kind)
            .order_by(rb.c.hour, rb.c.kind)
        )
        return [
            {
                **r._mapping,
                "n": int(r.n),
                "n_ok": int(r.n_ok),
                "rtt_n": int(r.rtt_n),
                "rtt_sum_us": int(r.rtt_sum_us),
                "let_go": bool(r.let_go),
            }
            for r in rows
        ]

    def let_go_results(self, key: int, reach_before_hour: int, video_until: Micros) -> int:
        """Drop raw bytes (keep rollups): reachability blocks before an hour, video blocks that end by
        `video_until`. Returns how many blocks were let go."""
        rb = t.result_blocks
        done = self.conn.execute(
            rb.update()
            .where(
                rb.c.device == key,
                rb.c.data.is_not(None),
                sa.or_(
                    sa.and_(rb.c.kind.in_(blk.REACH_CODES), rb.c.hour < reach_before_hour),
                    sa.and_(
                        rb.c.kind == blk.KIND_CODES[ProbeKind.VIDEO], (rb.c.hour + 1) * HOUR <= video_until
                    ),
                ),
            )
            .values(data=None)
        )
        return int(done.rowcount or 0)

    def result_devices(self) -> list[int]:
        return list(self.conn.execute(sa.select(t.result_blocks.c.device).distinct()).scalars())

    # --- timelines ----------------------------------------------------------------------------

    def timeline_params(self) -> dict[int, str]:
        """The engine settings each stored timeline was built with, by device key."""
        return {
            r.device: r.params
            for r in self.conn.execute(sa.select(t.timelines.c.device, t.timelines.c.params))
        }

    def timeline_meta(self, key: int) -> TimelineMeta | None:
        return self.timeline_metas([key]).get(key)

    def timeline_metas(self, keys: Iterable[int]) -> dict[int, TimelineMeta]:
        found: dict[int, TimelineMeta] = {}
        for part in _chunks(sorted(set(keys))):
            for r in self.conn.execute(sa.select(t.timelines).where(t.timelines.c.device.in_(part))):
                carry = None if r.carry is None else Carry(**json.loads(r.carry))
                found[r.device] = TimelineMeta(r.params, r.kept_from, carry, r.firm_until)
        return found

    def replace_timelines(self, writes: Sequence[TimelineWrite], at: Micros) -> None:
        """Store recomputed timelines: those without a carry replace everything in bulk; those with
        one keep what is stored before it (see replace_timeline)."""
        plain = [w for w in writes if w.carry is None]
        for w in writes:
            if w.carry is not None:
                self.replace_timeline(
                    w.key, w.timeline, params=w.params, at=at, carry=w.carry, kept_from=w.kept_from
                )
        if not plain:
            return
        tr, ou = t.transitions, t.outages
        for part in _chunks([w.key for w in plain]):
            self.conn.execute(tr.delete().where(tr.c.device.in_(part)))
            self.conn.execute(ou.delete().where(ou.c.device.in_(part)))
        transitions = [
            {"device": w.key, "at": x.at, "state": x.state.value}
            for w in plain
            for x in w.timeline.transitions
        ]
        if transitions:
            self.conn.execute(tr.insert(), transitions)
        outages = [_outage_row(w.key, o) for w in plain for o in w.timeline.outages]
        if outages:
            self.conn.execute(ou.insert(), outages)
        metas = [
            {
                "device": w.key,
                "params": w.params,
                "firm_until": w.timeline.firm_until,
                "updated_at": at,
                "carry": None,
                "kept_from": w.kept_from,
            }
            for w in plain
        ]
        stmt = self._insert(t.timelines)
        self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["device"],
                set_={
                    c: stmt.excluded[c] for c in ("params", "firm_until", "updated_at", "carry", "kept_from")
                },
            ),
            metas,
        )

    def replace_timeline(
        self,
        key: int,
        tl: Timeline,
        *,
        params: str,
        at: Micros,
        carry: Carry | None = None,
        kept_from: Micros | None = None,
    ) -> None:
        """Store a device's recomputed timeline and its retention state. Without `carry` it replaces
        everything; with it, what is stored before `carry.reach_last` stays (see write_tail)."""
        if carry is None:
            self._replace_all(key, tl)
        else:
            self._merge_tail(key, tl, carry.reach_last)
        meta = {
            "params": params,
            "firm_until": tl.firm_until,
            "updated_at": at,
            "carry": None if carry is None else _carry_json(carry),
            "kept_from": kept_from,
        }
        stmt = self._insert(t.timelines).values(device=key, **meta)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["device"], set_=meta))

    def write_tail(self, key: int, tail: Timeline, since: Micros | None, *, params: str, at: Micros) -> None:
        """Store the live tail of a device's timeline, from `since` (the carry it was built on) on;
        the retention state is left alone."""
        if since is None:
            self._replace_all(key, tail)
        else:
            self._merge_tail(key, tail, since)
        meta = {"params": params, "firm_until": tail.firm_until, "updated_at": at}
        stmt = self._insert(t.timelines).values(device=key, **meta)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["device"], set_=meta))

    def write_tails(self, writes: Sequence[tuple[int, Timeline, Micros | None, str]], *, at: Micros) -> None:
        """write_tail for many devices, (key, tail, since, params) each. Tails with no `since` (a
        device's first, or a rebuilt one) replace everything in bulk: a round where thousands of
        devices change at once (a start on a new database, a district's power cut) stays short."""
        if len({w[0] for w in writes}) < len(writes):  # a device twice: in order, one at a time
            for key, tail, since, params in writes:
                self.write_tail(key, tail, since, params=params, at=at)
            return
        whole = [(key, tail, params) for key, tail, since, params in writes if since is None]
        for key, tail, since, params in writes:
            if since is not None:
                self.write_tail(key, tail, since, params=params, at=at)
        if not whole:
            return
        tr, ou = t.transitions, t.outages
        for part in _chunks([key for key, _, _ in whole]):
            self.conn.execute(tr.delete().where(tr.c.device.in_(part)))
            self.conn.execute(ou.delete().where(ou.c.device.in_(part)))
        transitions = [
            {"device": key, "at": x.at, "state": x.state.value}
            for key, tail, _ in whole
            for x in tail.transitions
        ]
        if transitions:
            self.conn.execute(tr.insert(), transitions)
        outages = [_outage_row(key, o) for key, tail, _ in whole for o in tail.outages]
        if outages:
            self.conn.execute(ou.insert(), outages)
        stmt = self._insert(t.timelines)
        self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["device"],
                set_={c: stmt.excluded[c] for c in ("params", "firm_until", "updated_at")},
            ),
            [
                {"device": key, "params": params, "firm_until": tail.firm_until, "updated_at": at}
                for key, tail, params in whole
            ],
        )

    def last_changes(self, keys: Iterable[int]) -> dict[int, tuple[Micros, DeviceState]]:
        """Each device's latest stored transition into a known state: when its current state began."""
        tr = t.transitions
        found: dict[int, tuple[Micros, DeviceState]] = {}
        for part in _chunks(sorted(set(keys))):
            latest = (
                sa.select(tr.c.device, sa.func.max(tr.c.at).label("at"))
                .where(tr.c.device.in_(part), tr.c.state != DeviceState.UNKNOWN.value)
                .group_by(tr.c.device)
                .subquery()
            )
            rows = self.conn.execute(
                sa.select(tr.c.device, tr.c.at, tr.c.state).join(
                    latest, sa.and_(tr.c.device == latest.c.device, tr.c.at == latest.c.at)
                )
            )
            found.update({r.device: (r.at, DeviceState(r.state)) for r in rows})
        return found

    def save_resumes(self, items: Sequence[tuple[int, Carry]]) -> None:
        """Where each device's engine resumes after a restart: its carry at a firm point."""
        if items:
            self.conn.execute(
                t.timelines.update()
                .where(t.timelines.c.device == sa.bindparam("key"))
                .values(resume=sa.bindparam("resume")),
                [{"key": k, "resume": _carry_json(c)} for k, c in items],
            )

    def resumes(self, keys: Iterable[int]) -> dict[int, Carry]:
        found: dict[int, Carry] = {}
        tl = t.timelines
        for part in _chunks(sorted(set(keys))):
            for r in self.conn.execute(
                sa.select(tl.c.device, tl.c.resume).where(tl.c.device.in_(part), tl.c.resume.is_not(None))
            ):
                found[r.device] = Carry(**json.loads(r.resume))
        return found

    def move_horizons(self, moves: Sequence[tuple[int, Micros, Micros | None]]) -> None:
        """(key, horizon, last failure) per device whose evidence went on without changing its state:
        its closing `unknown` moves to the new horizon, and so does the end of an open outage."""
        if not moves:
            return
        self.conn.execute(
            sa.text(
                "UPDATE transitions SET at = :horizon WHERE device = :key AND state = 'unknown' "
                "AND at = (SELECT max(at) FROM transitions WHERE device = :key)"
            ),
            [{"key": k, "horizon": h} for k, h, _ in moves],
        )
        self.conn.execute(
            sa.text(
                "UPDATE outages SET end_at = :horizon, last_failure = COALESCE(:last, last_failure) "
                "WHERE device = :key AND open"
            ),
            [{"key": k, "horizon": h, "last": lf} for k, h, lf in moves],
        )

    def _replace_all(self, key: int, tl: Timeline) -> None:
        tr, ou = t.transitions, t.outages
        self.conn.execute(tr.delete().where(tr.c.device == key))
        self.conn.execute(ou.delete().where(ou.c.device == key))
        self._insert_timeline(key, list(tl.transitions), list(tl.outages))

    def _merge_tail(self, key: int, tail: Timeline, since: Micros) -> None:
        """Keep what is stored before `since`, take the tail from there, and join the two.

        A stored `unknown` that is the last stored transition and lies before `since` was only where
        the evidence ran out then (later results moved it), so it goes; an `unknown` followed by
        other stored transitions is a real gap and stays. An outage stored as open, or running into
        `since`, is the same outage as the tail's first when that starts at `since` (the carry's
        result): it keeps its start and first failure."""
        tr, ou = t.transitions, t.outages
        transitions = list(tail.transitions)
        outages = list(tail.outages)
        last = self.conn.execute(
            sa.select(tr.c.at, tr.c.state)
            .where(tr.c.device == key, tr.c.at < since)
            .order_by(tr.c.at.desc())
            .limit(2)
        ).all()
        if last and last[0].state == DeviceState.UNKNOWN.value:
            later = self.conn.execute(
                sa.select(sa.func.count()).where(tr.c.device == key, tr.c.at > last[0].at)
            ).scalar()
            if later == 0:  # the very last stored transition: a provisional horizon
                self.conn.execute(tr.delete().where(tr.c.device == key, tr.c.at == last[0].at))
                last = last[1:]
        if transitions and last and last[0].state == transitions[0].state.value:
            transitions = transitions[1:]
        self.conn.execute(tr.delete().where(tr.c.device == key, tr.c.at >= since))
        joined = self.conn.execute(
            sa.select(ou)
            .where(ou.c.device == key, ou.c.start_at <= since, sa.or_(ou.c.open, ou.c.end_at >= since))
            .order_by(ou.c.start_at.desc())
            .limit(1)
        ).first()
        if joined is not None and outages and outages[0].start == since:
            first = outages[0]
            outages[0] = Outage(
                start=joined.start_at,
                end=first.end,
                open=first.open,
                end_reason=first.end_reason,
                first_failure=joined.first_failure
                if joined.first_failure is not None
                else first.first_failure,
                last_failure=first.last_failure if first.last_failure is not None else joined.last_failure,
                recovered=first.recovered,
            )
            self.conn.execute(ou.delete().where(ou.c.device == key, ou.c.start_at == joined.start_at))
        self.conn.execute(ou.delete().where(ou.c.device == key, ou.c.start_at >= since))
        self._insert_timeline(key, transitions, outages)

    def _insert_timeline(self, key: int, transitions: list[Transition], outages: list[Outage]) -> None:
        if transitions:
            self.conn.execute(
                t.transitions.insert(),
                [{"device": key, "at": x.at, "state": x.state.value} for x in transitions],
            )
        if outages:
            self.conn.execute(t.outages.insert(), [_outage_row(key, o) for o in outages])

    def set_retention(self, key: int, *, kept_from: Micros, carry: Carry, at: Micros) -> None:
        """Record that results before `kept_from` are gone and where the engine resumes."""
        self.conn.execute(
            t.timelines.update()
            .where(t.timelines.c.device == key)
            .values(kept_from=kept_from, updated_at=at, carry=_carry_json(carry))
        )

    def load_timelines(
        self, keys: Sequence[int], start: Micros, end: Micros, *, outages_from: Micros | None = None
    ) -> dict[int, Timeline]:
        """Transitions in [start, end) plus the one in force at `start`; outages that overlap
        [outages_from or start, end) or end inside it."""
        tr, ou = t.transitions, t.outages
        lo = start if outages_from is None else outages_from
        result: dict[int, tuple[list[Transition], list[Outage]]] = {k: ([], []) for k in keys}
        for part in _chunks(sorted(set(keys))):
            latest = (
                sa.select(tr.c.device, sa.func.max(tr.c.at).label("at"))
                .where(tr.c.device.in_(part), tr.c.at < start)
                .group_by(tr.c.device)
                .subquery()
            )
            lead = self.conn.execute(
                sa.select(tr.c.device, tr.c.at, tr.c.state).join(
                    latest, sa.and_(tr.c.device == latest.c.device, tr.c.at == latest.c.at)
                )
            )
            rows = self.conn.execute(
                sa.select(tr.c.device, tr.c.at, tr.c.state)
                .where(tr.c.device.in_(part), tr.c.at >= start, tr.c.at < end)
                .order_by(tr.c.device, tr.c.at)
            )
            for r in [*lead, *rows]:
                result[r.device][0].append(Transition(r.at, DeviceState(r.state)))
            orows = self.conn.execute(
                sa.select(ou)
                .where(ou.c.device.in_(part), ou.c.end_at >= lo, ou.c.start_at < end)
                .order_by(ou.c.device, ou.c.start_at)
            )
            for o in orows:
                result[o.device][1].append(
                    Outage(
                        start=o.start_at,
                        end=o.end_at,
                        open=o.open,
                        end_reason=OutageEnd(o.end_reason) if o.end_reason else None,
                        first_failure=o.first_failure,
                        last_failure=o.last_failure,
                        recovered=o.recovered,
                    )
                )
        return {
            k: Timeline(tuple(sorted(trs, key=lambda x: x.at)), tuple(ous))
            for k, (trs, ous) in result.items()
        }

    def earliest_outage_start(self, keys: Sequence[int], start: Micros, end: Micros) -> Micros | None:
        """The earliest start among outages of these devices that overlap or end in [start, end)."""
        ou = t.outages
        found: list[Micros] = []
        for part in _chunks(sorted(set(keys))):
            v = self.conn.execute(
                sa.select(sa.func.min(ou.c.start_at)).where(
                    ou.c.device.in_(part), ou.c.end_at >= start, ou.c.start_at < end
                )
            ).scalar()
            if v is not None:
                found.append(int(v))
        return min(found) if found else None

    # --- statements -------------------------------------------------------------------------

    def issued_statements(self, contract: str, month: str) -> list[IssuedStatement]:
        st = t.statements
        rows = self.conn.execute(
            sa.select(st).where(st.c.contract == contract, st.c.month == month).order_by(st.c.revision)
        )
        return [
            IssuedStatement(r.contract, r.month, r.revision, r.hash, r.replaces, r.issued_at, r.body)
            for r in rows
        ]

    def save_issued(self, s: IssuedStatement) -> None:
        self.conn.execute(
            t.statements.insert().values(
                contract=s.contract,
                month=s.month,
                revision=s.revision,
                status="issued",
                hash=s.hash,
                replaces=s.replaces,
                issued_at=s.issued_at,
                body=s.body,
            )
        )
