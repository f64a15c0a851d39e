"""Where a py-spy recording's time went, per thread: what bench_city.py's --py-spy-record and
--py-spy-start leave (`py-spy record -f raw --threads -r RATE`).

    python benchmarks/pyspy_summary.py FILE [--rate 50] [--per N] [--top 25] [--match slamon/]

For each thread (by name when py-spy knew it): its samples as seconds (samples / --rate), split into
*idle* (the leaf frame is a wait: select, a lock, a queue, a sleep) and *busy*; then the functions
with the most busy time, inclusive (on the stack) and self (the leaf), limited to frames whose file
contains --match (default: slamon's own; `--match ''` for every frame). --per N divides every
figure by N (the rounds in the recording, say), to read seconds per round.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

THREAD = re.compile(r"^thread \((\w+)\)(?::\s*(.*))?$")
IDLE_LEAVES = (
    "select (selectors.py",
    "wait (threading.py",
    "_worker (concurrent/futures/thread.py",
    "get (queue.py",
    "sleep",
    "_wait_for_tstate_lock",
    "acquire",
)


def parse(path: Path) -> dict[str, list[tuple[list[str], int]]]:
    """{thread: [(frames root first, samples)]}."""
    out: dict[str, list[tuple[list[str], int]]] = defaultdict(list)
    names: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        m = THREAD.match(frames[0])
        tid = "?"
        if m:
            tid, frames = m.group(1), frames[1:]
            if m.group(2):
                names[tid] = m.group(2)
        out[tid].append((frames, int(count)))
    for tid, stacks in out.items():  # the start of a recording may predate the names
        if tid not in names and any(f and f[0].startswith("<module>") for f, _ in stacks):
            names[tid] = "MainThread"
    return {f"{names.get(tid, '')} ({tid})".strip(): v for tid, v in out.items()}


def idle(frames: list[str]) -> bool:
    return bool(frames) and any(frames[-1].startswith(x) or x in frames[-1] for x in IDLE_LEAVES)


def func(frame: str) -> str:
    """`name (file:line)` -> `file:name` (lines dropped, so a function's samples add up)."""
    m = re.match(r"^(.*) \((.*?)(?::\d+)?\)$", frame)
    return f"{m.group(2)}:{m.group(1)}" if m else frame


def summary(path: Path, rate: float, per: float, top: int, match: str) -> str:
    threads = parse(path)
    total = sum(c for stacks in threads.values() for _, c in stacks)
    lines = [
        f"# {path}: {total} samples = {total / rate:.1f} thread-seconds at {rate:g}/s"
        + (f"; figures divided by {per:g}" if per != 1 else "")
    ]
    order = sorted(threads, key=lambda t: -sum(c for f, c in threads[t] if not idle(f)))
    for name in order:
        stacks = threads[name]
        busy = sum(c for f, c in stacks if not idle(f))
        quiet = sum(c for f, c in stacks if idle(f))
        lines.append(
            f"\n## thread {name}: busy {busy / rate / per:.2f} s, idle {quiet / rate / per:.2f} s (samples {busy}+{quiet})"
        )
        incl: Counter[str] = Counter()
        own: Counter[str] = Counter()
        for frames, c in stacks:
            if idle(frames):
                continue
            seen = set()
            for fr in frames:
                fn = func(fr)
                if match in fn and fn not in seen:
                    incl[fn] += c
                    seen.add(fn)
            if frames:
                own[func(frames[-1])] += c
        if busy:
            lines.append("  inclusive (on the stack), busy samples only:")
            lines += [
                f"    {n / rate / per:7.3f} s  {n / busy:6.1%}  {fn}" for fn, n in incl.most_common(top)
            ]
            lines.append("  self (leaf frame, any file):")
            lines += [
                f"    {n / rate / per:7.3f} s  {n / busy:6.1%}  {fn}" for fn, n in own.most_common(top // 2)
            ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path)
    p.add_argument("--rate", type=float, default=50.0, help="samples per second of the recording")
    p.add_argument("--per", type=float, default=1.0, help="divide every figure by this (e.g. rounds)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--match", default="slamon/", help="only frames whose file contains this (inclusive list)")
    args = p.parse_args(argv)
    print(summary(args.file, args.rate, args.per, args.top, args.match))
    return 0


if __name__ == "__main__":
    sys.exit(main())
