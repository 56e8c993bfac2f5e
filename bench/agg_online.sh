#!/usr/bin/env bash
# Online aggregation benchmark: fs_online on an aggregation view (6 aggregates: avg, sum, count
# over 1 day and 7 days, about 10 events per key in the 7-day window) against fs_online on a
# latest-value view of the same keys (materialized, served from the shared-memory cache), both
# views in their cached modes (the aggregation view in 'stream', each key's answer computed once
# before the runs, as the worker loads the latest values), pgbench
# over the unix socket with the prepared protocol at 1 and 8 clients; and the insert throughput of
# 20-row batches into the source with the aggregation view in stream mode against the view off.
# Prints TPS and the ratios (targets: aggregation >= 0.9x latest-value lookups; stream ingest
# >= 0.5x off) and the online state per entity, all measured in the same run.
#   bench/agg_online.sh           ENTITIES (default 100000) keys, DURATION (default 10) s per run,
#                                 WARM (default 3) s of warm-up per run, not counted
# Takes flock /tmp/fs_bench.lock: one benchmark at a time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
exec 9>/tmp/fs_bench.lock
flock 9

ENTITIES=${ENTITIES:-100000}
DURATION=${DURATION:-10}
WARM=${WARM:-3}

fs_private_install fs_bench_agg_online
cleanup() {
  fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$W/data" -m fast stop >/dev/null 2>&1 || true
  if [ -z "${FS_KEEP:-}" ]; then rm -rf "$W"; else echo "work directory kept: $W"; fi
}
trap cleanup EXIT
cache_kb=$(( (2 * ENTITIES * 256 * 5 / 4) / 1024 + 1024 ))   # both views' entries
fs_as_pg_user "$FS_BINDIR/initdb" -D "$W/data" -A trust >/dev/null
cat >> "$W/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$W'
port = 5441
shared_buffers = 1GB
max_connections = 50
shared_preload_libraries = 'feature_store'
feature_store.database = 'bench'
feature_store.cache_size = '${cache_kb}kB'
jit = off
CONF
fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$W/data" -l "$W/log" -w start >/dev/null
PSQL() { fs_as_pg_user "$FS_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$W" -p 5441 "$@"; }
PSQL -d postgres -c "CREATE DATABASE bench"

fs_log "data: $ENTITIES keys, 10 events each in the last 7 days"
PSQL -d bench <<SQL
CREATE EXTENSION feature_store;
CREATE TABLE purchases (user_id bigint, ts timestamptz, amount float8, qty bigint);
INSERT INTO purchases
SELECT u, now() - ((u * 7919 + i * 104729) % 604800) * interval '1 second', (u * i % 1000) / 10.0, (u + i) % 7
FROM generate_series(1, $ENTITIES) u, generate_series(1, 10) i;
CREATE INDEX ON purchases (user_id, ts);
VACUUM ANALYZE purchases;
SELECT fs_register_entity('user', 'user_id');
SELECT fs_register_view('user_latest', 'purchases', 'user', event_time => 'ts', features => ARRAY['amount', 'qty']);
SELECT fs_materialize('user_latest', '-infinity', 'infinity');
SELECT fs_register_view('user_aggs', 'purchases', 'user', event_time => 'ts',
  aggregations => ARRAY['avg(amount) over ''1 day'' as avg_1d', 'avg(amount) over ''7 days'' as avg_7d',
                        'sum(qty) over ''1 day'' as sum_1d', 'sum(qty) over ''7 days'' as sum_7d',
                        'count(*) over ''1 day'' as n_1d', 'count(*) over ''7 days'' as n_7d']);
-- stream: answers cached, invalidated by the source's key triggers; touched once each, as the
-- cache worker loads every latest value before it is asked
SELECT fs_set_online_mode('user_aggs', 'stream');
SELECT count(fs_online(fs_entity('user', k), 'user_aggs')) FROM generate_series(1, $ENTITIES) k;
SQL
sleep 2   # the cache worker loads the latest-value view

run() {  # run NAME CLIENTS SCRIPT -> prints tps
  local f="$W/$1.sql"
  printf '%s\n' "$3" > "$f"; chmod 644 "$f"
  fs_as_pg_user pgbench -n -M prepared -h "$W" -p 5441 -c "$2" -j "$2" -T "$WARM" -f "$f" bench >"$W/warm.log" 2>&1 || { cat "$W/warm.log" >&2; exit 1; }
  fs_as_pg_user pgbench -n -M prepared -h "$W" -p 5441 -c "$2" -j "$2" -T "$DURATION" -f "$f" bench 2>/dev/null |
    awk '/^tps/ {print $3; exit}'
}
declare -A TPS
for c in 1 8; do
  TPS[latest_$c]=$(run latest $c "\\set k random(1, $ENTITIES)
SELECT fs_online(fs_entity('user', :k::bigint), 'user_latest');")
  TPS[agg_$c]=$(run agg $c "\\set k random(1, $ENTITIES)
SELECT fs_online(fs_entity('user', :k::bigint), 'user_aggs');")
done
cache_stats=$(PSQL -d bench -At -c "SELECT 'cache: ' || view || ' ' || entries || ' entries, ' || round(bytes_used::numeric / greatest(entries, 1)) || ' bytes per entity, ' || hits || ' hits, ' || read_throughs || ' computed/read'
  FROM fs_stat_online WHERE view IN ('user_aggs', 'user_latest') ORDER BY view")
ingest="\\set k random(1, $ENTITIES)
INSERT INTO purchases SELECT :k::bigint + i, now(), 1.5, 1 FROM generate_series(0, 19) i;"
PSQL -d bench -c "SELECT fs_set_online_mode('user_aggs', 'off')" -c "SELECT fs_set_online_mode('user_latest', 'off')" >/dev/null
TPS[ingest_off]=$(run ingest_off 4 "$ingest")
PSQL -d bench -c "SELECT fs_set_online_mode('user_aggs', 'stream')" >/dev/null
TPS[ingest_stream]=$(run ingest_stream 4 "$ingest")
state=$(PSQL -d bench -At -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'feature_store' AND c.relname = 'online_' || (SELECT view_id FROM fs_views WHERE name = 'user_aggs')")

fs_log "results ($ENTITIES keys, ${DURATION}s per run)"
printf '%-52s %10s\n' "run" "TPS"
for c in 1 8; do
  printf '%-52s %10s\n' "fs_online, latest-value view, $c client(s)" "${TPS[latest_$c]}"
  printf '%-52s %10s\n' "fs_online, aggregation view (6 aggregates), $c client(s)" "${TPS[agg_$c]}"
  printf '%-52s %10s\n' "  ratio aggregation / latest value (target >= 0.9)" "$(awk -v a="${TPS[agg_$c]}" -v b="${TPS[latest_$c]}" 'BEGIN {printf "%.2f", a / b}')"
done
printf '%-52s %10s\n' "insert 20-row batches, 4 clients, view off" "${TPS[ingest_off]}"
printf '%-52s %10s\n' "insert 20-row batches, 4 clients, aggregation view stream" "${TPS[ingest_stream]}"
printf '%-52s %10s\n' "  ratio stream / off (target >= 0.5)" "$(awk -v a="${TPS[ingest_stream]}" -v b="${TPS[ingest_off]}" 'BEGIN {printf "%.2f", a / b}')"
echo "$cache_stats"
echo "durable online state of the aggregation view: $state tables (answers are computed from the source's index, cached in shared memory)"
