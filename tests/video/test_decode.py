"""Decoding with PyAV into frames: the analysis size, the planes, packet sizes and keyframes, the
colour range."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

import av
import numpy as np
import pytest

from slamon.video.decode import analysis_size, frames_from
from slamon.video.quality import Size


@pytest.mark.parametrize(
    ("native", "size"),
    [
        (Size(1920, 1080), Size(640, 360)),
        (Size(3840, 2160), Size(640, 360)),
        (Size(640, 360), Size(640, 360)),
        (Size(704, 576), Size(640, 524)),  # D1 (4:3 with non-square pixels, as stored)
        (Size(352, 288), Size(352, 288)),  # CIF: never scaled up
        (Size(650, 366), Size(640, 360)),
        (Size(1080, 1920), Size(640, 1136)),  # portrait
        (Size(2, 2), Size(8, 8)),  # the smallest frame quality takes
    ],
)
def test_analysis_size(native: Size, size: Size) -> None:
    assert analysis_size(native) == size


def test_frames_of_a_1080p_clip(clip_paths: Mapping[str, Path]) -> None:
    with av.open(str(clip_paths["clean"])) as container:
        sample = frames_from(container, 30)
    assert sample.native == Size(1920, 1080)
    assert len(sample.frames) == 30
    first = sample.frames[0]
    assert first.y.shape == (360, 640)
    assert first.u.shape == first.v.shape == (180, 320)
    assert [i for i, f in enumerate(sample.frames) if f.key] == [0, 25]  # a keyframe a second
    sizes = [f.packet_bytes or 0 for f in sample.frames]
    assert all(sizes)
    assert sizes[0] > 10 * sizes[1]  # an IDR frame against the P-frame after it


def test_a_small_stream_is_not_scaled_up(clip_paths: Mapping[str, Path]) -> None:
    with av.open(str(clip_paths["lowres_360p"])) as container:
        sample = frames_from(container, 5)
    assert sample.native == Size(640, 360)
    assert sample.frames[0].y.shape == (360, 640)


def test_a_short_stream_gives_what_it_has(clip_paths: Mapping[str, Path]) -> None:
    with av.open(str(clip_paths["no_signal"])) as container:
        sample = frames_from(container, 1000)
    assert len(sample.frames) == 75  # 3 s at 25 fps


def _make(tmp_path: Path, name: str, *args: str) -> Path:
    out = tmp_path / name
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args, str(out)], check=True)
    return out


@pytest.mark.usefixtures("clip_dir")  # skips without ffmpeg
@pytest.mark.parametrize(("colour", "luma"), [("black", 16), ("white", 235)])
def test_full_range_video_is_read_as_limited_range(tmp_path: Path, colour: str, luma: int) -> None:
    """Many IP cameras send full-range (JPEG) Y'CbCr: black is Y 0 there, 16 in what quality reads."""
    path = _make(
        tmp_path,
        f"{colour}.mp4",
        *("-f", "lavfi", "-i", f"color=c={colour}:s=320x240:d=0.2"),
        *("-c:v", "libx264", "-pix_fmt", "yuvj420p", "-color_range", "pc"),
    )
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.color_range == 2  # JPEG
        sample = frames_from(container, 3)
    y = sample.frames[0].y
    assert abs(float(np.mean(y)) - luma) <= 1
    assert abs(float(np.mean(sample.frames[0].u)) - 128) <= 1


@pytest.mark.usefixtures("clip_dir")
def test_a_file_without_video_gives_no_frames(tmp_path: Path) -> None:
    path = _make(tmp_path, "audio.mka", *("-f", "lavfi", "-i", "anullsrc=d=0.5"), "-c:a", "pcm_s16le")
    with av.open(str(path)) as container:
        sample = frames_from(container, 10)
    assert sample.frames == ()
    assert sample.native == Size(0, 0)
