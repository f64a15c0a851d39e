"""The calibration clips, made once (cached across runs) and decoded once per session."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from slamon.video.calibration import CLIPS, cache_dir, make_clip
from slamon.video.quality import Sample
from slamon.video.report import sample_of


@pytest.fixture(scope="session")
def clip_dir() -> Path:
    """$SLAMON_VIDEO_CLIPS, else ~/.cache/slamon/video-clips (calibration.cache_dir, which the RTSP
    harness uses too): clips are made once and kept, keyed by their recipe and FFmpeg's version."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    return cache_dir()


@pytest.fixture(scope="session")
def clip_paths(clip_dir: Path) -> Mapping[str, Path]:
    return {name: make_clip(clip, clip_dir) for name, clip in CLIPS.items()}


@pytest.fixture(scope="session")
def samples(clip_paths: Mapping[str, Path]) -> Mapping[str, Sample]:
    """Every clip's first 2 s (50 frames), as a prober's sample."""
    return {name: sample_of(path) for name, path in clip_paths.items()}
