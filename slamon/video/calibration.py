"""The calibration set: short H.264 clips of a clean scene and of each picture defect, made with
FFmpeg's lavfi sources, so that every threshold of `quality` is measured, not guessed.

The scene stands in for a street camera: a textured background (foliage, a road with a lane line,
two buildings with windows), a vehicle (FFmpeg's `testsrc2` card) driving across, and sensor noise
that changes every frame, as a real sensor's does. Each defect is made the way it happens:

* optics (before the sensor): blur (a lens out of focus), occlusion (something in front of the lens);
* exposure: the picture darkened or brightened towards black or white, then the sensor's noise;
* processing (after the sensor): a colour cast (white balance), a frozen picture (the encoder
  repeats one frame), a smaller picture (low resolution);
* transmission: snow (noise that hides part or all of the picture);
* no picture at all: black (lens cap), one flat colour (an encoder's blue "no video" screen).

Clips are H.264 in MP4 (x264, 6 Mb/s, a keyframe a second, no B-frames, as IP cameras send), made
on demand into a cache folder keyed by the recipe, FFmpeg's version and the encoder settings, never
committed. `python -m slamon.video.calibration table` measures every clip and prints the decision
table of docs/video.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from slamon.model import Defect

FPS = 25
SECONDS = 3
ENCODE: tuple[str, ...] = (
    *("-c:v", "libx264", "-preset", "veryfast", "-b:v", "6M", "-maxrate", "6M", "-bufsize", "6M"),
    *("-g", str(FPS), "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p", "-threads", "2", "-an"),
)
"""x264 as an IP camera encodes: constant 6 Mb/s, a keyframe every second, no scene-cut keyframes,
no B-frames."""


@dataclass(frozen=True, slots=True)
class Clip:
    """One calibration clip: how it is made and what the verdict on it must be."""

    name: str
    about: str
    graph: str  # an FFmpeg filter graph whose output pad is [out]
    expected: frozenset[Defect]
    size: tuple[int, int] = (1920, 1080)

    @property
    def key(self) -> str:
        """Changes with the recipe and the encoder settings: a cached file of another key is stale."""
        text = "\n".join((self.graph, " ".join(ENCODE), str(self.size), str(FPS), str(SECONDS)))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _src(kind: str, size: tuple[int, int] = (1920, 1080), extra: str = "") -> str:
    """A lavfi source of the clip's length."""
    sep = ":" if extra else ""
    return f"{kind}=s={size[0]}x{size[1]}:r={FPS}:d={SECONDS}{sep}{extra}"


def _background() -> str:
    """The scene's still part, [bg]: foliage-like texture (three octaves of smoothed static noise),
    a road with a lane line, two buildings with a grid of windows."""
    full = (1920, 1080)
    return ";".join(
        (
            (
                f"{_src('color', (48, 27), 'c=0x747a6e')},noise=c0s=60:c1s=14:c2s=14:all_seed=11,"
                "scale=1920:1080:flags=bicubic,format=yuv420p[coarse]"
            ),
            (
                f"{_src('color', (480, 270), 'c=0x808080')},noise=c0s=50:all_seed=12,gblur=sigma=0.8,"
                "scale=1920:1080:flags=bicubic,format=yuv420p[mid]"
            ),
            f"{_src('color', full, 'c=0x808080')},noise=c0s=24:all_seed=13,gblur=sigma=0.7,format=yuv420p[fine]",
            "[coarse][mid]blend=c0_mode=overlay:c1_mode=normal:c2_mode=normal[cm]",
            "[cm][fine]blend=c0_mode=overlay:c1_mode=normal:c2_mode=normal[tex]",
            (
                f"{_src('color', (420, 520), 'c=0xb0a898')},noise=c0s=14:all_seed=14,gblur=sigma=1,"
                "drawgrid=w=60:h=80:t=6:color=0x303840,format=yuv420p[bld]"
            ),
            (
                f"{_src('color', (300, 380), 'c=0x8a6a50')},noise=c0s=14:all_seed=15,gblur=sigma=1,"
                "drawgrid=w=100:h=40:t=4:color=0x403020,format=yuv420p[bld2]"
            ),
            (
                "[tex]drawbox=x=0:y=700:w=1920:h=260:color=0x505050@0.7:t=fill,"
                "drawbox=x=0:y=818:w=1920:h=10:color=0xe0e0d0@0.9:t=fill[road]"
            ),
            "[road][bld]overlay=x=1100:y=120[b1]",
            "[b1][bld2]overlay=x=200:y=260[bg]",
        )
    )


SENSOR_NOISE = "noise=c0s=6:c0f=t:c1s=3:c1f=t:c2s=3:c2f=t"


def _scene(*, moving: bool = True, optics: str = "", exposure: str = "", processing: str = "") -> str:
    """The street scene with a defect inserted where it happens (each part a comma-joined filter
    chain, or empty)."""
    parts = [_background()]
    if moving:
        parts.append(f"{_src('testsrc2', (360, 240))},format=yuv420p[car]")
        parts.append("[bg][car]overlay=x='mod(120+t*420\\,2200)-280':y=600[lit]")
    else:
        parts.append("[bg]null[lit]")
    chain = [f for f in (optics, exposure, SENSOR_NOISE, processing) if f]
    parts.append(f"[lit]{','.join(chain)}[out]")
    return ";".join(parts)


_OCCLUDER = (
    # something close to the lens: dark, out of focus, shaded, over the left 70 % of the view
    f"{_src('gradients', (1340, 1080), 'c0=0x3c3430:c1=0x5a5048:x0=0:y0=0:x1=1340:y1=1080:speed=0.00001')},"
    "format=yuv420p[occ]"
)


def _occluded() -> str:
    scene = _scene().replace("[lit]" + SENSOR_NOISE, "[seen]" + SENSOR_NOISE)
    return scene.replace(
        "[bg][car]overlay=x='mod(120+t*420\\,2200)-280':y=600[lit]",
        "[bg][car]overlay=x='mod(120+t*420\\,2200)-280':y=600[lit];"
        f"{_OCCLUDER};[lit][occ]overlay=x=0:y=0[seen]",
    )


def _snow(strength: float, picture: str | None) -> str:
    """Analogue snow: luma noise, new every frame, with the grain of a standard-definition signal
    (made at 480x270, then scaled up), over the picture at `strength` (1: no picture left)."""
    snow = f"{_src('color', (480, 270), 'c=0x808080')},noise=c0s=100:c0f=t+u:all_seed=21,scale=1920:1080:flags=bicubic[snow]"
    if picture is None:
        return snow.replace("[snow]", ",format=yuv420p[out]")
    pic = picture.replace("[out]", "[pic]")
    return (
        f"{pic};{snow};[snow][pic]blend=c0_mode=normal:c0_opacity={strength}:c1_opacity=0:c2_opacity=0[out]"
    )


def _flat(colour: str, noise: bool) -> str:
    chain = f"{_src('color', extra=f'c={colour}')},format=yuv420p"
    return f"{chain},{SENSOR_NOISE}[out]" if noise else f"{chain}[out]"


_NONE: frozenset[Defect] = frozenset()
D = Defect

CLIPS: Mapping[str, Clip] = {
    c.name: c
    for c in (
        Clip("clean", "the street scene, a vehicle crossing", _scene(), _NONE),
        Clip(
            "static",
            "the street scene with nothing moving: only the sensor's noise",
            _scene(moving=False),
            _NONE,
        ),
        Clip(
            "testsrc2",
            "FFmpeg's moving test card, with sensor noise",
            f"{_src('testsrc2')},{SENSOR_NOISE}[out]",
            _NONE,
        ),
        Clip(
            "bars", "SMPTE colour bars, with sensor noise", f"{_src('smptebars')},{SENSOR_NOISE}[out]", _NONE
        ),
        Clip(
            "lowres_360p",
            "the scene sent at 640x360",
            _scene(processing="scale=640:360:flags=bicubic"),
            frozenset({D.LOW_RESOLUTION}),
            (640, 360),
        ),
        Clip(
            "black",
            "a lens cap: black with the sensor's noise",
            _flat("black", noise=True),
            frozenset({D.BLACK}),
        ),
        Clip(
            "no_signal",
            "an encoder's blue 'no video' screen",
            _flat("0x1030c0", noise=False),
            frozenset({D.NO_SIGNAL}),
        ),
        Clip(
            "dark",
            "under-exposed: luma and chroma pulled to 25 % towards black",
            _scene(exposure="lutyuv=y='16+(val-16)*0.25':u='128+(val-128)*0.5':v='128+(val-128)*0.5'"),
            frozenset({D.TOO_DARK}),
        ),
        Clip(
            "bright",
            "over-exposed: luma pushed to 25 % from white",
            _scene(exposure="lutyuv=y='235-(235-val)*0.25':u='128+(val-128)*0.6':v='128+(val-128)*0.6'"),
            frozenset({D.TOO_BRIGHT}),
        ),
        Clip(
            "blur_mild",
            "slightly out of focus (Gaussian sigma 2 px at 1080p)",
            _scene(optics="gblur=sigma=2"),
            frozenset({D.BLUR}),
        ),
        Clip(
            "blur_strong",
            "out of focus (Gaussian sigma 6 px at 1080p)",
            _scene(optics="gblur=sigma=6"),
            frozenset({D.BLUR}),
        ),
        Clip(
            "color_cast",
            "white balance gone: chroma shifted towards red-orange",
            _scene(processing="lutyuv=u='val-22':v='val+30'"),
            frozenset({D.COLOR_CAST}),
        ),
        Clip(
            "snow_partial",
            "a weak analogue signal: snow over the whole picture, the picture still visible",
            _snow(0.4, _scene()),
            frozenset({D.NOISE}),
        ),
        Clip(
            "snow_full",
            "no picture, only snow",
            _snow(1.0, None),
            frozenset({D.NOISE}),
        ),
        Clip(
            "frozen",
            "the encoder repeats one picture of the scene",
            _scene(processing="trim=end_frame=1,loop=loop=-1:size=1:start=0,setpts=N/25/TB"),
            frozenset({D.FROZEN}),
        ),
        Clip(
            "occluded",
            "something dark and out of focus over 70 % of the view",
            _occluded(),
            frozenset({D.OCCLUDED}),
        ),
    )
}


def cache_dir() -> Path:
    """Where clips are kept: $SLAMON_VIDEO_CLIPS, else $XDG_CACHE_HOME/slamon/video-clips."""
    if env := os.environ.get("SLAMON_VIDEO_CLIPS"):
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "slamon" / "video-clips"


def ffmpeg_version(ffmpeg: str = "ffmpeg") -> str:
    out = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    return out.split()[2]


def make_clip(clip: Clip, directory: Path | None = None, ffmpeg: str = "ffmpeg") -> Path:
    """The clip's file, made first if it is not in the cache."""
    directory = directory or cache_dir()
    version = hashlib.sha256(ffmpeg_version(ffmpeg).encode()).hexdigest()[:6]
    path = directory / f"{clip.name}-{clip.key}-{version}.mp4"
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    part = directory / f".{path.stem}.{os.getpid()}.{time.monotonic_ns()}.mp4"  # others may make it too
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-filter_complex", clip.graph]
    cmd += ["-map", "[out]", "-frames:v", str(FPS * SECONDS), *ENCODE, str(part)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603  (argv, no shell)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg could not make clip {clip.name!r}: {done.stderr.strip()}")
    part.replace(path)
    return path


def make_all(names: Sequence[str] | None = None, directory: Path | None = None) -> dict[str, Path]:
    return {n: make_clip(CLIPS[n], directory) for n in names or CLIPS}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slamon.video.calibration", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="make the clips (cached) and print their paths")
    make.add_argument("names", nargs="*", help="clip names (default: all)")
    table = sub.add_parser("table", help="measure every clip and print docs/video.md's decision table")
    table.add_argument("--write", type=Path, metavar="DOC", help="replace the table in DOC instead")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        parser.error("ffmpeg is not installed")
    if args.command == "make":
        for name, path in make_all(args.names).items():
            sys.stdout.write(f"{name}\t{path}\n")
        return 0
    from slamon.video.report import decision_table, write_into  # PyAV only when measuring

    text = decision_table(make_all())
    if args.write:
        write_into(args.write, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
