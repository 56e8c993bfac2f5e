#!/usr/bin/env bash
# Runs pg_regress tests against a server started under valgrind memcheck (every backend is a fork
# of the postmaster, so every backend runs under it) and counts the errors whose stack passes
# through feature_store code. Slow (about 30x): for memory errors, not part of scripts/test.sh.
#   scripts/valgrind.sh                          the point-in-time join's tests
#   scripts/valgrind.sh online online_batch_keys any pg_regress tests by name
# Debian's server is not built with USE_VALGRIND, so chunks inside palloc's blocks are not tracked
# one by one; reads and writes outside malloc'd blocks, of freed blocks and large chunks, and
# decisions on uninitialized memory are.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
unset PGOPTIONS PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGSSLMODE PGCONNECT_TIMEOUT

TESTS=("$@")
[ ${#TESTS[@]} -eq 0 ] && TESTS=(pit_join pit_join_oracle pit_join_churn)
PKGS=(valgrind)
for p in "${PKGS[@]}"; do
  command -v "$p" >/dev/null || { sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
    $sudo_cmd apt-get install -y -qq --no-install-recommends "$p" >/dev/null; }
done
"$FS_ROOT/scripts/install-deps.sh" || exit 1
fs_private_install fs_valgrind || exit 1
DATA=$W/data
PORT=${FS_VALGRIND_PORT:-5455}
cleanup() {
  fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$DATA" -m fast -t 600 stop >/dev/null 2>&1 || true
  [ -n "${FS_KEEP:-}" ] && echo "work directory kept: $W" || rm -rf "$W"
}
trap cleanup EXIT

cat > "$W/pg.supp" <<'SUPP'
{
   padding_xlog_crc
   Memcheck:Value8
   fun:pg_comp_crc32c*
   fun:XLogRecordAssemble
}
{
   padding_write
   Memcheck:Param
   write(buf)
   ...
   fun:XLogWrite
}
{
   padding_pgstat_write
   Memcheck:Param
   write(buf)
   ...
   fun:pgstat_write_statsfile
}
{
   padding_relcache_init
   Memcheck:Param
   write(buf)
   ...
   fun:write_relcache_init_file
}
{
   atomic_init_u64
   Memcheck:Cond
   fun:pg_atomic_exchange_u64_impl
   fun:pg_atomic_write_u64_impl
   fun:pg_atomic_init_u64_impl
}
SUPP
fs_chown_for_pg "$W"

fs_log "cluster under valgrind in $DATA"
fs_as_pg_user "$FS_BINDIR/initdb" -D "$DATA" -A trust -U postgres >/dev/null || exit 1
cat >> "$DATA/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$W'
port = $PORT
shared_preload_libraries = 'feature_store'
feature_store.database = 'contrib_regression'
max_connections = 20
CONF
fs_as_pg_user bash -c "cd '$W' && nohup valgrind --quiet --trace-children=yes --track-origins=yes \
  --read-var-info=yes --num-callers=30 --suppressions='$W/pg.supp' --log-file='$W/vg.%p.log' \
  '$FS_BINDIR/postgres' -D '$DATA' > '$W/server.log' 2>&1 &"
for i in $(seq 1 300); do
  fs_as_pg_user "$FS_BINDIR/pg_isready" -q -h "$W" -p $PORT && break
  sleep 1
done

fs_as_pg_user "$FS_BINDIR/createdb" -h "$W" -p $PORT -U postgres contrib_regression || exit 1
fs_log "pg_regress ${TESTS[*]}"
PGXS_DIR=$(dirname "$("$FS_PG_CONFIG" --pgxs)")
fs_as_pg_user bash -c "cd '$W/src' && '$PGXS_DIR/../../src/test/regress/pg_regress' --use-existing \
  --host='$W' --port=$PORT --user=postgres --dbname=contrib_regression --inputdir=. --bindir='$FS_BINDIR' ${TESTS[*]}"
rc=$?
fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$DATA" -m fast -t 600 stop >/dev/null 2>&1

# One valgrind log per process; an error record starts with "==pid== <kind>" and ends at a blank line.
errors=$(cat "$W"/vg.*.log 2>/dev/null | grep -cE '^==[0-9]+== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Source and destination overlap|Mismatched free)')
ours=$(cat "$W"/vg.*.log 2>/dev/null | awk '/^==[0-9]+== [A-Z]/ { rec = $0; keep = 1; next } keep { rec = rec "\n" $0 } /^==[0-9]+== *$/ { if (keep && rec ~ /feature_store/) { n++; print rec > "/dev/stderr" } keep = 0 } END { print n + 0 }')
echo "valgrind: $errors error records in all, $ours through feature_store code (pg_regress exit $rc)"
[ "$rc" -eq 0 ] && [ "$ours" -eq 0 ]
