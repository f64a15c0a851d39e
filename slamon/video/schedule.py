"""When each camera is sampled (pure): once per interval, spread evenly, and sooner after a defect.

The service runs a video round every tick (a minute); a round samples the cameras due in its
window. A camera's phase in the interval comes from a stable hash of its id, so samples are spread
over the whole interval (never all cameras at once) and stay where they were across restarts. A
camera whose sample shows a defect is due again a tick later, until it has shown `recheck` defective
samples in a row: `degrade_after` such samples make it `degraded` (SLA.md §2) within minutes, not
intervals. A clean sample puts it back on its phase.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from slamon.model import Micros

D = TypeVar("D")


def phase(device: str, interval: Micros) -> Micros:
    """Where in each interval the camera's sample falls (microseconds from the interval's start)."""
    return zlib.crc32(device.encode("utf-8")) * interval >> 32


@dataclass(slots=True)
class VideoSchedule:
    interval: Micros
    tick: Micros
    recheck: int = 2  # defective samples in a row re-sampled a tick apart
    _window_end: Micros | None = None
    _again: dict[str, Micros] = field(default_factory=dict)  # camera -> when it is due early
    _defective: dict[str, int] = field(default_factory=dict)  # camera -> defective samples in a row

    def window(self, now: Micros) -> tuple[Micros, Micros]:
        """The span this round samples: from where the last one ended (a late round skips no camera)
        to a tick after now, never longer than an interval."""
        end = now + self.tick
        start = end - self.tick if self._window_end is None else max(self._window_end, end - self.interval)
        self._window_end = end
        return start, end

    def due(self, cameras: Sequence[tuple[str, D]], start: Micros, end: Micros) -> list[tuple[Micros, D]]:
        """The cameras due in [start, end), each with when (by phase, or early), in time order."""
        out: list[tuple[Micros, D]] = []
        for cid, camera in cameras:
            early = self._again.get(cid)
            if early is not None and early < end:
                out.append((max(early, start), camera))
                continue
            offset = (phase(cid, self.interval) - start) % self.interval
            if offset < end - start:
                out.append((start + offset, camera))
        out.sort(key=lambda x: x[0])
        return out

    def took(self, camera: str, defective: bool, at: Micros) -> None:
        """A sample's outcome: a defective one brings the next sample forward to the next tick."""
        self._again.pop(camera, None)
        if not defective:
            self._defective.pop(camera, None)
            return
        count = self._defective.get(camera, 0) + 1
        self._defective[camera] = count
        if count < self.recheck:
            self._again[camera] = at + self.tick

    def forget(self, keep: Iterable[str]) -> None:
        """Cameras gone from the inventory (a reload)."""
        kept = set(keep)
        for book in (self._again, self._defective):
            for cid in [c for c in book if c not in kept]:
                del book[cid]
