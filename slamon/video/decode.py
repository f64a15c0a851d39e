"""Frames of a video for `quality` to judge, decoded with PyAV (the I/O edge of slamon.video).

The caller opens the container (a file, or an RTSP URL with its own timeouts) and owns the deadline;
`frames_from` decodes the first video stream's next `count` frames and hands them over as `Frame`s:
8-bit limited-range Y'CbCr 4:2:0 planes, scaled by swscale (area averaging) to `width` pixels wide,
with the size of the encoded packet each came from. A stream that ends early gives fewer frames;
one that gives none gives an empty sample, which is the caller's evidence, not an exception here.
"""

from __future__ import annotations

from collections.abc import Iterator

import av
import av.container
import av.video.frame
import numpy as np

from slamon.video.quality import ANALYSIS_WIDTH, Frame, Sample, Size

_MPEG = av.video.reformatter.ColorRange.MPEG
_AREA = av.video.reformatter.Interpolation.AREA


def analysis_size(native: Size, width: int = ANALYSIS_WIDTH) -> Size:
    """The size frames are scaled to: `width` wide (never wider than the stream), the stream's
    aspect, both sides a multiple of 4 (so the half-size planes halve again evenly), at least 8."""
    w = max(8, min(width, native.width) // 4 * 4)
    h = max(8, round(native.height * w / native.width / 4) * 4)
    return Size(w, h)


def to_frame(image: av.video.frame.VideoFrame, size: Size, packet_bytes: int | None, key: bool) -> Frame:
    """One decoded picture as planes of `size` (Y) and half of it (Cb, Cr)."""
    scaled = image.reformat(
        width=size.width,
        height=size.height,
        format="yuv420p",
        interpolation=_AREA,
        dst_color_range=_MPEG,
    )
    yuv = np.asarray(
        scaled.to_ndarray(), dtype=np.uint8
    )  # the three planes stacked: H rows of Y, then H/4 rows each of U, V
    h, w = size.height, size.width
    y = np.ascontiguousarray(yuv[:h])
    u = yuv[h : h + h // 4].reshape(h // 2, w // 2)
    v = yuv[h + h // 4 :].reshape(h // 2, w // 2)
    return Frame(y=y, u=u, v=v, packet_bytes=packet_bytes, key=key)


def _decoded(
    container: av.container.InputContainer,
) -> Iterator[tuple[av.video.frame.VideoFrame, int | None, bool]]:
    if not container.streams.video:
        return
    stream = container.streams.video[0]
    sizes: dict[int, tuple[int, bool]] = {}  # pts → the packet's size and keyframe flag
    for packet in container.demux(stream):
        if packet.pts is not None:
            sizes[packet.pts] = (packet.size, packet.is_keyframe)
        for image in packet.decode():
            size, key = (
                sizes.pop(image.pts, (None, image.key_frame)) if image.pts is not None else (None, False)
            )
            yield image, size, bool(key)


def frames_from(
    container: av.container.InputContainer, count: int = 50, width: int = ANALYSIS_WIDTH
) -> Sample:
    """The next `count` frames of the container's first video stream, scaled to `width`."""
    frames: list[Frame] = []
    native: Size | None = None
    size = Size(0, 0)
    for image, packet_bytes, key in _decoded(container):
        if native is None:
            native = Size(image.width, image.height)
            size = analysis_size(native, width)
        frames.append(to_frame(image, size, packet_bytes, key))
        if len(frames) >= count:
            break
    return Sample(native=native or Size(0, 0), frames=tuple(frames))
