-- fs_skew_check: what is served against what training computes at now(), per feature. Healthy
-- latest-value and aggregation views in stream mode show nothing after random inserts, late rows,
-- updates and deletes; planted faults (a superuser writing a wrong value, deleting a row or adding
-- one straight into an online table; a stale cached row and a stale cached aggregation answer) are
-- reported with the right entity, every time. The counts
-- of entities checked are compared with brute-force SQL.
CREATE EXTENSION IF NOT EXISTS feature_store;
\i sql/include/err.sql
SET timezone = 'UTC';
SELECT setseed(0.42);
CREATE TABLE sk_hist (user_id bigint, ts timestamptz, score float8, n int, label text);
SELECT fs_register_entity('sk_user', 'user_id');
SELECT fs_register_view('sk_latest', 'sk_hist', 'sk_user', 'ts', features => '{score, n, label}');
SELECT fs_register_view('sk_agg', 'sk_hist', 'sk_user', 'ts',
  aggregations => ARRAY['count(*) over ''1 day'' as n_1d', 'sum(n) over ''7 days'' as sum_7d',
                        'avg(score) over ''1 day'' as avg_1d', 'last(label) over ''30 days'' as last_label']);
SELECT fs_set_online_mode('sk_latest', 'stream'), fs_set_online_mode('sk_agg', 'stream');
SELECT fs_register_service('sk_model', ARRAY['sk_latest:score', 'sk_agg:n_1d', 'sk_agg:avg_1d']);
CREATE INDEX ON sk_hist (user_id, ts);

-- random writes: inserts, rows at equal times, late rows, NULL values, updates that move a row
-- forward in time
INSERT INTO sk_hist
SELECT (random() * 150)::int, now() - random() * interval '10 days', round((random() * 100)::numeric, 2)::float8,
       (random() * 10)::int, CASE WHEN random() < 0.1 THEN NULL ELSE 'l' || (random() * 5)::int END
FROM generate_series(1, 3000);
INSERT INTO sk_hist SELECT user_id, ts, score + 1, n, label FROM sk_hist WHERE random() < 0.05;
INSERT INTO sk_hist SELECT (random() * 150)::int, now() - interval '20 days' - random() * interval '5 days', 1, 1, 'late'
FROM generate_series(1, 200);
UPDATE sk_hist SET ts = now() - interval '1 minute' * user_id, score = score * 2, label = 'moved' WHERE random() < 0.02;

-- one snapshot for the checks and the oracle (every key of the source)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(DISTINCT user_id) AS keys FROM sk_hist \gset
SELECT view, version, feature, checked = :keys AS all_keys_checked, mismatches, missing, extra, max_abs_diff,
       example_entities
FROM fs_skew_check('sk_latest', 1000);
SELECT view, feature, checked = :keys AS all_keys_checked, mismatches, missing, extra, example_entities
FROM fs_skew_check('sk_agg', 1000);
SELECT view, feature, checked = :keys AS all_keys_checked, mismatches, missing, extra
FROM fs_skew_check('sk_model', 1000);
-- a sample: that many entities
SELECT DISTINCT checked FROM fs_skew_check('sk_latest', 40);
COMMIT;

-- What streaming does not carry to a latest-value view (semantics: only a strictly newer row
-- replaces the one online; DELETE does not retract): an UPDATE that changes the latest row in
-- place, and deleting the latest row. Known answer: 5 keys of each kind, chosen without ties and
-- with an older, different, non-NULL score, are served the old value; the aggregation view, whose
-- answers follow every write, stays equal.
CREATE TEMP TABLE sk_latest_rows AS
SELECT DISTINCT ON (user_id) user_id, ts, score,
       count(*) OVER (PARTITION BY user_id, ts) AS at_ts,
       lead(score) OVER (PARTITION BY user_id ORDER BY ts DESC) AS prev_score,
       lead(ts, 1) OVER (PARTITION BY user_id ORDER BY ts DESC) < ts AS prev_older
FROM sk_hist ORDER BY user_id, ts DESC;
CREATE TEMP TABLE sk_planted AS
SELECT user_id, CASE WHEN row_number() OVER (ORDER BY user_id) <= 5 THEN 'update' ELSE 'delete' END AS how
FROM sk_latest_rows
WHERE at_ts = 1 AND score IS NOT NULL AND prev_older AND prev_score IS NOT NULL AND prev_score <> score
ORDER BY user_id LIMIT 10;
UPDATE sk_hist h SET score = h.score + 7 FROM sk_planted p, sk_latest_rows l
WHERE p.how = 'update' AND h.user_id = p.user_id AND l.user_id = p.user_id AND h.ts = l.ts;
DELETE FROM sk_hist h USING sk_planted p, sk_latest_rows l
WHERE p.how = 'delete' AND h.user_id = p.user_id AND l.user_id = p.user_id AND h.ts = l.ts;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT feature, mismatches, missing, extra,
       example_entities <@ (SELECT array_agg(format('sk_user:%s', user_id)) FROM sk_planted) AS examples_planted,
       cardinality(example_entities) AS examples
FROM fs_skew_check('sk_latest', 1000) WHERE feature = 'score';
SELECT view, feature, mismatches, missing, extra FROM fs_skew_check('sk_model', 1000);
COMMIT;

-- Planted faults, written straight into the online table by a superuser (and the cache told):
-- a wrong value, a row removed, a row for an entity the source does not have.
SELECT format('feature_store.online_%s', view_id) AS online FROM fs_views WHERE name = 'sk_latest' \gset
TRUNCATE sk_hist;
DELETE FROM :online;
INSERT INTO sk_hist SELECT g, now() - interval '1 hour', g * 1.5, g, 'l' || g FROM generate_series(1, 50) g;
UPDATE :online SET score = score + 0.25 WHERE user_id = 7;
DELETE FROM :online WHERE user_id = 8;
INSERT INTO :online SELECT 1000, now() - interval '1 hour', NULL, 1.0, 1, 'ghost';
SELECT fs_online_reload('sk_latest');
-- every time: five checks find exactly these
SELECT feature, mismatches, missing, extra, max_abs_diff, example_entities
FROM fs_skew_check('sk_latest', 1000) ORDER BY feature;
SELECT count(*) FILTER (WHERE mismatches = 1 AND missing = 1 AND extra = 1
                        AND example_entities = '{sk_user:1000,sk_user:7,sk_user:8}') AS found, count(*) AS checks
FROM generate_series(1, 5) g, LATERAL fs_skew_check('sk_latest', 1000 + g) WHERE feature = 'score';

-- Stale served state, forced by writing with the invalidation triggers disabled (a superuser's
-- fault): a cached online row (user 9: source and online table move on, the cache keeps the old
-- value) is served stale and reported with its entity. The same fault cannot make a cached
-- aggregation answer stale (user 11: an event the source's key triggers never saw): disabling
-- them changes the triggers' fingerprint, which drops the view's cached answers, so serving stays
-- exact; only user 11's new latest row, which streaming never saw, is missing online.
SELECT fs_online(fs_entity('sk_user', 9), 'sk_latest') -> 'sk_latest' ->> 'score' AS cached_score,
       fs_online(fs_entity('sk_user', 11), 'sk_agg') -> 'sk_agg' ->> 'n_1d' AS cached_n_1d;
ALTER TABLE :online DISABLE TRIGGER ALL;
UPDATE sk_hist SET score = score + 100 WHERE user_id = 9;
UPDATE :online SET score = score + 100 WHERE user_id = 9;
ALTER TABLE :online ENABLE TRIGGER ALL;
ALTER TABLE sk_hist DISABLE TRIGGER ALL;
INSERT INTO sk_hist VALUES (11, now() - interval '1 minute', 5, 5, 'x');
ALTER TABLE sk_hist ENABLE TRIGGER ALL;
SELECT fs_online(fs_entity('sk_user', 9), 'sk_latest') -> 'sk_latest' ->> 'score' AS served_score,
       (SELECT score FROM sk_hist WHERE user_id = 9) AS source_score,
       fs_online(fs_entity('sk_user', 11), 'sk_agg') -> 'sk_agg' ->> 'n_1d' AS served_n_1d;
SELECT feature, mismatches, missing, extra, example_entities FROM fs_skew_check('sk_latest', 1000) ORDER BY feature;
SELECT feature, mismatches, missing, extra, example_entities FROM fs_skew_check('sk_agg', 1000) ORDER BY feature;

-- the record
SELECT view, feature, count(*) AS checks, sum(mismatches) AS mismatches, max(checked_by::text) AS by
FROM fs_stat_skew WHERE target = 'sk_latest' GROUP BY view, feature ORDER BY feature;

-- Bad input: clear errors, nothing recorded.
SELECT count(*) AS recorded FROM fs_stat_skew \gset
SELECT * FROM pg_temp.err($$SELECT * FROM fs_skew_check('sk_nope')$$);
SELECT * FROM pg_temp.err($$SELECT * FROM fs_skew_check('sk_latest', 0)$$);
SELECT * FROM pg_temp.err($$SELECT * FROM fs_skew_check(NULL)$$);
SELECT * FROM pg_temp.err($$SELECT * FROM fs_skew_check('sk_latest@9')$$);
SELECT fs_register_view('sk_off', 'sk_hist', 'sk_user', 'ts', features => '{score}', online => false);
SELECT * FROM pg_temp.err($$SELECT * FROM fs_skew_check('sk_off')$$);
CREATE ROLE regress_sk_reader;
SET ROLE regress_sk_reader;
SELECT * FROM pg_temp.err($$SELECT * FROM fs_skew_check('sk_latest')$$);
RESET ROLE;
SELECT count(*) = :recorded AS nothing_recorded FROM fs_stat_skew;
DROP ROLE regress_sk_reader;

-- Leave the database as found: the next tests create the extension themselves.
DROP TABLE sk_hist CASCADE;
DROP EXTENSION feature_store CASCADE;
