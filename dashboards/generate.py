"""Regenerate the dashboards in this folder from slamon/dashboards.py: `python dashboards/generate.py`.

The JSON here is generated: edit the code, run this, commit both (tests/dashboards checks that the
committed JSON is what the code builds)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's slamon, installed or not

from slamon.dashboards import write_all

if __name__ == "__main__":
    for path in write_all(Path(__file__).resolve().parent):
        sys.stdout.write(f"{path.name}\n")
