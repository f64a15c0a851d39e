"""A real RTSP server for the video tests: GStreamer's gst-rtsp-server serving pre-encoded H.264
files on loopback. Run by the system Python (`/usr/bin/python3`, which has the GObject bindings
from Debian's python3-gi), not the project's venv:

    /usr/bin/python3 tests/harness/rtsp_server.py --port 0 --mount cam1=/path/clean.mp4 ...

It prints `ready PORT` once it listens, then takes commands on stdin, one per line:

    set MOUNT FILE      serve FILE at /MOUNT from the next session on (a camera whose picture changes)
    quit

Each session gets its own pipeline (not shared), reading its file from the start, so a sample
sees the same clip whatever other sessions do; pre-encoded files cost the server almost no CPU.
`rtph264pay config-interval=1` sends SPS/PPS with every IDR (FFmpeg then decodes from the first one).
"""

from __future__ import annotations

import argparse
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer

PIPELINE = "filesrc location={path} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1"


class Mount(GstRtspServer.RTSPMediaFactory):
    """A mount whose file can change: each new session builds its pipeline from the current one."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.set_shared(False)

    def do_create_element(self, url: object) -> Gst.Element:
        return Gst.parse_launch(PIPELINE.format(path=self.path))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mount", action="append", default=[], metavar="NAME=FILE")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    by_name: dict[str, Mount] = {}

    def put(name: str, path: str) -> None:
        if name in by_name:
            by_name[name].path = path
        else:
            by_name[name] = Mount(path)
            mounts.add_factory(f"/{name}", by_name[name])

    for spec in args.mount:
        name, _, path = spec.partition("=")
        put(name, path)
    server.attach(None)
    loop = GLib.MainLoop()

    def apply(name: str, path: str) -> bool:
        put(name, path)
        print(f"set {name}", flush=True)
        return False  # once

    def commands() -> None:  # stdin in a thread; changes are applied on the main loop
        for line in sys.stdin:
            words = line.split()
            if words[:1] == ["set"] and len(words) == 3:
                GLib.idle_add(apply, words[1], words[2])
            elif words[:1] == ["quit"]:
                break
        GLib.idle_add(loop.quit)

    threading.Thread(target=commands, daemon=True).start()
    print(f"ready {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
