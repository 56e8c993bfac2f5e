-- Point-in-time join against a brute-force oracle on randomized, seeded datasets.
-- The oracle is the LEFT JOIN LATERAL (... ORDER BY event_ts DESC, created_ts DESC NULLS LAST,
-- <every feature of the view in order> LIMIT 1) query of docs/semantics.md, with rules 3 and 5
-- in its WHERE clause; the trailing feature columns are the documented tie-break.
-- Sources: a declaratively partitioned table (timestamptz, created time, every feature type) and a
-- SQL view over a table (timestamp without time zone, composite key, no created time).
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'America/New_York';

CREATE TABLE ora_hist_a (user_id bigint, event_ts timestamptz, created_ts timestamptz,
                         f_float float8, f_int int, f_text text, f_arr int[], f_json jsonb, f_bool bool)
    PARTITION BY RANGE (event_ts);
CREATE TABLE ora_hist_a_1 PARTITION OF ora_hist_a FOR VALUES FROM (MINVALUE) TO ('2026-01-01 01:00+00');
CREATE TABLE ora_hist_a_2 (f_bool bool, f_json jsonb, f_arr int[], f_text text, f_int int, f_float float8,
                           created_ts timestamptz, event_ts timestamptz, user_id bigint);
ALTER TABLE ora_hist_a ATTACH PARTITION ora_hist_a_2 FOR VALUES FROM ('2026-01-01 01:00+00') TO (MAXVALUE);
CREATE TABLE ora_hist_a_def PARTITION OF ora_hist_a DEFAULT;
-- physically reordered columns in one partition; dropped column in the composite-key table
CREATE TABLE ora_hist_b (merchant_id int, dropped int, g_text text, ts timestamp, user_id bigint, g_num numeric);
ALTER TABLE ora_hist_b DROP COLUMN dropped;
CREATE VIEW ora_hist_b_v AS SELECT user_id, merchant_id, ts, g_num, g_text FROM ora_hist_b;
CREATE TABLE ora_spine (row_id bigint, user_id bigint, merchant_id int, ts timestamptz, note text);

SELECT fs_register_entity('ora_user', 'user_id');
SELECT fs_register_entity('ora_um', ARRAY['user_id', 'merchant_id']);

-- Generates dataset `seed` with TTLs ttl_a / ttl_b (NULL = unlimited).
CREATE FUNCTION ora_gen(seed float8, n_hist int, n_spine int, ttl_a interval, ttl_b interval) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    evs_a timestamptz[]; evs_b timestamp[]; crs timestamptz[];
    base timestamptz := '2026-01-01 00:00+00';
BEGIN
    PERFORM setseed(seed);
    TRUNCATE ora_hist_a, ora_hist_b, ora_spine;
    -- times on a 2-minute grid (so equal event times, equal spine/event times and exact
    -- (event, created) ties are common), a few 1 µs off the grid; created times equal to the
    -- event time, 10-30 minutes later (often after the spine time), or NULL.
    INSERT INTO ora_hist_a
    SELECT CASE WHEN random() < 0.03 THEN NULL ELSE 1 + floor(random() * 15)::bigint END,
           CASE WHEN random() < 0.03 THEN NULL ELSE ev END,
           CASE WHEN r < 0.1 THEN NULL WHEN r < 0.5 THEN ev ELSE ev + floor(random() * 4) * interval '10 minutes' END,
           CASE WHEN random() < 0.1 THEN NULL ELSE floor(random() * 3) / 2 END,
           floor(random() * 3)::int,
           (ARRAY['x', 'y', NULL, 'Z'])[1 + floor(random() * 4)::int],
           ARRAY[floor(random() * 2)::int, floor(random() * 2)::int],
           jsonb_build_object('k', floor(random() * 2)),
           random() < 0.5
    FROM (SELECT base + floor(random() * 60)::int * interval '2 minutes'
                 + CASE WHEN random() < 0.1 THEN (floor(random() * 3) - 1) * interval '1 microsecond' ELSE interval '0' END AS ev,
                 random() AS r
          FROM generate_series(1, n_hist)) g;
    INSERT INTO ora_hist_b (user_id, merchant_id, ts, g_num, g_text)
    SELECT CASE WHEN random() < 0.03 THEN NULL ELSE 1 + floor(random() * 15)::bigint END,
           CASE WHEN random() < 0.03 THEN NULL ELSE 1 + floor(random() * 3)::int END,
           CASE WHEN random() < 0.03 THEN NULL ELSE
             (base + floor(random() * 60)::int * interval '2 minutes')::timestamp
             + CASE WHEN random() < 0.1 THEN (floor(random() * 3) - 1) * interval '1 microsecond' ELSE interval '0' END END,
           floor(random() * 3)::numeric / 4,
           (ARRAY['p', 'q', NULL])[1 + floor(random() * 3)::int]
    FROM generate_series(1, n_hist / 2);
    SELECT array_agg(event_ts) INTO evs_a FROM ora_hist_a WHERE event_ts IS NOT NULL;
    SELECT array_agg(ts) INTO evs_b FROM ora_hist_b WHERE ts IS NOT NULL;
    SELECT array_agg(created_ts) INTO crs FROM ora_hist_a WHERE created_ts IS NOT NULL;
    -- spine: keys 1..18 (16-18 have no history), some NULL; times on the grid, exactly at TTL
    -- edges of history rows (-1 µs, 0, +1 µs), at created times, before any history, or NULL.
    INSERT INTO ora_spine
    SELECT i,
           CASE WHEN random() < 0.03 THEN NULL ELSE 1 + floor(random() * 18)::bigint END,
           CASE WHEN random() < 0.03 THEN NULL ELSE 1 + floor(random() * 3)::int END,
           CASE WHEN k < 0.30 THEN base + floor(random() * 70)::int * interval '2 minutes' - interval '6 minutes'
                WHEN k < 0.50 THEN evs_a[1 + floor(random() * cardinality(evs_a))::int] + coalesce(ttl_a, interval '0') + d
                WHEN k < 0.65 THEN evs_b[1 + floor(random() * cardinality(evs_b))::int] + coalesce(ttl_b, interval '0') + d
                WHEN k < 0.80 THEN crs[1 + floor(random() * cardinality(crs))::int] + d
                WHEN k < 0.90 THEN evs_a[1 + floor(random() * cardinality(evs_a))::int]
                WHEN k < 0.95 THEN base - interval '1 day'
                ELSE NULL END,
           'n' || i
    FROM (SELECT i, random() AS k, (floor(random() * 3) - 1) * interval '1 microsecond' AS d
          FROM generate_series(1, n_spine) i) g;
    PERFORM fs_register_view('ora_a', 'ora_hist_a', 'ora_user', event_time => 'event_ts',
                             created_time => 'created_ts', ttl => ttl_a);
    PERFORM fs_register_view('ora_b', 'ora_hist_b_v', 'ora_um', event_time => 'ts', ttl => ttl_b);
END
$$;

-- Compares one join with the oracle; returns mismatching rows and how non-trivial the case was.
CREATE FUNCTION ora_check(as_of boolean, OUT spine_rows bigint, OUT result_rows bigint, OUT distinct_ids bigint,
                          OUT mismatches bigint, OUT matched_a bigint, OUT matched_b bigint, OUT tie_groups bigint)
LANGUAGE plpgsql AS $$
DECLARE
    ttl_a interval := (SELECT ttl FROM fs_views WHERE name = 'ora_a' AND is_latest);
    ttl_b interval := (SELECT ttl FROM fs_views WHERE name = 'ora_b' AND is_latest);
BEGIN
    CREATE TEMP TABLE ora_res ON COMMIT DROP AS
    SELECT * FROM fs_point_in_time_join('ora_spine', '{ora_a:*, ora_b:*}', spine_time => 'ts', as_of_created => as_of)
      AS t(row_id bigint, user_id bigint, merchant_id int, ts timestamptz, note text,
           f_float float8, f_int int, f_text text, f_arr int[], f_json jsonb, f_bool bool, g_num numeric, g_text text);
    CREATE TEMP TABLE ora_exp ON COMMIT DROP AS
    SELECT s.row_id, s.user_id, s.merchant_id, s.ts, s.note,
           a.f_float, a.f_int, a.f_text, a.f_arr, a.f_json, a.f_bool, b.g_num, b.g_text
    FROM ora_spine s
    LEFT JOIN LATERAL (
        SELECT h.* FROM ora_hist_a h
        WHERE h.user_id = s.user_id AND h.event_ts <= s.ts
          AND (ttl_a IS NULL OR h.event_ts >= s.ts - ttl_a)
          AND (NOT as_of OR h.created_ts <= s.ts)
        ORDER BY h.event_ts DESC, h.created_ts DESC NULLS LAST,
                 h.f_float, h.f_int, h.f_text, h.f_arr, h.f_json, h.f_bool
        LIMIT 1) a ON true
    LEFT JOIN LATERAL (
        SELECT h.* FROM ora_hist_b_v h
        WHERE h.user_id = s.user_id AND h.merchant_id = s.merchant_id AND h.ts <= s.ts
          AND (ttl_b IS NULL OR h.ts >= s.ts - ttl_b)
        ORDER BY h.ts DESC, h.g_num, h.g_text
        LIMIT 1) b ON true;
    spine_rows := (SELECT count(*) FROM ora_spine);
    result_rows := (SELECT count(*) FROM ora_res);
    distinct_ids := (SELECT count(DISTINCT row_id) FROM ora_res);
    mismatches := (SELECT count(*) FROM ora_res r FULL JOIN ora_exp e ON r.row_id = e.row_id
                   WHERE r IS DISTINCT FROM e);
    matched_a := (SELECT count(*) FROM ora_exp WHERE f_int IS NOT NULL);
    matched_b := (SELECT count(*) FROM ora_exp WHERE g_num IS NOT NULL);
    tie_groups := (SELECT count(*) FROM (SELECT 1 FROM ora_hist_a WHERE event_ts IS NOT NULL
                   GROUP BY user_id, event_ts, created_ts HAVING count(*) > 1) x);
    DROP TABLE ora_res, ora_exp;
END
$$;

CREATE TEMP TABLE ora_runs (dataset int, as_of boolean, spine_rows bigint, result_rows bigint,
                            distinct_ids bigint, mismatches bigint, matched_a bigint, matched_b bigint,
                            tie_groups bigint, batches int);
DO $$
DECLARE
    ttls_a interval[] := ARRAY['10 minutes', NULL, '30 minutes', '1 hour', '2 minutes'];
    ttls_b interval[] := ARRAY['20 minutes', '45 minutes', NULL];
BEGIN
    FOR i IN 1..24 LOOP
        PERFORM ora_gen(i / 100.0, 150 + 20 * i, 200 + 10 * i, ttls_a[1 + i % 5], ttls_b[1 + i % 3]);
        FOR as_of IN 0..1 LOOP
            INSERT INTO ora_runs SELECT i, as_of = 1, c.*, (SELECT batches FROM fs_point_in_time_join_stats())
            FROM ora_check(as_of = 1) c;
        END LOOP;
    END LOOP;
END
$$;

-- Every row of every run equals the oracle's, exactly one row per spine row.
SELECT count(DISTINCT dataset) AS datasets, count(*) AS runs,
       sum(mismatches) AS mismatches,
       bool_and(result_rows = spine_rows AND distinct_ids = spine_rows) AS one_row_per_spine_row,
       bool_and(matched_a > 0 AND matched_b > 0 AND matched_a < spine_rows) AS every_run_nontrivial,
       bool_and(tie_groups > 0) AS every_dataset_has_exact_ties
FROM ora_runs;
-- as_of_created changes results (created times after the spine time are excluded)
SELECT count(*) > 0 AS as_of_differs
FROM ora_runs f JOIN ora_runs t ON f.dataset = t.dataset AND NOT f.as_of AND t.as_of
WHERE t.matched_a < f.matched_a;

-- The same with the history offered through many tiny cache partitions (the smallest
-- feature_store.join_partition_size): rows are buffered by key hash and the buffers flushed many
-- times during each scan, as in a large join. Still exact.
TRUNCATE ora_runs;
CREATE TEMP TABLE ora_part_detail (detail text);
SET feature_store.join_partition_size = '1kB';
DO $$
BEGIN
    FOR i IN 1..6 LOOP
        PERFORM ora_gen(0.3 + i / 100.0, 3000, 300 + 50 * i,
                        (ARRAY['30 minutes', NULL, '10 minutes']::interval[])[1 + i % 3],
                        (ARRAY['20 minutes', NULL]::interval[])[1 + i % 2]);
        FOR as_of IN 0..1 LOOP
            INSERT INTO ora_runs SELECT i, as_of = 1, c.*, (SELECT batches FROM fs_point_in_time_join_stats())
            FROM ora_check(as_of = 1) c;
            INSERT INTO ora_part_detail SELECT detail FROM fs_point_in_time_join_stats();
        END LOOP;
    END LOOP;
END
$$;
RESET feature_store.join_partition_size;
SELECT count(*) AS runs, sum(mismatches) AS mismatches,
       bool_and(result_rows = spine_rows AND distinct_ids = spine_rows) AS one_row_per_spine_row,
       bool_and(matched_a > 0 AND matched_b > 0) AS every_run_nontrivial
FROM ora_runs;
-- three leaves of ora_a end in three flushes; more mean full buffers flushed mid-scan
SELECT bool_and(substring(detail FROM '(\d+) cache partitions')::int > 1) AS several_partitions,
       bool_and(substring(detail FROM '(\d+) flushes')::int > 3) AS flushes_mid_scan
FROM ora_part_detail;

-- Text keys over a plain table (compared with the type's equality and offered straight from the
-- page), timestamp event times against the timestamptz spine (through a view), a TTL: exact.
CREATE TABLE ora_hist_c (user_name text, ts timestamp, f int, g text);
CREATE VIEW ora_spine_c AS
    SELECT row_id, 'u' || user_id AS user_name, ts FROM ora_spine;
SELECT fs_register_entity('ora_name', 'user_name');
SELECT fs_register_view('ora_c', 'ora_hist_c', 'ora_name', event_time => 'ts', ttl => '30 minutes');
CREATE TEMP TABLE ora_c_runs (dataset int, spine_rows bigint, result_rows bigint, matched bigint, mismatches bigint);
DO $$
BEGIN
    FOR i IN 1..4 LOOP
        PERFORM ora_gen(0.4 + i / 100.0, 2000, 400, NULL, NULL);
        TRUNCATE ora_hist_c;
        INSERT INTO ora_hist_c SELECT 'u' || user_id, event_ts::timestamp, f_int, f_text FROM ora_hist_a;
        CREATE TEMP TABLE ora_c_res ON COMMIT DROP AS
        SELECT * FROM fs_point_in_time_join('ora_spine_c', '{ora_c:*}', spine_time => 'ts')
          AS t(row_id bigint, user_name text, ts timestamptz, f int, g text);
        CREATE TEMP TABLE ora_c_exp ON COMMIT DROP AS
        SELECT s.row_id, s.user_name, s.ts, h.f, h.g
        FROM ora_spine_c s
        LEFT JOIN LATERAL (
            SELECT h.f, h.g FROM ora_hist_c h
            WHERE h.user_name = s.user_name AND h.ts <= s.ts AND h.ts >= s.ts - interval '30 minutes'
            ORDER BY h.ts DESC, h.f, h.g
            LIMIT 1) h ON true;
        INSERT INTO ora_c_runs
        SELECT i, (SELECT count(*) FROM ora_spine_c), (SELECT count(*) FROM ora_c_res),
               (SELECT count(*) FROM ora_c_exp WHERE f IS NOT NULL OR g IS NOT NULL),
               (SELECT count(*) FROM ora_c_res r FULL JOIN ora_c_exp e ON r.row_id = e.row_id
                WHERE r IS DISTINCT FROM e);
        DROP TABLE ora_c_res, ora_c_exp;
    END LOOP;
END
$$;
SELECT count(*) AS runs, sum(mismatches) AS mismatches, bool_and(result_rows = spine_rows) AS one_row_per_spine_row,
       bool_and(matched > 0 AND matched < spine_rows) AS every_run_nontrivial
FROM ora_c_runs;

-- The same with spine batches far smaller than the spine (tiny work_mem): still exact.
TRUNCATE ora_runs;
SET work_mem = '64kB';
DO $$
BEGIN
    FOR i IN 1..2 LOOP
        PERFORM ora_gen(0.5 + i / 100.0, 2000, 3000, '30 minutes', NULL);
        FOR as_of IN 0..1 LOOP
            INSERT INTO ora_runs SELECT i, as_of = 1, c.*, (SELECT batches FROM fs_point_in_time_join_stats())
            FROM ora_check(as_of = 1) c;
        END LOOP;
    END LOOP;
END
$$;
RESET work_mem;
-- and once more in one batch, where the spine outgrows the estimate the batch was sized for
DO $$
BEGIN
    INSERT INTO ora_runs SELECT 3, false, c.*, (SELECT batches FROM fs_point_in_time_join_stats())
    FROM ora_check(false) c;
END
$$;
SELECT count(*) AS runs, sum(mismatches) AS mismatches,
       bool_and(result_rows = spine_rows AND distinct_ids = spine_rows) AS one_row_per_spine_row,
       count(*) FILTER (WHERE batches > 1) AS runs_in_several_batches
FROM ora_runs;
-- A small spine against indexed partitions probes each partition's key index instead of
-- scanning it: the same rows, exactly.
CREATE INDEX ON ora_hist_a (user_id, event_ts DESC);
CREATE TEMP TABLE ora_probe_runs AS SELECT * FROM ora_runs WITH NO DATA;
ALTER TABLE ora_probe_runs ADD COLUMN detail text;
DO $$
BEGIN
    FOR i IN 1..4 LOOP
        PERFORM ora_gen(0.7 + i / 100.0, 3000, 12, (ARRAY['30 minutes', NULL]::interval[])[1 + i % 2], NULL);
        FOR as_of IN 0..1 LOOP
            INSERT INTO ora_probe_runs SELECT i, as_of = 1, c.*, s.batches, s.detail
            FROM ora_check(as_of = 1) c, LATERAL (SELECT * FROM fs_point_in_time_join_stats()) s;
        END LOOP;
    END LOOP;
END
$$;
SELECT count(*) AS runs, sum(mismatches) AS mismatches,
       bool_and(result_rows = spine_rows AND distinct_ids = spine_rows) AS one_row_per_spine_row,
       sum(matched_a) > 0 AS some_matches,
       bool_and(detail LIKE '0 scanned, 3 probed;%') AS every_partition_probed
FROM ora_probe_runs;

-- Leave the database as found.
DROP EXTENSION feature_store CASCADE;
DROP VIEW ora_spine_c;
DROP TABLE ora_hist_a, ora_hist_b, ora_hist_c, ora_spine CASCADE;
DROP FUNCTION ora_gen, ora_check;
