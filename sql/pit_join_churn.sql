-- Point-in-time join against a brute-force oracle on tables that have lived: sources and spines
-- carry deleted but not vacuumed rows, HOT-updated rows and HOT chains, rows moved to other pages by
-- UPDATE, TOASTed features, keys and spine columns, and pages with redirected and unused line
-- pointers — in every join path (hash-partitioned heap scan, key index probe, SPI for views), with
-- two views keyed bigint and (bigint, text) in the same join. The conditions are checked on the raw
-- pages (pageinspect, pgstattuple) before each join reads them, so a round that failed to produce
-- them fails here instead of passing vacuously.
-- (A btree scan meeting dead rows allocated its kill list in a context the join reset per key:
-- "could not find block containing chunk", or silently corrupted memory.)
CREATE EXTENSION IF NOT EXISTS feature_store;
CREATE EXTENSION IF NOT EXISTS pageinspect;
CREATE EXTENSION IF NOT EXISTS pgstattuple;
SET client_min_messages = warning;

CREATE TABLE ch_a (driver_id bigint, event_ts timestamptz, created_ts timestamptz,
                   a_num float8, a_txt text, a_int int) WITH (autovacuum_enabled = off);
CREATE TABLE ch_b (user_id bigint, merchant_id text, event_ts timestamptz, b_num numeric, b_doc jsonb)
    WITH (autovacuum_enabled = off);
CREATE TABLE ch_spine (row_id int, driver_id bigint, user_id bigint, merchant_id text, ts timestamptz,
                       note text) WITH (autovacuum_enabled = off);
CREATE TABLE ch_spine_few (LIKE ch_spine) WITH (autovacuum_enabled = off);
-- long keys are stored out of line, uncompressed (in the index they are compressed inline)
ALTER TABLE ch_b ALTER COLUMN merchant_id SET STORAGE EXTERNAL;
ALTER TABLE ch_spine ALTER COLUMN merchant_id SET STORAGE EXTERNAL;
ALTER TABLE ch_spine_few ALTER COLUMN merchant_id SET STORAGE EXTERNAL;
CREATE INDEX ON ch_a (driver_id, event_ts DESC, created_ts DESC);
CREATE INDEX ON ch_b (user_id, merchant_id, event_ts DESC);
CREATE VIEW ch_a_v AS SELECT * FROM ch_a;
CREATE VIEW ch_b_v AS SELECT * FROM ch_b;
CREATE VIEW ch_spine_v AS SELECT * FROM ch_spine;

SELECT fs_register_entity('ch_drv', 'driver_id');
SELECT fs_register_entity('ch_um', ARRAY['user_id', 'merchant_id']);
SELECT fs_register_view('cha', 'ch_a', 'ch_drv', event_time => 'event_ts', created_time => 'created_ts',
                        ttl => '20 minutes');
SELECT fs_register_view('chb', 'ch_b', 'ch_um', event_time => 'event_ts');
SELECT fs_register_view('chav', 'ch_a_v', 'ch_drv', event_time => 'event_ts', created_time => 'created_ts',
                        ttl => '20 minutes');
SELECT fs_register_view('chbv', 'ch_b_v', 'ch_um', event_time => 'event_ts');

-- A merchant id: short and shared, or one of a few 2 kB ids stored out of line.
CREATE FUNCTION ch_merchant() RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN random() < 0.15 THEN 'L' || n || repeat(md5('long' || n), 64) ELSE 'm' || n END
    FROM (SELECT 1 + floor(random() * 3)::int AS n) x $$;
-- A feature text: short, or (5%) 4 kB of random hex that stays out of line.
CREATE FUNCTION ch_text() RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN random() < 0.05
                THEN (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 128))
                ELSE (ARRAY['x', 'y', NULL, 'Z'])[1 + floor(random() * 4)::int] END $$;

-- Fresh data with full pages: nkeys driver ids, times on a 2-minute grid with exact ties.
CREATE FUNCTION ch_gen(seed float8, nkeys int, n_hist int, n_spine int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    base timestamptz := '2026-03-01 12:00+00';
BEGIN
    PERFORM setseed(seed);
    TRUNCATE ch_a, ch_b, ch_spine, ch_spine_few;
    INSERT INTO ch_a
    SELECT CASE WHEN random() < 0.02 THEN NULL ELSE 1 + floor(random() * nkeys)::bigint END, ev,
           CASE WHEN random() < 0.1 THEN NULL ELSE ev + floor(random() * 3) * interval '5 minutes' END,
           floor(random() * 4) / 2, ch_text(), floor(random() * 3)::int
    FROM (SELECT base + floor(random() * 60)::int * interval '2 minutes' AS ev
          FROM generate_series(1, n_hist)) g;
    INSERT INTO ch_b
    SELECT 1 + floor(random() * (nkeys / 4 + 1))::bigint, ch_merchant(),
           base + floor(random() * 60)::int * interval '2 minutes',
           floor(random() * 3)::numeric / 4, jsonb_build_object('k', floor(random() * 2))
    FROM generate_series(1, n_hist / 2);
    INSERT INTO ch_spine
    SELECT i, CASE WHEN random() < 0.03 THEN NULL ELSE 1 + floor(random() * (nkeys + 3))::bigint END,
           1 + floor(random() * (nkeys / 4 + 1))::bigint, ch_merchant(),
           base + floor(random() * 70)::int * interval '2 minutes' - interval '6 minutes'
           + (floor(random() * 3) - 1) * interval '1 microsecond',
           CASE WHEN random() < 0.05 THEN (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 100))
                ELSE 'n' || i END
    FROM generate_series(1, n_spine) i;
    -- few keys against many rows: the join probes the key indexes instead of scanning
    INSERT INTO ch_spine_few
    SELECT row_id, driver_id % 5 + 1, user_id % 3 + 1, merchant_id, ts, note FROM ch_spine WHERE row_id % 20 = 0;
END
$$;

-- Waits (up to 20 s) until no other session of this database holds a snapshot, so that the next
-- VACUUM can remove what the round deleted (the cache worker reloads views after commits).
CREATE FUNCTION ch_quiet() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..400 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
                              AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL);
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;

-- Deletes a share of every table's rows (left dead until the next VACUUM, if any).
CREATE FUNCTION ch_delete(share float8) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM ch_a WHERE random() < share;
    DELETE FROM ch_b WHERE random() < share;
    DELETE FROM ch_spine WHERE random() < share / 3;
    DELETE FROM ch_spine_few WHERE random() < share / 3;
END
$$;

-- Updates: features only (HOT where the page has room), event times and keys (new index
-- entries, the new version wherever there is room, often another page), spine notes and times.
CREATE FUNCTION ch_update() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ch_a SET a_num = a_num + 0.5 WHERE random() < 0.25;
    UPDATE ch_a SET a_int = a_int + 1, a_txt = ch_text() WHERE random() < 0.15;
    UPDATE ch_a SET event_ts = event_ts + interval '2 minutes' WHERE random() < 0.08;
    UPDATE ch_b SET b_num = b_num + 1 WHERE random() < 0.25;
    UPDATE ch_b SET merchant_id = ch_merchant() WHERE random() < 0.05;
    UPDATE ch_spine SET note = note || '+' WHERE random() < 0.2;
    UPDATE ch_spine SET ts = ts + interval '2 minutes' WHERE random() < 0.1;
    UPDATE ch_spine_few SET note = note || '+', ts = ts + interval '1 minute' WHERE random() < 0.3;
END
$$;

-- The last changes before a join, in one transaction so that none of them is pruned before the
-- join reads the pages: HOT updates, rows grown past their page's room (the new version moves to
-- another page), deletes; the line pointers the last VACUUM freed stay unused where no row lands.
CREATE FUNCTION ch_final() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ch_a SET a_num = a_num + 0.5 WHERE random() < 0.1;
    UPDATE ch_a SET a_txt = (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 60))
    WHERE random() < 0.06;
    UPDATE ch_b SET b_doc = jsonb_build_object('k', b_doc->'k', 'pad', repeat('p', 1900)) WHERE random() < 0.06;
    UPDATE ch_spine SET note = repeat('s', 1900) WHERE random() < 0.06;
    UPDATE ch_spine_few SET note = repeat('s', 1900) WHERE random() < 0.2;
    PERFORM ch_delete(0.1);
END
$$;

-- What the pages hold right now, summed over the four tables.
CREATE FUNCTION ch_pages(OUT dead bigint, OUT hot_updated bigint, OUT moved bigint, OUT redirects bigint,
                         OUT unused bigint, OUT toasted bigint)
LANGUAGE sql AS $$
    SELECT (SELECT sum((pgstattuple(r)).dead_tuple_count)
            FROM unnest(ARRAY['ch_a', 'ch_b', 'ch_spine', 'ch_spine_few']::regclass[]) r)::bigint,
           count(*) FILTER (WHERE (i.t_infomask2 & 16384) <> 0),               -- HEAP_HOT_UPDATED
           count(*) FILTER (WHERE i.t_ctid IS NOT NULL AND (i.t_ctid::text::point)[0] <> b.blk), -- moved
           count(*) FILTER (WHERE i.lp_flags = 2), count(*) FILTER (WHERE i.lp_flags = 0),
           (SELECT sum(pg_relation_size(reltoastrelid) / 8192) FROM pg_class
            WHERE oid IN ('ch_a'::regclass, 'ch_b'::regclass, 'ch_spine'::regclass, 'ch_spine_few'::regclass))::bigint
    FROM unnest(ARRAY['ch_a', 'ch_b', 'ch_spine', 'ch_spine_few']::regclass[]) r,
         LATERAL generate_series(0, pg_relation_size(r) / 8192 - 1) b(blk),
         LATERAL heap_page_items(get_raw_page(r::text, b.blk::int)) i
    GROUP BY ()
$$;

-- One join of the given path and its oracle. path: 'scan' (table spine, many keys: heap scan,
-- hash-partitioned), 'probe' (few keys: index probes), 'spi' (sources and spine are SQL views).
CREATE FUNCTION ch_check(path text, as_of boolean, OUT mismatches bigint, OUT spine_rows bigint,
                         OUT result_rows bigint, OUT matched_a bigint, OUT matched_b bigint,
                         OUT toasted_winners bigint, OUT detail text)
LANGUAGE plpgsql AS $$
DECLARE
    spine text := CASE path WHEN 'scan' THEN 'ch_spine' WHEN 'probe' THEN 'ch_spine_few' ELSE 'ch_spine_v' END;
    va text := CASE path WHEN 'spi' THEN 'chav' ELSE 'cha' END;
    vb text := CASE path WHEN 'spi' THEN 'chbv' ELSE 'chb' END;
    feats text[] := ARRAY[va || ':a_num', va || ':a_txt', va || ':a_int', vb || ':b_num', vb || ':b_doc'];
BEGIN
    IF path = 'scan' AND NOT as_of THEN
        -- the reported case: fs_create_training_set over both views
        DROP TABLE IF EXISTS ch_res;
        PERFORM fs_create_training_set('ch_res', spine::regclass, feats, spine_time => 'ts');
    ELSE
        EXECUTE format('CREATE TEMP TABLE ch_res ON COMMIT DROP AS SELECT * FROM fs_point_in_time_join(%L, %L, '
                       'spine_time => ''ts'', as_of_created => %L) AS t(row_id int, driver_id bigint, '
                       'user_id bigint, merchant_id text, ts timestamptz, note text, a_num float8, '
                       'a_txt text, a_int int, b_num numeric, b_doc jsonb)', spine, feats, as_of);
    END IF;
    detail := (SELECT s.detail FROM fs_point_in_time_join_stats() s);
    EXECUTE format($q$
    CREATE TEMP TABLE ch_exp ON COMMIT DROP AS
    SELECT s.*, a.a_num, a.a_txt, a.a_int, b.b_num, b.b_doc
    FROM %I s
    LEFT JOIN LATERAL (
        SELECT h.* FROM ch_a h
        WHERE h.driver_id = s.driver_id AND h.event_ts <= s.ts AND h.event_ts >= s.ts - interval '20 minutes'
          AND (NOT %L OR h.created_ts <= s.ts)
        ORDER BY h.event_ts DESC, h.created_ts DESC NULLS LAST, h.a_num, h.a_txt, h.a_int
        LIMIT 1) a ON true
    LEFT JOIN LATERAL (
        SELECT h.* FROM ch_b h
        WHERE h.user_id = s.user_id AND h.merchant_id = s.merchant_id AND h.event_ts <= s.ts
        ORDER BY h.event_ts DESC, h.b_num, h.b_doc
        LIMIT 1) b ON true $q$, spine, as_of);
    mismatches := (SELECT count(*) FROM ch_res r FULL JOIN ch_exp e ON r.row_id = e.row_id
                   WHERE r IS DISTINCT FROM e);
    spine_rows := (SELECT count(*) FROM ch_exp);
    result_rows := (SELECT count(*) FROM ch_res);
    matched_a := (SELECT count(*) FROM ch_exp WHERE a_int IS NOT NULL);
    matched_b := (SELECT count(*) FROM ch_exp WHERE b_num IS NOT NULL);
    toasted_winners := (SELECT count(*) FROM ch_exp WHERE length(a_txt) > 2000 OR length(merchant_id) > 2000);
    DROP TABLE ch_res, ch_exp;
END
$$;

CREATE TEMP TABLE ch_runs (round int, path text, as_of boolean, mismatches bigint, spine_rows bigint,
                           result_rows bigint, matched_a bigint, matched_b bigint, toasted_winners bigint,
                           detail text, dead bigint, hot_updated bigint, moved bigint, redirects bigint,
                           unused bigint, toasted bigint);
SET feature_store.join_partition_size = '1kB';
-- The rounds: fresh data; deletes then VACUUM (unused line pointers, room for HOT); updates;
-- VACUUM again (HOT chains become redirects); more updates and deletes left dead. Then each path
-- reads the pages as they are, before the oracle's own scans prune or kill anything.
\set round 1
\set path scan
\set nkeys 600
\i sql/include/churn_round.sql
\set round 2
\set path probe
\i sql/include/churn_round.sql
\set round 3
\set path spi
\i sql/include/churn_round.sql
\set round 4
\set path scan
\set nkeys 500
\i sql/include/churn_round.sql
\set round 5
\set path probe
\i sql/include/churn_round.sql
\set round 6
\set path spi
\i sql/include/churn_round.sql
RESET feature_store.join_partition_size;

-- Every run equals the oracle, one row per spine row, each path ran as named, and every round's
-- pages held each kind of leftover the join had to step over.
SELECT path, count(*) AS runs, sum(mismatches) AS mismatches,
       bool_and(result_rows = spine_rows) AS one_row_per_spine_row,
       bool_and(matched_a > 0 AND matched_b > 0 AND matched_a < spine_rows) AS nontrivial,
       sum(toasted_winners) > 0 AS toasted_values_in_results,
       bool_and(CASE path WHEN 'scan' THEN detail ~ '^[1-9][0-9]* scanned, 0 probed'
                          WHEN 'probe' THEN detail ~ '^0 scanned, [1-9][0-9]* probed'
                          ELSE detail ~ '^0 scanned, 0 probed' END) AS path_as_named,
       bool_and(dead > 0 AND hot_updated > 0 AND moved > 0 AND redirects > 0 AND unused > 0 AND toasted > 0)
         AS pages_had_every_leftover
FROM ch_runs GROUP BY path ORDER BY path;

-- Leave the database as found.
RESET client_min_messages;
DROP EXTENSION feature_store CASCADE;
DROP VIEW ch_a_v, ch_b_v, ch_spine_v;
DROP TABLE ch_a, ch_b, ch_spine, ch_spine_few;
DROP FUNCTION ch_quiet, ch_merchant, ch_text, ch_gen, ch_delete, ch_update, ch_final, ch_pages, ch_check;
DROP EXTENSION pageinspect;
DROP EXTENSION pgstattuple;
