-- fs_backfill and ready versions. A changed definition is version N+1, 'backfilling' until its
-- backfill completes: "name" keeps serving version N, then switches at the commit of the last
-- chunk. Every value is checked against brute-force SQL over the source (the latest row per
-- entity by event time, created time with NULL oldest, then the smallest features), not
-- against the store's own output.
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';
SET client_min_messages = notice;
CREATE SCHEMA bf;
SELECT setseed(0.42);
-- 3,000 users; ties on event time (created time decides, NULL oldest); some rows far in the past
CREATE TABLE bf.events (user_id bigint, ts timestamptz, created timestamptz, score int, label text);
INSERT INTO bf.events
SELECT (random() * 2999)::int + 1, t, CASE WHEN random() < 0.2 THEN NULL ELSE t + (random() * 3600)::int * interval '1 second' END,
       (random() * 1000)::int, md5(random()::text)
FROM (SELECT '2026-01-01'::timestamptz + (random() * 60 * 24)::int * interval '1 hour' AS t
      FROM generate_series(1, 30000)) g;
INSERT INTO bf.events SELECT user_id, ts, NULL, score + 1, 'tie' FROM bf.events WHERE user_id % 50 = 0;
CREATE VIEW bf.recent AS SELECT * FROM bf.events WHERE score < 700;

-- the oracle: latest row per user of a query's rows in [lo, hi], TTL judged at hi
CREATE FUNCTION bf.oracle(q text, lo timestamptz, hi timestamptz, ttl interval DEFAULT NULL)
RETURNS TABLE (user_id bigint, score int, label text) LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'SELECT DISTINCT ON (user_id) user_id, score, label FROM (%s) s
     WHERE ts BETWEEN $1 AND $2 AND ($3 IS NULL OR ts >= $2 - $3)
     ORDER BY user_id, ts DESC, created DESC NULLS LAST, score, label', q) USING lo, hi, ttl;
END $$;
-- what serving returns for every user of the source
CREATE FUNCTION bf.served(view text) RETURNS TABLE (user_id bigint, score int, label text) LANGUAGE sql AS $$
  SELECT u, (f -> split_part(view, '@', 1) ->> 'score')::int, f -> split_part(view, '@', 1) ->> 'label'
  FROM (SELECT DISTINCT user_id AS u FROM bf.events) k, fs_online(fs_entity('bf_user', k.u), view) f
  WHERE f -> split_part(view, '@', 1) IS NOT NULL
$$;
-- the rows of a view version's online table (TTL not applied: that is serving's, at read time)
CREATE FUNCTION bf.online(view text) RETURNS TABLE (user_id bigint, score int, label text) LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format('SELECT user_id, score, label FROM feature_store.%I',
    'online_' || (SELECT view_id FROM fs_views WHERE name = view AND is_latest));
END $$;
CREATE FUNCTION bf.diff(a text, b text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM ((%s EXCEPT ALL %s) UNION ALL (%s EXCEPT ALL %s)) d', a, b, b, a) INTO n;
  RETURN n;
END $$;

SELECT fs_register_entity('bf_user', 'user_id');
SELECT fs_register_view('bf_scores', 'bf.recent', 'bf_user', 'ts', 'created', features => '{score,label}');
SELECT fs_materialize('bf_scores', '-infinity', '2026-03-01') > 0 AS materialized;
SELECT bf.diff('SELECT * FROM bf.served(''bf_scores'')',
               'SELECT * FROM bf.oracle(''SELECT * FROM bf.events WHERE score < 700'', ''-infinity'', ''2026-03-01'')') AS v1_diff;

-- the definition changes: version 2 is backfilling, version 1 still serves
CREATE OR REPLACE VIEW bf.recent AS SELECT * FROM bf.events WHERE score < 300;
SELECT fs_register_view('bf_scores', 'bf.recent', 'bf_user', 'ts', 'created', features => '{score,label}') AS version;
SELECT version, state, is_serving, is_latest FROM fs_views WHERE name = 'bf_scores' ORDER BY version;
SELECT bf.diff('SELECT * FROM bf.served(''bf_scores'')',
               'SELECT * FROM bf.oracle(''SELECT * FROM bf.events WHERE score < 700'', ''-infinity'', ''2026-03-01'')') AS still_v1_diff;
SELECT count(*) AS v2_served_before_backfill FROM bf.served('bf_scores@2');
-- a service of unpinned features serves the serving version too
SELECT fs_register_service('bf_svc', ARRAY['bf_scores:score']);
SELECT fs_online(fs_entity('bf_user', k), 'bf_svc') = jsonb_build_object('bf_scores', jsonb_build_object('score', s.score)) AS svc_v1
FROM (SELECT user_id AS k, score FROM bf.oracle('SELECT * FROM bf.events WHERE score < 700', '-infinity', '2026-03-01') LIMIT 1) s;

-- the backfill, in 7 chunks of users: version 2 becomes ready and serves
CALL fs_backfill('bf_scores', '2025-12-01', '2026-03-01', chunks => 7);
SELECT version, state, is_serving FROM fs_views WHERE name = 'bf_scores' ORDER BY version;
SELECT bf.diff('SELECT * FROM bf.served(''bf_scores'')',
               'SELECT * FROM bf.oracle(''SELECT * FROM bf.events WHERE score < 300'', ''2025-12-01'', ''2026-03-01'')') AS v2_diff;
SELECT fs_online(fs_entity('bf_user', k), 'bf_svc') = jsonb_build_object('bf_scores', jsonb_build_object('score', s.score)) AS svc_v2
FROM (SELECT user_id AS k, score FROM bf.oracle('SELECT * FROM bf.events WHERE score < 300', '2025-12-01', '2026-03-01') LIMIT 1) s;
SELECT view, version, chunks_done, chunks_total, rows_written = (SELECT count(*) FROM bf.oracle('SELECT * FROM bf.events WHERE score < 300', '2025-12-01', '2026-03-01')) AS rows_ok, status
FROM fs_stat_backfill ORDER BY backfill_id;
SELECT kind, count(*), sum(rows_written) > 0 AS wrote FROM fs_runs WHERE view = 'bf_scores' AND version = 2 GROUP BY kind;

-- idempotent: a second run writes nothing; the online table and every served value are unchanged
SELECT (SELECT view_id FROM fs_views WHERE name = 'bf_scores' AND version = 2) AS v2_id \gset
SELECT format('feature_store.online_%s', :v2_id) AS v2_table \gset
CREATE TABLE bf.before AS SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) AS h FROM :v2_table t;
CALL fs_backfill('bf_scores', '2025-12-01', '2026-03-01', chunks => 7);
SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM :v2_table t) = h AS same_state FROM bf.before;
SELECT rows_written AS second_run_rows FROM fs_stat_backfill ORDER BY backfill_id DESC LIMIT 1;

-- chunking does not change the result: 1 chunk, 13 chunks, and the SQL statement's path
-- (feature_store.key_chunk in SQL instead of the hash in C) give the oracle's rows
SELECT fs_register_view('bf_one', 'bf.events', 'bf_user', 'ts', 'created', features => '{score,label}', ttl => '20 days');
CALL fs_backfill('bf_one', '2026-01-10', '2026-02-10', chunks => 1);
SELECT fs_register_view('bf_many', 'bf.events', 'bf_user', 'ts', 'created', features => '{score,label}', ttl => '20 days');
CALL fs_backfill('bf_many', '2026-01-10', '2026-02-10', chunks => 13);
SET feature_store.materialize_method = sql;
SELECT fs_register_view('bf_sql', 'bf.events', 'bf_user', 'ts', 'created', features => '{score,label}', ttl => '20 days');
CALL fs_backfill('bf_sql', '2026-01-10', '2026-02-10', chunks => 5);
RESET feature_store.materialize_method;
SELECT v, bf.diff(format('SELECT * FROM bf.online(%L)', v),
                  'SELECT * FROM bf.oracle(''SELECT * FROM bf.events'', ''2026-01-10'', ''2026-02-10'', ''20 days'')') AS diff
FROM unnest(ARRAY['bf_one', 'bf_many', 'bf_sql']) v;
-- both ends of the range, without a TTL (read in C from the table, and through SQL)
SELECT fs_register_view('bf_range', 'bf.events', 'bf_user', 'ts', 'created', features => '{score,label}');
CALL fs_backfill('bf_range', '2026-01-10', '2026-01-20', chunks => 3);
SET feature_store.materialize_method = sql;
SELECT fs_register_view('bf_range_sql', 'bf.events', 'bf_user', 'ts', 'created', features => '{score,label}');
CALL fs_backfill('bf_range_sql', '2026-01-10', '2026-01-20', chunks => 3);
RESET feature_store.materialize_method;
SELECT v, bf.diff(format('SELECT * FROM bf.online(%L)', v),
                  'SELECT * FROM bf.oracle(''SELECT * FROM bf.events'', ''2026-01-10'', ''2026-01-20'')') AS diff,
       (SELECT count(*) FROM bf.online(v)) AS entities
FROM unnest(ARRAY['bf_range', 'bf_range_sql']) v;

-- text and composite keys: the SQL key_chunk and the C scan agree on every entity's chunk
CREATE TABLE bf.pairs (a text, b int, ts timestamptz, x int);
INSERT INTO bf.pairs SELECT 'k' || (g % 97), g % 7, '2026-01-01'::timestamptz + g * interval '1 minute', g FROM generate_series(1, 5000) g;
SELECT fs_register_entity('bf_pair', ARRAY['a', 'b']);
SELECT fs_register_view('bf_pairs_c', 'bf.pairs', 'bf_pair', 'ts', features => '{x}');
CALL fs_backfill('bf_pairs_c', chunks => 6);
SET feature_store.materialize_method = sql;
SELECT fs_register_view('bf_pairs_s', 'bf.pairs', 'bf_pair', 'ts', features => '{x}');
CALL fs_backfill('bf_pairs_s', chunks => 6);
RESET feature_store.materialize_method;
CREATE VIEW bf.pairs_v AS SELECT * FROM bf.pairs;  -- read through SQL, filtered by key_chunk and in C
SELECT fs_register_view('bf_pairs_v', 'bf.pairs_v', 'bf_pair', 'ts', features => '{x}');
CALL fs_backfill('bf_pairs_v', chunks => 6);
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE (fs_online(fs_entity('bf_pair', a, b), 'bf_pairs_c') -> 'bf_pairs_c' ->> 'x')::int = x) AS c_ok,
       count(*) FILTER (WHERE (fs_online(fs_entity('bf_pair', a, b), 'bf_pairs_s') -> 'bf_pairs_s' ->> 'x')::int = x) AS s_ok,
       count(*) FILTER (WHERE (fs_online(fs_entity('bf_pair', a, b), 'bf_pairs_v') -> 'bf_pairs_v' ->> 'x')::int = x) AS v_ok
FROM (SELECT DISTINCT ON (a, b) a, b, x FROM bf.pairs ORDER BY a, b, ts DESC) o;
SELECT count(DISTINCT feature_store.key_chunk(6, a, b)) AS chunks_used FROM bf.pairs;

-- a failing chunk is recorded, changes nothing of the chunks committed, and a rerun resumes
-- (the source breaks for one user of chunk 4 of 5; COST: the planner evaluates the chunk's key
-- filter first, so only that chunk fails)
CREATE TABLE bf.broken AS SELECT min(user_id) AS u FROM bf.events WHERE feature_store.key_chunk(5, user_id) = 3;
CREATE FUNCTION bf.boom(u bigint) RETURNS boolean LANGUAGE plpgsql COST 10000 AS $$
BEGIN
  IF u = (SELECT b.u FROM bf.broken b) THEN RAISE EXCEPTION 'source broken for one user' USING ERRCODE = 'data_exception'; END IF;
  RETURN true;
END $$;
CREATE OR REPLACE VIEW bf.recent AS SELECT * FROM bf.events WHERE score < 500 AND bf.boom(user_id);
SELECT fs_register_view('bf_scores', 'bf.recent', 'bf_user', 'ts', 'created', features => '{score,label}') AS version;
CALL fs_backfill('bf_scores', '2025-12-01', '2026-03-01', chunks => 5);
SELECT version, chunks_done, chunks_total, status, sqlstate, error FROM fs_stat_backfill ORDER BY backfill_id DESC LIMIT 1;
SELECT version, state, is_serving FROM fs_views WHERE name = 'bf_scores' ORDER BY version;
CREATE OR REPLACE FUNCTION bf.boom(u bigint) RETURNS boolean LANGUAGE sql COST 10000 AS 'SELECT true';
CALL fs_backfill('bf_scores', '2025-12-01', '2026-03-01');
SELECT version, chunks_done = chunks_total AS complete, resumed, status FROM fs_stat_backfill ORDER BY backfill_id DESC LIMIT 1;
SELECT bf.diff('SELECT * FROM bf.served(''bf_scores'')',
               'SELECT * FROM bf.oracle(''SELECT * FROM bf.events WHERE score < 500'', ''2025-12-01'', ''2026-03-01'')') AS v3_diff;

-- a version registered offline is ready (nothing served to protect); an aggregation view has
-- no derived rows: its backfill does nothing and says so
SELECT fs_register_view('bf_scores', 'bf.events', 'bf_user', 'ts', features => '{score}', online => false) AS version;
SELECT version, state, is_serving FROM fs_views WHERE name = 'bf_scores' AND version = 4;
CREATE INDEX ON bf.events (user_id, ts);
SELECT fs_register_view('bf_agg', 'bf.events', 'bf_user', 'ts', aggregations => ARRAY['count(*) over ''1 day''']);
SELECT fs_register_view('bf_agg', 'bf.events', 'bf_user', 'ts', aggregations => ARRAY['count(*) over ''2 days''']) AS version;
CALL fs_backfill('bf_agg');
SELECT version, state, is_serving FROM fs_views WHERE name = 'bf_agg' ORDER BY version;

-- bad input: a clear error each, nothing recorded
SELECT count(*) AS backfills FROM fs_stat_backfill \gset
\set VERBOSITY sqlstate
CALL fs_backfill('bf_nope');
CALL fs_backfill('bf_scores@3', '2026-02-01', '2026-01-01');
CALL fs_backfill('bf_scores@3', '-infinity', '2026-01-01');
CALL fs_backfill('bf_scores@3', '2026-01-01', 'infinity');
CALL fs_backfill('bf_scores@3', chunks => 0);
CALL fs_backfill('bf_scores@4');
CALL fs_backfill(NULL);
BEGIN;
CALL fs_backfill('bf_scores@3');
ROLLBACK;
CREATE ROLE bf_other;
GRANT USAGE ON SCHEMA bf TO bf_other;
GRANT SELECT ON ALL TABLES IN SCHEMA bf TO bf_other;
SET ROLE bf_other;
CALL fs_backfill('bf_scores@3');
RESET ROLE;
\set VERBOSITY default
SELECT count(*) - :backfills AS new_backfills FROM fs_stat_backfill;

SELECT fs_drop_service('bf_svc');
DROP EXTENSION feature_store CASCADE;
DROP SCHEMA bf CASCADE;
DROP ROLE bf_other;
