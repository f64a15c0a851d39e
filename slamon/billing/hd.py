"""The HD rate (高清化率) of a month (pure): the share of a contract's sampled cameras whose video
was at the resolution the contract requires (`probes.video` thresholds, default 1920×1080), as the
month's video samples say. A camera counts as HD when fewer than half of its samples in the month
showed `low_resolution` (one sample of a stream that fell back for a moment does not make it SD);
cameras with no sample in the month are not counted (the statement says how many were sampled).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from slamon.billing.rates import DeviceFigures
from slamon.model import DeviceId, DeviceKind


@dataclass(frozen=True, slots=True)
class HdFigures:
    sampled: int  # cameras on the statement with a video sample in the month
    hd: int  # of those, cameras at the required resolution
    uncounted: int  # sampled cameras whose low-resolution samples are not known (old stores)

    @property
    def rate(self) -> Fraction | None:
        counted = self.sampled - self.uncounted
        return None if counted == 0 else Fraction(self.hd, counted)


def hd_figures(
    figures: Sequence[DeviceFigures], video: Mapping[DeviceId, tuple[int, int | None]]
) -> HdFigures | None:
    """None when no camera on the statement was sampled in the month."""
    sampled = hd = uncounted = 0
    for f in figures:
        if f.device.kind is not DeviceKind.CAMERA:
            continue
        n, low = video.get(f.device.id, (0, 0))
        if n == 0:
            continue
        sampled += 1
        if low is None:
            uncounted += 1
        elif 2 * low < n:
            hd += 1
    return HdFigures(sampled, hd, uncounted) if sampled else None
