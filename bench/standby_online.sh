#!/usr/bin/env bash
# fs_online on a hot standby against the same lookups on its primary (docs/scaling.md): a primary
# with ENTITIES entities (default 1M, 4 features, the data of bench/online.sh) streams to one
# standby made by pg_basebackup; both serve fs_online from their own caches (the standby's
# worker loads its own; its launcher waits for it to trust its cache). pgbench, 8 clients,
# prepared protocol, unix socket, DURATION seconds (default 10) after WARM seconds of warm-up,
# alternating primary and standby ROUNDS times (default 4); prints TPS and the ratio standby /
# primary of each round and of all rounds together (target >= 0.9) and the hit rates. PostgreSQL's default huge_pages
# (try): no huge pages are reserved. Holds /tmp/fs_bench.lock.
#   bench/standby_online.sh
set -euo pipefail
exec 9>/tmp/fs_bench.lock
flock 9
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

ENTITIES=${ENTITIES:-1000000}
DURATION=${DURATION:-10}
WARM=${WARM:-5}
ROUNDS=${ROUNDS:-4}
CLIENTS=${CLIENTS:-8}

fs_private_install fs_bench_standby
cleanup() {
  for d in standby primary; do
    fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$W/$d" -m fast stop >/dev/null 2>&1 || true
  done
  if [ -z "${FS_KEEP:-}" ]; then rm -rf "$W"; else echo "work directory kept: $W"; fi
}
trap cleanup EXIT

cache_kb=$(( (ENTITIES * 264 * 5 / 4) / 1024 + 1024 ))
fs_log "primary (cache_size = ${cache_kb}kB for $ENTITIES entities)"
fs_as_pg_user "$FS_BINDIR/initdb" -D "$W/primary" -A trust >/dev/null
cat >> "$W/primary/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$W'
port = 5441
shared_buffers = 512MB
max_connections = 50
shared_preload_libraries = 'feature_store'
feature_store.databases = 'bench'
feature_store.cache_size = '${cache_kb}kB'
hot_standby_feedback = on
CONF
fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$W/primary" -l "$W/primary.log" -w start >/dev/null
P() { fs_as_pg_user "$FS_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$W" -p "$1" "${@:2}"; }
P 5441 -d postgres -c "CREATE DATABASE bench"
fs_log "data: $ENTITIES entities, 4 features each"
P 5441 -d bench -v entities="$ENTITIES" -f "$W/src/bench/online_data.sql" >/dev/null
P 5441 -d bench -c CHECKPOINT

fs_log "standby (pg_basebackup -R)"
fs_as_pg_user "$FS_BINDIR/pg_basebackup" -h "$W" -p 5441 -D "$W/standby" -R -X stream -c fast >/dev/null
fs_as_pg_user sed -i "s/^port = 5441/port = 5442/" "$W/standby/postgresql.conf"
fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$W/standby" -l "$W/standby.log" -w start >/dev/null

loaded() {
  P "$1" -d bench -Atc "SELECT (SELECT worker_state FROM fs_stat_online WHERE view IS NULL) = 'idle'
                          AND coalesce((SELECT entries + evictions FROM fs_stat_online WHERE view = 'user_stats'), 0) >= $ENTITIES"
}
for port in 5441 5442; do
  for _ in $(seq 1 600); do [ "$(loaded $port)" = t ] && break; sleep 1; done
  echo "port $port: cache $(P $port -d bench -Atc "SELECT entries FROM fs_stat_online WHERE view = 'user_stats'") entries, recovery $(P $port -d bench -Atc 'SELECT pg_is_in_recovery()')"
done
grep -h "online cache is serving" "$W/standby.log" || echo "(the standby has not logged that it trusts its cache)"

cat > "$W/fs.sql" <<S
\set id random(1, $ENTITIES)
SELECT fs_online(fs_entity('user', :id::bigint));
S
chmod 644 "$W/fs.sql"
tps() {
  fs_as_pg_user "$FS_BINDIR/pgbench" -n -M prepared -h "$W" -p "$1" -c "$CLIENTS" -j 2 -T "$WARM" -f "$W/fs.sql" bench >/dev/null 2>&1
  fs_as_pg_user "$FS_BINDIR/pgbench" -n -M prepared -h "$W" -p "$1" -c "$CLIENTS" -j 2 -T "$DURATION" -f "$W/fs.sql" bench 2>&1 |
    awk '/^tps = / {printf "%.0f", $3}'
}
# The machine's speed drifts over a run: odd rounds time the primary first, even rounds the
# standby first, so that neither side always gets the earlier (or later) slot.
fs_log "pgbench: fs_online, $CLIENTS clients, $DURATION s after $WARM s of warm-up, $ROUNDS rounds (order alternating)"
printf '%-6s %12s %12s %16s\n' round primary standby "standby/primary"
sa=0; sb=0
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then a=$(tps 5441); b=$(tps 5442); else b=$(tps 5442); a=$(tps 5441); fi
  sa=$((sa + a)); sb=$((sb + b))
  printf '%-6s %12s %12s %16s\n' "$r" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b / a}')"
done
printf '%-6s %12s %12s %16s   (target >= 0.9)\n' all "$sa" "$sb" "$(awk -v a="$sa" -v b="$sb" 'BEGIN {printf "%.2f", b / a}')"
for port in 5441 5442; do
  echo "port $port: $(P $port -d bench -Atc "SELECT format('hits %s, misses %s', hits, misses) FROM fs_stat_online WHERE view = 'user_stats'")"
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
