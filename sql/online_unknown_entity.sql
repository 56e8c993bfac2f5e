-- Online store: a misspelled entity name is an error (42704 with a hint), not "no data", in every
-- fs_online* form that takes an fs_entity; an unknown key of a known entity stays "not found";
-- the existing errors of a wrong key count or a bad key text stay as they were.
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';
\i sql/include/err.sql

CREATE TABLE ue_hist (driver_id bigint, ts timestamptz, rate float8, trips int);
INSERT INTO ue_hist SELECT g, now() - interval '1 hour', g / 10.0, g FROM generate_series(1, 400) g;
CREATE TABLE ue_um (user_id bigint, merchant_id int, ts timestamptz, amount float8);
INSERT INTO ue_um VALUES (42, 7, now() - interval '1 hour', 12.5);
SELECT fs_register_entity('ue_driver', 'driver_id');
SELECT fs_register_entity('ue_um', ARRAY['user_id', 'merchant_id']);
SELECT fs_register_entity('ue_lonely', 'driver_id');	-- registered, no view
SELECT fs_register_view('ue_v', 'ue_hist', 'ue_driver', event_time => 'ts');
SELECT fs_register_view('ue_umv', 'ue_um', 'ue_um', event_time => 'ts');
SELECT fs_register_service('ue_svc', ARRAY['ue_v:rate', 'ue_v:trips']);
SELECT fs_register_service('ue_mix', ARRAY['ue_v:rate', 'ue_umv:amount']);
SELECT fs_materialize('ue_v', '-infinity', 'infinity');
SELECT fs_materialize('ue_umv', '-infinity', 'infinity');

-- Every form with a misspelled entity: 42704 and a hint saying how to see the entities (with the
-- closest registered name when one is near).
SELECT q, (pg_temp.err(q)).*
FROM unnest(ARRAY[
  $$SELECT fs_online('ue_drvier:1')$$,
  $$SELECT fs_online('ue_drvier:1', 'ue_v')$$,
  $$SELECT fs_online('ue_drvier:1', 'ue_v@1')$$,
  $$SELECT fs_online('ue_drvier:1', 'ue_svc')$$,
  $$SELECT fs_online('ue_drvier:1', 'ue_mix')$$,
  $$SELECT fs_online(fs_entity('ue_drvier', 1))$$,
  $$SELECT * FROM fs_online_detail('ue_drvier:1')$$,
  $$SELECT * FROM fs_online_detail('ue_drvier:1', NULL)$$,
  $$SELECT * FROM fs_online_detail('ue_drvier:1', 'ue_v')$$,
  $$SELECT * FROM fs_online_detail('ue_drvier:1', 'ue_svc')$$,
  $$SELECT fs_online_vector('ue_drvier:1', 'ue_svc')$$,
  $$SELECT fs_online_vector('ue_drvier:1', 'ue_v')$$,
  $$SELECT * FROM fs_online_batch(ARRAY['ue_drvier:1']::fs_entity[])$$,
  $$SELECT * FROM fs_online_batch(ARRAY['ue_drvier:1']::fs_entity[], 'ue_v')$$,
  $$SELECT * FROM fs_online_batch(ARRAY['ue_drvier:1']::fs_entity[], 'ue_svc')$$,
  $$SELECT * FROM fs_online_batch(ARRAY['ue_drvier:1']::fs_entity[], 'ue_mix')$$,
  $$SELECT fs_online('nothing_like_it:1')$$,
  $$SELECT * FROM fs_online_detail('nothing_like_it:(1,2)')$$
]) q;

-- fs_online_batch: one misspelled element anywhere fails the whole call, also after 300 good
-- elements (a second chunk) and between elements of other entities.
SELECT (pg_temp.err($$SELECT count(*) FROM fs_online_batch(
          ARRAY(SELECT fs_entity('ue_driver', g) FROM generate_series(1, 300) g) || 'ue_drvier:5'::fs_entity)$$)).*;
SELECT (pg_temp.err($$SELECT count(*) FROM fs_online_batch(
          ARRAY['ue_driver:1', NULL, 'ue_um:(42,7)', 'ue_drvier:5', 'ue_driver:2']::fs_entity[])$$)).*;
-- the same arrays without the misspelling are served
SELECT count(*) AS rows, count(features) AS with_features
FROM fs_online_batch(ARRAY(SELECT fs_entity('ue_driver', g) FROM generate_series(1, 300) g) || 'ue_driver:5'::fs_entity);
SELECT * FROM fs_online_batch(ARRAY['ue_driver:1', NULL, 'ue_um:(42,7)', 'ue_driver:2']::fs_entity[]);

-- An unknown key of a known entity is "not found" in every form (NULL, status not_found).
SELECT fs_online('ue_driver:99999') IS NULL AS all_views,
       fs_online('ue_driver:99999', 'ue_v') IS NULL AS view,
       fs_online('ue_driver:99999', 'ue_svc') IS NULL AS service,
       fs_online('ue_um:(42,8)') IS NULL AS composite,
       fs_online_vector('ue_driver:99999', 'ue_svc') IS NULL AS vector;
SELECT * FROM fs_online_detail('ue_driver:99999');
SELECT * FROM fs_online_detail('ue_driver:99999', 'ue_svc');
SELECT * FROM fs_online_batch(ARRAY['ue_driver:99999', 'ue_driver:3']::fs_entity[], 'ue_v');
-- a registered entity without any online view: no data, no error
SELECT fs_online('ue_lonely:1') IS NULL AS lonely;
SELECT count(*) AS lonely_detail FROM fs_online_detail('ue_lonely:1');
SELECT count(*) AS lonely_batch, count(features) AS lonely_features FROM fs_online_batch(ARRAY['ue_lonely:1']::fs_entity[]);
-- a known entity whose views the caller may not read: left out (NULL), still no error
CREATE ROLE ue_reader;
SET ROLE ue_reader;
SELECT fs_online('ue_driver:1') IS NULL AS unreadable_left_out;
SELECT (pg_temp.err($$SELECT fs_online('ue_drvier:1')$$)).state AS misspelled_still_42704;
RESET ROLE;

-- Existing errors are unchanged: key count, key text, entity of another view or service.
SELECT q, (pg_temp.err(q)).*
FROM unnest(ARRAY[
  $$SELECT fs_online('ue_driver:(1,2)')$$,
  $$SELECT fs_online('ue_driver:abc')$$,
  $$SELECT fs_online('ue_driver:abc', 'ue_svc')$$,
  $$SELECT * FROM fs_online_detail('ue_driver:(1,2)', 'ue_v')$$,
  $$SELECT * FROM fs_online_batch(ARRAY['ue_driver:1', 'ue_driver:x']::fs_entity[])$$,
  $$SELECT fs_online('ue_um:(42,7)', 'ue_v')$$,
  $$SELECT fs_online('ue_um:(42,7)', 'ue_svc')$$,
  $$SELECT fs_online('ue_drvier:1', 'no_such_view')$$
]) q;

-- The registry cache follows entity changes, also within a transaction and after a rollback.
BEGIN;
SELECT fs_register_entity('ue_fresh', 'driver_id');
SELECT fs_online('ue_fresh:1') IS NULL AS fresh_known_in_xact;
ROLLBACK;
SELECT (pg_temp.err($$SELECT fs_online('ue_fresh:1')$$)).state AS fresh_gone_after_rollback;
SELECT fs_drop_entity('ue_lonely');
SELECT (pg_temp.err($$SELECT fs_online('ue_lonely:1')$$)).*;

SET client_min_messages = warning;
DROP EXTENSION feature_store CASCADE;
RESET client_min_messages;
DROP TABLE ue_hist, ue_um;
DROP ROLE ue_reader;
