#!/usr/bin/env bash
# The runs behind BENCHMARKS.md, one after another (about 90 minutes on the 2-core VM; NO_SOAK=1: 55).
# Each prints a report to benchmarks/out/results/NAME.txt and its figures to NAME.json.
#   bash benchmarks/run_all.sh            # everything, PostgreSQL included
#   NO_POSTGRES=1 bash benchmarks/run_all.sh
# To measure one commit while the work tree keeps changing, run it against a copy of that commit:
#   git archive HEAD slamon | tar -x -C /tmp/snap && PYTHONPATH=/tmp/snap bash benchmarks/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
RES=benchmarks/out/results
mkdir -p "$RES"
PG=(--postgres)
[[ -n "${NO_POSTGRES:-}" ]] && PG=()

run() {
    local name=$1
    shift
    echo "== $name: $*" >&2
    "$PY" "$@" --json "$RES/$name.json" >"$RES/$name.txt" 2>"$RES/$name.log"
    cat "$RES/$name.txt"
    echo
}

# 1. the issue's case: 100 devices x 60 s x July = 4,464,000 rows, time-major
run import-100 benchmarks/bench_import.py --runs 5 --profile "${PG[@]}"
# 2. fleet width at about the same row count: 1,000 devices x 3 days; 10,000 devices x 8 h
run import-1000-72h benchmarks/bench_import.py --devices 1000 --hours 72 --runs 3
run import-10000-8h benchmarks/bench_import.py --devices 10000 --hours 8 --runs 3
# 3. the same 10,000 x 8 h rows, device-major: the cost is per device per 8 MB block
run import-10000-8h-by-device benchmarks/bench_import.py --devices 10000 --hours 8 --order device --runs 3
# where the import's time goes (one in-process run each)
"$PY" benchmarks/phases_import.py >"$RES/import-100-phases.txt"
"$PY" benchmarks/phases_import.py --data benchmarks/out/import-10000x60-8h >"$RES/import-10000-8h-phases.txt"
cat "$RES/import-100-phases.txt" "$RES/import-10000-8h-phases.txt"
# 4. the statement: 10,000 devices, July, inventory.yaml and inventory.csv
run statement-10000 benchmarks/bench_statement.py --runs 5 --profile "${PG[@]}"
"$PY" benchmarks/phases_statement.py >"$RES/statement-phases.txt"
cat "$RES/statement-phases.txt"
# 5. live monitoring (root: network namespaces; needs fping and prometheus-blackbox-exporter)
run icmp benchmarks/bench_icmp.py --profile
run metrics-100000 benchmarks/bench_metrics.py --profile
# 6. the 30-minute soak of slamon run with 10,000 devices (about 35 minutes)
[[ -z "${NO_SOAK:-}" ]] && run soak-10000 benchmarks/soak.py
