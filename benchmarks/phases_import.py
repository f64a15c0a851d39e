"""Where an import's time goes: `slamon import` in-process, with a clock around its main steps.

    python benchmarks/phases_import.py                                  # bench_import.py's 100-device data
    python benchmarks/phases_import.py --data benchmarks/out/import-10000x60-8h

Wraps (for this process only) the store's per-block work and the timeline rebuild with timers,
then runs slamon.cli.main(["-c", DIR/slamon.yaml, "import", CSV]) into a fresh SQLite database.
Parsing is what remains of the import's own time. Figures are for one run; the wrappers cost
microseconds per call, nothing like a profiler's overhead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from common import OUT, remove_sqlite

spent: dict[str, float] = {}
calls: dict[str, int] = {}


def timed(owner: Any, name: str, label: str) -> None:
    """Time calls of owner.name (skipped when this slamon has no such function)."""
    original: Callable[..., Any] | None = getattr(owner, name, None)
    if original is None:
        return

    @wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - t0
            calls[label] = calls.get(label, 0) + 1

    setattr(owner, name, wrapper)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=OUT / "import-100x60", help="a folder bench_import.py wrote")
    args = p.parse_args(argv)
    manifest = json.loads((args.data / "manifest.json").read_text(encoding="utf-8"))
    csv_path = args.data / manifest["csv"]

    started = time.perf_counter()
    import slamon.cli
    import slamon.history
    import slamon.store.upkeep
    from slamon.store import blocks
    from slamon.store.results import Results
    from slamon.store.timelines import Timelines

    imports = time.perf_counter() - started
    timed(slamon.cli, "import_history", "import_history (all)")
    timed(Results, "merge", "Results.merge (all)")
    timed(Results, "_existing_blocks", "  _existing_blocks (read the stored blocks)")
    timed(Results, "_check_retention", "  _check_retention")
    timed(blocks, "merge", "  blocks.merge (into stored blocks)")
    timed(blocks, "sort_and_dedupe", "  sort_and_dedupe")
    timed(slamon.history, "rebuild_timelines", "rebuild_timelines (all)")
    timed(Results, "of_devices", "  Results.of_devices")
    timed(slamon.store.upkeep, "build_timeline", "  build_timeline")
    timed(Timelines, "replace_many", "  Timelines.replace_many")
    timed(Timelines, "metas", "  Timelines.metas")

    remove_sqlite(args.data / "slamon.db")
    t0 = time.perf_counter()
    code = slamon.cli.main(["-c", str(args.data / "slamon.yaml"), "import", str(csv_path)])
    total = time.perf_counter() - t0
    if code != 0:
        return code
    whole = spent["import_history (all)"]
    parse = whole - spent["merge_results (all)"] - spent["rebuild_timelines (all)"]
    rows = int(manifest["rows"])
    print(
        f"{csv_path}: {rows:,} rows, {manifest['devices']:,} devices, rows {manifest.get('order', 'time')}-major"
    )
    print(f"{'python imports':52s} {imports:7.2f} s")
    print(f"{'cli.main (load files, open store, import)':52s} {total:7.2f} s  {rows / total:,.0f} rows/s")
    for label, seconds in spent.items():
        print(f"{label:52s} {seconds:7.2f} s  {100 * seconds / whole:4.0f}%  {calls[label]:>8,} calls")
    print(f"{'read_history (parse and check, the rest)':52s} {parse:7.2f} s  {100 * parse / whole:4.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
