-- The parallel point-in-time join (src/pit_parallel.c): forced onto two workers for small spines,
-- it must give the serial join's rows in the serial join's order, and both must equal brute-force
-- SQL (the latest row at or before the spine time, within the TTL; created time breaks ties,
-- NULL oldest). Two views of two entities (the second keyed differently from the partition key),
-- NULL keys and times, a timestamp spine, as_of_created, full_names, a transform evaluated by the
-- leader, and fs_create_training_set writing from the leader while the workers run.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS feature_store;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE SCHEMA pj;
SELECT setseed(0.61);
CREATE TABLE pj.user_hist (user_id bigint, ts timestamptz, created timestamptz, score float8, label text);
INSERT INTO pj.user_hist
SELECT 1 + floor(random() * 3000)::bigint, t, CASE WHEN random() < 0.3 THEN NULL ELSE t + random() * interval '2 hours' END,
       CASE WHEN random() < 0.05 THEN NULL ELSE floor(random() * 1e6) / 100 END, md5(random()::text)
FROM (SELECT '2026-01-01'::timestamptz + random() * interval '60 days' AS t FROM generate_series(1, 40000)) g;
-- equal event times, the created time decides
INSERT INTO pj.user_hist SELECT user_id, ts, coalesce(created, ts) + interval '1 minute', score + 1, 'tie' FROM pj.user_hist WHERE user_id % 40 = 0;
CREATE TABLE pj.merchant_hist (merchant text, ts timestamptz, risk int);
INSERT INTO pj.merchant_hist
SELECT 'm' || floor(random() * 200)::int, '2026-01-01'::timestamptz + random() * interval '60 days', floor(random() * 100)::int
FROM generate_series(1, 5000);
CREATE TABLE pj.spine AS
SELECT g AS request_id,
       CASE WHEN random() < 0.03 THEN NULL ELSE 1 + floor(random() * 3200)::bigint END AS user_id,
       'm' || floor(random() * 220)::int AS merchant,
       CASE WHEN random() < 0.01 THEN NULL ELSE '2026-01-01'::timestamptz + random() * interval '70 days' END AS event_timestamp,
       floor(random() * 100)::numeric AS amount
FROM generate_series(1, 20000) g;
CREATE INDEX ON pj.user_hist (user_id, ts);
CREATE INDEX ON pj.merchant_hist (merchant, ts);
ANALYZE pj.spine;
SELECT fs_register_entity('pj_user', 'user_id');
SELECT fs_register_entity('pj_merchant', 'merchant');
SELECT fs_register_view('pj_user', 'pj.user_hist', 'pj_user', event_time => 'ts', created_time => 'created', ttl => '20 days');
SELECT fs_register_view('pj_merchant', 'pj.merchant_hist', 'pj_merchant', event_time => 'ts');
SELECT fs_register_transform('pj_ratio', 'amount / nullif(score, 0)', request => '{"amount": "numeric"}',
  inputs => ARRAY['pj_user:score'], returns => 'float8');

-- the oracle, in plain SQL
CREATE VIEW pj.oracle AS
SELECT s.request_id, u.score, u.label, m.risk
FROM pj.spine s
LEFT JOIN LATERAL (SELECT h.score, h.label FROM pj.user_hist h
                   WHERE h.user_id = s.user_id AND h.ts <= s.event_timestamp AND h.ts >= s.event_timestamp - interval '20 days'
                   ORDER BY h.ts DESC, h.created DESC NULLS LAST, h.score, h.label LIMIT 1) u ON true
LEFT JOIN LATERAL (SELECT h.risk FROM pj.merchant_hist h
                   WHERE h.merchant = s.merchant AND h.ts <= s.event_timestamp
                   ORDER BY h.ts DESC, h.risk LIMIT 1) m ON true;

-- serial, then parallel (every spine qualifies; two workers)
SET max_parallel_workers_per_gather = 0;
CREATE TABLE pj.serial AS
SELECT row_number() OVER () AS n, * FROM fs_point_in_time_join('pj.spine', ARRAY['pj_user:*', 'pj_merchant:*'])
  AS t(request_id int, user_id bigint, merchant text, event_timestamp timestamptz, amount numeric, score float8, label text, risk int);
SELECT substring(detail FROM '(\d+) parallel workers')::int AS workers FROM fs_point_in_time_join_stats();
SET max_parallel_workers_per_gather = 2;
SET feature_store.parallel_join = on;
SET feature_store.parallel_join_min_rows = 0;
CREATE TABLE pj.par AS
SELECT row_number() OVER () AS n, * FROM fs_point_in_time_join('pj.spine', ARRAY['pj_user:*', 'pj_merchant:*'])
  AS t(request_id int, user_id bigint, merchant text, event_timestamp timestamptz, amount numeric, score float8, label text, risk int);
SELECT substring(detail FROM '(\d+) parallel workers')::int AS workers, spine_rows FROM fs_point_in_time_join_stats();
-- the same rows in the same order; both equal the oracle; the check is not vacuous
SELECT count(*) AS rows, count(*) FILTER (WHERE s IS DISTINCT FROM p) AS order_or_value_diffs
FROM pj.serial s FULL JOIN pj.par p USING (n);
SELECT count(*) FILTER (WHERE (o.score, o.label, o.risk) IS DISTINCT FROM (p.score, p.label, p.risk)) AS oracle_diffs,
       count(p.score) AS with_score, count(p.risk) AS with_risk, count(*) FILTER (WHERE p.label = 'tie') AS ties_won
FROM pj.par p JOIN pj.oracle o USING (request_id);

-- as_of_created, full_names, a timestamp spine and a transform: parallel equals serial
CREATE TABLE pj.spine_ts AS SELECT request_id, user_id, merchant, event_timestamp::timestamp AS event_timestamp, amount FROM pj.spine;
CREATE FUNCTION pj.run(spine regclass, workers int) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('max_parallel_workers_per_gather', workers::text, true);
  RETURN QUERY SELECT t::text FROM fs_point_in_time_join(spine, ARRAY['pj_user:score', 'pj_merchant:risk'], as_of_created => true, full_names => true)
    AS t(request_id int, user_id bigint, merchant text, event_timestamp timestamptz, amount numeric, pj_user__score float8, pj_merchant__risk int);
END $$;
SELECT (SELECT array_agg(x) FROM pj.run('pj.spine', 0) x) = (SELECT array_agg(x) FROM pj.run('pj.spine', 2) x) AS as_of_created_same;
SET max_parallel_workers_per_gather = 0;
SELECT fs_create_training_set('pj.ts_serial', 'pj.spine_ts', ARRAY['pj_user:*', 'pj_ratio']);
SET max_parallel_workers_per_gather = 2;
SELECT fs_create_training_set('pj.ts_par', 'pj.spine_ts', ARRAY['pj_user:*', 'pj_ratio']);
SELECT substring(detail FROM '(\d+) parallel workers')::int AS workers FROM fs_point_in_time_join_stats();
SELECT count(*) AS rows, count(pj_ratio) AS with_ratio,
       (SELECT count(*) FROM (SELECT * FROM pj.ts_serial EXCEPT ALL SELECT * FROM pj.ts_par) x) AS diffs
FROM pj.ts_par;

-- The shares of the work (src/pit_parallel.c): a source of three leaves (a partitioned table)
-- whose blocks the workers claim in ranges, with equal event times the features decide and exact
-- duplicates; many batches (work_mem 64kB: every batch synchronizes the workers) in which the
-- key-indexed user history is probed, split by key hash; tiny cache partitions. Each time:
-- parallel = serial, and both equal the oracle.
CREATE TABLE pj.part_hist (user_id bigint, ts timestamptz, v int, note text) PARTITION BY RANGE (ts);
CREATE TABLE pj.part_hist_a PARTITION OF pj.part_hist FOR VALUES FROM (MINVALUE) TO ('2026-01-20');
CREATE TABLE pj.part_hist_b PARTITION OF pj.part_hist FOR VALUES FROM ('2026-01-20') TO ('2026-02-10');
CREATE TABLE pj.part_hist_c PARTITION OF pj.part_hist FOR VALUES FROM ('2026-02-10') TO (MAXVALUE);
INSERT INTO pj.part_hist
SELECT 1 + floor(random() * 3000)::bigint, date_trunc('hour', '2026-01-01'::timestamptz + random() * interval '60 days'),
       floor(random() * 5)::int, CASE WHEN random() < 0.1 THEN NULL ELSE 'n' || floor(random() * 3)::int END
FROM generate_series(1, 60000);
INSERT INTO pj.part_hist SELECT * FROM pj.part_hist WHERE user_id % 7 = 0;  -- exact duplicates
CREATE INDEX ON pj.part_hist (user_id, ts);
SELECT fs_register_view('pj_part', 'pj.part_hist', 'pj_user', event_time => 'ts');
CREATE VIEW pj.oracle2 AS
SELECT s.request_id, u.score, u.label, p.v, p.note
FROM pj.spine s
LEFT JOIN LATERAL (SELECT h.score, h.label FROM pj.user_hist h
                   WHERE h.user_id = s.user_id AND h.ts <= s.event_timestamp AND h.ts >= s.event_timestamp - interval '20 days'
                   ORDER BY h.ts DESC, h.created DESC NULLS LAST, h.score, h.label LIMIT 1) u ON true
LEFT JOIN LATERAL (SELECT h.v, h.note FROM pj.part_hist h
                   WHERE h.user_id = s.user_id AND h.ts <= s.event_timestamp
                   ORDER BY h.ts DESC, h.v, h.note LIMIT 1) p ON true;
CREATE FUNCTION pj.run2(workers int, wm text) RETURNS TABLE (n bigint, request_id int, score float8, label text, v int, note text)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('max_parallel_workers_per_gather', workers::text, true);
  PERFORM set_config('work_mem', wm, true);
  PERFORM set_config('feature_store.join_partition_size', '1kB', true);
  RETURN QUERY SELECT row_number() OVER (), t.request_id, t.score, t.label, t.v, t.note
    FROM fs_point_in_time_join('pj.spine', ARRAY['pj_user:score', 'pj_user:label', 'pj_part:v', 'pj_part:note'])
    AS t(request_id int, user_id bigint, merchant text, event_timestamp timestamptz, amount numeric, score float8, label text, v int, note text);
END $$;
CREATE TABLE pj.serial2 AS SELECT * FROM pj.run2(0, '64kB');
SELECT batches > 10 AS many_batches, detail ~ ' [1-9]\d* probed' AS probed FROM fs_point_in_time_join_stats();
CREATE TABLE pj.par2 AS SELECT * FROM pj.run2(2, '64kB');
SELECT substring(detail FROM '(\d+) parallel workers')::int AS workers, batches > 10 AS many_batches,
       detail ~ ' [1-9]\d* probed' AS probed FROM fs_point_in_time_join_stats();
CREATE TABLE pj.par3 AS SELECT * FROM pj.run2(2, '64MB');
SELECT substring(detail FROM '(\d+) parallel workers')::int AS workers, batches, substring(detail FROM '^\d+ scanned, \d+ probed') AS leaves
FROM fs_point_in_time_join_stats();
SELECT (SELECT count(*) FROM pj.serial2 s FULL JOIN pj.par2 p USING (n) WHERE s IS DISTINCT FROM p) AS par2_diffs,
       (SELECT count(*) FROM pj.serial2 s FULL JOIN pj.par3 p USING (n) WHERE s IS DISTINCT FROM p) AS par3_diffs,
       (SELECT count(*) FROM pj.par2 p JOIN pj.oracle2 o USING (request_id)
         WHERE (o.score, o.label, o.v, o.note) IS DISTINCT FROM (p.score, p.label, p.v, p.note)) AS oracle_diffs,
       (SELECT count(v) FROM pj.par2) AS with_v, (SELECT count(*) FROM pj.par2) AS rows;
-- Dead tuples and HOT chains: the workers read pages through heapgetpage's visible tuples, as the
-- serial scan does. The user history is rewritten with free space, then a share of its rows is
-- deleted, others updated in place (HOT: label and score are not indexed) and some moved (ts is
-- indexed); a VACUUM leaves redirected line pointers, and a second round of HOT updates follows.
-- Parallel = serial = oracle after each round.
ALTER TABLE pj.user_hist SET (fillfactor = 60, autovacuum_enabled = off);
VACUUM FULL pj.user_hist;
CREATE FUNCTION pj.churn_check() RETURNS TABLE (par_diffs bigint, oracle_diffs bigint, rows bigint) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('max_parallel_workers_per_gather', '0', true);
  CREATE TEMP TABLE pj_cs ON COMMIT DROP AS SELECT row_number() OVER () AS n, * FROM fs_point_in_time_join('pj.spine', ARRAY['pj_user:*', 'pj_merchant:*'])
    AS t(request_id int, user_id bigint, merchant text, event_timestamp timestamptz, amount numeric, score float8, label text, risk int);
  PERFORM set_config('max_parallel_workers_per_gather', '2', true);
  CREATE TEMP TABLE pj_cp ON COMMIT DROP AS SELECT row_number() OVER () AS n, * FROM fs_point_in_time_join('pj.spine', ARRAY['pj_user:*', 'pj_merchant:*'])
    AS t(request_id int, user_id bigint, merchant text, event_timestamp timestamptz, amount numeric, score float8, label text, risk int);
  IF (SELECT substring(detail FROM '(\d+) parallel workers')::int FROM fs_point_in_time_join_stats()) <> 2 THEN
    RAISE EXCEPTION 'the join did not run on two workers';
  END IF;
  RETURN QUERY SELECT (SELECT count(*) FROM pj_cs s FULL JOIN pj_cp p USING (n) WHERE s IS DISTINCT FROM p),
    (SELECT count(*) FROM pj_cp p JOIN pj.oracle o USING (request_id)
      WHERE (o.score, o.label, o.risk) IS DISTINCT FROM (p.score, p.label, p.risk)),
    (SELECT count(*) FROM pj_cp);
END $$;
DELETE FROM pj.user_hist WHERE random() < 0.1;
UPDATE pj.user_hist SET label = label || '+' WHERE random() < 0.2;
UPDATE pj.user_hist SET score = score + 1 WHERE random() < 0.1;
UPDATE pj.user_hist SET ts = ts - interval '1 hour' WHERE random() < 0.05;
SELECT pg_stat_force_next_flush();
SELECT * FROM pj.churn_check();
VACUUM pj.user_hist;
UPDATE pj.user_hist SET label = label || '*' WHERE random() < 0.3;
DELETE FROM pj.user_hist WHERE random() < 0.05;
SELECT * FROM pj.churn_check();
SELECT pg_stat_force_next_flush();
SELECT n_tup_hot_upd > 1000 AS hot_updates, n_dead_tup > 1000 AS dead_tuples FROM pg_stat_user_tables
WHERE relid = 'pj.user_hist'::regclass;
-- one worker would only add forwarding: serial
SET max_parallel_workers_per_gather = 1;
SELECT count(*) FROM fs_point_in_time_join('pj.spine', ARRAY['pj_user:score']) AS t(request_id int, user_id bigint, merchant text, event_timestamp timestamptz, amount numeric, score float8);
SELECT substring(detail FROM '(\d+) parallel workers')::int AS workers FROM fs_point_in_time_join_stats();
SET max_parallel_workers_per_gather = 2;

-- where workers cannot read what the leader reads, the join stays serial
CREATE TEMP TABLE pj_temp_spine AS SELECT * FROM pj.spine LIMIT 100;
SELECT count(*) FROM fs_point_in_time_join('pj_temp_spine', ARRAY['pj_user:score']) AS t(request_id int, user_id bigint, merchant text, event_timestamp timestamptz, amount numeric, score float8);
SELECT substring(detail FROM '(\d+) parallel workers')::int AS workers FROM fs_point_in_time_join_stats();
SELECT count(*) FROM fs_point_in_time_join(spine_query => 'SELECT * FROM pj.spine', features => ARRAY['pj_user:score']) AS t(request_id int, user_id bigint, merchant text, event_timestamp timestamptz, amount numeric, score float8);
SELECT substring(detail FROM '(\d+) parallel workers')::int AS workers FROM fs_point_in_time_join_stats();
RESET max_parallel_workers_per_gather;
RESET feature_store.parallel_join_min_rows;
RESET feature_store.parallel_join;
