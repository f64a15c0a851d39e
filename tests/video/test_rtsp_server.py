"""The RTSP test server itself (tests/harness/rtsp.py): it serves the calibration clips as mounts,
a mount's picture switches for the next session, and the silent and refusing ports fail as a
camera's would, within PyAV's timeouts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import av
import numpy as np
import pytest

from slamon.video.calibration import make_all
from tests.harness.rtsp import RtspServer, refused_port, require_rtsp_server, silent_listener

OPTIONS = {"rtsp_transport": "tcp", "analyzeduration": "0", "probesize": "32"}


@pytest.fixture(scope="module")
def server() -> Iterator[RtspServer]:
    require_rtsp_server()
    clips = make_all(["clean", "black"])
    with RtspServer({"cam": clips["clean"], "other": clips["black"]}) as s:
        yield s


def first_frame_luma(url: str) -> tuple[int, int, float]:
    with av.open(url, options=OPTIONS, timeout=(3, 3)) as container:
        for frame in container.decode(video=0):
            return frame.width, frame.height, float(np.asarray(frame.to_ndarray(format="gray")).mean())
    raise AssertionError("no frame")


def test_it_serves_clips_and_switches_a_mount(server: RtspServer) -> None:
    width, height, clean = first_frame_luma(server.url("cam"))
    assert (width, height) == (1920, 1080)
    assert clean > 60
    assert first_frame_luma(server.url("other"))[2] < 20
    server.switch("cam", make_all(["black"])["black"])
    assert first_frame_luma(server.url("cam"))[2] < 20


def test_a_silent_port_and_a_refusing_one_fail_within_the_timeout() -> None:
    with silent_listener() as port:
        started = time.monotonic()
        with pytest.raises(av.error.FFmpegError):
            av.open(f"rtsp://127.0.0.1:{port}/cam", options=OPTIONS, timeout=(1, 1))
        assert time.monotonic() - started < 3
    with pytest.raises((ConnectionRefusedError, av.error.FFmpegError)):
        av.open(f"rtsp://127.0.0.1:{refused_port()}/cam", options=OPTIONS, timeout=(1, 1))
