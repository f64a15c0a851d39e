"""The cameras' latest video samples, as the video rounds see them: for /metrics and the device API.

The state engine judges `degraded` from the samples (SLA.md §2); this keeps what the latest sample
of each camera showed, so that ops can see which defect, and the metric values that show it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from slamon.model import SECOND, Defect, DeviceId, Micros, ProbeKind, ProbeResult, to_micros

# the metrics exported per camera (quality.Metrics' names), each a gauge with the metric's name
EXPORTED = ("mean_luma", "black_share", "sharpness", "cast", "smooth_share", "still_share", "change")


@dataclass(frozen=True, slots=True)
class LastSample:
    at: Micros
    defects: frozenset[Defect]
    reason: str | None
    metrics: Mapping[str, object]
    width: int | None
    height: int | None


class VideoSamples:
    def __init__(self, latest: dict[DeviceId, LastSample] | None = None) -> None:
        self.latest: dict[DeviceId, LastSample] = latest if latest is not None else {}

    def take(self, results: Iterable[ProbeResult]) -> None:
        for r in results:
            if r.kind is not ProbeKind.VIDEO:
                continue
            metrics = r.detail.get("metrics")
            width, height = r.detail.get("width"), r.detail.get("height")
            self.latest[r.device] = LastSample(
                to_micros(r.time),
                r.defects,
                r.error,
                metrics if isinstance(metrics, Mapping) else {},
                width if isinstance(width, int) else None,
                height if isinstance(height, int) else None,
            )

    def keep(self, devices: Iterable[DeviceId]) -> None:
        """Cameras still in the inventory (a reload)."""
        kept = set(devices)
        self.latest = {d: s for d, s in self.latest.items() if d in kept}

    def snapshot(self) -> VideoSamples:
        return VideoSamples(dict(self.latest))


Family = tuple[str, str, tuple[str, ...], Iterator[tuple[tuple[str, ...], str]]]


def video_families(samples: VideoSamples) -> Iterator[Family]:
    """(name, help, label names, samples) of each family: slamon_video_defect{device,defect} (1
    for each defect the camera's latest sample showed), the time of that sample, and its metric
    values (metrics.video_text renders them)."""
    latest = sorted(samples.latest.items())
    yield (
        "slamon_video_defect",
        "Defects the camera's latest video sample showed (1 each; none: a clean picture).",
        ("device", "defect"),
        (((d, x.value), "1") for d, s in latest for x in sorted(s.defects)),
    )
    yield (
        "slamon_video_sample_timestamp_seconds",
        "When the camera's latest video sample was taken.",
        ("device",),
        (((d,), f"{s.at / SECOND:.3f}") for d, s in latest),
    )
    for name in EXPORTED:
        yield (
            f"slamon_video_{name}",
            f"The camera's latest video sample: {name} (docs/video.md).",
            ("device",),
            (((d,), f"{v:g}") for d, s in latest if isinstance(v := s.metrics.get(name), (int, float))),
        )
