#!/usr/bin/env bash
# Backfill benchmark, on a private cluster, with the standard history of docs/benchmarks.md:
# a new version of the view (its definition changed) is filled by CALL fs_backfill, against
# recomputing the same rows with one SQL statement, INSERT INTO latest SELECT DISTINCT ON
# (user_id) ... ON CONFLICT DO UPDATE (the latest row per entity: the best single statement for
# latest values; a GROUP BY cannot carry the other columns of the winning row), both into empty
# tables, in the same run. fs_backfill runs with its default chunking and with 8 chunks.
#   bench/backfill.sh SMALL|LARGE     (SMALL: 100k users, 1M rows; LARGE: 1M users, 10M rows)
# HUGE_PAGES=auto|on|off as in bench/online.sh. Each figure is printed for every one of
# BENCH_REPEAT (default 3) rounds; a round runs the three methods one after the other.
# Holds /tmp/fs_bench.lock so that benchmarks never overlap. Target: fs_backfill >= 2x faster.
set -euo pipefail
SIZE=${1:-SMALL}
case $SIZE in
  SMALL) USERS=100000 ;;
  LARGE) USERS=1000000 ;;
  *) echo "usage: $0 SMALL|LARGE" >&2; exit 2 ;;
esac
REPEAT=${BENCH_REPEAT:-3}
exec 9>/tmp/fs_bench.lock
flock 9
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
busy() { ps -eo pid=,args= | awk '/pg_regress|\/usr\/bin\/prove|pytest/ && !/awk/ { print "pid " $1 ": " $2 " " $3 }' | head -5; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); test suites running at start: $(busy | wc -l)"

fs_private_install fs_bench_backfill
cleanup() {
  fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$W/data" -m fast stop >/dev/null 2>&1 || true
  fs_huge_pages_restore
  if [ -z "${FS_KEEP:-}" ]; then rm -rf "$W"; else echo "work directory kept: $W"; fi
}
trap cleanup EXIT

fs_as_pg_user "$FS_BINDIR/initdb" -D "$W/data" -A trust >/dev/null
cat >> "$W/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$W'
port = 5442
shared_buffers = 1GB
work_mem = '256MB'
maintenance_work_mem = '1GB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
shared_preload_libraries = 'feature_store'
feature_store.database = 'bench'
feature_store.cache_size = '512MB'
CONF
fs_huge_pages $(( (1024 + 512) * 5 / 4 ))
echo "huge_pages = $HUGE" >> "$W/data/postgresql.conf"
fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$W/data" -l "$W/log" -w start >/dev/null || { cat "$W/log"; exit 1; }
PSQL() { fs_as_pg_user "$FS_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$W" -p 5442 "$@"; }
PSQL -d postgres -c "CREATE DATABASE bench"

fs_log "data: $SIZE ($USERS users, 10 rows each)"
PSQL -d bench -v users=$USERS -v spine_rows=1000 -f "$W/src/bench/gen_data.sql" >/dev/null
PSQL -d bench <<SQL
CREATE EXTENSION feature_store;
SELECT fs_register_entity('user', 'user_id');
SELECT fs_register_view('user_stats', 'user_stats_history', 'user', event_time => 'event_ts', created_time => 'created_ts',
                        features => ARRAY['f_float1', 'f_float2', 'f_int1', 'f_text1']);
-- the definition changes (a TTL): version 2, backfilling
SELECT fs_register_view('user_stats', 'user_stats_history', 'user', event_time => 'event_ts', created_time => 'created_ts',
                        features => ARRAY['f_float1', 'f_float2', 'f_int1', 'f_text1'], ttl => '3650 days');
SELECT fs_materialize('user_stats', now(), now());  -- creates the online table of version 2
CREATE TABLE latest (user_id bigint PRIMARY KEY, event_ts timestamptz, created_ts timestamptz,
                     f_float1 float8, f_float2 float8, f_int1 bigint, f_text1 text);
SQL
ONLINE=$(PSQL -d bench -Atc "SELECT format('feature_store.online_%s', view_id) FROM fs_views WHERE name = 'user_stats' AND version = 2")
END_TS=$(PSQL -d bench -Atc "SELECT now()")

wait_worker() {
  for _ in $(seq 1 120); do
    [ "$(PSQL -d bench -Atc "SELECT worker_state FROM fs_stat_online WHERE view IS NULL")" = idle ] && return
    sleep 1
  done
}
# secs SETUP STATEMENT: the statement's seconds, after SETUP and an idle cache worker
secs() {
  wait_worker
  PSQL -d bench -At 2>/dev/null <<SQL | tail -1
$1
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
$2;
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 3);
SQL
}
BASELINE="INSERT INTO latest SELECT DISTINCT ON (user_id) user_id, event_ts, created_ts, f_float1, f_float2, f_int1, f_text1
  FROM user_stats_history WHERE event_ts BETWEEN '-infinity' AND '$END_TS'
  ORDER BY user_id, event_ts DESC, created_ts DESC NULLS LAST, f_float1, f_float2, f_int1, f_text1
  ON CONFLICT (user_id) DO UPDATE SET event_ts = EXCLUDED.event_ts, created_ts = EXCLUDED.created_ts, f_float1 = EXCLUDED.f_float1,
    f_float2 = EXCLUDED.f_float2, f_int1 = EXCLUDED.f_int1, f_text1 = EXCLUDED.f_text1
  WHERE (latest.event_ts, latest.created_ts) < (EXCLUDED.event_ts, EXCLUDED.created_ts)"
RESET_FS="TRUNCATE $ONLINE; UPDATE feature_store.feature_view SET state = 'backfilling' WHERE name = 'user_stats' AND version = 2; CHECKPOINT;"
START_TS=$(PSQL -d bench -Atc "SELECT min(event_ts) FROM user_stats_history")

fs_log "rounds: $REPEAT ($SIZE)"
printf '%-6s %12s %16s %14s %10s %10s\n' round "SQL (s)" "fs default (s)" "fs 8 ch. (s)" "ratio" "ratio 8"
for r in $(seq 1 "$REPEAT"); do
  b=$(secs "TRUNCATE latest; CHECKPOINT;" "$BASELINE")
  f=$(secs "$RESET_FS" "CALL fs_backfill('user_stats', '$START_TS', '$END_TS')")
  chunks=$(PSQL -d bench -Atc "SELECT chunks_total FROM fs_stat_backfill ORDER BY backfill_id DESC LIMIT 1")
  f8=$(secs "$RESET_FS" "CALL fs_backfill('user_stats', '$START_TS', '$END_TS', chunks => 8)")
  printf '%-6s %12s %16s %14s %10s %10s\n' "$r" "$b" "$f ($chunks ch.)" "$f8" \
    "$(awk -v a="$b" -v b="$f" 'BEGIN { printf "%.2fx", a / b }')" "$(awk -v a="$b" -v b="$f8" 'BEGIN { printf "%.2fx", a / b }')"
done
PSQL -d bench -Atc "SELECT 'check: online rows ' || (SELECT count(*) FROM $ONLINE) || ', SQL rows ' || (SELECT count(*) FROM latest)
  || ', differences ' || (SELECT count(*) FROM ((SELECT user_id, event_ts, created_ts, f_float1, f_float2, f_int1, f_text1 FROM latest
       EXCEPT ALL SELECT user_id, __event_ts, __created_ts, f_float1, f_float2, f_int1, f_text1 FROM $ONLINE)
       UNION ALL (SELECT user_id, __event_ts, __created_ts, f_float1, f_float2, f_int1, f_text1 FROM $ONLINE
       EXCEPT ALL SELECT user_id, event_ts, created_ts, f_float1, f_float2, f_int1, f_text1 FROM latest)) d)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); test suites running at end: $(busy | wc -l)"
