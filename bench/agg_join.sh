#!/usr/bin/env bash
# Aggregation training-set benchmark: windowed aggregates (avg, sum, count over 1 day and 7 days,
# six features) for every spine row of the standard workload (docs/benchmarks.md), computed by an
# aggregation view through fs_point_in_time_join, against the best SQL (one LEFT JOIN LATERAL with
# FILTER over the (user_id, event_ts) index; window functions over a UNION ALL of spine and events)
# and DuckDB (a range join grouped by spine row), in the same run, on the cluster of
# bench/pit_join.sh (bench/data/<size>, generated on first use).
#   bench/agg_join.sh SMALL|LARGE
# Prints each method's time, its ratio to the project's and whether its result is identical
# (checksum over the values, floats rounded to 9 significant digits: float sums may differ in the
# last bits between methods). BENCH_DUCKDB=0 skips DuckDB, BENCH_REPEAT (default 2) runs per
# method, the best shown. Takes flock /tmp/fs_bench.lock: one benchmark at a time.
set -euo pipefail
SIZE=${1:-SMALL}
case $SIZE in
  SMALL) USERS=100000 SPINE=100000 ;;
  LARGE) USERS=1000000 SPINE=1000000 ;;
  *) echo "usage: $0 SMALL|LARGE" >&2; exit 2 ;;
esac
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
exec 9>/tmp/fs_bench.lock
flock 9

fs_private_install fs_bench

fs_bench_join_start "$SIZE" "$USERS" "$SPINE"

fs_log "running the methods ($SIZE)"
psql_ -v repeat="${BENCH_REPEAT:-2}" -v benchdir="$W/src/bench" <<'SQL'
SELECT set_config('bench.repeat', :'repeat', false);
DROP EXTENSION IF EXISTS feature_store CASCADE;
CREATE EXTENSION feature_store;
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
SELECT fs_register_entity('bench_user', 'user_id');
SELECT fs_register_view('user_aggs', 'user_stats_history', 'bench_user', event_time => 'event_ts',
  aggregations => ARRAY['avg(f_float1) over ''1 day'' as avg_1d', 'avg(f_float1) over ''7 days'' as avg_7d',
                        'sum(f_int1) over ''1 day'' as sum_1d', 'sum(f_int1) over ''7 days'' as sum_7d',
                        'count(*) over ''1 day'' as n_1d', 'count(*) over ''7 days'' as n_7d']);
\i :benchdir/bench_ms.sql
CREATE OR REPLACE FUNCTION bench_agg_checksum(t text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE format('SELECT count(*) || '' rows, '' || count(*) FILTER (WHERE n_7d > 0) || '' with events, md5 '' || '
                   'md5(string_agg(concat_ws(''|'', row_id, round(avg_1d::numeric, 9 - floor(log(greatest(abs(avg_1d), 1e-300)))::int), '
                   'round(avg_7d::numeric, 9 - floor(log(greatest(abs(avg_7d), 1e-300)))::int), sum_1d, sum_7d, n_1d, n_7d), '','' ORDER BY row_id)) '
                   'FROM %I', t) INTO r;
    RETURN r;
END $$;
VACUUM (FREEZE) user_stats_history, spine;
SELECT pg_prewarm('user_stats_history') > 0 AND pg_prewarm('spine') > 0
       AND pg_prewarm('user_stats_history_user_ts') > 0 AS warmed;
DROP TABLE IF EXISTS bench_results, bench_fs_stats;
CREATE TABLE bench_results (method text, ms float8, checksum text);

INSERT INTO bench_results SELECT 'feature_store aggregation view (C)', pg_temp.bench_ms('r_fs', $q$
CREATE TEMP TABLE r_fs AS
SELECT row_id, avg_1d, avg_7d, sum_1d, sum_7d, n_1d, n_7d
FROM fs_point_in_time_join('spine', '{user_aggs:*}', spine_time => 'ts')
  AS t(row_id bigint, user_id bigint, ts timestamptz, avg_1d float8, avg_7d float8, sum_1d numeric, sum_7d numeric,
       n_1d bigint, n_7d bigint)
$q$), bench_agg_checksum('r_fs');
CREATE TABLE bench_fs_stats AS SELECT * FROM fs_point_in_time_join_stats();

INSERT INTO bench_results SELECT 'SQL: LEFT JOIN LATERAL, aggregates with FILTER (index)', pg_temp.bench_ms('r_lateral', $q$
CREATE TEMP TABLE r_lateral AS
SELECT s.row_id, a.*
FROM spine s
LEFT JOIN LATERAL (
    SELECT avg(h.f_float1) FILTER (WHERE h.event_ts >= s.ts - interval '1 day') AS avg_1d, avg(h.f_float1) AS avg_7d,
           sum(h.f_int1) FILTER (WHERE h.event_ts >= s.ts - interval '1 day') AS sum_1d, sum(h.f_int1) AS sum_7d,
           count(*) FILTER (WHERE h.event_ts >= s.ts - interval '1 day') AS n_1d, count(*) AS n_7d
    FROM user_stats_history h
    WHERE h.user_id = s.user_id AND h.event_ts >= s.ts - interval '7 days' AND h.event_ts < s.ts) a ON true
$q$), bench_agg_checksum('r_lateral');

INSERT INTO bench_results SELECT 'SQL: window functions over UNION ALL of spine and events', pg_temp.bench_ms('r_window', $q$
CREATE TEMP TABLE r_window AS
SELECT row_id, avg_1d, avg_7d, sum_1d, sum_7d, n_1d, n_7d
FROM (SELECT row_id,
             avg(f_float1) OVER w1 AS avg_1d, avg(f_float1) OVER w7 AS avg_7d,
             sum(f_int1) OVER w1 AS sum_1d, sum(f_int1) OVER w7 AS sum_7d,
             count(f_int1) OVER w1 AS n_1d, count(f_int1) OVER w7 AS n_7d
      FROM (SELECT row_id, user_id, ts, NULL::float8 AS f_float1, NULL::bigint AS f_int1 FROM spine
            UNION ALL
            SELECT NULL, user_id, event_ts, f_float1, coalesce(f_int1, 0) FROM user_stats_history) u
      WINDOW w1 AS (PARTITION BY user_id ORDER BY ts RANGE BETWEEN '1 day' PRECEDING AND '1 microsecond' PRECEDING),
             w7 AS (PARTITION BY user_id ORDER BY ts RANGE BETWEEN '7 days' PRECEDING AND '1 microsecond' PRECEDING)) x
WHERE row_id IS NOT NULL
$q$), 'not compared (count counts events with a NULL f_int1)';
SQL

if fs_bench_duckdb; then
  fs_log "DuckDB range-join baseline"
  psql_ -c "\copy (SELECT user_id, (extract(epoch FROM event_ts) * 1000000)::bigint, f_float1, f_int1 FROM user_stats_history WHERE user_id IS NOT NULL AND event_ts IS NOT NULL) TO '$W/hist.csv' CSV" \
        -c "\copy (SELECT row_id, user_id, (extract(epoch FROM ts) * 1000000)::bigint FROM spine) TO '$W/spine.csv' CSV"
  cp "$FS_ROOT/bench/duckdb_range_agg.mjs" "$NODE_DIR/"
  touch "$W/duck.csv"; chmod 666 "$W/duck.csv"
  duck=$(cd "$NODE_DIR" && node duckdb_range_agg.mjs "$W/hist.csv" "$W/spine.csv" "$W/duck.csv" "${BENCH_REPEAT:-2}")
  echo "$duck"
  ms=$(echo "$duck" | awk '$1 == "duckdb_range_agg" {print $2}')
  psql_ <<SQL
CREATE TABLE r_duckdb (row_id bigint, avg_1d float8, avg_7d float8, sum_1d numeric, sum_7d numeric, n_1d bigint, n_7d bigint);
\copy r_duckdb FROM '$W/duck.csv' CSV
UPDATE r_duckdb SET n_1d = coalesce(n_1d, 0), n_7d = coalesce(n_7d, 0);
INSERT INTO bench_results SELECT 'DuckDB: range join, GROUP BY spine row', $ms, bench_agg_checksum('r_duckdb');
DROP TABLE r_duckdb;
SQL
fi

fs_log "results ($SIZE: $USERS users, $((USERS * 10)) history rows, $SPINE spine rows; 6 aggregates)"
psql_ <<'SQL'
\pset footer off
SELECT method, ms AS "time ms",
       round((ms / (SELECT ms FROM bench_results WHERE method LIKE 'feature_store%'))::numeric, 2) AS "x project time",
       CASE WHEN checksum LIKE 'not compared%' THEN NULL
            ELSE checksum = (SELECT checksum FROM bench_results WHERE method LIKE 'feature_store%') END AS identical
FROM bench_results ORDER BY ms;
SELECT checksum AS "project result" FROM bench_results WHERE method LIKE 'feature_store%';
SELECT spine_rows, batches, source_rows, pg_size_pretty(peak_memory_bytes) AS peak_memory, detail FROM bench_fs_stats;
SQL
