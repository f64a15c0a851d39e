"""A video worker process: `python -m slamon.video.worker THREADS` takes sample requests as JSON
lines on stdin and answers each with a JSON line on stdout, THREADS samples at a time.

Waiting on a stream releases the interpreter's lock, so one process keeps many samples in flight;
decoding does not, so the service runs a few of these processes (about one per core) and never
decodes on its own event loop. A request: {"id", "url", "seconds", "frames", "open_timeout",
"read_timeout", "user", "password", "thresholds": {...}, "baseline": {...} | null}; an answer:
{"id", "defects": [...], "reason": str | null, "detail": {...}}, or {"id", "error": str} when the
sample itself failed (a bug, not the camera).
"""

from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slamon.video.quality import Baseline, Thresholds
from slamon.video.sampling import Request, sample


def request_from(doc: dict[str, Any]) -> Request:
    baseline = doc.get("baseline")
    return Request(
        url=doc["url"],
        seconds=float(doc["seconds"]),
        frames=int(doc["frames"]),
        open_timeout=float(doc["open_timeout"]),
        read_timeout=float(doc["read_timeout"]),
        user=doc.get("user"),
        password=doc.get("password"),
        thresholds=Thresholds(**_typed(Thresholds, doc.get("thresholds") or {})),
        baseline=Baseline(**baseline) if baseline else None,
    )


def _typed(cls: type, values: dict[str, float]) -> dict[str, Any]:
    """Whole-number fields back to int (JSON and the config hand them over as numbers)."""
    whole = {name for name, f in cls.__dataclass_fields__.items() if f.type in ("int", int)}  # type: ignore[attr-defined]
    return {k: int(v) if k in whole else v for k, v in values.items()}


def answer(doc: dict[str, Any]) -> dict[str, Any]:
    try:
        outcome = sample(request_from(doc))
    except Exception as exc:  # noqa: BLE001  (a bug: the caller logs it; the camera is not blamed)
        return {"id": doc.get("id"), "error": f"{type(exc).__name__}: {exc}"}
    return {
        "id": doc["id"],
        "defects": sorted(d.value for d in outcome.defects),
        "reason": outcome.reason,
        "detail": outcome.detail,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    threads = int(args[0]) if args else 8
    out = threading.Lock()

    def run(line: str) -> None:
        result = answer(json.loads(line))
        text = json.dumps(result, separators=(",", ":")) + "\n"
        with out:
            sys.stdout.write(text)
            sys.stdout.flush()

    with ThreadPoolExecutor(threads, thread_name_prefix="sample") as pool:
        for line in sys.stdin:
            if line.strip():
                pool.submit(run, line)
    return 0


if __name__ == "__main__":  # pragma: no cover  (run as a child by probers/video.py)
    sys.exit(main())
