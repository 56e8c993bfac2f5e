-- Point-in-time join: each rule of docs/semantics.md on small hand-checked data, the call
-- forms, training-set tables with lineage, privileges, and every error.
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';

CREATE TABLE pj_driver_hist (driver_id bigint, event_timestamp timestamptz, created timestamptz,
                             conv_rate float8, trips int, note text);
INSERT INTO pj_driver_hist VALUES
  (1, '2026-01-01 10:00', '2026-01-01 10:00', 0.10, 10, 'a'),
  (1, '2026-01-01 12:00', '2026-01-01 12:00', 0.20, 20, 'b'),
  (1, '2026-01-01 12:00', '2026-01-01 13:00', 0.30, 30, 'c'),   -- same event time, written later: wins
  (1, '2026-01-01 12:00', NULL,               0.40, 40, 'd'),   -- NULL created: older than any
  (2, '2026-01-01 09:00', '2026-01-01 09:00', 0.50, 50, 'e'),
  (2, '2026-01-01 09:00', '2026-01-01 09:00', 0.50, 49, 'f'),   -- exact tie: smaller trips wins
  (NULL, '2026-01-01 09:00', NULL,            0.90, 90, 'null key'),
  (3, NULL,               '2026-01-01 09:00', 0.90, 90, 'null event time');
SELECT fs_register_entity('pj_driver', 'driver_id');
SELECT fs_register_view('pj_driver', 'pj_driver_hist', 'pj_driver', created_time => 'created', ttl => '2 hours');

-- spine rows deliberately not in time order: the output keeps the spine's order
CREATE TABLE pj_spine (id int, driver_id bigint, event_timestamp timestamptz, label bool);
INSERT INTO pj_spine VALUES
  (1, 1, '2026-01-01 12:00', true),            -- equal times match; (12:00, 13:00) is the greatest
  (2, 1, '2026-01-01 11:00', false),           -- only 10:00 qualifies
  (3, 1, '2026-01-01 14:00', true),            -- TTL edge exactly: 14:00 - 2h = 12:00 still matches
  (4, 1, '2026-01-01 14:00:00.000001', true),  -- 1 µs outside the TTL: NULL
  (5, 1, '2026-01-01 13:59:59.999999', true),  -- 1 µs inside
  (6, 2, '2026-01-01 09:00', false),           -- exact tie on (event, created): feature order decides
  (7, 4, '2026-01-01 10:00', false),           -- entity without history
  (8, NULL, '2026-01-01 10:00', false),        -- NULL key never matches (not even the NULL-key row)
  (9, 1, NULL, true),                          -- NULL spine time: NULL features
  (10, 1, '2026-01-01 09:59:59.999999', true), -- before any history of the key
  (11, 3, '2026-01-01 10:00', false);          -- only a row with NULL event time: no match
SELECT fs_training_columns('pj_spine', '{pj_driver:*}');
SELECT * FROM fs_point_in_time_join('pj_spine', '{pj_driver:*}')
  AS t(id int, driver_id bigint, event_timestamp timestamptz, label bool, conv_rate float8, trips int, note text);

-- as_of_created: only values written by the spine time (row c, created 13:00, is invisible at 12:00)
SELECT id, conv_rate, note
FROM fs_point_in_time_join('pj_spine', '{pj_driver:conv_rate, pj_driver:note}', as_of_created => true)
  AS t(id int, driver_id bigint, event_timestamp timestamptz, label bool, conv_rate float8, note text);
-- and written-later rows never leak into earlier spine rows
INSERT INTO pj_driver_hist VALUES (1, '2026-01-01 10:30', '2026-01-02 00:00', 0.15, 15, 'backfill');
SELECT id, note, note_as_of FROM
  (SELECT id, note FROM fs_point_in_time_join('pj_spine', '{pj_driver:note}')
     AS t(id int, driver_id bigint, event_timestamp timestamptz, label bool, note text)) x
  JOIN (SELECT id, note AS note_as_of FROM fs_point_in_time_join('pj_spine', '{pj_driver:note}', as_of_created => true)
     AS t(id int, driver_id bigint, event_timestamp timestamptz, label bool, note text)) y USING (id)
WHERE id IN (2, 5) ORDER BY id;
DELETE FROM pj_driver_hist WHERE note = 'backfill';

-- Without a TTL every older row qualifies.
SELECT fs_register_view('pj_driver_nottl', 'pj_driver_hist', 'pj_driver', created_time => 'created');
SELECT id, note FROM fs_point_in_time_join('pj_spine', '{pj_driver_nottl:note}')
  AS t(id int, driver_id bigint, event_timestamp timestamptz, label bool, note text) WHERE id IN (3, 4);
-- Without a created time, rows with equal event times are ordered by their features.
SELECT fs_register_view('pj_driver_noc', 'pj_driver_hist', 'pj_driver', features => '{conv_rate, note}');
SELECT id, conv_rate, note FROM fs_point_in_time_join('pj_spine', '{pj_driver_noc:*}')
  AS t(id int, driver_id bigint, event_timestamp timestamptz, label bool, conv_rate float8, note text) WHERE id = 1;
-- ... and as_of_created has nothing to apply to then
SELECT id, conv_rate, note FROM fs_point_in_time_join('pj_spine', '{pj_driver_noc:*}', as_of_created => true)
  AS t(id int, driver_id bigint, event_timestamp timestamptz, label bool, conv_rate float8, note text) WHERE id = 1;

-- Several views of different entities, a composite key, timestamp (without time zone) times,
-- array/jsonb/bool/numeric features; the spine's time is timestamp too.
CREATE TABLE pj_um_hist (user_id bigint, merchant_id int, ts timestamp, amounts float8[], meta jsonb, flag bool, spend numeric(10,2));
INSERT INTO pj_um_hist VALUES
  (1, 7, '2026-01-01 08:00', '{1.5,2}', '{"k": 1}', true, 10.50),
  (1, 7, '2026-01-01 11:00', '{3}', '{"k": 2}', false, 11.25),
  (1, 8, '2026-01-01 08:00', '{9}', '{"k": 9}', NULL, 99.00),
  (2, 7, '2026-01-01 08:30', NULL, 'null', true, NULL);
SELECT fs_register_entity('pj_um', ARRAY['user_id', 'merchant_id']);
SELECT fs_register_view('pj_um', 'pj_um_hist', 'pj_um', event_time => 'ts');
CREATE TABLE pj_user_hist (user_id bigint, ts timestamptz, country text);
INSERT INTO pj_user_hist VALUES (1, '2026-01-01 07:00+00', 'DE'), (1, '2026-01-01 10:59:59+00', 'FR'), (2, '2026-01-01 00:00+00', 'US');
SELECT fs_register_entity('pj_user', 'user_id');
SELECT fs_register_view('pj_user', 'pj_user_hist', 'pj_user', event_time => 'ts');
CREATE TABLE pj_spine2 (user_id bigint, merchant_id int, at timestamp, driver_id bigint);
INSERT INTO pj_spine2 VALUES (1, 7, '2026-01-01 10:59:59', 1), (1, 7, '2026-01-01 11:00', 2), (1, 8, '2026-01-01 12:00', 1),
  (2, 7, '2026-01-01 08:30', NULL), (2, NULL, '2026-01-01 09:00', 2), (1, 9, '2026-01-01 12:00', 1);
SELECT fs_training_columns('pj_spine2', '{pj_um:*, pj_user:country, pj_driver:note}', spine_time => 'at');
SELECT * FROM fs_point_in_time_join('pj_spine2', '{pj_um:*, pj_user:country, pj_driver:note}', spine_time => 'at')
  AS t(user_id bigint, merchant_id int, at timestamp, driver_id bigint, amounts float8[], meta jsonb, flag bool,
       spend numeric, country text, note text);
-- full_names: view__feature for every feature
SELECT fs_training_columns('pj_spine2', '{pj_um:flag, pj_user:*}', spine_time => 'at', full_names => true);

-- A mixed-type comparison follows SQL's: timestamp values are read in the session time zone.
SET timezone = 'Europe/Berlin';
SELECT user_id, at, country FROM fs_point_in_time_join('pj_spine2', '{pj_user:country}', spine_time => 'at')
  AS t(user_id bigint, merchant_id int, at timestamp, driver_id bigint, country text) ORDER BY user_id, at;
SET timezone = 'UTC';

-- References: a feature service, a pinned version, view:*; versions resolve as in the registry.
SELECT fs_register_view('pj_driver', 'pj_driver_hist', 'pj_driver', created_time => 'created', ttl => '1 hour',
                        features => '{conv_rate, note}');
SELECT fs_register_service('pj_model', '{pj_driver@1:trips, pj_um:flag}');
SELECT fs_training_columns('pj_spine2', '{pj_model, pj_driver:note}', spine_time => 'at', full_names => true);
SELECT * FROM fs_point_in_time_join('pj_spine', '{pj_driver@1:note, pj_driver@2:conv_rate}')
  AS t(id int, driver_id bigint, event_timestamp timestamptz, label bool, note text, conv_rate float8)
WHERE id IN (1, 3);

-- Sources that are views and declaratively partitioned tables; a spine that is a view.
CREATE VIEW pj_driver_v AS SELECT driver_id, event_timestamp, created, trips * 2 AS trips2 FROM pj_driver_hist;
SELECT fs_register_view('pj_driver_v', 'pj_driver_v', 'pj_driver', created_time => 'created');
CREATE TABLE pj_driver_part (driver_id bigint, event_timestamp timestamptz, trips int) PARTITION BY RANGE (event_timestamp);
CREATE TABLE pj_driver_part_a PARTITION OF pj_driver_part FOR VALUES FROM (MINVALUE) TO ('2026-01-01 11:00');
CREATE TABLE pj_driver_part_b PARTITION OF pj_driver_part FOR VALUES FROM ('2026-01-01 11:00') TO (MAXVALUE);
INSERT INTO pj_driver_part SELECT driver_id, event_timestamp, trips FROM pj_driver_hist WHERE event_timestamp IS NOT NULL;
SELECT fs_register_view('pj_driver_part', 'pj_driver_part', 'pj_driver');
CREATE VIEW pj_spine_v AS SELECT id, driver_id, event_timestamp FROM pj_spine WHERE id <= 6;
SELECT * FROM fs_point_in_time_join('pj_spine_v', '{pj_driver_v:trips2, pj_driver_part:trips}')
  AS t(id int, driver_id bigint, event_timestamp timestamptz, trips2 int, trips int);

-- fs_create_training_set: a typed table (spine columns, then features) and its lineage.
SELECT fs_create_training_set('pj_ts1', 'pj_spine2', '{pj_um:*, pj_user:country}', spine_time => 'at');
SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns
WHERE table_name = 'pj_ts1' ORDER BY ordinal_position;
SELECT * FROM pj_ts1 ORDER BY user_id, merchant_id, at;
SELECT target, spine, spine_time, feature_refs, features, view_versions, as_of_created, full_names, row_count,
       created_by = current_user AS by_me, created_at <= now() AS created_at_ok
FROM fs_training_sets;
-- the same rows as the set-returning form
WITH j AS (SELECT * FROM fs_point_in_time_join('pj_spine2', '{pj_um:*, pj_user:country}', spine_time => 'at')
    AS j(user_id bigint, merchant_id int, at timestamp, driver_id bigint, amounts float8[], meta jsonb, flag bool,
         spend numeric, country text))
SELECT (SELECT count(*) FROM (SELECT * FROM pj_ts1 EXCEPT ALL SELECT * FROM j) a) AS only_in_table,
       (SELECT count(*) FROM (SELECT * FROM j EXCEPT ALL SELECT * FROM pj_ts1) b) AS only_in_join;
-- schema-qualified target, full names, as_of_created recorded
CREATE SCHEMA pj_out;
SELECT fs_create_training_set('pj_out.ts2', 'pj_spine', '{pj_driver@1:*}', full_names => true, as_of_created => true);
SELECT target, feature_refs, features, view_versions, as_of_created, full_names, row_count FROM fs_training_sets
ORDER BY training_set_id;
SELECT id, pj_driver__note FROM pj_out.ts2 ORDER BY id LIMIT 3;

-- Privileges: the caller must be able to read every source and the spine; tables belong to the caller.
CREATE ROLE pj_analyst;
GRANT SELECT ON pj_spine, pj_driver_hist TO pj_analyst;
GRANT USAGE, CREATE ON SCHEMA pj_out TO pj_analyst;
SET ROLE pj_analyst;
SELECT count(*) FROM fs_point_in_time_join('pj_spine', '{pj_driver:note}')
  AS t(id int, driver_id bigint, event_timestamp timestamptz, label bool, note text);
SELECT * FROM fs_point_in_time_join('pj_spine', '{pj_um:flag}')
  AS t(id int, driver_id bigint, event_timestamp timestamptz, label bool, flag bool);
SELECT * FROM fs_point_in_time_join('pj_spine2', '{pj_driver:note}', spine_time => 'at')
  AS t(user_id bigint, merchant_id int, at timestamp, driver_id bigint, note text);
SELECT fs_create_training_set('pj_out.ts3', 'pj_spine', '{pj_driver:note}');
-- the registry itself stays read-only for the caller
INSERT INTO feature_store.training_set SELECT * FROM feature_store.training_set;
RESET ROLE;
SELECT tableowner FROM pg_tables WHERE schemaname = 'pj_out' AND tablename = 'ts3';
SELECT created_by FROM fs_training_sets WHERE target = 'pj_out.ts3';

-- Row-level security on a source is honoured (read through the executor).
ALTER TABLE pj_driver_hist ENABLE ROW LEVEL SECURITY;
CREATE POLICY pj_only_2 ON pj_driver_hist FOR SELECT TO pj_analyst USING (driver_id = 2);
SET ROLE pj_analyst;
SELECT id, note FROM fs_point_in_time_join('pj_spine', '{pj_driver:note}')
  AS t(id int, driver_id bigint, event_timestamp timestamptz, label bool, note text) WHERE id IN (1, 6);
RESET ROLE;
ALTER TABLE pj_driver_hist DISABLE ROW LEVEL SECURITY;

-- A spine that is not a plain table is materialized first; with a tiny work_mem it spills to
-- disk and is read back in several batches. Checked against the oracle query.
CREATE TABLE pj_pspine (id int, driver_id bigint, event_timestamp timestamptz) PARTITION BY HASH (id);
CREATE TABLE pj_pspine0 PARTITION OF pj_pspine FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE pj_pspine1 PARTITION OF pj_pspine FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO pj_pspine
SELECT g, 1 + g % 3, '2026-01-01 09:00'::timestamptz + (g % 400) * interval '1 minute' FROM generate_series(1, 6000) g;
SET work_mem = '64kB';
SELECT count(*) AS rows, count(DISTINCT j.id) AS ids, count(j.note) AS matched,
       count(*) FILTER (WHERE j.note IS NOT DISTINCT FROM o.note) AS equal_to_oracle
FROM fs_point_in_time_join('pj_pspine', '{pj_driver_nottl:note}')
       AS j(id int, driver_id bigint, event_timestamp timestamptz, note text)
LEFT JOIN LATERAL (
    SELECT h.note FROM pj_driver_hist h
    WHERE h.driver_id = j.driver_id AND h.event_timestamp <= j.event_timestamp
    ORDER BY h.event_timestamp DESC, h.created DESC NULLS LAST, h.conv_rate, h.trips, h.note LIMIT 1) o ON true;
SELECT batches > 1 AS several_batches FROM fs_point_in_time_join_stats();
RESET work_mem;

-- Large values stored out of line (TOAST) and compressed come back whole.
CREATE TABLE pj_big_hist (driver_id bigint, event_timestamp timestamptz, doc text, blob text);
ALTER TABLE pj_big_hist ALTER COLUMN blob SET STORAGE EXTERNAL;
INSERT INTO pj_big_hist
SELECT d, '2026-01-01 10:00'::timestamptz + k * interval '1 hour',
       repeat('compressible ', 2000 + k),
       (SELECT string_agg(md5(d::text || k::text || g::text), '') FROM generate_series(1, 300) g)
FROM generate_series(1, 2) d, generate_series(0, 2) k;
SELECT fs_register_view('pj_big', 'pj_big_hist', 'pj_driver');
SELECT j.id, length(j.doc) AS doc_len, md5(j.blob) = md5(h.blob) AS blob_ok
FROM fs_point_in_time_join('pj_spine', '{pj_big:*}') AS j(id int, driver_id bigint, event_timestamp timestamptz, label bool, doc text, blob text)
LEFT JOIN LATERAL (SELECT * FROM pj_big_hist h WHERE h.driver_id = j.driver_id AND h.event_timestamp <= j.event_timestamp
                   ORDER BY h.event_timestamp DESC LIMIT 1) h ON true
WHERE j.id <= 6 ORDER BY j.id;

-- Errors.
-- unknown view, feature, service; bad reference; no features; NULL arguments
SELECT fs_training_columns('pj_spine', '{nope:x}');
SELECT fs_training_columns('pj_spine', '{pj_driver:nope}');
SELECT fs_training_columns('pj_spine', '{nope}');
SELECT fs_training_columns('pj_spine', '{pj_driver@9:note}');
SELECT fs_training_columns('pj_spine', '{pj_driver:}');
SELECT fs_training_columns('pj_spine', '{}');
SELECT fs_training_columns('pj_spine', '{pj_driver:note, pj_driver:note}');
SELECT fs_training_columns('pj_spine', NULL);
SELECT fs_create_training_set(NULL, 'pj_spine', '{pj_driver:note}');
-- spine missing a key column, spine time missing or of the wrong type, key type mismatch
SELECT fs_training_columns('pj_spine', '{pj_um:flag}');
SELECT fs_training_columns('pj_spine', '{pj_driver:note}', spine_time => 'ts');
SELECT fs_training_columns('pj_spine', '{pj_driver:note}', spine_time => 'label');
CREATE TABLE pj_spine_num (driver_id numeric, event_timestamp timestamptz);
SELECT fs_training_columns('pj_spine_num', '{pj_driver:note}');
CREATE SEQUENCE pj_seq;
SELECT fs_training_columns('pj_seq', '{pj_driver:note}');
-- ambiguous short names: two views with the same feature name, a feature named like a spine column,
-- and two versions of one view even with full names
SELECT fs_training_columns('pj_spine', '{pj_driver:note, pj_driver_nottl:note}');
SELECT fs_training_columns('pj_spine', '{pj_driver:note, pj_driver_nottl:note}', full_names => true);
CREATE TABLE pj_spine_note (driver_id bigint, event_timestamp timestamptz, note text);
SELECT fs_training_columns('pj_spine_note', '{pj_driver:note}');
SELECT fs_training_columns('pj_spine', '{pj_driver@1:note, pj_driver@2:note}', full_names => true);
-- column definition lists that do not match; no column definition list
SELECT * FROM fs_point_in_time_join('pj_spine', '{pj_driver:note}') AS t(id int, note text);
SELECT * FROM fs_point_in_time_join('pj_spine', '{pj_driver:note}')
  AS t(id int, driver_id bigint, event_timestamp timestamptz, label bool, note int);
SELECT * FROM fs_point_in_time_join('pj_spine', '{pj_driver:note}');
SELECT fs_point_in_time_join('pj_spine', '{pj_driver:note}');
-- target exists; a source column dropped after registration; a dropped source
SELECT fs_create_training_set('pj_ts1', 'pj_spine2', '{pj_user:country}', spine_time => 'at');
CREATE TABLE pj_tmp_hist (driver_id bigint, event_timestamp timestamptz, a int, b int);
SELECT fs_register_view('pj_tmp', 'pj_tmp_hist', 'pj_driver');
ALTER TABLE pj_tmp_hist DROP COLUMN b;
SELECT fs_training_columns('pj_spine', '{pj_tmp:a}');
ALTER TABLE pj_tmp_hist ALTER COLUMN a TYPE bigint;
SELECT fs_training_columns('pj_spine', '{pj_tmp:a}');
DROP TABLE pj_tmp_hist;
SELECT fs_training_columns('pj_spine', '{pj_tmp:a}');
SELECT count(*) AS training_sets FROM fs_training_sets;
DROP OWNED BY pj_analyst;
DROP ROLE pj_analyst;
-- Leave the database as found (the extension's tables go with it).
DROP EXTENSION feature_store CASCADE;
DROP SCHEMA pj_out CASCADE;
DROP TABLE pj_pspine, pj_big_hist, pj_driver_hist, pj_spine, pj_um_hist, pj_user_hist, pj_spine2, pj_driver_part, pj_ts1, pj_spine_num, pj_spine_note CASCADE;
DROP SEQUENCE pj_seq;
