"""Exact arithmetic on sets of half-open intervals [start, end) of integer microseconds.

A set is a sorted list of disjoint, non-empty, non-touching intervals; every function returns one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

Interval: TypeAlias = tuple[int, int]
Intervals: TypeAlias = list[Interval]


def normalize(items: Iterable[Interval]) -> Intervals:
    """Sort, drop empty intervals and merge overlapping or touching ones."""
    out: Intervals = []
    for start, end in sorted(i for i in items if i[1] > i[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def intersect(a: Intervals, b: Intervals) -> Intervals:
    out: Intervals = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Intervals, b: Intervals) -> Intervals:
    out: Intervals = []
    j = 0
    for start, end in a:
        cur = start
        while j < len(b) and b[j][1] <= cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            cur = max(cur, b[k][1])
            k += 1
        if cur < end:
            out.append((cur, end))
    return out


def clip(a: Intervals, start: int, end: int) -> Intervals:
    return intersect(a, [(start, end)]) if start < end else []


def measure(a: Intervals) -> int:
    return sum(end - start for start, end in a)
