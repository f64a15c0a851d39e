"""Raw probe results as hourly blocks: one row per device, probe kind and hour.

A month of one-minute ICMP history for 100 devices is 4.5 million results; stored one row each it
costs seconds to write and read back. Packed 13 bytes a result into one row per hour it is 74,400
rows, written in half a second. The row's other columns are the hourly rollup (probe count, failures,
RTT) that outlives the raw bytes when retention lets them go.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slamon.model import DEFECT_BITS, HOUR, Defect, ProbeKind

RECORD = np.dtype([("off", "<u4"), ("ok", "u1"), ("defects", "<u4"), ("rtt", "<u4")])
"""One result inside its hour: µs since the hour began, outcome, defect bits, RTT in µs."""

NO_RTT = 0xFFFFFFFF
KIND_CODES: dict[ProbeKind, int] = {ProbeKind.ICMP: 0, ProbeKind.SNMP: 1, ProbeKind.VIDEO: 2}
KINDS_BY_CODE: dict[int, ProbeKind] = {v: k for k, v in KIND_CODES.items()}
REACH_CODES = (KIND_CODES[ProbeKind.ICMP], KIND_CODES[ProbeKind.SNMP])

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
Records = npt.NDArray[np.void]


@dataclass(slots=True)
class ResultColumns:
    """A batch of results as columns; `line` (source line numbers) lets errors point at input."""

    device: I32
    kind: U8
    time: I64
    ok: U8
    defects: U32
    rtt: U32
    line: U32 | None = None

    def __len__(self) -> int:
        return len(self.time)

    def take(self, index: npt.NDArray[np.intp] | slice) -> ResultColumns:
        return ResultColumns(
            self.device[index],
            self.kind[index],
            self.time[index],
            self.ok[index],
            self.defects[index],
            self.rtt[index],
            None if self.line is None else self.line[index],
        )

    @staticmethod
    def concat(parts: list[ResultColumns]) -> ResultColumns:
        lines = None if any(p.line is None for p in parts) else np.concatenate([p.line for p in parts])
        return ResultColumns(
            np.concatenate([p.device for p in parts]),
            np.concatenate([p.kind for p in parts]),
            np.concatenate([p.time for p in parts]),
            np.concatenate([p.ok for p in parts]),
            np.concatenate([p.defects for p in parts]),
            np.concatenate([p.rtt for p in parts]),
            lines,
        )


class ResultConflict(Exception):
    """Two results for the same device, probe and instant disagree."""

    def __init__(self, device: int, kind: int, time: int, line: int | None, other_line: int | None) -> None:
        self.device, self.kind, self.time, self.line, self.other_line = device, kind, time, line, other_line
        super().__init__(f"conflicting results for device key {device} kind {kind} at {time}")


def sort_and_dedupe(cols: ResultColumns) -> tuple[ResultColumns, int]:
    """Sorted by device, kind, time; exact repeats dropped (idempotency), disagreeing ones refused."""
    order = np.lexsort((cols.time, cols.kind, cols.device))
    cols = cols.take(order)
    if len(cols) < 2:
        return cols, 0
    same = (
        (cols.device[1:] == cols.device[:-1])
        & (cols.kind[1:] == cols.kind[:-1])
        & (cols.time[1:] == cols.time[:-1])
    )
    if not same.any():
        return cols, 0
    differs = same & (
        (cols.ok[1:] != cols.ok[:-1])
        | (cols.defects[1:] != cols.defects[:-1])
        | (cols.rtt[1:] != cols.rtt[:-1])
    )
    if differs.any():
        i = int(np.flatnonzero(differs)[0]) + 1
        lines = cols.line
        raise ResultConflict(
            int(cols.device[i]),
            int(cols.kind[i]),
            int(cols.time[i]),
            None if lines is None else int(max(lines[i], lines[i - 1])),
            None if lines is None else int(min(lines[i], lines[i - 1])),
        )
    keep = np.concatenate(([True], ~same))
    return cols.take(np.flatnonzero(keep)), int(same.sum())


def block_groups(cols: ResultColumns) -> Iterator[tuple[int, int, int, int, int]]:
    """(device, kind, hour, start, end) for each hourly block of sorted columns."""
    if len(cols) == 0:
        return
    hour = cols.time // HOUR
    key_change = (
        (cols.device[1:] != cols.device[:-1]) | (cols.kind[1:] != cols.kind[:-1]) | (hour[1:] != hour[:-1])
    )
    starts = np.concatenate(([0], np.flatnonzero(key_change) + 1))
    ends = np.append(starts[1:], len(cols))
    devices = cols.device[starts].tolist()
    kinds = cols.kind[starts].tolist()
    hours = hour[starts].tolist()
    yield from zip(devices, kinds, hours, starts.tolist(), ends.tolist(), strict=True)


def encode(cols: ResultColumns, hour: int, start: int, end: int) -> Records:
    records = np.empty(end - start, RECORD)
    records["off"] = cols.time[start:end] - hour * HOUR
    records["ok"] = cols.ok[start:end]
    records["defects"] = cols.defects[start:end]
    records["rtt"] = cols.rtt[start:end]
    return records


BlockRow = tuple[int, int, int, int, int, int, int, int, int | None, int | None, bytes, str]
"""A result_blocks row: device, kind, hour, part, n, n_ok, rtt_n, rtt_sum_us, rtt_min_us, rtt_max_us, data,
sha256 (hex, of data)."""


def block_rows(cols: ResultColumns, part: int) -> list[BlockRow]:
    """Every hourly block of sorted, deduplicated columns as a row, rollups included, computed for all
    blocks at once: a live round of 100,000 devices is 100,000 small blocks."""
    n = len(cols)
    if n == 0:
        return []
    hour = cols.time // HOUR
    key_change = (
        (cols.device[1:] != cols.device[:-1]) | (cols.kind[1:] != cols.kind[:-1]) | (hour[1:] != hour[:-1])
    )
    starts = np.concatenate(([0], np.flatnonzero(key_change) + 1))
    ends = np.append(starts[1:], n)
    records = np.empty(n, RECORD)
    records["off"] = cols.time - hour * HOUR
    records["ok"] = cols.ok
    records["defects"] = cols.defects
    records["rtt"] = cols.rtt
    data = records.tobytes()
    size = RECORD.itemsize
    has_rtt = cols.rtt != NO_RTT
    rtt = np.where(has_rtt, cols.rtt, 0).astype(np.int64)
    rtt_n = np.add.reduceat(has_rtt.astype(np.int64), starts)
    rtt_sum = np.add.reduceat(rtt, starts)
    rtt_min = np.minimum.reduceat(np.where(has_rtt, rtt, np.iinfo(np.int64).max), starts)
    rtt_max = np.maximum.reduceat(np.where(has_rtt, rtt, -1), starts)
    n_ok = np.add.reduceat(cols.ok.astype(np.int64), starts)
    sha = hashlib.sha256
    return [
        (
            dev,
            kind,
            h,
            part,
            end - start,
            ok,
            rn,
            rs,
            lo if rn else None,
            hi if rn else None,
            block,
            sha(block).hexdigest(),
        )
        for dev, kind, h, start, end, ok, rn, rs, lo, hi, block in zip(
            cols.device[starts].tolist(),
            cols.kind[starts].tolist(),
            hour[starts].tolist(),
            starts.tolist(),
            ends.tolist(),
            n_ok.tolist(),
            rtt_n.tolist(),
            rtt_sum.tolist(),
            rtt_min.tolist(),
            rtt_max.tolist(),
            [data[a * size : b * size] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)],
            strict=True,
        )
    ]


def decode(data: bytes) -> Records:
    return np.frombuffer(data, RECORD)


def merge(old: Records, new: Records, new_lines: U32 | None) -> tuple[Records, int]:
    """The union of two sorted blocks of one hour; returns it and how many new records it added.

    Raises ResultConflict (device and kind unknown here: the caller fills them in) when a new
    record disagrees with a stored one at the same instant.
    """
    pos = np.searchsorted(old["off"], new["off"])
    inside = pos < len(old)
    clash = np.zeros(len(new), dtype=bool)
    clash[inside] = old["off"][pos[inside]] == new["off"][inside]
    if clash.any():
        idx = np.flatnonzero(clash)
        if (old[pos[idx]] != new[idx]).any():
            bad = int(idx[np.flatnonzero(old[pos[idx]] != new[idx])[0]])
            raise ResultConflict(
                -1, -1, int(new["off"][bad]), None if new_lines is None else int(new_lines[bad]), None
            )
    fresh = new[~clash]
    if len(fresh) == 0:
        return old, 0
    merged = np.concatenate((old, fresh))
    merged = merged[np.argsort(merged["off"], kind="stable")]
    return merged, len(fresh)


def join_parts(parts: list[bytes]) -> Records:
    """The records of one hour stored in several parts, as one sorted block without repeats."""
    if len(parts) == 1:
        return decode(parts[0])
    records = np.concatenate([decode(p) for p in parts])
    records = records[np.argsort(records["off"], kind="stable")]
    keep = np.concatenate(([True], records["off"][1:] != records["off"][:-1]))
    return records[keep]


def low_resolution(records: Records) -> int:
    """How many of the records are video samples whose stream was below the resolution minimum
    (the block's rollup of them: an HD rate outlives the raw results it is counted from)."""
    return int(np.count_nonzero(records["defects"] & DEFECT_BITS[Defect.LOW_RESOLUTION]))


def rollup(records: Records) -> tuple[int, int, int, int, int | None, int | None]:
    """(results, successes, RTT samples, RTT sum, RTT min, RTT max), RTTs in µs."""
    rtt = records["rtt"][records["rtt"] != NO_RTT].astype(np.int64)
    return (
        len(records),
        int(records["ok"].sum()),
        len(rtt),
        int(rtt.sum()),
        int(rtt.min()) if len(rtt) else None,
        int(rtt.max()) if len(rtt) else None,
    )
