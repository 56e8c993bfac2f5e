-- Online store, the fast batch forms over key arrays: fs_online_batch_keys(view_or_service, keys)
-- and fs_online_batch_vector(service, keys). Every answer is compared with an oracle computed by
-- brute force from the history (latest row per key, TTL as of now()), element by element in
-- array order; duplicates, NULLs, unknown keys, conversions, composite keys, chunks of 256,
-- own-transaction and rollback visibility, privileges and every error with its SQLSTATE.
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';
\i sql/include/err.sql

CREATE TABLE bk_hist (id bigint, ts timestamptz, created timestamptz, f1 float8, n int, label text);
-- 3000 entities, 3 rows each; entity 7's rows are older than the 2-day TTL (expired online)
INSERT INTO bk_hist SELECT i, now() - interval '1 hour' * (r + 1) - CASE WHEN i = 7 THEN interval '10 days' ELSE interval '0' END,
                           now() - interval '1 hour' * (r + 1), i + r / 10.0, i * 10 + r, 'l' || i || '/' || r
FROM generate_series(1, 3000) i, generate_series(0, 2) r;
CREATE INDEX ON bk_hist (id);
CREATE TABLE bk_pair (a bigint, b text, ts timestamptz, amount float8, ok bool);
INSERT INTO bk_pair VALUES (1, 'x', now() - interval '1 minute', 1.5, true), (1, 'y', now() - interval '1 minute', 2.5, false),
                           (2, 'x,y', now() - interval '1 minute', 3.5, NULL);
SELECT fs_register_entity('bk_ent', 'id');
SELECT fs_register_entity('bk_pair', ARRAY['a', 'b']);
SELECT fs_register_view('bk_v', 'bk_hist', 'bk_ent', event_time => 'ts', created_time => 'created', ttl => '2 days');
SELECT fs_register_view('bk_num', 'bk_hist', 'bk_ent', event_time => 'ts', created_time => 'created', features => ARRAY['f1', 'n']);
SELECT fs_register_view('bk_p', 'bk_pair', 'bk_pair', event_time => 'ts');
SELECT fs_register_view('bk_off', 'bk_hist', 'bk_ent', event_time => 'ts', online => false);
SELECT fs_register_service('bk_svc', ARRAY['bk_num:n', 'bk_v:label', 'bk_num:f1']);
SELECT fs_register_service('bk_vec', ARRAY['bk_num:n', 'bk_num:f1']);
SELECT fs_register_service('bk_mixed', ARRAY['bk_num:n', 'bk_p:amount']);
-- entity 7 is materialized as of 10 days ago (fresh then), so it is online but expired now
SELECT fs_materialize('bk_v', '-infinity', now() - interval '10 days') AS v_rows_then;
SELECT fs_materialize('bk_v', '-infinity', now()) AS v_rows, fs_materialize('bk_num', '-infinity', now()) AS num_rows,
       fs_materialize('bk_p', '-infinity', now()) AS p_rows;

-- The oracle: latest history row per key (greatest event time, then created time), features of
-- view bk_v as jsonb, NULL object when older than the TTL.
CREATE FUNCTION pg_temp.oracle_v(k bigint) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('bk_v', CASE WHEN h.ts >= now() - interval '2 days'
                                    THEN jsonb_build_object('f1', h.f1, 'n', h.n, 'label', h.label) END)
  FROM bk_hist h WHERE h.id = k ORDER BY h.ts DESC, h.created DESC LIMIT 1 $$;

-- A mix of hits and misses, duplicates, NULL elements, unknown keys, the expired entity: one row
-- per element, in order, equal to the oracle.
CREATE TABLE bk_keys AS SELECT ARRAY[5, 1, 5, NULL, 0, 7, 3000, 3001, 2, 5]::bigint[] AS k;
SELECT o.ord, o.key, o.features
FROM bk_keys, fs_online_batch_keys('bk_v', bk_keys.k) WITH ORDINALITY o(key, features, ord) ORDER BY o.ord;
SELECT count(*) AS elements, count(*) FILTER (WHERE o.key IS DISTINCT FROM k.k[o.ord]) AS wrong_key,
       count(*) FILTER (WHERE o.features IS DISTINCT FROM pg_temp.oracle_v(o.key)) AS wrong_features
FROM bk_keys k, fs_online_batch_keys('bk_v', k.k) WITH ORDINALITY o(key, features, ord);

-- 24 chunks (256 keys each) of a shuffled array with every key twice and unknown keys: the
-- answers equal the oracle, and equal fs_online on each key.
CREATE TABLE bk_big AS SELECT array_agg(x ORDER BY md5(x::text || r::text)) AS k
FROM generate_series(-10, 3010) x, generate_series(1, 2) r;
SELECT cardinality(k) AS elements FROM bk_big;
SELECT count(*) AS rows_out,
       count(*) FILTER (WHERE o.key IS DISTINCT FROM b.k[o.ord]) AS wrong_key,
       count(*) FILTER (WHERE o.features IS DISTINCT FROM pg_temp.oracle_v(o.key)) AS wrong_vs_oracle,
       count(*) FILTER (WHERE o.features IS DISTINCT FROM fs_online(fs_entity('bk_ent', o.key), 'bk_v')) AS wrong_vs_fs_online
FROM bk_big b, fs_online_batch_keys('bk_v', b.k) WITH ORDINALITY o(key, features, ord);
-- and once more (now surely from the cache where the worker or the previous call filled it)
SELECT count(*) FILTER (WHERE o.features IS DISTINCT FROM pg_temp.oracle_v(o.key)) AS wrong_vs_oracle
FROM bk_big b, fs_online_batch_keys('bk_v', b.k) o;

-- fs_online_batch(fs_entity[]) reads each run of one entity like a chunk of the keys forms: the
-- shuffled keys again, as fs_entity values, with elements of another entity and NULLs between
-- them (runs end there); every element's answer equals fs_online on it, and the oracle.
CREATE TABLE bk_ents AS
SELECT array_agg(e ORDER BY o) AS e FROM (
  SELECT fs_entity('bk_ent', x) AS e, u.ord::float8 AS o FROM bk_big, unnest(k) WITH ORDINALITY u(x, ord)
  UNION ALL SELECT fs_entity('bk_pair', 1, 'y'), g * 500.5 FROM generate_series(1, 12) g
  UNION ALL SELECT fs_entity('bk_pair', 2, 'x,y'), 3000.5 + g FROM generate_series(0, 299) g
  UNION ALL SELECT NULL, g * 777.25 FROM generate_series(1, 7) g) s;
SELECT count(*) AS rows_out,
       count(*) FILTER (WHERE o.entity IS DISTINCT FROM b.e[o.ord]) AS wrong_entity,
       count(*) FILTER (WHERE o.entity IS NULL AND o.features IS NULL) AS null_elements,
       count(*) FILTER (WHERE o.features IS DISTINCT FROM fs_online(o.entity)) AS wrong_vs_fs_online,
       count(*) FILTER (WHERE o.entity::text LIKE 'bk\_ent:%'
                          AND (o.features -> 'bk_v') IS DISTINCT FROM (pg_temp.oracle_v(split_part(o.entity::text, ':', 2)::bigint) -> 'bk_v')) AS wrong_vs_oracle,
       count(*) FILTER (WHERE o.entity::text LIKE 'bk\_pair:%'
                          AND o.features IS DISTINCT FROM (SELECT jsonb_build_object('bk_p', jsonb_build_object('amount', p.amount, 'ok', p.ok))
                                                           FROM bk_pair p WHERE o.entity = fs_entity('bk_pair', p.a, p.b))) AS wrong_pairs
FROM bk_ents b, fs_online_batch(b.e) WITH ORDINALITY o(entity, features, ord);

-- Only NULL elements: one row each; no element names an entity, so nothing is planned (the
-- name is not looked up, as before the chunked path).
SELECT * FROM fs_online_batch(ARRAY[NULL, NULL]::fs_entity[], '@1');

-- Keys of other types are converted to the key type (int[], text[]); an empty array has no rows.
SELECT * FROM fs_online_batch_keys('bk_num', ARRAY[2, 1]::int[]);
SELECT * FROM fs_online_batch_keys('bk_num', ARRAY['3', NULL]::text[]);
SELECT count(*) AS no_rows FROM fs_online_batch_keys('bk_num', ARRAY[]::bigint[]);
SELECT count(*) AS no_rows FROM fs_online_batch_keys('bk_num', NULL::bigint[]);
SELECT pg_temp.err($$SELECT * FROM fs_online_batch_keys('bk_num', ARRAY['x'])$$);

-- Composite keys: an array of rows in key order; conversions per field; a NULL field never matches.
SELECT * FROM fs_online_batch_keys('bk_p', ARRAY[ROW(1, 'y'), ROW(2, 'x,y'), ROW(1, 'z'), ROW(1, NULL), NULL, ROW('1', 'x')]);
CREATE TYPE bk_pk AS (a bigint, b text);
SELECT count(*) AS elements, count(*) FILTER (WHERE o.features IS DISTINCT FROM
         (SELECT jsonb_build_object('bk_p', jsonb_build_object('amount', p.amount, 'ok', p.ok)) FROM bk_pair p
          WHERE p.a = (o.key).a AND p.b = (o.key).b)) AS wrong
FROM fs_online_batch_keys('bk_p', ARRAY[(1, 'x'), (1, 'y'), (2, 'x,y'), (3, 'x'), (2, 'x,y')]::bk_pk[]) o;

-- A service: its features only, per view, as fs_online(entity, service) gives them.
SELECT o.key, o.features, o.features IS NOT DISTINCT FROM fs_online(fs_entity('bk_ent', o.key), 'bk_svc') AS same_as_fs_online
FROM fs_online_batch_keys('bk_svc', ARRAY[4, 7, 9999]::bigint[]) o;
-- The vector form: service order; NULL for unknown keys; against the history.
SELECT o.key, o.features,
       o.features IS NOT DISTINCT FROM (SELECT ARRAY[h.n::float8, h.f1] FROM bk_hist h WHERE h.id = o.key ORDER BY h.ts DESC LIMIT 1) AS same_as_oracle,
       o.features IS NOT DISTINCT FROM (SELECT fs_online_vector(fs_entity('bk_ent', o.key), 'bk_vec') WHERE o.key IS NOT NULL) AS same_as_vector
FROM fs_online_batch_vector('bk_vec', ARRAY[4, 7, NULL, 9999]::bigint[]) o;

-- Own transaction: a write is visible to the writer (cache bypassed), a rollback undoes it.
BEGIN;
INSERT INTO bk_hist VALUES (5, now(), now(), -1, -1, 'new');
SELECT fs_materialize('bk_v', now() - interval '1 minute', now());
SELECT * FROM fs_online_batch_keys('bk_v', ARRAY[5]::bigint[]);
ROLLBACK;
SELECT count(*) FILTER (WHERE o.features IS DISTINCT FROM pg_temp.oracle_v(o.key)) AS wrong_after_rollback
FROM fs_online_batch_keys('bk_v', ARRAY[5, 6]::bigint[]) o;
-- A committed write is served at once.
INSERT INTO bk_hist VALUES (6, now(), now(), -2, -2, 'newer');
SELECT fs_materialize('bk_v', now() - interval '1 minute', now());
SELECT * FROM fs_online_batch_keys('bk_v', ARRAY[6]::bigint[]);

-- Errors: each with its SQLSTATE.
SELECT pg_temp.err($$SELECT * FROM fs_online_batch_keys('no_such', ARRAY[1])$$);
SELECT pg_temp.err($$SELECT * FROM fs_online_batch_keys('bk_off', ARRAY[1])$$);
SELECT pg_temp.err($$SELECT * FROM fs_online_batch_keys(NULL, ARRAY[1])$$);
SELECT pg_temp.err($$SELECT * FROM fs_online_batch_keys('bk_p', ARRAY[1, 2])$$);
SELECT pg_temp.err($$SELECT * FROM fs_online_batch_keys('bk_p', ARRAY[ROW(1, 'x', 3)])$$);
SELECT pg_temp.err($$SELECT * FROM fs_online_batch_keys('bk_mixed', ARRAY[1])$$);
SELECT pg_temp.err($$SELECT * FROM fs_online_batch_vector('bk_v', ARRAY[1])$$);
SELECT pg_temp.err($$SELECT * FROM fs_online_batch_keys('bk_v@9', ARRAY[1])$$);

-- Privileges: checked once per call, as for every serving call.
CREATE ROLE bk_reader;
GRANT USAGE ON SCHEMA public TO bk_reader;
SET ROLE bk_reader;
SELECT pg_temp.err($$SELECT * FROM fs_online_batch_keys('bk_v', ARRAY[1])$$);
SELECT pg_temp.err($$SELECT * FROM fs_online_batch_vector('bk_vec', ARRAY[1])$$);
RESET ROLE;
GRANT SELECT ON bk_hist TO bk_reader;
SET ROLE bk_reader;
SELECT * FROM fs_online_batch_keys('bk_num', ARRAY[1]::bigint[]);
RESET ROLE;
REVOKE SELECT ON bk_hist FROM bk_reader;
SET ROLE bk_reader;
SELECT pg_temp.err($$SELECT * FROM fs_online_batch_keys('bk_num', ARRAY[1])$$);
RESET ROLE;
DROP OWNED BY bk_reader;
DROP ROLE bk_reader;
DROP EXTENSION feature_store CASCADE;
DROP TABLE bk_hist, bk_pair, bk_keys, bk_big;
DROP TYPE bk_pk;
