-- Registry: every bad input gets a specific SQLSTATE, a message and (where the fix is known) a hint,
-- and leaves the registry unchanged.
CREATE EXTENSION IF NOT EXISTS feature_store;
SET client_min_messages = warning;

-- err(q) runs q and shows what it raised, so SQLSTATEs are part of the expected output.
\i sql/include/err.sql
-- snapshot() summarizes the whole registry, to prove failed calls changed nothing.
CREATE FUNCTION pg_temp.snapshot() RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat_ws('|',
    (SELECT string_agg(e::text, ',' ORDER BY name) FROM feature_store.entity e),
    (SELECT string_agg(v::text, ',' ORDER BY view_id) FROM feature_store.feature_view v),
    (SELECT string_agg(f::text, ',' ORDER BY view_id, position) FROM feature_store.view_feature f),
    (SELECT string_agg(s::text, ',' ORDER BY service_id) FROM feature_store.feature_service s),
    (SELECT string_agg(f::text, ',' ORDER BY service_id, position) FROM feature_store.service_feature f)))
$$;

CREATE TABLE err_hist (rider_id bigint, event_timestamp timestamptz, created timestamptz,
                       score float8, label text, day date, bad_ts text, pt point, n numeric);
CREATE TABLE err_hist2 (rider_id int, event_timestamp timestamptz, score float8);
CREATE TABLE err_hist3 (rider_id float8, event_timestamp timestamptz, score float8);
CREATE SEQUENCE err_seq;
SELECT fs_register_entity('rider', 'rider_id');
SELECT fs_register_view('rider_stats', 'err_hist', 'rider', features => '{score,label}');
SELECT fs_register_service('rider_model', '{rider_stats:score}');
CREATE TEMP TABLE before AS SELECT pg_temp.snapshot() AS s;

SELECT * FROM pg_temp.err($$SELECT fs_register_entity('rider', NULL::text[])$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_entity('bad name', 'k')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_entity('x"; DROP TABLE err_hist; --', 'k')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_entity('e2', '{}'::text[])$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_entity('e2', '{a,a}'::text[])$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_entity('e2', '{a,b}'::text[], key_types => '{bigint}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_entity('e2', 'a', key_type => 'float8')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_entity('rider', 'other_id')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'no_such_table', 'rider')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_seq', 'rider')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'no_such_entity')$$);
CREATE TEMP TABLE err_temp (rider_id bigint, event_timestamp timestamptz, score float8);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_temp', 'rider')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', NULL)$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v@2', 'err_hist', 'rider')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v:x', 'err_hist', 'rider')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view(repeat('v', 64), 'err_hist', 'rider')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', event_time => 'nope')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', event_time => 'day')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', event_time => 'bad_ts')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', created_time => 'event_timestamp')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', created_time => 'label')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist2', 'rider')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist3', 'rider')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', features => '{nope}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', features => '{score,score}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', features => '{}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', features => '{rider_id}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', features => ARRAY['score', NULL])$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', features => '{{score},{label}}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', ttl => '0 seconds')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', ttl => '-1 day')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', tags => '["a"]')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', checks => '[1]')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', checks => '{"nope": {"min": 1}}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', checks => '{"score": {"between": 1}}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', checks => '{"label": {"min": 1}}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', checks => '{"score": {"min": "a"}}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', checks => '{"score": {"min": 2, "max": 1}}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', checks => '{"label": {"allowed": []}}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_view('v', 'err_hist', 'rider', checks => '{"label": {"not_null": 1}}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_service('rider_stats', '{rider_stats:score}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_service('m', '{}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_service('m', '{rider_stats:nope}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_service('m', '{nope:score}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_service('m', '{rider_stats@7:score}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_service('m', '{rider_stats@x:score}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_service('m', '{rider_stats}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_service('m', '{rider_stats:score,rider_stats:*}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_register_service('m', '{:score}')$$);
SELECT * FROM pg_temp.err($$SELECT fs_drop_view('nope')$$);
SELECT * FROM pg_temp.err($$SELECT fs_drop_view('rider_stats@0')$$);
SELECT * FROM pg_temp.err($$SELECT fs_drop_view('rider_stats')$$);
SELECT * FROM pg_temp.err($$SELECT fs_drop_service('nope')$$);
SELECT * FROM pg_temp.err($$SELECT fs_drop_entity('rider')$$);
SELECT * FROM pg_temp.err($$SELECT fs_drop_entity('nope')$$);

-- Nothing above changed the registry.
SELECT pg_temp.snapshot() = s AS registry_unchanged FROM before;
-- ...and the injection attempt did not drop anything.
SELECT count(*) AS err_hist_still_there FROM err_hist;
