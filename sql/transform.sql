-- On-demand features (transforms): one expression, the same answer in training and serving.
-- Random users, purchases (an aggregation view, streamed) and profiles (a latest-value view,
-- materialized); six transforms over request parameters and features. Checks:
--  1. the training value of amount_ratio equals brute-force SQL over the source (the 7-day window
--     t - 7 days <= ts < t), computed independently of the store;
--  2. in one REPEATABLE READ transaction, with the spine at now(), every transform's training
--     value equals fs_online(entity, transform, request) and the service's forms, for every user;
--  3. a transform that divides by zero or overflows raises the same SQLSTATE in both paths;
--  4. bad definitions and bad requests get their SQLSTATE and register nothing.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS feature_store;
RESET client_min_messages;
SET timezone = 'UTC';
\i sql/include/err.sql
CREATE SCHEMA tr;
SELECT setseed(0.17);

CREATE TABLE tr.purchases (user_id bigint, ts timestamptz, amount numeric, category text);
CREATE TABLE tr.profiles (user_id bigint, ts timestamptz, lat float8, lon float8, tier text, credit bigint);
CREATE INDEX ON tr.purchases (user_id, ts);
-- 400 users: user 400 has no purchases, 399 no profile; some purchases in the future
INSERT INTO tr.purchases
SELECT 1 + floor(random() * 399)::bigint, now() - random() * interval '10 days' + CASE WHEN random() < 0.03 THEN interval '1 day' ELSE interval '0' END,
       CASE WHEN random() < 0.05 THEN NULL ELSE floor(random() * 10000)::numeric / 100 END,
       (ARRAY['food', 'fuel', 'toys'])[1 + floor(random() * 3)::int]
FROM generate_series(1, 6000);
INSERT INTO tr.profiles
SELECT u, now() - random() * interval '30 days', 40 + random() * 10, -(70 + random() * 10),
       (ARRAY['gold', 'silver', NULL])[1 + floor(random() * 3)::int],
       CASE WHEN u % 7 = 0 THEN NULL ELSE floor(random() * 1e6)::bigint END
FROM generate_series(1, 398) u, generate_series(1, 3);
INSERT INTO tr.profiles VALUES (400, now() - interval '1 day', 45, -75, 'gold', 9223372036854775000);

SELECT fs_register_entity('tr_user', 'user_id');
SELECT fs_register_view('tr_purchases', 'tr.purchases', entity => 'tr_user', event_time => 'ts',
  aggregations => ARRAY['avg(amount) over ''7 days'' as avg_7d', 'count(*) over ''1 day'' as n_1d']);
SELECT fs_set_online_mode('tr_purchases', 'stream');
SELECT fs_register_view('tr_profile', 'tr.profiles', entity => 'tr_user', event_time => 'ts');
SELECT fs_materialize('tr_profile', '-infinity', now()) > 0 AS materialized;

-- Transforms: float, float from two request parameters, text, bigint, a constant, a count
SELECT fs_register_transform('amount_ratio', 'amount / nullif(avg_7d, 0)',
  request => '{"amount": "numeric"}', inputs => ARRAY['tr_purchases:avg_7d'], returns => 'float8');
SELECT fs_register_transform('dist', 'sqrt((lat - req_lat) ^ 2 + (lon - req_lon) ^ 2)',
  request => '{"req_lat": "float8", "req_lon": "float8"}', inputs => ARRAY['tr_profile:lat', 'tr_profile:lon'],
  returns => 'float8');
SELECT fs_register_transform('tier_label', $$CASE WHEN tier = 'gold' AND amount > 50 THEN 'vip' ELSE coalesce(tier, 'none') END$$,
  request => '{"amount": "numeric"}', inputs => ARRAY['tr_profile:tier'], returns => 'text');
SELECT fs_register_transform('credit_left', 'credit - spend',
  request => '{"spend": "bigint"}', inputs => ARRAY['tr_profile:credit'], returns => 'bigint');
SELECT fs_register_transform('answer', '42', returns => 'int');
SELECT fs_register_transform('n_next', 'n_1d + 1', inputs => ARRAY['tr_purchases:n_1d']);
SELECT name, version, expression, request, inputs, returns FROM fs_transforms ORDER BY name;
SELECT fs_register_service('tr_svc', ARRAY['tr_profile:tier', 'amount_ratio', 'tr_purchases:n_1d', 'dist', 'answer']);
SELECT fs_register_service('tr_vec', ARRAY['tr_profile:credit', 'dist', 'tr_purchases:n_1d', 'amount_ratio']);
SELECT name, features FROM fs_services ORDER BY name;

-- The spine: every user, a request per user (amount, location, spend)
CREATE TABLE tr.spine AS
SELECT u AS user_id, now() AS ts, floor(random() * 10000)::numeric / 100 AS amount,
       40 + random() * 10 AS req_lat, -(70 + random() * 10) AS req_lon, floor(random() * 1e5)::bigint AS spend
FROM generate_series(1, 400) u;

-- 1. amount_ratio against brute force over the source (spine at fixed past instants)
CREATE TABLE tr.spine_past AS
SELECT user_id, now() - floor(random() * 5 * 24) * interval '1 hour' AS ts, amount FROM tr.spine;
INSERT INTO tr.spine_past SELECT user_id, ts + interval '1 minute', amount FROM tr.spine_past WHERE user_id % 3 = 0;
SELECT fs_create_training_set('tr.past_train', 'tr.spine_past', ARRAY['amount_ratio'], 'ts');
SELECT count(*) AS rows, count(j.amount_ratio) AS non_null,
       count(*) FILTER (WHERE j.amount_ratio IS DISTINCT FROM
         (SELECT (j.amount / nullif(avg(p.amount), 0))::float8 FROM tr.purchases p
          WHERE p.user_id = j.user_id AND p.ts >= j.ts - interval '7 days' AND p.ts < j.ts)) AS mismatches
FROM tr.past_train j;

-- 2. training = serving, in one snapshot, after more (committed) writes
INSERT INTO tr.purchases SELECT user_id, now() - interval '1 hour', 77.5, 'food' FROM tr.spine WHERE user_id % 5 = 0;
INSERT INTO tr.profiles SELECT user_id, now() - interval '1 minute', 41, -71, 'gold', 5 FROM tr.spine WHERE user_id % 11 = 0;
SELECT fs_materialize('tr_profile', '-infinity', now()) > 0 AS materialized;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT fs_create_training_set('tr.train', 'tr.spine', ARRAY['amount_ratio', 'dist', 'tier_label', 'credit_left', 'answer', 'n_next'], 'ts');
SELECT count(*) AS users, count(amount_ratio) AS ratio, count(dist) AS dist, count(tier_label) AS label,
       count(credit_left) AS credit, count(*) FILTER (WHERE answer = 42) AS answer, count(n_next) AS n_next
FROM tr.train;
-- each transform, served per user with that user's request
SELECT count(*) FILTER (WHERE (o->'amount_ratio') IS DISTINCT FROM coalesce(to_jsonb(t.amount_ratio), 'null')) AS ratio_diffs,
       count(*) FILTER (WHERE (d->'dist') IS DISTINCT FROM coalesce(to_jsonb(t.dist), 'null')) AS dist_diffs,
       count(*) FILTER (WHERE (l->'tier_label') IS DISTINCT FROM coalesce(to_jsonb(t.tier_label), 'null')) AS label_diffs,
       count(*) FILTER (WHERE (c->'credit_left') IS DISTINCT FROM coalesce(to_jsonb(t.credit_left), 'null')) AS credit_diffs,
       count(*) FILTER (WHERE (a->'answer') IS DISTINCT FROM coalesce(to_jsonb(t.answer), 'null')) AS answer_diffs,
       count(*) FILTER (WHERE (n->'n_next') IS DISTINCT FROM coalesce(to_jsonb(t.n_next), 'null')) AS n_next_diffs
FROM tr.train t JOIN tr.spine s USING (user_id),
     LATERAL (SELECT fs_online(fs_entity('tr_user', s.user_id), 'amount_ratio', jsonb_build_object('amount', s.amount)) AS o,
                     fs_online(fs_entity('tr_user', s.user_id), 'dist', jsonb_build_object('req_lat', s.req_lat, 'req_lon', s.req_lon)) AS d,
                     fs_online(fs_entity('tr_user', s.user_id), 'tier_label', jsonb_build_object('amount', s.amount)) AS l,
                     fs_online(fs_entity('tr_user', s.user_id), 'credit_left', jsonb_build_object('spend', s.spend)) AS c,
                     fs_online(fs_entity('tr_user', s.user_id), 'answer', '{}') AS a,
                     fs_online(fs_entity('tr_user', s.user_id), 'n_next', '{}') AS n) x;
-- the services: training columns against fs_online (the mixed service), fs_online_batch with one
-- request per entity, and fs_online_vector in the service's order (the numeric service)
SELECT fs_create_training_set('tr.svc_train', 'tr.spine', ARRAY['tr_svc'], 'ts');
CREATE TEMP TABLE t_served AS
SELECT s.user_id, fs_online(fs_entity('tr_user', s.user_id), 'tr_svc',
         jsonb_build_object('amount', s.amount, 'req_lat', s.req_lat, 'req_lon', s.req_lon)) AS f
FROM tr.spine s;
SELECT count(*) FILTER (WHERE o.f IS DISTINCT FROM jsonb_build_object('tr_purchases', jsonb_build_object('n_1d', t.n_1d))
       || CASE WHEN p.user_id IS NULL THEN '{}' ELSE jsonb_build_object('tr_profile', jsonb_build_object('tier', t.tier)) END
       || jsonb_build_object('amount_ratio', t.amount_ratio, 'dist', t.dist, 'answer', t.answer)) AS service_diffs
FROM tr.svc_train t JOIN t_served o USING (user_id)
LEFT JOIN (SELECT DISTINCT user_id FROM tr.profiles) p USING (user_id);
SELECT count(*) AS batch_rows, count(*) FILTER (WHERE b.features IS DISTINCT FROM o.f) AS batch_diffs
FROM fs_online_batch(ARRAY(SELECT fs_entity('tr_user', user_id) FROM tr.spine ORDER BY user_id), 'tr_svc',
       ARRAY(SELECT jsonb_build_object('amount', amount, 'req_lat', req_lat, 'req_lon', req_lon) FROM tr.spine ORDER BY user_id)) b
JOIN t_served o ON b.entity = fs_entity('tr_user', o.user_id);
SELECT fs_create_training_set('tr.vec_train', 'tr.spine', ARRAY['tr_vec'], 'ts');
SELECT count(*) FILTER (WHERE v IS DISTINCT FROM ARRAY[t.credit::float8, t.dist, t.n_1d::float8, t.amount_ratio]) AS vector_diffs
FROM tr.vec_train t JOIN tr.spine s USING (user_id),
     LATERAL (SELECT fs_online_vector(fs_entity('tr_user', s.user_id), 'tr_vec',
                jsonb_build_object('amount', s.amount, 'req_lat', s.req_lat, 'req_lon', s.req_lon)) AS v) x;
COMMIT;

-- 3. the same error in both paths: division by zero, bigint overflow (user 400's credit is near the maximum)
SELECT fs_register_transform('credit_per', 'credit / spend', request => '{"spend": "bigint"}',
  inputs => ARRAY['tr_profile:credit'], returns => 'bigint');
CREATE TABLE tr.spine_zero AS SELECT 400::bigint AS user_id, now() AS ts, 0::bigint AS spend;
SELECT state, message FROM pg_temp.err($$SELECT fs_create_training_set('tr.zero_train', 'tr.spine_zero', ARRAY['credit_per'], 'ts')$$);
SELECT state, message FROM pg_temp.err($$SELECT fs_online(fs_entity('tr_user', 400), 'credit_per', '{"spend": 0}')$$);
UPDATE tr.spine_zero SET spend = -1000;
SELECT state, message FROM pg_temp.err($$SELECT fs_create_training_set('tr.zero_train', 'tr.spine_zero', ARRAY['credit_left'], 'ts')$$);
SELECT state, message FROM pg_temp.err($$SELECT fs_online(fs_entity('tr_user', 400), 'credit_left', '{"spend": -1000}')$$);
-- and the same value when it fits
SELECT fs_online(fs_entity('tr_user', 400), 'credit_left', '{"spend": 1000}') AS served;

-- 4. bad definitions: each its SQLSTATE, nothing registered
SELECT count(*) AS transforms_before FROM fs_transforms \gset
SELECT q, (pg_temp.err(q)).state, (pg_temp.err(q)).message FROM unnest(ARRAY[
  $$SELECT fs_register_transform('bad', 'amount +', request => '{"amount": "numeric"}')$$,
  $$SELECT fs_register_transform('bad', 'amount + nosuch', request => '{"amount": "numeric"}')$$,
  $$SELECT fs_register_transform('bad', '(SELECT 1)')$$,
  $$SELECT fs_register_transform('bad', 'sum(amount)', request => '{"amount": "numeric"}')$$,
  $$SELECT fs_register_transform('bad', 'generate_series(1, 2)')$$,
  $$SELECT fs_register_transform('bad', 'random()')$$,
  $$SELECT fs_register_transform('bad', 'now()')$$,
  $$SELECT fs_register_transform('bad', 'tier', inputs => ARRAY['tr_profile:tier'], returns => 'int')$$,
  $$SELECT fs_register_transform('bad', 'lat', request => '{"lat": "float8"}', inputs => ARRAY['tr_profile:lat'])$$,
  $$SELECT fs_register_transform('bad', '1', inputs => ARRAY['tr_profile:*'])$$,
  $$SELECT fs_register_transform('bad', '1', inputs => ARRAY['tr_profile:nosuch'])$$,
  $$SELECT fs_register_transform('bad', '1', inputs => ARRAY['nosuch:lat'])$$,
  $$SELECT fs_register_transform('bad', 'x', request => '{"x": "nosuchtype"}')$$,
  $$SELECT fs_register_transform('bad', 'x', request => '["x"]')$$,
  $$SELECT fs_register_transform('tr_profile', '1')$$,
  $$SELECT fs_register_transform('tr_svc', '1')$$,
  $$SELECT fs_register_transform('bad:name', '1')$$,
  $$SELECT fs_register_transform(NULL, '1')$$,
  $$SELECT fs_register_transform('bad', NULL)$$,
  $$SELECT fs_register_transform('bad', 'pg_sleep(1)::text')$$,
  $$SELECT fs_register_view('amount_ratio', 'tr.profiles', entity => 'tr_user', event_time => 'ts')$$,
  $$SELECT fs_register_service('amount_ratio', ARRAY['tr_profile:tier'])$$,
  $$SELECT fs_register_service('tr_bad_svc', ARRAY['nosuch_transform'])$$
]) q;
SELECT count(*) - :transforms_before AS transforms_added FROM fs_transforms;
SELECT count(*) AS bad_objects FROM fs_views WHERE name IN ('amount_ratio') UNION ALL
SELECT count(*) FROM fs_services WHERE name IN ('amount_ratio', 'tr_bad_svc');

-- bad requests, in serving and in training (a spine without the parameter's column, or with a text one)
CREATE TABLE tr.spine_text AS SELECT 1::bigint AS user_id, now() AS ts, '3'::text AS amount;
SELECT q, (pg_temp.err(q)).state, (pg_temp.err(q)).message FROM unnest(ARRAY[
  $$SELECT fs_online(fs_entity('tr_user', 1), 'amount_ratio', '{}')$$,
  $$SELECT fs_online(fs_entity('tr_user', 1), 'amount_ratio', '{"amount": 1, "amt": 2}')$$,
  $$SELECT fs_online(fs_entity('tr_user', 1), 'amount_ratio', '{"amount": "abc"}')$$,
  $$SELECT fs_online(fs_entity('tr_user', 1), 'amount_ratio', '[1]')$$,
  $$SELECT fs_online(fs_entity('tr_user', 1), 'tr_profile', '{"amount": 1}')$$,
  $$SELECT fs_online(fs_entity('tr_user', 1), 'nosuch', '{}')$$,
  $$SELECT fs_online(fs_entity('tr_user', 1), 'amount_ratio')$$,
  $$SELECT fs_online_vector(fs_entity('tr_user', 1), 'tr_vec', '{"amount": 1}')$$,
  $$SELECT fs_online_batch(ARRAY[fs_entity('tr_user', 1), fs_entity('tr_user', 2)], 'amount_ratio', ARRAY['{"amount": 1}'::jsonb])$$,
  $$SELECT * FROM fs_online_batch_keys('tr_svc', ARRAY[1::bigint])$$,
  $$SELECT fs_create_training_set('tr.bad_train', 'tr.spine_zero', ARRAY['amount_ratio'], 'ts')$$,
  $$SELECT fs_create_training_set('tr.bad_train', 'tr.spine_text', ARRAY['amount_ratio'], 'ts')$$
]) q;

-- versions: the same definition is the same version; a changed one is N+1; name@N pins a version
SELECT fs_register_transform('amount_ratio', 'amount / nullif(avg_7d, 0)',
  request => '{"amount": "numeric"}', inputs => ARRAY['tr_purchases:avg_7d'], returns => 'float8') AS same;
SELECT fs_register_transform('amount_ratio', '2 * amount / nullif(avg_7d, 0)',
  request => '{"amount": "numeric"}', inputs => ARRAY['tr_purchases:avg_7d'], returns => 'float8') AS changed;
SELECT name, version, is_latest FROM fs_transforms WHERE name = 'amount_ratio' ORDER BY version;
SELECT (fs_online(fs_entity('tr_user', 5), 'amount_ratio', '{"amount": 10}') ->> 'amount_ratio')::float8
     / (fs_online(fs_entity('tr_user', 5), 'amount_ratio@1', '{"amount": 10}') ->> 'amount_ratio')::float8 AS v2_over_v1;
SELECT state, message FROM pg_temp.err($$SELECT fs_create_training_set('tr.v_train', 'tr.spine', ARRAY['amount_ratio', 'amount_ratio@1'], 'ts')$$);
SELECT fs_create_training_set('tr.v_train', 'tr.spine', ARRAY['amount_ratio', 'tr_purchases:avg_7d'], 'ts');
SELECT count(*) AS rows, count(*) FILTER (WHERE amount_ratio IS DISTINCT FROM (2 * amount / nullif(avg_7d, 0))::float8) AS v2_mismatches
FROM tr.v_train;
SELECT column_name FROM information_schema.columns WHERE table_schema = 'tr' AND table_name = 'v_train' ORDER BY ordinal_position;
-- the service keeps the version it was registered with only if it pinned one: tr_svc follows the latest
SELECT (fs_online(fs_entity('tr_user', 5), 'tr_svc', '{"amount": 10, "req_lat": 41, "req_lon": -72}') ->> 'amount_ratio')::float8
     = (fs_online(fs_entity('tr_user', 5), 'amount_ratio', '{"amount": 10}') ->> 'amount_ratio')::float8 AS service_follows_latest;

-- dropping: refused while a service uses the transform (services follow the latest version); one version with name@N
SELECT state, message FROM pg_temp.err($$SELECT fs_drop_transform('amount_ratio')$$);
SELECT state, message FROM pg_temp.err($$SELECT fs_drop_transform('amount_ratio@2')$$);
SELECT fs_drop_transform('amount_ratio@1') AS dropped_v1;
SELECT fs_drop_transform('n_next') AS dropped;
SELECT state, message FROM pg_temp.err($$SELECT fs_drop_transform('n_next')$$);
SELECT state, message FROM pg_temp.err($$SELECT fs_online(fs_entity('tr_user', 5), 'amount_ratio@1', '{"amount": 10}')$$);

-- privileges: a transform reads only what its caller may read; registering needs no superuser
CREATE ROLE tr_dev;
CREATE ROLE tr_reader;
GRANT USAGE ON SCHEMA tr TO tr_dev, tr_reader;
GRANT SELECT ON tr.profiles, tr.spine TO tr_dev, tr_reader;
GRANT CREATE ON SCHEMA tr TO tr_reader;
SET ROLE tr_dev;
SELECT fs_register_transform('dev_dist', 'sqrt(lat ^ 2 + lon ^ 2)', inputs => ARRAY['tr_profile:lat', 'tr_profile:lon']) AS dev_registered;
SELECT state, message FROM pg_temp.err($$SELECT fs_drop_transform('credit_per')$$);
RESET ROLE;
SELECT name, registered_by FROM fs_transforms WHERE name = 'dev_dist';
SET ROLE tr_reader;
-- tr_reader may read profiles, not purchases
SELECT (fs_online(fs_entity('tr_user', 5), 'dist', '{"req_lat": 41, "req_lon": -72}') ->> 'dist') IS NOT NULL AS reads_dist;
SELECT state, message FROM pg_temp.err($$SELECT fs_online(fs_entity('tr_user', 5), 'amount_ratio', '{"amount": 10}')$$);
SELECT state, message FROM pg_temp.err($$SELECT fs_online(fs_entity('tr_user', 5), 'tr_svc', '{"amount": 10, "req_lat": 41, "req_lon": -72}')$$);
SELECT state, message FROM pg_temp.err($$SELECT fs_create_training_set('tr.r_train', 'tr.spine', ARRAY['amount_ratio'], 'ts')$$);
SELECT fs_create_training_set('tr.r_train', 'tr.spine', ARRAY['dist'], 'ts') AS reader_rows;
RESET ROLE;
SELECT fs_drop_transform('dev_dist') AS dropped;
DROP OWNED BY tr_dev, tr_reader;
DROP ROLE tr_dev, tr_reader;
