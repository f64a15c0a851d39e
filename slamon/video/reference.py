"""FFmpeg's own detectors on a video file, for cross-checking `quality` (tests, docs/video.md).

* blackdetect (its defaults: a pixel is black at 10 % of the luma range, a picture at 98 % black
  pixels; `d=0.5`): the seconds of black picture;
* freezedetect (`n=-50dB:d=0.5`; -50 dB as the research found for an encoder that refines a repeated
  picture now and then): the seconds of frozen picture;
* blurdetect (on every 5th frame: it costs some 60 ms a 1080p frame): the mean edge width, larger
  when blurred; NaN when a picture has no edges.
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

BLACK = "blackdetect=d=0.5:pix_th=0.10:pic_th=0.98"
FREEZE = "freezedetect=n=-50dB:d=0.5"
BLUR = "select='not(mod(n\\,5))',blurdetect"

_BLACK = re.compile(r"black_start:\s*([\d.]+)\s+black_end:\s*([\d.]+)")
_FREEZE_START = re.compile(r"freeze_start:\s*([\d.]+)")
_FREEZE_END = re.compile(r"freeze_end:\s*([\d.]+)")
_BLUR = re.compile(r"blur mean:\s*(\S+)")


@dataclass(frozen=True, slots=True)
class FfmpegFindings:
    duration: float  # seconds of video the filters saw
    black_s: float
    frozen_s: float
    blur: float  # blurdetect's mean; NaN when it measured nothing

    @property
    def black_share(self) -> float:
        return self.black_s / self.duration

    @property
    def frozen_share(self) -> float:
        return self.frozen_s / self.duration


def _log(path: Path, graph: str, seconds: float, ffmpeg: str) -> str:
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-t", f"{seconds}", "-i", str(path)]
    cmd += ["-vf", graph, "-an", "-f", "null", "-"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603  (argv, no shell)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg {graph} on {path} failed: {done.stderr.strip()[-500:]}")
    return done.stderr


def ffmpeg_findings(path: Path, seconds: float, ffmpeg: str = "ffmpeg") -> FfmpegFindings:
    """What FFmpeg's detectors find in the first `seconds` of the file."""
    log = _log(path, f"{BLACK},{FREEZE}", seconds, ffmpeg)
    black = sum(float(end) - float(start) for start, end in _BLACK.findall(log))
    starts = [float(s) for s in _FREEZE_START.findall(log)]
    ends = [float(e) for e in _FREEZE_END.findall(log)]
    ends += [seconds] * (len(starts) - len(ends))  # a freeze still on at the end is not closed
    frozen = sum(e - s for s, e in zip(starts, ends, strict=True))
    blur_log = _BLUR.findall(_log(path, BLUR, seconds, ffmpeg))
    blur = float(blur_log[-1]) if blur_log else math.nan
    return FfmpegFindings(duration=seconds, black_s=black, frozen_s=frozen, blur=blur)
