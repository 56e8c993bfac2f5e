#!/usr/bin/env bash
# Materialization benchmark, on a private cluster:
#   1. full materialization of the standard history of docs/benchmarks.md (fs_materialize_incremental from an empty
#      watermark, and fs_materialize('-infinity', now())) vs the SQL baseline INSERT INTO latest SELECT DISTINCT ON (user_id) ...
#      ON CONFLICT (user_id) DO UPDATE, both into empty tables, in the same run;
#   2. incremental run after 1% new rows (created now, random users) vs the same baseline
#      restricted to the new window (created_ts > the previous watermark); both can use an index
#      on created_ts; ratio full run / incremental run; twice: right after a CHECKPOINT (the
#      worst case: full-page images of nearly every page) and again with no checkpoint between;
#   3. streaming: the view in 'stream' mode, single-row autocommit INSERTs; time from COMMIT's
#      return to the first fs_online call (another session) that serves the new value, p50/p99.
#   bench/materialize.sh SMALL|LARGE     (SMALL: 100k users, 1M rows; LARGE: 1M users, 10M rows)
# HUGE_PAGES=auto|on|off as in bench/online.sh (auto: huge pages when run as root).
# Timings are the best of BENCH_REPEAT (default 1) runs each. Targets: full >= 3x faster than the
# baseline; incremental 1% >= 10x faster than full; streaming freshness p99 < 10 ms.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SIZE=${1:-SMALL}
case $SIZE in
  SMALL) USERS=100000 ;;
  LARGE) USERS=1000000 ;;
  *) echo "usage: $0 SMALL|LARGE" >&2; exit 2 ;;
esac
REPEAT=${BENCH_REPEAT:-1}
COMMITS=${COMMITS:-1000}

fs_private_install fs_bench_mat
cleanup() {
  fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$W/data" -m fast stop >/dev/null 2>&1 || true
  fs_huge_pages_restore
  if [ -z "${FS_KEEP:-}" ]; then rm -rf "$W"; else echo "work directory kept: $W"; fi
}
trap cleanup EXIT

gcc -O2 -o "$W/stream_freshness" "$W/src/bench/stream_freshness.c" -I/usr/include/postgresql -lpq

fs_as_pg_user "$FS_BINDIR/initdb" -D "$W/data" -A trust >/dev/null
cat >> "$W/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$W'
port = 5441
shared_buffers = 1GB
work_mem = '256MB'
maintenance_work_mem = '1GB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
shared_preload_libraries = 'feature_store'
feature_store.database = 'bench'
feature_store.cache_size = '512MB'
CONF
# huge pages, as for bench/online.sh: shared_buffers + cache + 25%
fs_huge_pages $(( (1024 + 512) * 5 / 4 ))
echo "huge_pages = $HUGE" >> "$W/data/postgresql.conf"
fs_log "huge pages: $HUGE"
fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$W/data" -l "$W/log" -w start >/dev/null || { cat "$W/log"; exit 1; }
PSQL() { fs_as_pg_user "$FS_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$W" -p 5441 "$@"; }
PSQL -d postgres -c "CREATE DATABASE bench"

fs_log "data: $SIZE ($USERS users, 10 rows each)"
PSQL -d bench -v users=$USERS -v spine_rows=1000 -f "$W/src/bench/gen_data.sql" >/dev/null
PSQL -d bench <<SQL
CREATE EXTENSION feature_store;
CREATE INDEX ON user_stats_history (created_ts);
SELECT fs_register_entity('user', 'user_id');
SELECT fs_register_view('user_stats', 'user_stats_history', 'user', event_time => 'event_ts', created_time => 'created_ts',
                        features => ARRAY['f_float1', 'f_float2', 'f_int1', 'f_text1']);
SELECT fs_set_online_mode('user_stats', 'batch');
CREATE TABLE latest (user_id bigint PRIMARY KEY, event_ts timestamptz, created_ts timestamptz,
                     f_float1 float8, f_float2 float8, f_int1 bigint, f_text1 text);
SQL
ONLINE=$(PSQL -d bench -Atc "SELECT format('feature_store.online_%s', view_id) FROM fs_views WHERE name = 'user_stats'")

# secs SQL...: runs the statements in one psql session, prints the last statement's seconds.
# Each measurement first waits for the cache worker to be idle: after a run the worker reloads
# the whole view (1M rows, seconds of CPU), which would otherwise overlap the next measurement.
wait_worker() {
  for _ in $(seq 1 120); do
    [ "$(PSQL -d bench -Atc "SELECT worker_state FROM fs_stat_online WHERE view IS NULL")" = idle ] && return
    sleep 1
  done
}
secs() {
  wait_worker
  PSQL -d bench -At <<SQL | tail -1
$1
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
$2;
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3);
SQL
}
best() { sort -n | head -1; }
BASELINE_FULL="INSERT INTO latest SELECT DISTINCT ON (user_id) user_id, event_ts, created_ts, f_float1, f_float2, f_int1, f_text1
  FROM user_stats_history ORDER BY user_id, event_ts DESC, created_ts DESC NULLS LAST
  ON CONFLICT (user_id) DO UPDATE SET event_ts = EXCLUDED.event_ts, created_ts = EXCLUDED.created_ts, f_float1 = EXCLUDED.f_float1,
    f_float2 = EXCLUDED.f_float2, f_int1 = EXCLUDED.f_int1, f_text1 = EXCLUDED.f_text1
  WHERE (latest.event_ts, latest.created_ts) < (EXCLUDED.event_ts, EXCLUDED.created_ts)"

fs_log "1. full materialization (best of $REPEAT)"
bf=$(for _ in $(seq 1 "$REPEAT"); do secs "TRUNCATE latest; CHECKPOINT;" "$BASELINE_FULL"; done | best)
ff=$(for _ in $(seq 1 "$REPEAT"); do secs "TRUNCATE $ONLINE; DELETE FROM feature_store.watermark; CHECKPOINT;" \
       "SELECT fs_materialize_incremental('user_stats')"; done | best)
fm=$(for _ in $(seq 1 "$REPEAT"); do secs "TRUNCATE $ONLINE; CHECKPOINT;" \
       "SELECT fs_materialize('user_stats', '-infinity', now())"; done | best)
echo "  SQL baseline (DISTINCT ON + upsert): $bf s"
echo "  fs_materialize_incremental (full):   $ff s"
echo "  fs_materialize(-infinity, now()):    $fm s"
PSQL -d bench -Atc "SELECT 'check: online rows ' || (SELECT count(*) FROM $ONLINE) || ', baseline rows ' || (SELECT count(*) FROM latest)
  || ', differences ' || (SELECT count(*) FROM (SELECT user_id, event_ts, created_ts, f_float1, f_float2, f_int1, f_text1 FROM latest
       EXCEPT SELECT user_id, __event_ts, __created_ts, f_float1, f_float2, f_int1, f_text1 FROM $ONLINE) d)"

fs_log "2. incremental run after 1% new rows"
# round 1 right after a CHECKPOINT: the first change of each page of the online table (and of
# latest) after a checkpoint logs a full-page image, and a 1% run touches nearly every page: the
# worst case. Round 2, another 1% with no checkpoint in between: the steady state within a
# checkpoint cycle (runs every few minutes, checkpoint_timeout 30 min here).
incr_round() {
  local wm
  wm=$(PSQL -d bench -Atc "SELECT watermark FROM fs_stat_views WHERE view = 'user_stats'")
  PSQL -d bench -c "INSERT INTO user_stats_history
    SELECT 1 + abs(hashint8extended(g, $2)) % $USERS, '2026-01-01'::timestamptz + ($2 * $USERS + g) * interval '1 second', clock_timestamp(),
           0.5, 1.5, g, 'new' FROM generate_series(1, $USERS / 10) g; ANALYZE user_stats_history"
  bi=$(secs "$1" "INSERT INTO latest SELECT DISTINCT ON (user_id) user_id, event_ts, created_ts, f_float1, f_float2, f_int1, f_text1
    FROM user_stats_history WHERE created_ts > '$wm' ORDER BY user_id, event_ts DESC, created_ts DESC NULLS LAST
    ON CONFLICT (user_id) DO UPDATE SET event_ts = EXCLUDED.event_ts, created_ts = EXCLUDED.created_ts, f_float1 = EXCLUDED.f_float1,
      f_float2 = EXCLUDED.f_float2, f_int1 = EXCLUDED.f_int1, f_text1 = EXCLUDED.f_text1
    WHERE (latest.event_ts, latest.created_ts) < (EXCLUDED.event_ts, EXCLUDED.created_ts)")
  fi=$(secs "$1" "SELECT fs_materialize_incremental('user_stats')")
}
incr_round "CHECKPOINT;" 21
bi1=$bi fi1=$fi
echo "  after a CHECKPOINT: SQL baseline restricted to the new window: $bi1 s"
echo "  after a CHECKPOINT: fs_materialize_incremental (1% new):      $fi1 s"
incr_round "" 22
bi2=$bi fi2=$fi
echo "  steady state:       SQL baseline restricted to the new window: $bi2 s"
echo "  steady state:       fs_materialize_incremental (1% new):      $fi2 s"
PSQL -d bench -Atc "SELECT 'check: differences ' || (SELECT count(*) FROM (SELECT user_id, event_ts, created_ts, f_float1, f_float2, f_int1, f_text1 FROM latest
       EXCEPT SELECT user_id, __event_ts, __created_ts, f_float1, f_float2, f_int1, f_text1 FROM $ONLINE) d)"

fs_log "3. streaming freshness ($COMMITS commits)"
PSQL -d bench -c "SELECT fs_set_online_mode('user_stats', 'stream')" >/dev/null
fs_as_pg_user "$W/stream_freshness" "host=$W port=5441 dbname=bench" "$COMMITS" user_stats_history user_stats "$USERS" > "$W/fresh.txt"
pct() { awk '{print $'"$1"'}' "$W/fresh.txt" | sort -n | awk -v p="$2" '{a[NR]=$1} END {k=int(NR*p/100); if (k<1) k=1; printf "%.2f", a[k]/1000}'; }
polls=$(awk '$3 > 1 {n++} END {print n+0}' "$W/fresh.txt")
echo "  COMMIT returned -> visible in fs_online (other session): p50 $(pct 1 50) ms, p99 $(pct 1 99) ms, max $(pct 1 100) ms"
echo "  INSERT sent -> visible (insert + stream write + commit + read): p50 $(pct 2 50) ms, p99 $(pct 2 99) ms"
echo "  reads that needed more than one poll: $polls of $COMMITS"

echo
echo "ratios (target):"
awk -v b="$bf" -v f="$ff" 'BEGIN {printf "  full: SQL baseline / fs = %.2fx   (>= 3x)\n", b / f}'
awk -v b="$bf" -v f="$fm" 'BEGIN {printf "  full: SQL baseline / fs_materialize = %.2fx   (>= 3x)\n", b / f}'
awk -v f="$ff" -v i="$fi1" 'BEGIN {printf "  incremental 1%%, after a CHECKPOINT: full fs run / incremental fs run = %.1fx   (>= 10x)\n", f / i}'
awk -v f="$ff" -v i="$fi2" 'BEGIN {printf "  incremental 1%%, steady state:       full fs run / incremental fs run = %.1fx   (>= 10x)\n", f / i}'
awk -v b="$bi1" -v i="$fi1" 'BEGIN {printf "  incremental 1%%, after a CHECKPOINT: SQL baseline (window) / fs = %.2fx\n", b / i}'
awk -v b="$bi2" -v i="$fi2" 'BEGIN {printf "  incremental 1%%, steady state:       SQL baseline (window) / fs = %.2fx\n", b / i}'
echo "  streaming freshness p99: $(pct 1 99) ms   (< 10 ms)"
