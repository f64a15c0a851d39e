"""Probe-history CSV: import (any size, any row order, idempotent) and export, as FORMATS.md.

    device,time,probe,ok,rtt_ms,defects
    YJ-C0001,2025-07-01T00:00:00+08:00,icmp,1,0.41,

An import is all-or-nothing per file: rows go into the store in one transaction with the timelines
they change, and any bad row rolls everything back with a message naming its line. Memory stays
flat: the file is read in blocks of a few megabytes, and timelines are rebuilt one device at a time.

Most files are plain (no quotes), so a block is split on bytes and each column is mapped through a
cache (a month of one-minute history has 44,640 distinct timestamps for millions of rows); a block
with quotes or blank lines goes through the csv module instead, which also finds the exact line
of any problem.

Evidence is refused, with its line, when it cannot be true: a result dated more than
`FUTURE_SKEW` after now (a wrong clock or time zone on the collector would otherwise make a
camera "down since 2031"), or before the term of its device's contract (no SLA applied then). A
file that is not UTF-8, holds a NUL byte, or is a corrupt or cut-short gzip is named with the
line where reading stopped.
"""

from __future__ import annotations

import csv
import gc
import gzip
import io
import time as timer
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from os import PathLike
from pathlib import Path
from typing import IO, Generic, TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from slamon.errors import HistoryError
from slamon.model import (
    DEFECT_BITS,
    HOUR,
    Defect,
    DeviceId,
    DeviceKind,
    Fleet,
    Micros,
    ProbeKind,
    from_micros,
    to_micros,
)
from slamon.store import ResultColumns, ResultConflict, ResultsLetGo, Store
from slamon.store.blocks import KIND_CODES, KINDS_BY_CODE, NO_RTT
from slamon.store.upkeep import rebuild_timelines, sync_fleet
from slamon.units import format_duration

COLUMNS = ("device", "time", "probe", "ok", "rtt_ms", "defects")
REQUIRED = ("device", "time", "probe", "ok")
BLOCK_BYTES = 8 << 20
MERGE_ROWS = 1_000_000  # rows gathered before they go into the store: an hour's block is written ~once
VIDEO = KIND_CODES[ProbeKind.VIDEO]
FUTURE_SKEW = timedelta(minutes=5)
"""How far after now a result may be dated: collectors' clocks drift a little, never by hours."""
NOT_UTF8 = "not UTF-8 text (save the file as UTF-8)"

K = TypeVar("K")
V = TypeVar("V")


class _Bad(ValueError):
    """A cell that cannot be read; the caller adds file, line and column."""


class _Cache(dict[K, V], Generic[K, V]):
    """A dict that parses what it has not seen yet; bad values raise _Bad."""

    def __init__(self, parse: Callable[[K], V]) -> None:
        super().__init__()
        self._parse = parse

    def __missing__(self, key: K) -> V:
        value = self._parse(key)
        self[key] = value
        return value


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Bad("is not UTF-8 text") from exc


def parse_time(raw: bytes) -> Micros:
    text = _text(raw).strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _Bad(f"{text!r} is not an ISO-8601 instant such as 2025-07-01T00:00:00+08:00") from None
    if value.tzinfo is None:
        raise _Bad(f"{text!r} has no UTC offset (write it as 2025-07-01T00:00:00+08:00)")
    return to_micros(value)


def parse_rtt(raw: bytes) -> int:
    text = _text(raw).strip()
    if text == "":
        return NO_RTT
    try:
        ms = float(text)
    except ValueError:
        raise _Bad(f"{text!r} is not a number of milliseconds") from None
    if not 0 <= ms < 4_000_000:  # NaN fails too
        raise _Bad(f"{text!r} is not a round-trip time in milliseconds")
    return round(ms * 1000)


_DEFECTS = {d.value: DEFECT_BITS[d] for d in Defect}


def parse_defects(raw: bytes) -> int:
    text = _text(raw).strip()
    mask = 0
    for name in filter(None, (p.strip() for p in text.split(";"))):
        if name not in _DEFECTS:
            raise _Bad(f"unknown defect {name!r} (known: {', '.join(_DEFECTS)})")
        mask |= _DEFECTS[name]
    return mask


def _parse_probe(raw: bytes) -> int:
    text = _text(raw).strip()
    try:
        return KIND_CODES[ProbeKind(text)]
    except ValueError:
        raise _Bad(f"{text!r} is not a probe kind (icmp, snmp, video)") from None


def _parse_ok(raw: bytes) -> int:
    text = _text(raw).strip()
    if text == "1":
        return 1
    if text == "0":
        return 0
    raise _Bad(f"{text!r} is not 1 or 0")


@dataclass(frozen=True, slots=True)
class ImportReport:
    rows: int
    added: int
    repeated: int
    devices: int
    outages: int
    seconds: float


Progress = Callable[[int, int, int | None], None]
"""Called after each block with rows so far, bytes read so far and the file size (None if unknown)."""


class _Parser:
    """Turns blocks of CSV into ResultColumns, with caches shared across blocks."""

    def __init__(self, path: Path, fleet: Fleet, keys: Mapping[DeviceId, int], now: datetime) -> None:
        self.path = path
        self.now = now
        self.latest = to_micros(now + FUTURE_SKEW)
        devices = fleet.inventory.devices
        known = {d.encode(): keys[d] for d in devices}

        def device_key(raw: bytes) -> int:
            name = _text(raw).strip()
            if name.encode() in known:
                return known[name.encode()]
            raise _Bad(f"unknown device {name!r} (not in the inventory)")

        self.caches: dict[str, _Cache[bytes, int]] = {
            "device": _Cache(device_key),
            "time": _Cache(parse_time),
            "probe": _Cache(_parse_probe),
            "ok": _Cache(_parse_ok),
            "rtt_ms": _Cache(parse_rtt),
            "defects": _Cache(parse_defects),
        }
        self.dtypes = {
            "device": np.int32,
            "time": np.int64,
            "probe": np.uint8,
            "ok": np.uint8,
            "rtt_ms": np.uint32,
            "defects": np.uint32,
        }
        top = max(keys.values(), default=0) + 1
        self.is_camera = np.zeros(top, dtype=bool)
        self.term_start = np.zeros(top, dtype=np.int64)  # 00:00 of term.start in the contract's zone
        starts: dict[str, int] = {}
        for d, dev in devices.items():
            self.is_camera[keys[d]] = dev.kind is DeviceKind.CAMERA
            if dev.contract not in starts:
                contract = fleet.contracts[dev.contract]
                zone = ZoneInfo(contract.timezone)
                starts[dev.contract] = to_micros(datetime.combine(contract.term_start, time(0), tzinfo=zone))
            self.term_start[keys[d]] = starts[dev.contract]
        self.devices = devices
        self.contracts = fleet.contracts
        self.ids = {v: k for k, v in keys.items()}

    def header(self, raw: bytes) -> list[str]:
        if b"\0" in raw:
            raise HistoryError(self.path, "line 1", "holds a NUL byte (is it a CSV file?)")
        try:
            text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
        except UnicodeDecodeError:
            raise HistoryError(self.path, "line 1", NOT_UTF8) from None
        names = [c.strip() for c in text.rstrip("\r\n").split(",")]
        for name in names:
            if name not in COLUMNS:
                raise HistoryError(
                    self.path, "line 1", f"unknown column {name!r} (columns: {', '.join(COLUMNS)})"
                )
        for name in REQUIRED:
            if name not in names:
                raise HistoryError(
                    self.path, "line 1", f"missing column {name!r} (columns: {', '.join(COLUMNS)})"
                )
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise HistoryError(self.path, "line 1", f"column {min(dupes)!r} appears twice")
        return names

    def columns(
        self, names: list[str], fields: dict[str, Sequence[bytes]], lines: Sequence[int]
    ) -> ResultColumns:
        n = len(lines)
        arrays: dict[str, np.ndarray] = {}
        for name, cache in self.caches.items():
            if name not in fields:
                arrays[name] = np.full(n, NO_RTT if name == "rtt_ms" else 0, dtype=self.dtypes[name])
                continue
            try:
                arrays[name] = np.fromiter(map(cache.__getitem__, fields[name]), self.dtypes[name], n)
            except _Bad:
                self._raise_first_bad(name, fields[name], lines)
        line = np.asarray(lines, dtype=np.uint32)
        cols = ResultColumns(
            arrays["device"],
            arrays["probe"],
            arrays["time"],
            arrays["ok"],
            arrays["defects"],
            arrays["rtt_ms"],
            line,
        )
        self._check_rows(cols)
        return cols

    def _raise_first_bad(self, name: str, values: Sequence[bytes], lines: Sequence[int]) -> None:
        cache = self.caches[name]
        for i, raw in enumerate(values):
            try:
                cache[raw]
            except _Bad as exc:
                raise HistoryError(self.path, f"line {lines[i]}, column {name}", str(exc)) from None
        raise AssertionError("a bad value went missing")  # pragma: no cover

    def _check_rows(self, c: ResultColumns) -> None:
        """Rules that span columns."""
        assert c.line is not None
        rules = [
            ((c.kind != VIDEO) & (c.defects != 0), "defects", "defects are only for video results"),
            ((c.ok == 1) & (c.defects != 0), "defects", "ok is 1 but defects are listed"),
            ((c.kind == VIDEO) & ~self.is_camera[c.device], "probe", "video results are only for cameras"),
        ]
        for bad, column, problem in rules:
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                what = (
                    problem
                    if column != "probe"
                    else f"device {self.ids[int(c.device[i])]} is not a camera: {problem}"
                )
                raise HistoryError(self.path, f"line {int(c.line[i])}, column {column}", what)
        self._check_times(c)

    def _check_times(self, c: ResultColumns) -> None:
        """No result from the future (beyond `FUTURE_SKEW`), none before its contract's term."""
        assert c.line is not None
        late = c.time > self.latest
        early = c.time < self.term_start[c.device]
        if not late.any() and not early.any():
            return
        i = int(np.flatnonzero(late | early)[0])
        at = from_micros(int(c.time[i])).isoformat()
        if late[i]:
            problem = (
                f"{at} is later than now + {format_duration(FUTURE_SKEW)} "
                f"({from_micros(self.latest).isoformat()}): a result from the future"
            )
        else:
            contract = self.contracts[self.devices[self.ids[int(c.device[i])]].contract]
            problem = (
                f"{at} is before the term of contract {contract.id} "
                f"(from {contract.term_start.isoformat()} in {contract.timezone})"
            )
        raise HistoryError(self.path, f"line {int(c.line[i])}, column time", problem)


def _blocks(stream: io.BufferedIOBase) -> Iterator[bytes]:
    """Whole lines, a few megabytes at a time. When reading fails (a corrupt or cut-short gzip),
    the whole lines read before are given first, so the error is met at the line it stopped at."""
    rest = b""
    while True:
        parts, size, failure = [rest], len(rest), None
        while size < BLOCK_BYTES:
            try:
                data = stream.read1(BLOCK_BYTES - size)
            except (EOFError, zlib.error, OSError) as exc:  # (gzip.BadGzipFile is an OSError)
                failure = exc
                break
            if not data:
                break
            parts.append(data)
            size += len(data)
        block = b"".join(parts)
        cut = block.rfind(b"\n") + 1
        if size < BLOCK_BYTES:  # the end, or where reading failed
            if cut:
                yield block[:cut]
            if failure is not None:
                raise failure
            if block[cut:]:
                yield block[cut:] + b"\n"
            return
        if cut == 0:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]


def _fast_fields(block: bytes, width: int) -> list[bytes] | None:
    """Fields of a block of plain lines, or None when it needs the csv module."""
    if b'"' in block or b"\n\n" in block or block.startswith(b"\n"):
        return None
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
        if b"\r" in block:
            return None
    arr = np.frombuffer(block, np.uint8)
    newlines = np.flatnonzero(arr == 10)
    commas = np.flatnonzero(arr == 44)
    per_line = np.diff(np.searchsorted(commas, newlines), prepend=0)
    if (per_line != width - 1).any():
        return None
    return block.replace(b"\n", b",").split(b",")[:-1]


def _slow_rows(block: bytes, first_line: int, width: int, path: Path) -> tuple[list[list[bytes]], list[int]]:
    text = block.decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[list[bytes]] = []
    lines: list[int] = []
    line = first_line
    while True:
        here = line
        try:
            row = next(reader, None)
        except csv.Error as exc:
            raise HistoryError(path, f"line {here}", str(exc).lower()) from None
        if row is None:
            break
        line = first_line + reader.line_num
        if not row or row == [""]:
            continue
        if len(row) != width:
            raise HistoryError(path, f"line {here}", f"expected {width} fields, found {len(row)}")
        rows.append([f.encode("utf-8", errors="surrogateescape") for f in row])
        lines.append(here)
    return rows, lines


def read_history(
    path: Path, fleet: Fleet, keys: Mapping[DeviceId, int], now: datetime
) -> Iterator[tuple[ResultColumns, int]]:
    """The file's results, block by block, every value checked, with how far into the file we are."""
    raw = path.open("rb")
    gzipped = path.suffix == ".gz"
    stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
    position = raw.tell
    with raw, stream:
        parser = _Parser(path, fleet, keys, now)
        line = 1
        try:
            head = stream.readline()
            if not head.strip():
                raise HistoryError(path, "line 1", f"empty file (expected the header {','.join(COLUMNS)})")
            names = parser.header(head)
            width = len(names)
            line = 2
            for block in _blocks(stream):
                _check_text(path, block, line)
                flat = _fast_fields(block, width)
                fields: dict[str, Sequence[bytes]]
                if flat is not None:
                    count = len(flat) // width
                    lines: Sequence[int] = range(line, line + count)
                    fields = {name: flat[i::width] for i, name in enumerate(names)}
                    line += count
                else:
                    rows, lines = _slow_rows(block, line, width, path)
                    line += block.count(b"\n")
                    fields = {name: [r[i] for r in rows] for i, name in enumerate(names)}
                if len(lines):
                    yield parser.columns(names, fields, lines), position()
        except EOFError:
            raise HistoryError(
                path, f"line {line}", "the gzip file is cut short (it ends before its end-of-stream marker)"
            ) from None
        except (gzip.BadGzipFile, zlib.error) as exc:
            if gzipped and line == 1 and isinstance(exc, gzip.BadGzipFile):
                raise HistoryError(path, "line 1", "not gzip data, though the name ends in .gz") from None
            raise HistoryError(path, f"line {line}", f"the gzip data is corrupt ({exc})") from None
        except OSError as exc:
            raise HistoryError(path, f"line {line}", f"cannot read: {exc.strerror or exc}") from None


def _check_text(path: Path, block: bytes, first_line: int) -> None:
    """Every byte of a block is text: UTF-8, no NUL."""
    nul = block.find(b"\0")
    if nul >= 0:
        line = first_line + block.count(b"\n", 0, nul)
        raise HistoryError(path, f"line {line}", "holds a NUL byte (is it a CSV file?)")
    if block.isascii():
        return
    try:
        block.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + block.count(b"\n", 0, exc.start)
        raise HistoryError(path, f"line {line}", NOT_UTF8) from None


def import_history(
    path: str | PathLike[str], store: Store, fleet: Fleet, now: datetime, progress: Progress | None = None
) -> ImportReport:
    """Import one probe-history CSV (or .csv.gz) into the store, all or nothing."""
    path = Path(path)
    if not path.is_file():
        raise HistoryError(path, None, "file not found")
    started = timer.monotonic()
    size = path.stat().st_size
    rows = added = repeated = 0
    touched: set[int] = set()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of short-lived bytes objects: the cyclic collector only slows this down
    try:
        with store.begin() as tx:
            sync_fleet(tx, fleet, to_micros(now))
            keys = tx.keys.ensure(fleet.inventory.devices)
            ids = {v: k for k, v in keys.items()}
            batch: list[ResultColumns] = []
            pending = 0

            def merge() -> None:
                nonlocal added, repeated, pending
                cols = ResultColumns.concat(batch) if len(batch) > 1 else batch[0]
                batch.clear()
                pending = 0
                try:
                    merged = tx.results.merge(cols)
                except ResultConflict as exc:
                    where = f"line {exc.line}" if exc.line else None
                    raise HistoryError(path, where, _conflict(exc, ids)) from None
                except ResultsLetGo as exc:
                    raise HistoryError(
                        path,
                        f"line {exc.line}" if exc.line else None,
                        f"results of {ids[exc.device]} before {from_micros(exc.kept_from).isoformat()}"
                        " have been let go (retention); older history cannot be added",
                    ) from None
                added += merged.added
                repeated += merged.repeated
                touched.update(merged.earliest)

            for cols, position in read_history(path, fleet, keys, now):
                rows += len(cols)
                batch.append(cols)
                pending += len(cols)
                if pending >= MERGE_ROWS:
                    merge()
                if progress is not None:
                    progress(rows, position, size)
            if batch:
                merge()
            devices = sorted(ids[k] for k in touched)
            timelines = rebuild_timelines(tx, fleet.inventory, fleet.contracts, devices, to_micros(now))
    finally:
        if gc_was_enabled:
            gc.enable()
    return ImportReport(
        rows,
        added,
        repeated,
        len(devices),
        sum(len(t.outages) for t in timelines.values()),
        timer.monotonic() - started,
    )


def _conflict(exc: ResultConflict, ids: Mapping[int, DeviceId]) -> str:
    other = (
        f" (line {exc.other_line} says otherwise)" if exc.other_line else " (a stored result says otherwise)"
    )
    return (
        f"conflicting result for {ids.get(exc.device, exc.device)} {KINDS_BY_CODE[exc.kind].value} at "
        f"{from_micros(exc.time).isoformat()}{other}"
    )


# --- export -----------------------------------------------------------------------------------


def format_rtt(us: int) -> str:
    return "" if us == NO_RTT else f"{us / 1000:.3f}".rstrip("0").rstrip(".")


def format_defects(mask: int) -> str:
    return ";".join(d.value for d, bit in DEFECT_BITS.items() if mask & bit)


def export_history(
    store: Store, start: Micros, end: Micros, out: IO[str], zones: Mapping[DeviceId, tzinfo] | None = None
) -> int:
    """Write every stored raw result in [start, end) as probe-history CSV; returns the row count."""
    zones = zones or {}
    utc = ZoneInfo("UTC")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    stamp: dict[tuple[int, tzinfo], str] = {}
    rtts = _Cache[int, str](format_rtt)
    defects = _Cache[int, str](format_defects)
    kinds = {code: kind.value for code, kind in KINDS_BY_CODE.items()}
    with store.begin() as tx:
        names: dict[int, str] = {}
        current: tuple[int, int] | None = None
        rows: list[tuple[int, int, int, int, int]] = []

        def flush() -> None:
            nonlocal count
            if not rows:
                return
            name = names[current[0]] if current else ""
            zone = zones.get(DeviceId(name), utc)
            rows.sort(key=lambda r: (r[0], r[1]))
            for at, kind, ok, rtt, mask in rows:
                text = stamp.get((at, zone))
                if text is None:
                    text = stamp[(at, zone)] = from_micros(at).astimezone(zone).isoformat()
                writer.writerow((name, text, kinds[kind], ok, rtts[rtt], defects[mask]))
            count += len(rows)
            rows.clear()

        for dev, kind, hour, rec in tx.results.between(start, end):
            if current != (dev, hour):
                flush()
                current = (dev, hour)
                if dev not in names:
                    names.update(tx.keys.ids([dev]))
            times = rec["off"].astype(np.int64) + hour * HOUR
            keep = (times >= start) & (times < end)
            n = int(keep.sum())
            rows += zip(
                times[keep].tolist(),
                [kind] * n,
                rec["ok"][keep].tolist(),
                rec["rtt"][keep].tolist(),
                rec["defects"][keep].tolist(),
                strict=True,
            )
        flush()
    return count
