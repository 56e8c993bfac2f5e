# Shared by scripts/test.sh, scripts/quickstart.sh and bench/*.sh (sourced, not run).
#
# Nothing is installed into the system's PostgreSQL: the server binaries are copied into a
# private, relocatable tree (PostgreSQL finds its share/ and lib/ relative to its binaries, as
# its own tmp_install does), the extension is installed there, and clusters run from it. So the
# scripts work as a normal user, never disturb another installation, and two runs can coexist.
# Postgres refuses to run as root: as root, the work happens as the postgres OS user.

FS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The caller's libpq and server environment must not reach the clusters and clients the scripts
# start: PGOPTIONS='-c client_min_messages=warning', a PGHOST or PGPORT, a PGDATABASE or PGUSER
# would change what the tests see. Everything the scripts need they set themselves.
fs_clean_env() {
  local v
  for v in $(compgen -e); do
    case $v in PG*) unset "$v" ;; esac
  done
}
fs_clean_env
FS_PG_MAJOR=15
FS_SYS_PGLIB=/usr/lib/postgresql/$FS_PG_MAJOR
FS_SYS_PGSHARE=/usr/share/postgresql/$FS_PG_MAJOR
FS_CFLAGS='-Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers'

fs_log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# fs_copy_tree DEST: the project's files (tracked and new, not ignored ones) into DEST.
fs_copy_tree() {
  local dest=$1
  mkdir -p "$dest"
  if git -C "$FS_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$FS_ROOT" && git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents -P {} "$dest" 2>/dev/null || true)
  else
    (cd "$FS_ROOT" && tar --exclude=./tmp_check --exclude='*.o' --exclude='*.so' -cf - .) | (cd "$dest" && tar -xf -)
  fi
}

# fs_stage_pg DIR: a private copy of the PostgreSQL server tree under DIR/pg; sets FS_PG_CONFIG, FS_BINDIR.
fs_stage_pg() {
  local dir=$1/pg
  if [ ! -x "$dir/usr/lib/postgresql/$FS_PG_MAJOR/bin/postgres" ]; then
    mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql" "$dir/usr/include"
    cp -a "$FS_SYS_PGLIB" "$dir/usr/lib/postgresql/"
    cp -a "$FS_SYS_PGSHARE" "$dir/usr/share/postgresql/"
    ln -sfn /usr/include/postgresql "$dir/usr/include/postgresql"
  fi
  FS_BINDIR=$dir/usr/lib/postgresql/$FS_PG_MAJOR/bin
  FS_PG_CONFIG=$FS_BINDIR/pg_config
  export PATH="$FS_BINDIR:$PATH"
}

# fs_build_install SRC: builds warning-free and installs into the staged tree.
fs_build_install() {
  local src=$1
  make -C "$src" -s PG_CONFIG="$FS_PG_CONFIG" PG_CFLAGS="$FS_CFLAGS" >/dev/null
  make -C "$src" -s PG_CONFIG="$FS_PG_CONFIG" install >/dev/null
}

# fs_private_install PREFIX: a fresh work directory W (global) holding the project's files and a
# private PostgreSQL into which feature_store is built and installed (as the postgres OS user when
# run as root). Benchmarks and the quickstart start their clusters from it.
fs_private_install() {
  W=$(fs_workdir "$1")
  fs_copy_tree "$W/src"
  fs_stage_pg "$W"
  fs_chown_for_pg "$W"
  fs_log "building feature_store and installing it into a private copy of PostgreSQL ($W/pg)"
  fs_as_pg_user bash -c "source '$W/src/scripts/lib.sh'; fs_stage_pg '$W'; fs_build_install '$W/src'"
}

# fs_as_pg_user CMD...: runs CMD as the postgres OS user when we are root, else as ourselves.
fs_as_pg_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- env PATH="$PATH" HOME=/tmp TMPDIR="${TMPDIR:-/tmp}" "$@"
  else
    "$@"
  fi
}

# fs_workdir PREFIX: a fresh directory the (possibly switched) user can write.
fs_workdir() {
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  chmod 755 "$d"
  echo "$d"
}

fs_chown_for_pg() {
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$1"; fi
}

# fs_huge_pages MB: for benchmarks. With HUGE_PAGES=auto (default) or on, run as root, reserves
# enough 2 MB huge pages for MB of shared memory on top of those already reserved (restored by
# fs_huge_pages_restore) and sets HUGE=on; else HUGE=off. HUGE_PAGES=on fails without them.
fs_huge_pages() {
  HUGE=off
  FS_OLD_NR_HUGEPAGES=
  local want=$(( $1 / 2 + 16 ))
  if [ "${HUGE_PAGES:-auto}" != off ] && [ "$(id -u)" -eq 0 ] && [ -w /proc/sys/vm/nr_hugepages ]; then
    FS_OLD_NR_HUGEPAGES=$(cat /proc/sys/vm/nr_hugepages)
    echo $(( FS_OLD_NR_HUGEPAGES + want )) > /proc/sys/vm/nr_hugepages || true
    if [ "$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)" -ge "$want" ]; then HUGE=on; fi
  fi
  if [ "${HUGE_PAGES:-auto}" = on ] && [ $HUGE = off ]; then
    echo "HUGE_PAGES=on: could not reserve huge pages (needs root)" >&2
    return 1
  fi
}
fs_huge_pages_restore() {
  if [ -n "${FS_OLD_NR_HUGEPAGES:-}" ]; then echo "$FS_OLD_NR_HUGEPAGES" > /proc/sys/vm/nr_hugepages || true; fi
}

# fs_bench_join_cluster DATA: the point-in-time join benchmarks' cluster (bench/pit_join.sh,
# bench/python_training_set.sh), kept in DATA/pgdata and reused (BENCH_REGEN=1 starts afresh),
# started with their settings on a unix socket in $W; sets PGOPTS. The caller stops it on exit.
# With FS_BENCH_HUGE=1 (bench/pit_join.sh) shared memory goes on 2 MB huge pages when they can be
# reserved (fs_huge_pages; HUGE_PAGES=off measures without), as bench/online.sh does: a parallel
# worker is a fresh process, which would otherwise take a page fault for every 4 kB page of
# shared_buffers it touches.
fs_bench_join_cluster() {
  local data=$1
  mkdir -p "$(dirname "$data")"; chmod 755 "$(dirname "$data")"
  fs_chown_for_pg "$(dirname "$data")"
  PGOPTS=(-p 5432 -h "$W")
  if [ -n "${BENCH_REGEN:-}" ] || [ ! -f "$data/generated" ]; then
    rm -rf "$data"; mkdir -p "$data"; fs_chown_for_pg "$data"
    fs_as_pg_user "$FS_BINDIR/initdb" -D "$data/pgdata" -A trust -U postgres >/dev/null
  fi
  # Settings for every method: jit off (JIT compilation would only slow the SQL baselines down).
  cat > "$W/bench.conf" <<CONF
listen_addresses = ''
port = 5432
unix_socket_directories = '$W'
shared_preload_libraries = 'feature_store'
shared_buffers = '2GB'
work_mem = '256MB'
timezone = 'UTC'
jit = off
max_wal_size = '8GB'
CONF
  if [ -n "${FS_BENCH_HUGE:-}" ]; then
    fs_huge_pages $(( 2048 * 5 / 4 )) || return 1
    echo "huge_pages = $HUGE" >> "$W/bench.conf"
    fs_log "huge pages: $HUGE"
  fi
  fs_chown_for_pg "$W"
  fs_as_pg_user sed -i '/^include /d' "$data/pgdata/postgresql.conf"
  echo "include '$W/bench.conf'" | fs_as_pg_user tee -a "$data/pgdata/postgresql.conf" >/dev/null
  fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$data/pgdata" -l "$W/server.log" -w start >/dev/null || { cat "$W/server.log"; return 1; }
  for _ in $(seq 60); do "$FS_BINDIR/pg_isready" -q "${PGOPTS[@]}" && break; sleep 1; done
  "$FS_BINDIR/pg_isready" -q "${PGOPTS[@]}" || { cat "$W/server.log"; return 1; }
}

# fs_bench_join_start SIZE USERS SPINE: what the join benchmarks start with (bench/pit_join.sh,
# bench/agg_join.sh, bench/python_training_set.sh, after fs_private_install): the cluster of
# fs_bench_join_cluster in DATA (default bench/data/SIZE), stopped and $W removed on exit, and the
# standard workload (bench/gen_data.sql) generated on first use. Defines psql_ (the bench database).
fs_bench_join_start() {
  local size=$1 users=$2 spine=$3 t0
  DATA=${DATA:-$FS_ROOT/bench/data/$size}
  trap 'fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$DATA/pgdata" -m fast -w stop >/dev/null 2>&1 || true; fs_huge_pages_restore; rm -rf "$W"' EXIT
  psql_() { fs_as_pg_user "$FS_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "${PGOPTS[@]}" -d bench "$@"; }
  fs_bench_join_cluster "$DATA" || return 1
  if [ ! -f "$DATA/generated" ]; then
    fs_log "generating $size data ($users users, $((users * 10)) history rows, $spine spine rows)"
    fs_as_pg_user "$FS_BINDIR/createdb" "${PGOPTS[@]}" bench
    t0=$(date +%s)
    psql_ -v users="$users" -v spine_rows="$spine" -f "$W/src/bench/gen_data.sql"
    echo "generated in $(( $(date +%s) - t0 )) s"
    touch "$DATA/generated"
  fi
}

# fs_bench_duckdb: whether DuckDB's node API is available for the benchmarks' optional DuckDB
# baselines (BENCH_DUCKDB=0 skips them), installing it into bench/data/node on first use; sets
# NODE_DIR, where the benchmarks' .mjs scripts run.
fs_bench_duckdb() {
  NODE_DIR=$FS_ROOT/bench/data/node
  [ "${BENCH_DUCKDB:-1}" != 0 ] && command -v node >/dev/null || return 1
  if [ ! -d "$NODE_DIR/node_modules/@duckdb/node-api" ]; then
    fs_log "installing @duckdb/node-api into bench/data/node"
    mkdir -p "$NODE_DIR"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund @duckdb/node-api >/dev/null 2>&1) || true
  fi
  [ -d "$NODE_DIR/node_modules/@duckdb/node-api" ]
}
