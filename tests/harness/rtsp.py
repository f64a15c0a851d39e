"""RTSP servers on loopback for the video tests: a real one (gst-rtsp-server, rtsp_server.py, run
by the system Python) serving clips as mounts whose picture can be switched, and a listener that
accepts and then says nothing (a camera whose RTSP service hangs).

The real server needs Debian's gir1.2-gst-rtsp-server-1.0, python3-gi and GStreamer's plugins;
tests skip without them, except where SLAMON_REQUIRE_VIDEO is set (CI).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Self

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).with_name("rtsp_server.py")
PACKAGES = (
    "gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-bad gstreamer1.0-libav"
)
START_WITHIN = 15.0


def unavailable() -> str | None:
    """Why the real server cannot run here, or None."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} is missing"
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    done = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"gst-rtsp-server is not installed (apt-get install {PACKAGES})"
    return None


def require_rtsp_server() -> None:
    reason = unavailable()
    if reason is None:
        return
    if os.environ.get("SLAMON_REQUIRE_VIDEO"):
        pytest.fail(reason)
    pytest.skip(reason)


class RtspServer:
    """gst-rtsp-server on 127.0.0.1 at a free port, stopped by its PID on close."""

    def __init__(self, mounts: Mapping[str, Path]) -> None:
        argv = [SYSTEM_PYTHON, str(SERVER), "--host", "127.0.0.1", "--port", "0"]
        argv += [f"--mount={name}={path}" for name, path in mounts.items()]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._lock = threading.Lock()
        line = self._line(START_WITHIN)
        if not line.startswith("ready "):
            self.close()
            raise RuntimeError(f"the RTSP server did not start: {line!r}")
        self.port = int(line.split()[1])

    def _line(self, within: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], within)
        if not ready:
            raise RuntimeError(f"the RTSP server said nothing within {within} s")
        return self.proc.stdout.readline().strip()

    def url(self, mount: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{mount}"

    def switch(self, mount: str, path: Path) -> None:
        """Serve `path` at `mount` from the next session on; returns once the server took it."""
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(f"set {mount} {path}\n")
            self.proc.stdin.flush()
            answer = self._line(5.0)
        if answer != f"set {mount}":
            raise RuntimeError(f"the RTSP server answered {answer!r}")

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never says a word; its port."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = server.accept()
                accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed: the kernel refuses connections)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
