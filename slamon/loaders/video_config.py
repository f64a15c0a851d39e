"""`probes.video` of slamon.yaml: how cameras' streams are sampled, and the thresholds of their
picture's defects, for the whole fleet and per group of cameras (config.py reads the rest of it).

The thresholds' names are quality.Thresholds' and the baseline's quality.Baseline's; they are
checked here by name and number, and turned into those classes by the prober (this module stays
free of numpy: `slamon probe --once` reads the config too).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from slamon.loaders.yamlio import Source, key_path
from slamon.units import quote

MAX_VIDEO_CONCURRENCY = 1000
MAX_VIDEO_FRAMES = 50
# quality.Thresholds' fields, with whether each is a whole number (tests/video checks they agree)
THRESHOLDS: Mapping[str, bool] = {
    "min_width": True, "min_height": True, "black_share": False, "flat_std": False,
    "dark_luma": False, "bright_luma": False, "blur": False, "cast": False, "noise": False,
    "frozen_share": False, "frozen_packet_bytes": True, "occluded": False,
}  # fmt: skip
# quality.Baseline's fields, and whether each must be given
BASELINE: Mapping[str, bool] = {
    "mean_luma": True, "sharpness": True, "cast": True, "smooth_share": True,
    "still_share": False, "change": False,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class VideoGroup:
    """Thresholds (and a baseline) for the cameras it names, by device or site id."""

    devices: frozenset[str] = frozenset()
    sites: frozenset[str] = frozenset()
    thresholds: Mapping[str, float] = field(default_factory=dict)
    baseline: Mapping[str, float] | None = None


@dataclass(frozen=True, slots=True)
class VideoProbeConfig:
    interval: timedelta = timedelta(minutes=15)
    sample: timedelta = timedelta(seconds=2)  # how much video one sample reads
    timeout: timedelta = timedelta(seconds=5)  # to connect, and for each read of the stream
    frames: int = 8  # consecutive pictures a sample decodes
    concurrency: int = 0  # samples at once; 0: 24 per core
    user_env: str = "SLAMON_RTSP_USER"  # the NAME of the variable holding the streams' user
    password_env: str = "SLAMON_RTSP_PASSWORD"  # noqa: S105  (a variable's name, not a password)
    password_file: Path | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)  # over quality.Thresholds' defaults
    groups: tuple[VideoGroup, ...] = ()  # the first that names a camera applies to it

    @property
    def samples_at_once(self) -> int:
        return self.concurrency or 24 * (os.cpu_count() or 1)


VIDEO_KEYS = (
    "interval", "sample", "timeout", "frames", "concurrency", "user_env", "password_env",
    "password_file", "thresholds", "groups",
)  # fmt: skip


def _number(src: Source, where: str, value: object, whole: bool) -> float:
    if whole:
        return float(src.integer(where, value, minimum=0))
    number = src.decimal(where, value)
    if number < 0:
        src.fail(where, f"{quote(value)} must not be negative")
    return float(number)


def thresholds(src: Source, where: str, value: object) -> dict[str, float]:
    doc = src.mapping(where, value, tuple(THRESHOLDS))
    return {k: _number(src, key_path(where, k), v, THRESHOLDS[k]) for k, v in doc.items()}


def groups(src: Source, where: str, value: object) -> tuple[VideoGroup, ...]:
    return tuple(_group(src, key_path(where, i), g) for i, g in enumerate(src.sequence(where, value)))


def _ids(src: Source, where: str, value: object) -> frozenset[str]:
    return frozenset(src.text(key_path(where, i), x) for i, x in enumerate(src.sequence(where, value)))


def _group(src: Source, where: str, value: object) -> VideoGroup:
    doc = src.mapping(where, value, ("devices", "sites", "thresholds", "baseline"))
    devices = _ids(src, f"{where}.devices", doc.get("devices", []))
    sites = _ids(src, f"{where}.sites", doc.get("sites", []))
    if not devices and not sites:
        src.fail(where, "names no camera (give devices, sites or both)")
    baseline = None
    if "baseline" in doc:
        at = f"{where}.baseline"
        required = tuple(k for k, needed in BASELINE.items() if needed)
        raw = src.mapping(at, doc["baseline"], tuple(BASELINE), required=required)
        baseline = {k: _number(src, key_path(at, k), v, False) for k, v in raw.items()}
    return VideoGroup(
        devices, sites, thresholds(src, f"{where}.thresholds", doc.get("thresholds", {})), baseline
    )
