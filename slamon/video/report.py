"""docs/video.md's decision table: every calibration clip measured, judged, and seen by FFmpeg.

`python -m slamon.video.calibration table` prints it; `... table --write docs/video.md` replaces
the table between the file's markers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import av
import numpy as np

from slamon.video.calibration import CLIPS, FPS
from slamon.video.decode import frames_from
from slamon.video.quality import Metrics, Sample, Thresholds, Verdict, assess, frame_metrics, pair_metrics
from slamon.video.reference import FfmpegFindings, ffmpeg_findings

SAMPLE_FRAMES = 2 * FPS  # a 2 s sample, as probes.video.sample defaults to
BEGIN = "<!-- decision table: python -m slamon.video.calibration table --write docs/video.md -->"
END = "<!-- end of decision table -->"


def sample_of(path: Path, frames: int = SAMPLE_FRAMES) -> Sample:
    with av.open(str(path)) as container:
        return frames_from(container, frames)


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    verdict: Verdict
    lap_norm: float  # Laplacian variance over luma variance at the analysis size (for comparison)
    ms_per_frame: float  # the metrics' cost
    ffmpeg: FfmpegFindings


def lap_norm(sample: Sample) -> float:
    """The textbook blur measure, shown for comparison: Laplacian variance / luma variance."""
    values = []
    for f in sample.frames:
        y = f.y.astype(np.float32)
        lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
        var = float(y.var())
        values.append(float(lap.var()) / var if var > 0 else 0.0)
    return float(np.median(values))


def cost_ms(sample: Sample, repeat: int = 5) -> float:
    """The CPU time of every metric of the sample, per frame: the best of `repeat` runs (CPU time,
    not wall time: other work on a shared machine does not count)."""
    best = math.inf
    for _ in range(repeat):
        start = time.process_time()
        for f in sample.frames:
            frame_metrics(f)
        for a, b in pairwise(sample.frames):
            pair_metrics(a, b)
        best = min(best, time.process_time() - start)
    return best / len(sample.frames) * 1e3


def measure_clips(paths: Mapping[str, Path]) -> list[Row]:
    rows = []
    for name, path in paths.items():
        sample = sample_of(path)
        rows.append(
            Row(
                name=name,
                verdict=assess(sample.frames, sample.native),
                lap_norm=lap_norm(sample),
                ms_per_frame=cost_ms(sample),
                ffmpeg=ffmpeg_findings(path, len(sample.frames) / FPS),
            )
        )
    return rows


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def decision_table(paths: Mapping[str, Path]) -> str:
    """The markdown table: one row per clip, the metrics each defect is decided on, the verdict,
    what FFmpeg's detectors say, and the thresholds."""
    rows = measure_clips(paths)
    t = Thresholds()
    head = (
        "| clip | native | mean_luma | black_share | luma_std / chroma_std | sharpness | lap/var | cast "
        "| smooth_share | still_share | change | packet_bytes | verdict | expected | ffmpeg black / frozen s | "
        "ffmpeg blur |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        m: Metrics = r.verdict.metrics
        verdict = ", ".join(sorted(d.value for d in r.verdict.defects)) or "clean"
        expected = ", ".join(sorted(d.value for d in CLIPS[r.name].expected)) or "clean"
        lines.append(
            f"| {r.name} | {m.width}x{m.height} | {_num(m.mean_luma, 1)} | {_num(m.black_share)} "
            f"| {_num(m.luma_std, 1)} / {_num(m.chroma_std, 1)} | {_num(m.sharpness, 3)} | {_num(r.lap_norm, 3)} "
            f"| {_num(m.cast)} | {_num(m.smooth_share)} | {_num(m.still_share)} | {_num(m.change)} "
            f"| {_num(m.packet_bytes, 0)} | **{verdict}** | {expected} "
            f"| {_num(r.ffmpeg.black_s, 1)} / {_num(r.ffmpeg.frozen_s, 1)} | {_num(r.ffmpeg.blur, 1)} |"
        )
    lines.append(
        f"| *thresholds* | ≥ {t.min_width}x{t.min_height} | < {t.dark_luma:g} or > {t.bright_luma:g} "
        f"| ≥ {t.black_share:g} | both < {t.flat_std:g} | < {t.blur:g} | | > {t.cast:g} | ≥ {t.occluded:g} "
        f"| ≥ {t.frozen_share:g} | > {t.noise:g} | ≤ {t.frozen_packet_bytes} (with still_share) | | | | |"
    )
    costs = sorted(r.ms_per_frame for r in rows)
    lines.append("")
    lines.append(
        f"{len(rows)} clips, {SAMPLE_FRAMES} frames each at the analysis size; every metric of a frame "
        f"costs {costs[0]:.2f}–{costs[-1]:.2f} ms of CPU (median {costs[len(costs) // 2]:.2f} ms) on this machine."
    )
    return "\n".join(lines) + "\n"


def write_into(doc: Path, table: str) -> None:
    """Replace the table between the document's markers."""
    text = doc.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    doc.write_text(text[:start] + "\n" + table + text[end:])
