#!/usr/bin/env bash
# Point-in-time join benchmark (the workload of docs/benchmarks.md): the project's C join against the
# SQL a strong Postgres user would write, in the same run, on a private cluster.
#   bench/pit_join.sh SMALL|LARGE
# Prints each method's time, its ratio to the project's, whether every result is identical (by
# checksum) and the project's peak memory. The generated cluster is kept in bench/data/<size>
# (gitignored) and reused by later runs; BENCH_REGEN=1 regenerates it. BENCH_DUCKDB=0 skips the
# optional DuckDB ASOF JOIN baseline (run through node and @duckdb/node-api when node is present).
# BENCH_GEN_ONLY=1 only generates the data. Each method runs BENCH_REPEAT times (default 2) and
# its best time is shown.
# Settings for every method: shared_buffers 2GB, work_mem 256MB, jit off (JIT compilation would
# only slow the SQL baselines down), shared memory on huge pages when they can be reserved
# (HUGE_PAGES=off: 4 kB pages; see fs_bench_join_cluster), everything else default.
set -euo pipefail
SIZE=${1:-SMALL}
case $SIZE in
  SMALL) USERS=100000 SPINE=100000 ;;
  LARGE) USERS=1000000 SPINE=1000000 ;;
  *) echo "usage: $0 SMALL|LARGE" >&2; exit 2 ;;
esac
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

fs_private_install fs_bench

FS_BENCH_HUGE=1 fs_bench_join_start "$SIZE" "$USERS" "$SPINE"

if [ -n "${BENCH_GEN_ONLY:-}" ]; then exit 0; fi
fs_log "running the methods ($SIZE)"
psql_ -v repeat="${BENCH_REPEAT:-2}" -v benchdir="$W/src/bench" <<'SQL'
SELECT set_config('bench.repeat', :'repeat', false);
DROP EXTENSION IF EXISTS feature_store CASCADE;
CREATE EXTENSION feature_store;
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
SELECT fs_register_entity('bench_user', 'user_id');
SELECT fs_register_view('user_stats', 'user_stats_history', 'bench_user', event_time => 'event_ts',
                        created_time => 'created_ts', ttl => '30 days');
\i :benchdir/bench_ms.sql
CREATE OR REPLACE FUNCTION bench_checksum(t text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE format('SELECT count(*) || '' rows, '' || count(f_int1) || '' matched, md5 '' || '
                   'md5(string_agg(concat_ws(''|'', row_id, f_float1, f_float2, f_int1, f_text1), '','' ORDER BY row_id)) '
                   'FROM %I', t) INTO r;
    RETURN r;
END $$;
VACUUM (FREEZE) user_stats_history, spine;   -- all pages all-visible, for every method alike
SELECT pg_prewarm('user_stats_history') > 0 AND pg_prewarm('spine') > 0
       AND pg_prewarm('user_stats_history_user_ts') > 0 AS warmed;
DROP TABLE IF EXISTS bench_results, bench_fs_stats;
CREATE TABLE bench_results (method text, ms float8, checksum text);

SET max_parallel_workers_per_gather = 0;
INSERT INTO bench_results SELECT 'feature_store fs_point_in_time_join (C)', pg_temp.bench_ms('r_fs', $q$
CREATE TEMP TABLE r_fs AS
SELECT row_id, f_float1, f_float2, f_int1, f_text1
FROM fs_point_in_time_join('spine', '{user_stats:*}', spine_time => 'ts')
  AS t(row_id bigint, user_id bigint, ts timestamptz, f_float1 float8, f_float2 float8, f_int1 bigint, f_text1 text)
$q$), bench_checksum('r_fs');
CREATE TABLE bench_fs_stats AS SELECT * FROM fs_point_in_time_join_stats();
-- the same join on two parallel workers (src/pit_parallel.c), the leader merging their rows
SET max_parallel_workers_per_gather = 2;
SET feature_store.parallel_join = on;
INSERT INTO bench_results SELECT 'feature_store fs_point_in_time_join, 2 parallel workers', pg_temp.bench_ms('r_fs_par', $q$
CREATE TEMP TABLE r_fs_par AS
SELECT row_id, f_float1, f_float2, f_int1, f_text1
FROM fs_point_in_time_join('spine', '{user_stats:*}', spine_time => 'ts')
  AS t(row_id bigint, user_id bigint, ts timestamptz, f_float1 float8, f_float2 float8, f_int1 bigint, f_text1 text)
$q$), bench_checksum('r_fs_par');
SELECT 'parallel join: ' || detail FROM fs_point_in_time_join_stats();
SET max_parallel_workers_per_gather = 0;
RESET feature_store.parallel_join;

INSERT INTO bench_results SELECT 'SQL: LEFT JOIN LATERAL ... LIMIT 1 (index)', pg_temp.bench_ms('r_lateral', $q$
CREATE TEMP TABLE r_lateral AS
SELECT s.row_id, h.f_float1, h.f_float2, h.f_int1, h.f_text1
FROM spine s
LEFT JOIN LATERAL (
    SELECT h.f_float1, h.f_float2, h.f_int1, h.f_text1
    FROM user_stats_history h
    WHERE h.user_id = s.user_id AND h.event_ts <= s.ts AND h.event_ts >= s.ts - interval '30 days'
    ORDER BY h.event_ts DESC, h.created_ts DESC
    LIMIT 1) h ON true
$q$), bench_checksum('r_lateral');

INSERT INTO bench_results SELECT 'SQL: DISTINCT ON', pg_temp.bench_ms('r_distinct', $q$
CREATE TEMP TABLE r_distinct AS
SELECT DISTINCT ON (s.row_id) s.row_id, h.f_float1, h.f_float2, h.f_int1, h.f_text1
FROM spine s
LEFT JOIN user_stats_history h
  ON h.user_id = s.user_id AND h.event_ts <= s.ts AND h.event_ts >= s.ts - interval '30 days'
ORDER BY s.row_id, h.event_ts DESC NULLS LAST, h.created_ts DESC NULLS LAST
$q$), bench_checksum('r_distinct');

INSERT INTO bench_results SELECT 'SQL: row_number() window', pg_temp.bench_ms('r_window', $q$
CREATE TEMP TABLE r_window AS
SELECT row_id, f_float1, f_float2, f_int1, f_text1
FROM (SELECT s.row_id, h.f_float1, h.f_float2, h.f_int1, h.f_text1,
             row_number() OVER (PARTITION BY s.row_id ORDER BY h.event_ts DESC NULLS LAST, h.created_ts DESC NULLS LAST) AS rn
      FROM spine s
      LEFT JOIN user_stats_history h
        ON h.user_id = s.user_id AND h.event_ts <= s.ts AND h.event_ts >= s.ts - interval '30 days') x
WHERE rn = 1
$q$), bench_checksum('r_window');

SQL

# Optional: DuckDB's ASOF JOIN on the same data (exported to CSV, loading not timed).
if fs_bench_duckdb; then
  fs_log "DuckDB ASOF JOIN baseline"
  psql_ -c "\copy (SELECT user_id, (extract(epoch FROM event_ts) * 1000000)::bigint, (extract(epoch FROM created_ts) * 1000000)::bigint, f_float1, f_float2, f_int1, f_text1 FROM user_stats_history) TO '$W/hist.csv' CSV" \
        -c "\copy (SELECT row_id, user_id, (extract(epoch FROM ts) * 1000000)::bigint FROM spine) TO '$W/spine.csv' CSV"
  cp "$FS_ROOT/bench/duckdb_asof.mjs" "$NODE_DIR/"
  touch "$W/duck.csv"; chmod 666 "$W/duck.csv"
  duck=$(cd "$NODE_DIR" && node duckdb_asof.mjs "$W/hist.csv" "$W/spine.csv" "$W/duck.csv" "${BENCH_REPEAT:-2}")
  echo "$duck"
  plain=$(echo "$duck" | awk '$1 == "duckdb_asof_plain" {print $2}')
  exact=$(echo "$duck" | awk '$1 == "duckdb_asof_exact" {print $2}')
  psql_ <<SQL
CREATE TEMP TABLE r_duckdb (row_id bigint, f_float1 float8, f_float2 float8, f_int1 bigint, f_text1 text);
\copy r_duckdb FROM '$W/duck.csv' CSV
INSERT INTO bench_results SELECT 'DuckDB ASOF JOIN, exact (dedup equal event times first)', $exact, bench_checksum('r_duckdb');
INSERT INTO bench_results VALUES ('DuckDB ASOF JOIN, plain (arbitrary row on equal event times)', $plain, 'not compared');
SQL
fi

fs_log "results ($SIZE: $USERS users, $((USERS * 10)) history rows, $SPINE spine rows)"
psql_ <<'SQL'
\pset footer off
SELECT method, ms AS "time ms",
       round((ms / (SELECT ms FROM bench_results WHERE method = 'feature_store fs_point_in_time_join (C)'))::numeric, 2) AS "x project time",
       CASE WHEN checksum = 'not compared' THEN NULL
            ELSE checksum = (SELECT checksum FROM bench_results WHERE method = 'feature_store fs_point_in_time_join (C)') END AS identical
FROM bench_results ORDER BY ms;
SELECT checksum AS "project result" FROM bench_results WHERE method = 'feature_store fs_point_in_time_join (C)';
SELECT spine_rows, batches, batch_rows, source_rows, pg_size_pretty(peak_memory_bytes) AS peak_memory, detail
FROM bench_fs_stats;
SQL
