#!/usr/bin/env bash
# On-demand feature serving benchmark: fs_online(entity, 'dist', request) — a transform over two
# features of a latest-value view (the distance from the request's location to the driver's) —
# against fs_online(entity, 'driver_loc') serving the same two features without it, both from
# the shared-memory cache, pgbench over the unix socket with the prepared protocol at 1 and 8
# clients, in ROUNDS (default 3) interleaved rounds. Prints TPS and each round's ratio (target:
# transform >= 0.8x the plain lookup), all measured in the same run.
#   bench/transform_online.sh     ENTITIES (default 100000) keys, DURATION (default 10) s per run,
#                                 WARM (default 3) s of warm-up per run, not counted
# Takes flock /tmp/fs_bench.lock: one benchmark at a time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
exec 9>/tmp/fs_bench.lock
flock 9

ENTITIES=${ENTITIES:-100000}
DURATION=${DURATION:-10}
WARM=${WARM:-3}
ROUNDS=${ROUNDS:-3}

fs_private_install fs_bench_transform
cleanup() {
  fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$W/data" -m fast stop >/dev/null 2>&1 || true
  if [ -z "${FS_KEEP:-}" ]; then rm -rf "$W"; else echo "work directory kept: $W"; fi
}
trap cleanup EXIT
cache_kb=$(( (ENTITIES * 256 * 5 / 4) / 1024 + 1024 ))
fs_as_pg_user "$FS_BINDIR/initdb" -D "$W/data" -A trust >/dev/null
cat >> "$W/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$W'
port = 5442
shared_buffers = 512MB
max_connections = 50
shared_preload_libraries = 'feature_store'
feature_store.database = 'bench'
feature_store.cache_size = '${cache_kb}kB'
jit = off
CONF
fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$W/data" -l "$W/log" -w start >/dev/null
PSQL() { fs_as_pg_user "$FS_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$W" -p 5442 "$@"; }
PSQL -d postgres -c "CREATE DATABASE bench"

fs_log "data: $ENTITIES drivers, 3 location rows each"
PSQL -d bench <<SQL
CREATE EXTENSION feature_store;
CREATE TABLE driver_locations (driver_id bigint, ts timestamptz, lat float8, lon float8);
INSERT INTO driver_locations
SELECT d, now() - i * interval '1 hour', 40 + (d * 7919 % 1000) / 100.0 + i, -70 - (d * 104729 % 1000) / 100.0
FROM generate_series(1, $ENTITIES::bigint) d, generate_series(1, 3) i;
SELECT fs_register_entity('driver', 'driver_id');
SELECT fs_register_view('driver_loc', 'driver_locations', 'driver', event_time => 'ts');
SELECT fs_materialize('driver_loc', '-infinity', 'infinity');
SELECT fs_register_transform('dist', 'sqrt((lat - req_lat) ^ 2 + (lon - req_lon) ^ 2)',
  request => '{"req_lat": "float8", "req_lon": "float8"}', inputs => ARRAY['driver_loc:lat', 'driver_loc:lon'],
  returns => 'float8');
-- both answer the same drivers
SELECT count(*) FILTER (WHERE fs_online(fs_entity('driver', k), 'dist', '{"req_lat": 41.5, "req_lon": -72.25}') -> 'dist' IS NULL)
  AS missing FROM generate_series(1, 1000) k;
SQL
sleep 2   # the cache worker loads the view

run() {  # run NAME CLIENTS SCRIPT -> prints tps
  local f="$W/$1.sql"
  printf '%s\n' "$3" > "$f"; chmod 644 "$f"
  fs_as_pg_user pgbench -n -M prepared -h "$W" -p 5442 -c "$2" -j "$2" -T "$WARM" -f "$f" bench >"$W/warm.log" 2>&1 || { cat "$W/warm.log" >&2; exit 1; }
  fs_as_pg_user pgbench -n -M prepared -h "$W" -p 5442 -c "$2" -j "$2" -T "$DURATION" -f "$f" bench 2>/dev/null |
    awk '/^tps/ {print $3; exit}'
}
plain="\\set k random(1, $ENTITIES)
SELECT fs_online(fs_entity('driver', :k::bigint), 'driver_loc');"
transform="\\set k random(1, $ENTITIES)
SELECT fs_online(fs_entity('driver', :k::bigint), 'dist', '{\"req_lat\": 41.5, \"req_lon\": -72.25}');"

fs_log "results ($ENTITIES keys, ${DURATION}s per run, $ROUNDS rounds)"
printf '%-6s %-8s %12s %12s %8s\n' "round" "clients" "plain TPS" "dist TPS" "ratio"
for r in $(seq 1 "$ROUNDS"); do
  for c in 1 8; do
    p=$(run plain "$c" "$plain")
    t=$(run transform "$c" "$transform")
    printf '%-6s %-8s %12s %12s %8s\n' "$r" "$c" "$p" "$t" "$(awk -v a="$t" -v b="$p" 'BEGIN {printf "%.2f", a / b}')"
  done
done
echo "(target: dist / plain >= 0.8)"
PSQL -d bench -At -c "SELECT 'cache: ' || view || ' ' || entries || ' entries, ' || hits || ' hits, ' || read_throughs || ' read-throughs' FROM fs_stat_online WHERE view = 'driver_loc'"
