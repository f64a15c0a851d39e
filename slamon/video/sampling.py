"""One video sample of one camera: connect over RTSP (TCP), read `seconds` of its stream, decode
the first `frames` pictures from its first keyframe, judge them (quality.assess), and say what was
wrong — the picture's defects, or why there was no picture.

Decoding is what costs (a 1080p picture is milliseconds of CPU), so a sample decodes only a few
consecutive pictures, enough for every per-frame metric and for still and changing pairs, and reads
the rest of its seconds without decoding: the encoded sizes of those packets still say whether the
encoder sends change (a frozen encoder sends nearly empty frames). Every wait is bounded by PyAV's
open and read timeouts, and the sample by its own deadline: a silent server, a refused port, a
stream that stops, or one that never sends a picture each end in `no_signal` with the reason.

The stream's credentials are put into the URL here, just before opening it, and never leave: every
message names the URL without them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import av
import av.container

from slamon.model import Defect
from slamon.video.decode import analysis_size, to_frame
from slamon.video.quality import Baseline, Frame, Size, Thresholds, assess

OPTIONS = {"rtsp_transport": "tcp", "analyzeduration": "0", "probesize": "32", "skip_frame": "all"}
"""`skip_frame` reaches only the decoder that opening the stream probes with (FFmpeg's
find_stream_info, which would otherwise decode the first keyframe: a quarter of a sample's CPU),
not the one the sample decodes its pictures with."""


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    seconds: float = 2.0  # of the stream to read
    frames: int = 8  # consecutive pictures decoded, from the first keyframe
    open_timeout: float = 5.0
    read_timeout: float = 5.0
    user: str | None = None
    password: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    baseline: Baseline | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a sample found: its defects (no_signal with `reason` when there was no picture) and the
    evidence (`detail`: the metrics, how much was read)."""

    defects: frozenset[Defect]
    reason: str | None
    detail: dict[str, Any]

    @property
    def ok(self) -> bool:
        return not self.defects


def with_credentials(url: str, user: str | None, password: str | None) -> str:
    """The URL with user and password in it (percent-encoded), when given."""
    if not user:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "") + "@" + host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _no_signal(reason: str, **detail: Any) -> Outcome:
    return Outcome(frozenset({Defect.NO_SIGNAL}), reason, detail)


def _why(exc: BaseException, secret: str, plain: str) -> str:
    """An exception as a reason, the credentials taken out (FFmpeg's messages quote the URL)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text.replace(secret, plain)


def sample(request: Request, clock: Any = time.monotonic) -> Outcome:
    """One sample; never raises for what the camera does."""
    secret = with_credentials(request.url, request.user, request.password)
    started = clock()
    try:
        container = av.open(secret, options=OPTIONS, timeout=(request.open_timeout, request.read_timeout))
    except (OSError, av.error.FFmpegError) as exc:
        return _no_signal(f"cannot open the stream: {_why(exc, secret, request.url)}", seconds=0.0)
    with container:
        try:
            return _read(container, request, started, clock)
        except (OSError, av.error.FFmpegError) as exc:
            return _no_signal(
                f"the stream failed: {_why(exc, secret, request.url)}", seconds=round(clock() - started, 2)
            )


def _read(container: av.container.InputContainer, request: Request, started: float, clock: Any) -> Outcome:
    if not container.streams.video:
        return _no_signal("the stream has no video", seconds=0.0)
    stream = container.streams.video[0]
    frames: list[Frame] = []
    native: Size | None = None
    size = Size(0, 0)
    packets: list[int] = []  # encoded sizes of the non-key packets read
    rate = _rate(stream)
    count = 0  # pictures' packets read: the stream's seconds are count / rate (its timestamps jump
    # when FFmpeg first syncs them to the server's clock, so they do not measure a short read)
    deadline = started + request.open_timeout + request.seconds + request.read_timeout
    seen_key = False
    ended = True  # False when the sample read all its seconds
    for packet in container.demux(stream):
        if packet.size:
            count += 1
            if packet.is_keyframe:
                seen_key = True
            elif seen_key:
                packets.append(packet.size)
        if seen_key and len(frames) < request.frames:
            for image in packet.decode():
                if native is None:
                    native = Size(image.width, image.height)
                    size = analysis_size(native)
                frames.append(to_frame(image, size, packet.size, bool(image.key_frame)))
        if count / rate >= request.seconds:
            ended = False
            break
        if clock() > deadline:
            return _no_signal(
                f"the stream sent {count / rate:.1f} s of {request.seconds:g} s within {deadline - started:.0f} s",
                seconds=round(count / rate, 2),
            )
    read = count / rate
    if not frames:
        what = "no picture" if count else "nothing"
        return _no_signal(
            f"connected, but the stream sent {what} in {clock() - started:.1f} s", seconds=round(read, 2)
        )
    if ended:
        return _no_signal(
            f"the stream stopped after {read:.1f} s of {request.seconds:g} s", seconds=round(read, 2)
        )
    assert native is not None
    if packets:  # the median of every non-key packet of the sample, not only of the decoded few
        packets.sort()
        median = packets[len(packets) // 2]
        frames = [f if f.key else replace(f, packet_bytes=median) for f in frames]
    verdict = assess(frames, native, request.thresholds, request.baseline)
    return Outcome(
        verdict.defects, None, {**verdict.detail(), "seconds": round(read, 2), "packets": len(packets)}
    )


def _rate(stream: Any) -> float:
    """Pictures per second: what the stream says, else a camera's usual 25."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = float(rate)
            if 1 <= value <= 240:
                return value
    return 25.0
