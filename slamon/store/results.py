"""Raw probe results in hourly blocks (see blocks.py): merged on import, appended as parts by live
rounds, compacted hourly, let go by retention (the hourly rollups stay).

Every block is written with the SHA-256 of its bytes (kept when retention lets the bytes go), and
every read of a block's bytes checks it: a block edited in the database is an error naming it
(digests.Tampered), never evidence. `evidence` digests a month's blocks for a statement's inputs.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from slamon.model import HOUR, DeviceId, Micros, ProbeKind, from_micros
from slamon.store import blocks as blk
from slamon.store import schema as t
from slamon.store.blocks import ResultColumns, ResultConflict
from slamon.store.digests import Tampered, sha256_hex
from slamon.store.sql import CHUNK, Part, chunks


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


def _decode_results(rows: Iterable[Any], checked: Callable[[Any], bytes]) -> DeviceResults:
    """One device's blocks, ordered by kind then hour, as the engine's sorted columns."""
    times: dict[int, list[blk.I64]] = {0: [], 1: [], 2: []}
    oks: dict[int, list[blk.U8]] = {0: [], 1: [], 2: []}
    for r in rows:
        rec = blk.decode(checked(r))
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


def block_name(device: str, kind: int, hour: int, part: int) -> str:
    """How a message names one stored block: device, probe kind, hour (UTC) and part."""
    when = from_micros(hour * HOUR).isoformat()
    return f"raw {blk.KINDS_BY_CODE[kind].value} results of {device}, hour from {when} (block part {part})"


def _block_row(device: int, kind: int, hour: int, part: int, records: blk.Records) -> dict[str, Any]:
    n, n_ok, rtt_n, rtt_sum, rtt_min, rtt_max = blk.rollup(records)
    data = records.tobytes()
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
        "n_low_res": blk.low_resolution(records),
        "rtt_max_us": rtt_max,
        "data": data,
        "sha256": sha256_hex(data),
    }


_APPEND = (
    "INSERT INTO result_blocks (device, kind, hour, part, n, n_ok, rtt_n, rtt_sum_us, rtt_min_us, rtt_max_us, "
    "data, sha256) VALUES ({}) ON CONFLICT DO NOTHING"
)
_APPEND_SQLITE = _APPEND.format(", ".join(["?"] * 12))
_APPEND_POSTGRES = _APPEND.format(", ".join(["%s"] * 12))


class Results(Part):
    writable = True  # False in a read-only transaction: evidence() then remembers nothing

    def merge(self, cols: ResultColumns) -> MergeReport:
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
        if rows:
            self._forget_evidence(min(g[2] for g in groups), max(g[2] for g in groups))
        return MergeReport(added, repeated, {d: t for d, t in earliest.items() if d in gained})

    def _write_blocks(self, rows: list[dict[str, Any]], split: list[tuple[int, int, int]]) -> None:
        """Upsert merged blocks (part 0) and drop the parts they were merged from."""
        rb = t.result_blocks
        for part in chunks(split, CHUNK // 3):
            self.conn.execute(
                rb.delete().where(sa.tuple_(rb.c.device, rb.c.kind, rb.c.hour).in_(part), rb.c.part > 0)
            )
        if rows:
            stmt = self._insert(rb)
            stmt = stmt.on_conflict_do_update(
                index_elements=["device", "kind", "hour", "part"],
                set_={
                    c: stmt.excluded[c]
                    for c in (
                        "n",
                        "n_ok",
                        "rtt_n",
                        "rtt_sum_us",
                        "rtt_min_us",
                        "rtt_max_us",
                        "data",
                        "sha256",
                    )
                },
            )
            self.conn.execute(stmt, rows)

    def append(self, cols: ResultColumns, part: int) -> None:
        """Store live results as new parts of their hours, without reading what is stored: a round
        of 100,000 devices adds 100,000 small rows rather than rewriting 100,000 hourly blocks.
        `part` (> 0) must be new for these hours: the monitor uses its flush time in seconds. The
        rows go straight to the driver's executemany (SQLAlchemy's per-row work would double it)."""
        cols, _ = blk.sort_and_dedupe(cols)
        rows = blk.block_rows(cols, part)
        if rows:
            sql = _APPEND_SQLITE if self.conn.dialect.name == "sqlite" else _APPEND_POSTGRES
            self.conn.exec_driver_sql(sql, rows)
            self._forget_evidence(int(cols.time.min()) // HOUR, int(cols.time.max()) // HOUR)

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
        for chunk in chunks(keys, 3000):
            existing = self._existing_blocks(list(chunk))
            rows = [_block_row(d, k, h, 0, blk.join_parts(parts)) for (d, k, h), parts in existing.items()]
            self._write_blocks(rows, list(existing))
            merged += len(rows)
        return merged

    def _check_retention(self, cols: ResultColumns, earliest: Mapping[int, Micros]) -> None:
        tl = t.timelines
        for part in chunks(sorted(earliest)):
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
        for part in chunks(sorted({d for d, _, _ in keys})):
            rows = self.conn.execute(
                sa.select(rb.c.device, rb.c.kind, rb.c.hour, rb.c.part, rb.c.data, rb.c.sha256)
                .where(rb.c.device.in_(part), rb.c.hour.between(lo, hi), rb.c.data.is_not(None))
                .order_by(rb.c.device, rb.c.kind, rb.c.hour, rb.c.part)
            )
            for r in rows:
                key = (r.device, r.kind, r.hour)
                if key in wanted:
                    found.setdefault(key, []).append(self._checked(r))
        return found

    def _checked(self, r: Any) -> bytes:
        """A block's bytes (a row with device, kind, hour, part, data, sha256), after checking them
        against their digest."""
        data = bytes(r.data)
        if r.sha256 is None or hashlib.sha256(data).hexdigest() != r.sha256:
            raise self._tampered(r.device, r.kind, r.hour, r.part, r.sha256, data)
        return data

    def _tampered(
        self, device: int, kind: int, hour: int, part: int, stored: str | None, data: bytes
    ) -> Tampered:
        ids = self.conn.execute(
            sa.select(t.device_keys.c.device).where(t.device_keys.c.key == device)
        ).scalar()
        return Tampered(block_name(ids or f"device key {device}", kind, hour, part), stored, sha256_hex(data))

    def video_tally(
        self, keys: Iterable[int], start: Micros, end: Micros
    ) -> dict[int, tuple[int, int | None]]:
        """Per device key: its video samples in the hours [start, end) touches, and how many of them
        were below the resolution minimum (None when a block from before that was counted lacks
        it). From the blocks' rollups: they outlive the raw results."""
        rb = t.result_blocks
        wanted = sorted(set(keys))
        if end <= start or not wanted:
            return {}
        out: dict[int, tuple[int, int | None]] = {}
        for part in chunks(wanted):
            rows = self.conn.execute(
                sa.select(
                    rb.c.device,
                    sa.func.sum(rb.c.n),
                    sa.func.sum(rb.c.n_low_res),
                    sa.func.count(rb.c.n_low_res),
                    sa.func.count(),
                )
                .where(
                    rb.c.device.in_(part),
                    rb.c.kind == blk.KIND_CODES[ProbeKind.VIDEO],
                    rb.c.hour >= start // HOUR,
                    rb.c.hour <= (end - 1) // HOUR,
                )
                .group_by(rb.c.device)
            )
            for device, n, low, counted, blocks in rows:
                out[int(device)] = (int(n), int(low or 0) if counted == blocks else None)
        return out

    def evidence(
        self, keys: Mapping[DeviceId, int], start: Micros, end: Micros, *, check: bool = False
    ) -> str | None:
        """The evidence digest of these devices (id → key) over the hours that [start, end) touches,
        or None when they hold no block there (docs/sla.md, "The hash").

        Each hour of a device and probe kind counts as one block: the digest of its only part, or of
        its parts joined as compaction will join them, so the digest does not depend on how the hour
        was written (live parts, an import, compaction), and a block whose bytes retention let go
        keeps its digest. Per device, SHA-256 over `kind hour digest` lines (the hour in hours since
        1970 UTC: six digits from 1981 to 2084, so within a month the lines sort by kind, then hour);
        then SHA-256 over `device digest` lines by device id. Without `check` the database assembles
        each device's lines from its indexes and only an hour stored in several parts is read; with
        `check`, every part's bytes are read and checked against their digest (Tampered names the
        first that does not match).

        Each device's digest is remembered for these hours (`evidence_digests`), until a block is
        written into them: without `check` a remembered one is read instead of its blocks. With
        `check` none is read, and what the bytes give is remembered (in a write transaction;
        a read-only one remembers nothing)."""
        if end <= start or not keys:
            return None
        ids = {k: d for d, k in keys.items()}
        lo, hi = start // HOUR, (end - 1) // HOUR
        per_device: dict[DeviceId, str] = {}
        remembered = {} if check else self._remembered_evidence(sorted(ids), lo, hi)
        for key, digest in remembered.items():
            per_device[ids[key]] = digest
        if check:
            for key, digest in self._checked_evidence(sorted(ids), lo, hi):
                per_device[ids[key]] = digest
        else:
            todo = sorted(set(ids) - set(remembered))
            live = self._live_hours(todo, lo, hi)
            seen: set[int] = set()
            # the merged blocks' lines stream by chunk of devices (a month of 10,000: 600 MB of text)
            for key, text in self._evidence_lines(todo, lo, hi):
                seen.add(key)
                per_device[ids[key]] = self._device_digest(key, text.split("\n"), live.get(key, {}))
            for key in sorted(set(live) - seen):  # every block of these hours still in live parts
                per_device[ids[key]] = self._device_digest(key, [], live[key])
        if not per_device:
            return None
        keys_of = {d: k for k, d in ids.items()}
        self._remember_evidence(
            [(keys_of[d], digest) for d, digest in per_device.items() if keys_of[d] not in remembered], lo, hi
        )
        text = "".join(f"{d} {per_device[d]}\n" for d in sorted(per_device))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    def _remembered_evidence(self, keys: Sequence[int], lo: int, hi: int) -> dict[int, str]:
        ed = t.evidence_digests
        found: dict[int, str] = {}
        for part in chunks(keys):
            rows = self.conn.execute(
                sa.select(ed.c.device, ed.c.digest).where(ed.c.device.in_(part), ed.c.lo == lo, ed.c.hi == hi)
            )
            found.update((int(r.device), str(r.digest)) for r in rows)
        return found

    def _remember_evidence(self, digests: Sequence[tuple[int, str]], lo: int, hi: int) -> None:
        if not digests or not self.writable:
            return
        ed = t.evidence_digests
        stmt = self._insert(ed)
        stmt = stmt.on_conflict_do_update(
            index_elements=["device", "lo", "hi"], set_={"digest": stmt.excluded.digest}
        )
        for part in chunks(digests, 5000):
            self.conn.execute(stmt, [{"device": k, "lo": lo, "hi": hi, "digest": d} for k, d in part])

    def _forget_evidence(self, first_hour: int | None, last_hour: int, *, device: int | None = None) -> None:
        """Blocks were written into hours [first_hour, last_hour] (None: from the first): every
        remembered digest over those hours goes (of one device, or of all)."""
        ed = t.evidence_digests
        where = [ed.c.lo <= last_hour]
        if first_hour is not None:
            where.append(ed.c.hi >= first_hour)
        if device is not None:
            where.append(ed.c.device == device)
        self.conn.execute(ed.delete().where(*where))

    def _device_digest(
        self,
        key: int,
        lines: list[str],
        live: Mapping[tuple[int, int], Sequence[tuple[int, str | None, bool]]],
    ) -> str:
        """SHA-256 of a device's lines: those of its merged blocks, each hour that holds live parts
        counted once as its parts joined."""
        for (kind, hour), parts in live.items():
            name = blk.KINDS_BY_CODE[kind].value
            zero = [sha for number, sha, _ in parts if number == 0]
            if zero:
                lines.remove(f"{name} {hour} {zero[0] or '-'}")
            lines.append(f"{name} {hour} {self._hour_digest(key, kind, hour, parts)}")
        lines.sort()
        return hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()

    def _live_hours(
        self, keys: Sequence[int], lo: int, hi: int
    ) -> dict[int, dict[tuple[int, int], list[tuple[int, str | None, bool]]]]:
        """The hours in [lo, hi] of these devices that hold live parts (numbered > 0, not yet
        compacted), each with all its parts: (number, sha256, bytes kept). From the small index
        of live parts (migration 0011), then the parts by primary key."""
        mark = "?" if self.conn.dialect.name == "sqlite" else "%s"
        hours: list[tuple[int, int, int]] = []
        cursor = self.conn.connection.cursor()
        try:
            for part in chunks(keys):
                cursor.execute(
                    "SELECT DISTINCT device, kind, hour FROM result_blocks "  # noqa: S608
                    f"WHERE part > 0 AND device IN ({', '.join([mark] * len(part))}) "
                    f"AND hour >= {mark} AND hour <= {mark}",
                    (*part, lo, hi),
                )
                hours += [(int(d), int(k), int(h)) for d, k, h in cursor.fetchall()]
        finally:
            cursor.close()
        found: dict[int, dict[tuple[int, int], list[tuple[int, str | None, bool]]]] = {}
        rb = t.result_blocks
        for some in chunks(sorted(hours), CHUNK // 3):
            rows = self.conn.execute(
                sa.select(rb.c.device, rb.c.kind, rb.c.hour, rb.c.part, rb.c.sha256, rb.c.data.is_not(None))
                .where(sa.tuple_(rb.c.device, rb.c.kind, rb.c.hour).in_(some))
                .order_by(rb.c.device, rb.c.kind, rb.c.hour, rb.c.part)
            )
            for device, kind, hour, number, sha, kept in rows:
                found.setdefault(int(device), {}).setdefault((int(kind), int(hour)), []).append(
                    (int(number), sha, bool(kept))
                )
        return found

    def _hour_digest(
        self,
        device: int,
        kind: int,
        hour: int,
        parts: Sequence[tuple[int, str | None, bool]],
        blobs: Sequence[bytes] | None = None,
    ) -> str:
        """An hour's digest as one block: its only part's, its parts' joined as compaction joins
        them, or (some parts' bytes let go before they were joined) their digests in order.
        `parts`: (number, sha256, bytes kept); `blobs`: their bytes when read already."""
        if len(parts) == 1:
            return parts[0][1] or "-"
        if all(kept for _, _, kept in parts):
            joined = (
                blobs
                if blobs is not None
                else self._existing_blocks([(device, kind, hour)])[(device, kind, hour)]
            )
            return hashlib.sha256(blk.join_parts(list(joined)).tobytes()).hexdigest()
        return "+".join(sha or "-" for _, sha, _ in parts)

    def _evidence_lines(self, keys: Sequence[int], lo: int, hi: int) -> Iterator[tuple[int, str]]:
        """(device key, the `kind hour digest` lines of its merged blocks (part 0) joined by
        newlines, in no promised order) for each of these devices with such blocks in hours [lo, hi],
        put together by the database from the digests' index (migration 0011), without reading the
        blocks."""
        sqlite = self.conn.dialect.name == "sqlite"
        mark = "?" if sqlite else "%s"
        kind = "CASE kind " + " ".join(f"WHEN {c} THEN '{k.value}'" for c, k in blk.KINDS_BY_CODE.items())
        line = f"{kind} END || ' ' || hour || ' ' || coalesce(sha256, '-')"
        joined = f"group_concat({line}, char(10))" if sqlite else f"string_agg({line}, E'\\n')"
        cursor = self.conn.connection.cursor()
        try:
            for part in chunks(keys):
                cursor.execute(
                    f"SELECT device, {joined} FROM result_blocks "  # noqa: S608
                    f"WHERE part = 0 AND device IN ({', '.join([mark] * len(part))}) "
                    f"AND hour >= {mark} AND hour <= {mark} "
                    "GROUP BY device",
                    (*part, lo, hi),
                )
                yield from cursor.fetchall()
        finally:
            cursor.close()

    def _checked_evidence(self, keys: Sequence[int], lo: int, hi: int) -> Iterator[tuple[int, str]]:
        """(device key, digest of its lines) for each of these devices with blocks in hours [lo, hi],
        from every part's bytes, each checked against its digest (Tampered names the first that
        does not match)."""
        mark = "?" if self.conn.dialect.name == "sqlite" else "%s"
        sha = hashlib.sha256
        cursor = self.conn.connection.cursor()
        try:
            for part in chunks(keys, 16):  # a month's bytes of 16 devices at a time
                cursor.execute(
                    "SELECT device, kind, hour, part, sha256, data FROM result_blocks "  # noqa: S608
                    f"WHERE device IN ({', '.join([mark] * len(part))}) AND hour >= {mark} AND hour <= {mark} "
                    "ORDER BY device, kind, hour, part",
                    (*part, lo, hi),
                )
                rows = cursor.fetchall()
                for device, blocks in itertools.groupby(rows, key=lambda r: r[0]):
                    lines = []
                    for (kind, hour), group in itertools.groupby(blocks, key=lambda r: (r[1], r[2])):
                        parts = list(group)
                        for _, _, _, number, digest, blob in parts:
                            if blob is not None and (
                                digest is None or sha(bytes(blob)).hexdigest() != digest
                            ):
                                raise self._tampered(device, kind, hour, number, digest, bytes(blob))
                        blobs = [bytes(p[5]) for p in parts if p[5] is not None]
                        digest = self._hour_digest(
                            device, kind, hour, [(p[3], p[4], p[5] is not None) for p in parts], blobs
                        )
                        lines.append(f"{blk.KINDS_BY_CODE[kind].value} {hour} {digest}\n")
                    yield device, sha("".join(lines).encode()).hexdigest()
        finally:
            cursor.close()

    def of_device(self, key: int) -> DeviceResults:
        """All retained results of one device."""
        return next((r for _, r in self.of_devices([key])), _NO_RESULTS)

    def of_devices(
        self, keys: Iterable[int], since: Micros | None = None, parts_from: int | None = None
    ) -> Iterator[tuple[int, DeviceResults]]:
        """(key, results) for each of these devices that has retained results (from the hour of
        `since` on, when given), streamed device by device so memory holds one device at a time.

        `parts_from` (seconds) leaves out the live parts written before it: a part is numbered by
        when it was written, so results after an instant are all in parts numbered from it on (or
        in merged blocks, part 0). A monitor resuming at its carry reads a few parts, not the hour."""
        rb = t.result_blocks
        lower = [] if since is None else [rb.c.hour >= since // HOUR]
        if parts_from is not None:
            lower.append(sa.or_(rb.c.part == 0, rb.c.part >= parts_from))
        for part in chunks(sorted(set(keys))):
            rows = self.conn.execute(
                sa.select(rb.c.device, rb.c.kind, rb.c.hour, rb.c.part, rb.c.data, rb.c.sha256)
                .where(rb.c.device.in_(part), rb.c.data.is_not(None), *lower)
                .order_by(rb.c.device, rb.c.kind, rb.c.hour, rb.c.part)
                .execution_options(yield_per=1024)
            )
            try:
                for device, group in itertools.groupby(rows, key=lambda r: r.device):
                    yield device, _decode_results(group, self._checked)
            finally:
                rows.close()

    def recent(self, keys: Iterable[int], since: Micros, parts_from: int) -> ResultColumns:
        """The results of these devices from the hour of `since` on, leaving out live parts written
        before `parts_from` (seconds; see of_devices), as columns sorted by device, time and kind:
        read and decoded for all devices at once, as a restart needs for a whole fleet."""
        devices: list[int] = []
        kinds: list[int] = []
        hours: list[int] = []
        data: list[bytes] = []
        mark = "?" if self.conn.dialect.name == "sqlite" else "%s"
        cursor = self.conn.connection.cursor()  # the driver's own rows: a fleet is 300,000 of them
        try:
            for part in chunks(sorted(set(keys))):
                cursor.execute(
                    "SELECT device, kind, hour, part, data, sha256 FROM result_blocks WHERE device IN "  # noqa: S608
                    f"({', '.join([mark] * len(part))}) AND hour >= {mark} AND (part = 0 OR part >= {mark}) "
                    "AND data IS NOT NULL",
                    (*part, since // HOUR, parts_from),
                )
                sha = hashlib.sha256
                for device, kind, hour, number, blob, digest in cursor.fetchall():
                    block = bytes(blob)
                    if digest is None or sha(block).hexdigest() != digest:
                        raise self._tampered(device, kind, hour, number, digest, block)
                    devices.append(device)
                    kinds.append(kind)
                    hours.append(hour)
                    data.append(block)
        finally:
            cursor.close()
        counts = np.fromiter((len(d) // blk.RECORD.itemsize for d in data), np.int64, len(data))
        records = blk.decode(b"".join(data))
        cols = ResultColumns(
            np.repeat(np.asarray(devices, np.int32), counts),
            np.repeat(np.asarray(kinds, np.uint8), counts),
            records["off"].astype(np.int64) + np.repeat(np.asarray(hours, np.int64) * HOUR, counts),
            records["ok"].copy(),
            records["defects"].copy(),
            records["rtt"].copy(),
        )
        return cols.take(np.lexsort((cols.kind, cols.time, cols.device)))

    def between(
        self, start: Micros, end: Micros, keys: Sequence[int] | None = None
    ) -> Iterator[tuple[int, int, int, blk.Records]]:
        """(device key, kind, hour, records) per stored block in [start, end), by device then hour."""
        rb = t.result_blocks
        where = [rb.c.hour >= start // HOUR, rb.c.hour <= (end - 1) // HOUR, rb.c.data.is_not(None)]
        if keys is not None:
            where.append(rb.c.device.in_(list(keys)))
        rows = self.conn.execute(
            sa.select(rb.c.device, rb.c.kind, rb.c.hour, rb.c.part, rb.c.data, rb.c.sha256)
            .where(*where)
            .order_by(rb.c.device, rb.c.hour, rb.c.kind)
            .execution_options(yield_per=2000)
        )
        try:
            for r in rows:
                yield r.device, r.kind, r.hour, blk.decode(self._checked(r))
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

    def let_go(self, key: int, reach_before_hour: int, video_until: Micros) -> int:
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
        let_go = int(done.rowcount or 0)
        if let_go:  # an hour still in several parts keeps their digests, not their join's: forget
            self._forget_evidence(None, max(reach_before_hour, video_until // HOUR), device=key)
        return let_go

    def devices(self) -> list[int]:
        return list(self.conn.execute(sa.select(t.result_blocks.c.device).distinct()).scalars())
