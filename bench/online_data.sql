-- The online benchmarks' data (bench/online.sh, bench/standby_online.sh): :entities users, one
-- row each in a plain latest-values table that is both the PK-lookup baseline and the source of
-- the view user_stats (4 features), materialized; the service user_vec serves 3 numeric features.
--   psql -v entities=N -f bench/online_data.sql
CREATE EXTENSION feature_store;
CREATE TABLE user_latest (user_id bigint PRIMARY KEY, event_ts timestamptz, created_ts timestamptz,
                          f_float1 float8, f_float2 float8, f_int1 bigint, f_text1 text);
INSERT INTO user_latest
SELECT u, now() - (u % 1000) * interval '1 minute', now(), (u % 9973) / 9973.0, u * 0.25, u % 1000, 'seg' || (u % 7)
FROM generate_series(1, :entities) u;
VACUUM ANALYZE user_latest;
SELECT fs_register_entity('user', 'user_id');
SELECT fs_register_view('user_stats', 'user_latest', 'user', event_time => 'event_ts', created_time => 'created_ts',
                        features => ARRAY['f_float1', 'f_float2', 'f_int1', 'f_text1']);
SELECT fs_materialize('user_stats', '-infinity', 'infinity');
SELECT fs_register_service('user_vec', ARRAY['user_stats:f_float1', 'user_stats:f_float2', 'user_stats:f_int1']);
