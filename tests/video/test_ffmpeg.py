"""FFmpeg's own detectors agree with ours on the same clips: blackdetect on black, freezedetect on
frozen, blurdetect on blur."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pytest

from slamon.model import Defect
from slamon.video.calibration import FPS
from slamon.video.quality import Metrics, Sample, Thresholds, assess
from slamon.video.reference import FfmpegFindings, ffmpeg_findings

BLURDETECT_BLURRED = 7.5
"""blurdetect's mean edge width above which FFmpeg calls a clip blurred: its clean clips measure
4.5-6.6 (the 640x360 one widest), blur_mild 9, blur_strong 19."""


@pytest.fixture(scope="module")
def findings(clip_paths: Mapping[str, Path], samples: Mapping[str, Sample]) -> Mapping[str, FfmpegFindings]:
    return {name: ffmpeg_findings(path, len(samples[name].frames) / FPS) for name, path in clip_paths.items()}


@pytest.fixture(scope="module")
def metrics(samples: Mapping[str, Sample]) -> Mapping[str, Metrics]:
    return {name: assess(s.frames, s.native).metrics for name, s in samples.items()}


def test_blackdetect_agrees(findings: Mapping[str, FfmpegFindings], samples: Mapping[str, Sample]) -> None:
    theirs = {name for name, f in findings.items() if f.black_share >= 0.5}
    ours = {name for name, s in samples.items() if Defect.BLACK in assess(s.frames, s.native).defects}
    assert theirs == ours == {"black"}
    assert findings["black"].black_share > 0.95


def test_freezedetect_agrees(findings: Mapping[str, FfmpegFindings], metrics: Mapping[str, Metrics]) -> None:
    """Where the picture is not black (freezedetect reads a lens cap's faint noise as half frozen),
    FFmpeg finds a freeze over most of the clip exactly where our still pairs make the majority: the
    frozen clip, and the blue no-signal screen (whose verdict is no_signal, which masks frozen)."""
    t = Thresholds()
    judged = [name for name, f in findings.items() if f.black_share < 0.5]
    theirs = {name for name in judged if findings[name].frozen_share >= 0.5}
    ours = {name for name in judged if (metrics[name].still_share or 0.0) >= t.frozen_share}
    assert theirs == ours == {"frozen", "no_signal"}
    assert findings["frozen"].frozen_share > 0.9


def test_blurdetect_agrees(findings: Mapping[str, FfmpegFindings], samples: Mapping[str, Sample]) -> None:
    """On every clip whose picture is judged for blur (not black, flat, snowy or occluded: there
    blurdetect measures nothing or noise), FFmpeg's edge width calls blurred what we do."""
    verdicts = {name: assess(s.frames, s.native).defects for name, s in samples.items()}
    masking = {Defect.BLACK, Defect.NO_SIGNAL, Defect.NOISE, Defect.OCCLUDED}
    judged = [name for name, defects in verdicts.items() if not defects & masking]
    assert all(not math.isnan(findings[name].blur) for name in judged)
    theirs = {name for name in judged if findings[name].blur > BLURDETECT_BLURRED}
    ours = {name for name in judged if Defect.BLUR in verdicts[name]}
    assert theirs == ours == {"blur_mild", "blur_strong"}


def test_blur_is_ordered_alike(
    findings: Mapping[str, FfmpegFindings], metrics: Mapping[str, Metrics]
) -> None:
    """Sharper by our measure is narrower edges by FFmpeg's: clean, then mild, then strong blur."""
    order = ["clean", "blur_mild", "blur_strong"]
    assert [findings[n].blur for n in order] == sorted(findings[n].blur for n in order)
    assert [metrics[n].sharpness for n in order] == sorted(
        (metrics[n].sharpness for n in order), reverse=True
    )
