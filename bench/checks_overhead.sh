#!/usr/bin/env bash
# Cost of data validation on the standard SMALL history (docs/benchmarks.md: 100k users,
# 1M rows), against hand-written SQL baselines measured in the same run:
#   1. the pass filter materialization uses (feature_store.checks_sql) vs the same checks
#      written by hand in a WHERE clause;
#   2. fs_validate (failing rows with labels and row jsonb, sorted) vs a hand-written query
#      returning the same rows in the same order;
#   3. quarantining the whole history (first run: inserts; re-run: all rows already there) vs
#      a plain INSERT ... SELECT ... ON CONFLICT DO NOTHING of the same rows into a copy of the
#      quarantine table (same generated column and unique index).
# Best of 3 runs each. Not part of scripts/test.sh.
#   bench/checks_overhead.sh [rows]      (default 1000000)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
ROWS=${1:-1000000}

fs_private_install fs_bench_checks
DATA=$W/data
fs_as_pg_user "$FS_BINDIR/initdb" -D "$DATA" -A trust -U postgres >/dev/null
cat >> "$DATA/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$W'
shared_preload_libraries = 'feature_store'
shared_buffers = '512MB'
max_parallel_workers_per_gather = 0
CONF
trap 'fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
fs_as_pg_user "$FS_BINDIR/pg_ctl" -D "$DATA" -l "$W/server.log" -w start >/dev/null
PSQL=("$FS_BINDIR/psql" -X -q -h "$W" -U postgres -d postgres -v ON_ERROR_STOP=1 -At)

fs_log "generating $ROWS history rows"
fs_as_pg_user "${PSQL[@]}" -f "$W/src/sql/include/runlog_test.sql" >/dev/null
fs_as_pg_user "${PSQL[@]}" <<SQL
CREATE EXTENSION feature_store;
CREATE TABLE user_stats_history (user_id bigint, event_ts timestamptz, created_ts timestamptz,
    f_float1 float8, f_float2 float8, f_int1 bigint, f_text1 text);
SELECT setseed(0.1);
INSERT INTO user_stats_history
SELECT g % ($ROWS / 10), '2026-01-01'::timestamptz - random() * interval '90 days', now(),
       CASE WHEN random() < 0.005 THEN NULL ELSE random() * 1.01 END, random(),
       (random() * 1000)::bigint - CASE WHEN random() < 0.003 THEN 2000 ELSE 0 END,
       (ARRAY['a', 'b', 'c', 'd', 'zz'])[1 + (random() * 4.02)::int]
FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE user_stats_history;
SELECT fs_register_entity('user', 'user_id');
SELECT fs_register_view('user_stats', 'user_stats_history', 'user', 'event_ts', 'created_ts', ttl => '30 days',
    checks => '{"f_float1": {"not_null": true, "min": 0, "max": 1}, "f_int1": {"min": 0},
                "f_text1": {"allowed": ["a", "b", "c", "d"]}}');
CREATE TABLE q_baseline (LIKE feature_store.quarantine INCLUDING ALL);
CREATE FUNCTION best_ms(q text, n int DEFAULT 3) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; best float8 := 'Infinity'; BEGIN
  FOR i IN 1..n LOOP
    t0 := clock_timestamp(); EXECUTE q;
    best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1000);
  END LOOP;
  RETURN best;
END \$\$;
SQL

fs_log "measuring (best of 3)"
fs_as_pg_user "${PSQL[@]}" <<'SQL'
\pset format aligned
\pset tuples_only off
SELECT pass_expr FROM feature_store.checks_sql('user_stats', 's') \gset
SELECT $q$INSERT INTO q_baseline (view_id, view_name, view_version, entity, event_ts, created_ts, failed_checks, row_data, run_id)
  SELECT 1, 'user_stats', 1, x.* , 1 FROM (SELECT jsonb_build_object('user_id', user_id), event_ts, created_ts,
            array_remove(ARRAY[CASE WHEN f_float1 IS NULL THEN 'f_float1: not_null' END,
                               CASE WHEN f_float1 < 0 THEN 'f_float1: min 0' END,
                               CASE WHEN f_float1 > 1 THEN 'f_float1: max 1' END,
                               CASE WHEN f_int1 < 0 THEN 'f_int1: min 0' END,
                               CASE WHEN f_text1 NOT IN ('a','b','c','d') THEN 'f_text1: allowed' END], NULL) AS failed,
            to_jsonb(s) FROM user_stats_history s) x WHERE cardinality(failed) > 0
  ON CONFLICT DO NOTHING$q$ AS base_insert \gset
WITH m AS (
  SELECT best_ms($q$SELECT count(*) FROM user_stats_history s WHERE f_float1 IS NOT NULL AND f_float1 >= 0
        AND f_float1 <= 1 AND (f_int1 IS NULL OR f_int1 >= 0) AND (f_text1 IS NULL OR f_text1 IN ('a','b','c','d'))$q$) AS base_filter,
         best_ms(format('SELECT count(*) FROM user_stats_history s WHERE %s', :'pass_expr')) AS fs_filter,
         best_ms($q$SELECT count(*) FROM (SELECT x.* FROM (SELECT jsonb_build_object('user_id', user_id), event_ts, created_ts,
            array_remove(ARRAY[CASE WHEN f_float1 IS NULL THEN 'f_float1: not_null' END,
                               CASE WHEN f_float1 < 0 THEN 'f_float1: min 0' END,
                               CASE WHEN f_float1 > 1 THEN 'f_float1: max 1' END,
                               CASE WHEN f_int1 < 0 THEN 'f_int1: min 0' END,
                               CASE WHEN f_text1 NOT IN ('a','b','c','d') THEN 'f_text1: allowed' END], NULL) AS failed,
            to_jsonb(s) AS r FROM user_stats_history s) x WHERE cardinality(failed) > 0
            ORDER BY 1, 2, 3 NULLS FIRST, r) y$q$) AS base_validate,
         best_ms('SELECT count(*) FROM fs_validate(''user_stats'')') AS fs_validate,
         best_ms('TRUNCATE q_baseline; ' || :'base_insert') AS base_quarantine,
         best_ms(:'base_insert') AS base_requarantine,
         best_ms('DELETE FROM feature_store.quarantine; SELECT fs_test.run_logged_test(''user_stats'', ''batch'', ''SELECT 1'', true)') AS fs_quarantine,
         best_ms('SELECT fs_test.run_logged_test(''user_stats'', ''batch'', ''SELECT 1'', true)') AS fs_requarantine)
SELECT 'pass filter (ms)' AS measure, round(base_filter::numeric, 1) AS baseline, round(fs_filter::numeric, 1) AS feature_store,
       round((fs_filter / base_filter)::numeric, 2) AS ratio FROM m
UNION ALL SELECT 'fs_validate (ms)', round(base_validate::numeric, 1), round(fs_validate::numeric, 1), round((fs_validate / base_validate)::numeric, 2) FROM m
UNION ALL SELECT 'quarantine first run (ms)', round(base_quarantine::numeric, 1), round(fs_quarantine::numeric, 1), round((fs_quarantine / base_quarantine)::numeric, 2) FROM m
UNION ALL SELECT 'quarantine re-run (ms)', round(base_requarantine::numeric, 1), round(fs_requarantine::numeric, 1), round((fs_requarantine / base_requarantine)::numeric, 2) FROM m;
SELECT count(*) AS failing_rows, (SELECT count(*) FROM user_stats_history) AS rows FROM feature_store.quarantine;
SQL
