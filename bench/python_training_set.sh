#!/usr/bin/env bash
# The Python client's training-set path (docs/python.md): a 1M-row spine DataFrame in, a
# training-set DataFrame out, timed against the SQL join alone and against pandas merge_asof on
# the same data, in the same run (bench/python_training_set.py does the timing).
#   bench/python_training_set.sh [SMALL|LARGE]     (default LARGE: 10M history rows; spine 1M rows either way)
# The data (bench/gen_data.sql, deterministic) is kept in bench/data/py_<SIZE> and reused;
# BENCH_REGEN=1 regenerates it. BENCH_REPEAT (default 3) timed runs per method, best kept, after
# BENCH_WARMUP (default 1) untimed runs.
# Holds /tmp/fs_bench.lock for the whole run so that benchmarks never overlap, and prints the
# test suites that were running on the machine at the start and at the end: figures taken while
# other suites ran are not comparable.
set -euo pipefail
SIZE=${1:-LARGE}
case $SIZE in
  SMALL) USERS=100000 ;;
  LARGE) USERS=1000000 ;;
  *) echo "usage: $0 [SMALL|LARGE]" >&2; exit 2 ;;
esac
SPINE=1000000
exec 9>/tmp/fs_bench.lock
flock 9
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# (the awk program names the pattern too, so awk itself is left out)
busy() { ps -eo pid=,args= | awk '/pg_regress|\/usr\/bin\/prove/ && !/awk/ { print "pid " $1 ": " $2 " " $3 }' | head -5; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); test suites running at start: $(busy | wc -l)"
busy

fs_private_install fs_pybench

DATA=$FS_ROOT/bench/data/py_$SIZE
fs_bench_join_start "$SIZE" "$USERS" "$SPINE"    # the settings of bench/pit_join.sh
fs_log "timing ($SIZE, spine $SPINE rows)"
fs_as_pg_user env PYTHONPATH="$W/src/python" PYTHONDONTWRITEBYTECODE=1 BENCH_REPEAT="${BENCH_REPEAT:-3}" BENCH_WARMUP="${BENCH_WARMUP:-1}" \
  /usr/bin/python3 "$W/src/bench/python_training_set.py" "host=$W port=5432 user=postgres dbname=bench"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); test suites running at end: $(busy | wc -l)"
busy
