#!/usr/bin/env bash
# Skew check benchmark: fs_skew_check of 10,000 entities on the standard workload
# (docs/benchmarks.md), for a latest-value view (materialized) and an aggregation view (six
# aggregates), against the point-in-time join alone over the same 10,000 keys at now() (the
# offline half of the check), in the same run, on the cluster of bench/pit_join.sh.
#   bench/skew_check.sh SMALL|LARGE
# Prints each timing (three runs each, all shown) and the differences found (0 expected).
# Takes flock /tmp/fs_bench.lock: one benchmark at a time.
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

fs_log "running the skew checks ($SIZE)"
psql_ <<'SQL'
DROP EXTENSION IF EXISTS feature_store CASCADE;
CREATE EXTENSION feature_store;
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
SELECT fs_register_entity('bench_user', 'user_id');
SELECT fs_register_view('user_stats', 'user_stats_history', 'bench_user', event_time => 'event_ts',
                        features => ARRAY['f_float1', 'f_float2', 'f_int1', 'f_text1']);
SELECT fs_register_view('user_aggs', 'user_stats_history', 'bench_user', event_time => 'event_ts',
  aggregations => ARRAY['avg(f_float1) over ''1 day'' as avg_1d', 'avg(f_float1) over ''7 days'' as avg_7d',
                        'sum(f_int1) over ''1 day'' as sum_1d', 'sum(f_int1) over ''7 days'' as sum_7d',
                        'count(*) over ''1 day'' as n_1d', 'count(*) over ''7 days'' as n_7d']);
SELECT fs_materialize('user_stats', '-infinity', now()) AS rows_materialized;
VACUUM ANALYZE user_stats_history;
SELECT pg_prewarm('user_stats_history') > 0 AND pg_prewarm('user_stats_history_user_ts') > 0 AS warmed;
CREATE TEMP TABLE skew_spine AS
SELECT user_id, now() AS ts FROM (SELECT DISTINCT user_id FROM user_stats_history) u ORDER BY random() LIMIT 10000;
CREATE TEMP TABLE timings (what text, run int, ms float8, differences bigint);
DO $$
DECLARE t0 timestamptz; d bigint;
BEGIN
    FOR r IN 1..3 LOOP
        t0 := clock_timestamp();
        SELECT sum(mismatches + missing + extra) INTO d FROM fs_skew_check('user_stats', 10000);
        INSERT INTO timings VALUES ('fs_skew_check, latest-value view (4 features)', r,
                                    extract(epoch FROM clock_timestamp() - t0) * 1000, d);
        t0 := clock_timestamp();
        PERFORM count(*) FROM fs_point_in_time_join('skew_spine', '{user_stats:*}', 'ts')
          AS t(user_id bigint, ts timestamptz, f_float1 float8, f_float2 float8, f_int1 bigint, f_text1 text);
        INSERT INTO timings VALUES ('  the join alone over the same number of keys', r,
                                    extract(epoch FROM clock_timestamp() - t0) * 1000, NULL);
        t0 := clock_timestamp();
        SELECT sum(mismatches + missing + extra) INTO d FROM fs_skew_check('user_aggs', 10000);
        INSERT INTO timings VALUES ('fs_skew_check, aggregation view (6 aggregates)', r,
                                    extract(epoch FROM clock_timestamp() - t0) * 1000, d);
    END LOOP;
END $$;
\echo
SELECT what, string_agg(round(ms)::text || ' ms', ' / ' ORDER BY run) AS "runs 1 / 2 / 3",
       max(ms) < 1000 AS "under 1 s", max(differences) AS differences
FROM timings GROUP BY what ORDER BY min(run), what DESC;
SQL
