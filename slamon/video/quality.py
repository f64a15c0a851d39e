"""What a camera's picture is wrong with: metrics of decoded frames and the defects they show (pure).

A video sample is a few seconds of consecutive frames (`decode.frames_from` makes them; a prober
hands them to `assess`). Frames are 8-bit limited-range Y'CbCr 4:2:0 planes at the analysis size,
640 pixels wide (or the stream's own width, if smaller); most metrics look at the picture halved
again (320x180 for 16:9), where one frame costs well under a millisecond. The metrics, each with
the defect it decides (docs/video.md has their measured values on the calibration clips):

per frame, on the half-size picture unless said (a sample takes the median over its frames)
  mean_luma     mean Y                                   too_dark, too_bright
  black_share   share of pixels at or below black_level  black (FFmpeg blackdetect's rule)
  luma_std      Y's standard deviation                   no_signal (with chroma_std: one flat colour)
  chroma_std    Cb's and Cr's, the larger
  sharpness     the picture's finest detail: the Laplacian's energy at the analysis size over its
                energy at half that size. Blur widens edges, and a wide edge's Laplacian fades at
                the finer size first: a camera's sharp picture scores about 0.5 (pixel-sharp detail
                and noise more: white noise 4), mild blur 0.3, strong blur 0.2. It does not depend
                on how much detail the scene has, as Laplacian variance over luma variance does
                (on which colour bars score lower than a slightly blurred street)
                                                         blur
  cast          the chroma's offset from grey over its spread (D/M of the "equivalent circle"
                method): a scene of many colours is not cast, one tinted all over is
                                                         color_cast
  smooth_share  the largest smooth region: 8x8 blocks nearly flat, joined when their neighbours'
                mean colour continues it, as a share of the picture; something in front of the
                lens is one smooth out-of-focus area, where colour bars are many flat areas
                                                         occluded
per pair of consecutive frames, on Y at the analysis size (a sample: the share, or the median)
  still         Y changed by at most STILL_CHANGE on average: the same picture (still_share)
                                                         frozen
  change        the mean frame-to-frame change of Y over the quieter half of the picture: snow
                changes every pixel every frame (compression smooths spatial snow away, not
                temporal), a car changes a small part
                                                         noise
per stream
  the native width and height                            low_resolution
  packet_bytes  the median size of the encoded non-key packets, when known: an encoder repeating
                one picture sends nearly empty frames; one that sends more is seeing change, so
                the sample is not frozen even if its downscaled frames look identical

Some defects hide the picture, and then the metrics read from it mean nothing: a black or
one-colour picture has only those defects (and low_resolution); snow masks blur, colour cast and
occlusion; an occluded picture is not also judged for blur, cast or exposure.

A `Baseline` (the metrics of a camera's normal scene) relaxes the thresholds for that camera, never
tightens them, so a street at night is not too dark and a flat wall is not occluded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from itertools import pairwise
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from slamon.model import Defect

ANALYSIS_WIDTH = 640
"""Frames are decoded this wide: mild blur shows at 640 pixels, not at 320."""

BLACK_LEVEL = 37
"""A pixel is black at or below this Y: 16 + 10 % of 16-235, FFmpeg blackdetect's pixel threshold."""
STILL_CHANGE = 0.02
"""Two frames are still (the same picture) when Y changed by at most this much on average, at the
analysis size: under 2 % of pixels moving by one level, which is what an encoder's refinement of a
repeated picture leaves (its first copies are exact, later ones differ by a rounding here and there)."""

U8: type[np.uint8] = np.uint8
Plane = NDArray[np.uint8]


class Size(NamedTuple):
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture: limited-range (16-235) Y'CbCr 4:2:0 planes at the analysis size."""

    y: Plane  # H x W
    u: Plane  # Cb, H/2 x W/2
    v: Plane  # Cr, H/2 x W/2
    packet_bytes: int | None = None  # the encoded packet it came from, when known
    key: bool = False  # decoded from a keyframe

    def __post_init__(self) -> None:
        if self.y.ndim != 2:
            raise ValueError(f"a frame's luma must be a 2-D array, not {self.y.ndim}-D")
        h, w = self.y.shape
        if h % 4 or w % 4 or h < 8 or w < 8:
            raise ValueError(f"a frame's luma must be at least 8x8 with sides a multiple of 4, not {w}x{h}")
        if self.u.shape != (h // 2, w // 2) or self.v.shape != (h // 2, w // 2):
            raise ValueError(f"chroma planes must be {w // 2}x{h // 2} for a {w}x{h} luma")
        if not (self.y.dtype == self.u.dtype == self.v.dtype == U8):
            raise ValueError("planes must be uint8")


@dataclass(frozen=True, slots=True)
class Sample:
    """Consecutive frames of one stream and the stream's native size."""

    native: Size
    frames: tuple[Frame, ...]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a metric makes a defect. The defaults are set between the clean and the defective
    calibration clips (docs/video.md has the measured margins)."""

    min_width: int = 1920  # low_resolution below this native size (either orientation)
    min_height: int = 1080
    black_share: float = 0.98  # black when this share of pixels is black (blackdetect's pic_th)
    flat_std: float = 2.0  # no_signal when Y's and chroma's standard deviations are both below this
    dark_luma: float = 55.0  # too_dark below this mean Y (16 is black)
    bright_luma: float = 190.0  # too_bright above this mean Y (235 is white)
    blur: float = 0.40  # blur below this sharpness (a sharp picture: about 0.5)
    cast: float = 2.0  # color_cast above this chroma offset / spread
    noise: float = 1.0  # noise above this change (mean |dY| of the quieter half, in Y levels)
    frozen_share: float = 0.5  # frozen when at least this share of consecutive pairs are still
    frozen_packet_bytes: int = 1024  # ... and the median non-key packet, when known, is no bigger
    occluded: float = 0.40  # occluded when the largest smooth region covers this share

    def against(self, baseline: Baseline | None) -> Thresholds:
        """These thresholds relaxed for a camera whose normal scene is `baseline`, never tightened: a
        metric must move well past the camera's normal value to count. Too dark: below half-way from
        black (16) to the normal mean luma; too bright: above half-way from it to white (235); blur:
        below 3/4 of the normal sharpness; cast, noise: above twice the normal value; frozen,
        occluded: from half-way between the normal share and 1."""
        if baseline is None:
            return self
        b = baseline
        return replace(
            self,
            dark_luma=min(self.dark_luma, 16 + (b.mean_luma - 16) / 2),
            bright_luma=max(self.bright_luma, b.mean_luma + (235 - b.mean_luma) / 2),
            blur=min(self.blur, b.sharpness * 0.75),
            cast=max(self.cast, b.cast * 2),
            noise=self.noise if b.change is None else max(self.noise, b.change * 2),
            frozen_share=self.frozen_share
            if b.still_share is None
            else max(self.frozen_share, _past(b.still_share)),
            occluded=max(self.occluded, _past(b.smooth_share)),
        )


def _past(share: float) -> float:
    """Half-way from a normal share to 1; past 1 (never reached) when the normal share is 1 already:
    a camera whose normal picture is all still (or all smooth) cannot be told frozen (occluded)."""
    return (1 + share) / 2 if share < 1 else math.inf


@dataclass(frozen=True, slots=True)
class FrameMetrics:
    """What one frame shows on its own."""

    mean_luma: float
    black_share: float
    luma_std: float
    chroma_std: float
    sharpness: float
    cast: float
    smooth_share: float


@dataclass(frozen=True, slots=True)
class Metrics:
    """The evidence of one sample: per-frame metrics as medians over its frames, pair metrics over
    its consecutive pairs (None with a single frame), the stream's native size."""

    width: int
    height: int
    frames: int
    mean_luma: float
    black_share: float
    luma_std: float
    chroma_std: float
    sharpness: float
    cast: float
    smooth_share: float
    still_share: float | None
    change: float | None
    packet_bytes: float | None

    def as_dict(self, digits: int = 3) -> dict[str, float | int | None]:
        """JSON-ready, rounded (a ProbeResult's detail)."""
        out: dict[str, float | int | None] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = round(value, digits) if isinstance(value, float) else value
        return out


@dataclass(frozen=True, slots=True)
class Baseline:
    """A camera's normal scene: the metrics of a sample a person judged good."""

    mean_luma: float
    sharpness: float
    cast: float
    smooth_share: float
    still_share: float | None = None
    change: float | None = None

    @classmethod
    def of(cls, metrics: Metrics) -> Baseline:
        return cls(
            mean_luma=metrics.mean_luma,
            sharpness=metrics.sharpness,
            cast=metrics.cast,
            smooth_share=metrics.smooth_share,
            still_share=metrics.still_share,
            change=metrics.change,
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The defects a sample shows, and the metrics that show them."""

    defects: frozenset[Defect]
    metrics: Metrics

    @property
    def ok(self) -> bool:
        return not self.defects

    def detail(self) -> dict[str, object]:
        """A video ProbeResult's `detail` (FORMATS.md): native width, height and the metrics."""
        return {"width": self.metrics.width, "height": self.metrics.height, "metrics": self.metrics.as_dict()}


# --- per-frame metrics --------------------------------------------------------------------------


def halve(plane: Plane) -> Plane:
    """The plane at half its width and height, each pixel the rounded mean of a 2x2 block."""
    h, w = plane.shape
    plane = plane[: h // 2 * 2, : w // 2 * 2]
    acc = plane[0::2, 0::2].astype(np.uint16)
    acc += plane[1::2, 0::2]
    acc += plane[0::2, 1::2]
    acc += plane[1::2, 1::2]
    acc += 2
    acc >>= 2
    return acc.astype(U8)


def laplacian_energy(plane: Plane) -> float:
    """Mean square of the 4-neighbour Laplacian over the plane's interior."""
    f = plane.astype(np.int16)  # |4*255| fits: integer steps, one conversion for the dot product
    lap = f[1:-1, 1:-1] * 4
    lap -= f[:-2, 1:-1]
    lap -= f[2:, 1:-1]
    lap -= f[1:-1, :-2]
    lap -= f[1:-1, 2:]
    flat = lap.astype(np.float32).ravel()
    return float(np.dot(flat, flat)) / flat.size


def sharpness(y: Plane, half: Plane | None = None) -> float:
    """The Laplacian's energy at `y`'s size over its energy at half that size: lower as blur widens
    edges (a camera's sharp picture: about 0.5); 0 for a flat picture."""
    coarse = laplacian_energy(halve(y) if half is None else half)
    return laplacian_energy(y) / coarse if coarse > 1e-6 else 0.0


def black_share(y: Plane, level: int) -> float:
    """The share of pixels at or below `level`."""
    return float(np.count_nonzero(y <= level)) / y.size


def cast(u: Plane, v: Plane) -> float:
    """The chroma's offset from neutral grey over its spread: D/M of the equivalent circle (0 for a
    grey or evenly coloured picture, over 1 when a tint outweighs the scene's own colours). The spread
    is the mean absolute deviation of Cb and Cr, with a floor of one level."""
    cu, cv = u.astype(np.float32), v.astype(np.float32)
    mu, mv = float(cu.mean()), float(cv.mean())
    cu -= mu
    cv -= mv
    spread = float(np.hypot(np.abs(cu).mean(), np.abs(cv).mean()))  # mean deviations: a few vivid
    return float(np.hypot(mu - 128.0, mv - 128.0)) / max(spread, 1.0)  # pixels do not hide a tint


SMOOTH_BLOCK = 8  # luma pixels at the half size (4 chroma pixels)
SMOOTH_STD = 3.0  # a block is smooth when its luma's standard deviation is below this
SMOOTH_STEP = 4.0  # and it continues a neighbour's region when no mean (Y, Cb, Cr) steps more than this


def _block_stats(
    plane: Plane, b: int, rows: int, cols: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Each b x b block's mean and variance (the blocks laid out contiguously first: much faster
    than reducing over two strided axes)."""
    blocks = plane[: rows * b, : cols * b].reshape(rows, b, cols, b).transpose(0, 2, 1, 3)
    flat = blocks.reshape(rows * cols, b * b).astype(np.float32)
    mean = flat.sum(axis=1) / (b * b)
    var = np.einsum("ij,ij->i", flat, flat) / (b * b) - mean * mean
    return mean.reshape(rows, cols), var.reshape(rows, cols)


def smooth_share(y: Plane, u: Plane, v: Plane) -> float:
    """The largest 4-connected region of smooth blocks whose mean colour continues smoothly from
    block to block, as a share of all blocks."""
    b = SMOOTH_BLOCK
    rows, cols = y.shape[0] // b, y.shape[1] // b
    if rows == 0 or cols == 0:
        return 0.0
    mean_y, var_y = _block_stats(y, b, rows, cols)
    smooth = var_y < SMOOTH_STD**2
    if not smooth.any():
        return 0.0
    mean_u, _ = _block_stats(u, b // 2, rows, cols)
    mean_v, _ = _block_stats(v, b // 2, rows, cols)
    step_h = np.maximum.reduce([abs(np.diff(m, axis=1)) for m in (mean_y, mean_u, mean_v)])
    step_v = np.maximum.reduce([abs(np.diff(m, axis=0)) for m in (mean_y, mean_u, mean_v)])
    join_h = smooth[:, 1:] & smooth[:, :-1] & (step_h <= SMOOTH_STEP)
    join_v = smooth[1:, :] & smooth[:-1, :] & (step_v <= SMOOTH_STEP)
    return _largest_region(smooth, join_h, join_v) / smooth.size


def _largest_region(member: NDArray[np.bool_], join_h: NDArray[np.bool_], join_v: NDArray[np.bool_]) -> int:
    """Blocks in the largest connected set of `member` blocks, joined where join_h (between a block
    and its right neighbour) or join_v (its lower neighbour) says: each block takes the smallest
    label among its joined neighbours, labels jumping along their chains, until none changes."""
    rows, cols = member.shape
    labels = np.arange(rows * cols, dtype=np.int32).reshape(rows, cols)
    while True:
        new = labels.copy()
        np.minimum(new[:, :-1], np.where(join_h, labels[:, 1:], new[:, :-1]), out=new[:, :-1])
        np.minimum(new[:, 1:], np.where(join_h, labels[:, :-1], new[:, 1:]), out=new[:, 1:])
        np.minimum(new[:-1, :], np.where(join_v, labels[1:, :], new[:-1, :]), out=new[:-1, :])
        np.minimum(new[1:, :], np.where(join_v, labels[:-1, :], new[1:, :]), out=new[1:, :])
        new = new.ravel()[new]  # pointer jumping: a label's own label
        if np.array_equal(new, labels):
            break
        labels = new
    return int(np.bincount(labels[member]).max())


def frame_metrics(frame: Frame) -> FrameMetrics:
    """What one frame shows: exposure, flatness and cast on the half-size picture, sharpness
    across both sizes."""
    y2, u2, v2 = halve(frame.y), halve(frame.u), halve(frame.v)
    luma = y2.astype(np.float32)
    return FrameMetrics(
        mean_luma=float(luma.mean()),
        black_share=black_share(y2, BLACK_LEVEL),
        luma_std=float(luma.std()),
        chroma_std=max(float(u2.std()), float(v2.std())),
        sharpness=sharpness(frame.y, y2),
        cast=cast(u2, v2),
        smooth_share=smooth_share(y2, u2, v2),
    )


# --- pair metrics -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairMetrics:
    """How a frame differs from the one before it (luma at the analysis size)."""

    mean_change: float  # mean |dY|
    change: float  # mean |dY| over the half of the pixels that changed least

    @property
    def still(self) -> bool:
        return self.mean_change <= STILL_CHANGE


def pair_metrics(before: Frame, after: Frame) -> PairMetrics:
    diff = np.maximum(before.y, after.y)
    diff -= np.minimum(before.y, after.y)
    return PairMetrics(mean_change=float(diff.mean(dtype=np.float64)), change=quiet_change(diff))


def quiet_change(diff: Plane) -> float:
    """The mean of absolute differences over the half of the pixels that changed least: motion in
    less than half the picture does not count, snow (new every frame) does."""
    half = diff.size / 2
    if np.count_nonzero(diff <= _COUNTED) >= half:  # the usual case: count up to the median
        counts = [int(np.count_nonzero(diff <= level)) for level in range(_COUNTED + 1)]
    else:  # more than half the picture changed a lot: one histogram
        counts = np.cumsum(np.bincount(diff.ravel(), minlength=256)).tolist()
    total = 0.0
    below = 0  # pixels that changed by less than `level`
    for level, upto in enumerate(counts):
        if upto >= half:
            return (total + (half - below) * level) / half
        total += (upto - below) * level
        below = upto
    raise AssertionError("unreachable: the counts reach every pixel")


_COUNTED = 12  # levels counted one by one before a histogram is cheaper


# --- a sample -----------------------------------------------------------------------------------


def measure(frames: Sequence[Frame], native: Size) -> Metrics:
    """The metrics of consecutive frames of one stream."""
    if not frames:
        raise ValueError("a sample needs at least one frame")
    if len({f.y.shape for f in frames}) > 1:
        raise ValueError("a sample's frames must all have the same size")
    per_frame = [frame_metrics(f) for f in frames]
    pairs = [pair_metrics(a, b) for a, b in pairwise(frames)]
    packets = [f.packet_bytes for f in frames if f.packet_bytes is not None and not f.key]

    def median(name: str) -> float:
        return float(np.median([getattr(m, name) for m in per_frame]))

    return Metrics(
        width=native.width,
        height=native.height,
        frames=len(frames),
        mean_luma=median("mean_luma"),
        black_share=median("black_share"),
        luma_std=median("luma_std"),
        chroma_std=median("chroma_std"),
        sharpness=median("sharpness"),
        cast=median("cast"),
        smooth_share=median("smooth_share"),
        still_share=sum(p.still for p in pairs) / len(pairs) if pairs else None,
        change=float(np.median([p.change for p in pairs])) if pairs else None,
        packet_bytes=float(np.median(packets)) if packets else None,
    )


def judge(metrics: Metrics, thresholds: Thresholds = Thresholds()) -> frozenset[Defect]:
    """The defects the metrics show, under thresholds already adjusted for the camera."""
    t = thresholds
    m = metrics
    found: set[Defect] = set()
    w, h = sorted((m.width, m.height), reverse=True)
    if w < max(t.min_width, t.min_height) or h < min(t.min_width, t.min_height):
        found.add(Defect.LOW_RESOLUTION)
    if m.black_share >= t.black_share:
        return frozenset(found | {Defect.BLACK})
    if m.luma_std < t.flat_std and m.chroma_std < t.flat_std:
        return frozenset(found | {Defect.NO_SIGNAL})
    if (
        m.still_share is not None
        and m.still_share >= t.frozen_share
        and (m.packet_bytes is None or m.packet_bytes <= t.frozen_packet_bytes)
    ):
        found.add(Defect.FROZEN)
    snow = m.change is not None and m.change > t.noise
    if snow:
        found.add(Defect.NOISE)
    occluded = not snow and m.smooth_share >= t.occluded
    if occluded:
        found.add(Defect.OCCLUDED)
    else:
        if m.mean_luma < t.dark_luma:
            found.add(Defect.TOO_DARK)
        elif m.mean_luma > t.bright_luma:
            found.add(Defect.TOO_BRIGHT)
    if not snow and not occluded:
        if m.sharpness < t.blur:
            found.add(Defect.BLUR)
        if m.cast > t.cast:
            found.add(Defect.COLOR_CAST)
    return frozenset(found)


def assess(
    frames: Sequence[Frame],
    native: Size,
    thresholds: Thresholds = Thresholds(),
    baseline: Baseline | None = None,
) -> Verdict:
    """The verdict on a sample: its defects under the thresholds relaxed for the camera's baseline,
    and the metrics as evidence."""
    metrics = measure(frames, native)
    return Verdict(judge(metrics, thresholds.against(baseline)), metrics)
