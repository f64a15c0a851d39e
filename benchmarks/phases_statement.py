"""Where a statement's time goes: the steps of `slamon statement`, timed one by one in-process.

    python benchmarks/phases_statement.py                 # on bench_statement.py's 10,000-device store
    python benchmarks/phases_statement.py --config DIR/slamon.yaml --contract ID --month 2025-07

It repeats what slamon.cli.cmd_statement does (load the files, record the fleet, gather the month,
compute, render JSON), with a clock around each step, --runs times, and prints the median of each.
It follows the public functions as they are when this was written; when cmd_statement changes,
the total here and the CLI's may drift apart (compare with bench_statement.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import OUT


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=OUT / "statement-10000" / "slamon.yaml")
    p.add_argument("--contract", default="YJ-BENCH")
    p.add_argument("--month", default="2025-07")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    if not args.config.is_file():
        p.error(f"{args.config} does not exist: run benchmarks/bench_statement.py first")

    started = time.perf_counter()
    from slamon import ledger
    from slamon.billing.statement import compute
    from slamon.issuing import gather
    from slamon.loaders.config import load_config
    from slamon.loaders.fleet import load_fleet
    from slamon.model import to_micros
    from slamon.store import Store

    imports = time.perf_counter() - started
    steps: dict[str, list[float]] = {}

    @contextmanager
    def step(name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        steps.setdefault(name, []).append(time.perf_counter() - t0)

    record: Callable[[Any, Any, int], object] = getattr(ledger, "sync_fleet", None) or (
        lambda tx, f, at: tx.versions.record(f, at)
    )
    for _ in range(args.runs):
        with step("load_config"):
            config = load_config(args.config)
        with step("load_fleet (inventory, contracts, exclusions)"):
            fleet = load_fleet(config)
        with step("Store() (connect, schema check)"):
            store = Store(config.database)
        now = to_micros(datetime.now(UTC))
        with step("record fleet (sync_fleet)"), store.begin() as tx:
            record(tx, fleet, now)
        with step("gather (load timelines)"), store.begin() as tx:
            inp = gather(tx, args.contract, args.month)
        with step("compute"):
            st = compute(inp)
        with step("inputs digest"):
            inputs = inp.digest()
        with step("document (body + hash)"):
            doc = st.document(status="draft", revision=1, replaces=None, inputs=inputs)
        with step("json.dumps"):
            json.dumps(doc, ensure_ascii=False, indent=2)
        store.close()

    total = sum(statistics.median(v) for v in steps.values())
    print(f"imports (first run only): {imports:.2f} s")
    for name, values in steps.items():
        m = statistics.median(values)
        print(f"{name:48s} {m:6.2f} s  {100 * m / total:4.0f}%")
    print(f"{'total (medians, without imports)':48s} {total:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
