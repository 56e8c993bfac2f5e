-- Aggregation views keep feature data private as latest-value views do: a role reads aggregates
-- only of sources it may SELECT (the columns aggregated, or every column when there is a filter);
-- under row-level security it is refused (the aggregates cover every row); registering needs
-- SELECT on the source, and no superuser.
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';
CREATE ROLE regress_agg_owner;
CREATE ROLE regress_agg_reader;
CREATE ROLE regress_agg_cols;
CREATE TABLE aacc_events (k bigint, ts timestamptz, amount numeric, secret text);
CREATE INDEX ON aacc_events (k, ts);
INSERT INTO aacc_events SELECT g % 5, now() - g * interval '10 minutes', g, 's' || g FROM generate_series(1, 100) g;
GRANT SELECT ON aacc_events TO regress_agg_owner;
GRANT SELECT (k, ts, amount) ON aacc_events TO regress_agg_cols;
CREATE TABLE aacc_spine AS SELECT k::bigint AS k, now() AS ts FROM generate_series(0, 4) k;
GRANT SELECT ON aacc_spine TO PUBLIC;
SELECT fs_register_entity('aacc_key', 'k');
GRANT CREATE ON SCHEMA public TO regress_agg_owner;

-- registered by an ordinary role
SET ROLE regress_agg_owner;
SELECT fs_register_view('aacc_sum', 'aacc_events', entity => 'aacc_key', event_time => 'ts',
                        aggregations => ARRAY['sum(amount) over ''1 day'' as s', 'count(*) as n']);
SELECT fs_register_view('aacc_filtered', 'aacc_events', entity => 'aacc_key', event_time => 'ts',
                        aggregations => ARRAY['count(*) as n'], filter => 'secret LIKE ''s1%''');
SELECT registered_by, kind FROM fs_views WHERE name LIKE 'aacc%' ORDER BY name;
RESET ROLE;

-- a reader without any privilege on the source
SET ROLE regress_agg_reader;
SELECT fs_online(fs_entity('aacc_key', 1), 'aacc_sum');
SELECT fs_online(fs_entity('aacc_key', 1));  -- left out, as information_schema does
SELECT * FROM fs_point_in_time_join('aacc_spine', '{aacc_sum:*}', 'ts') AS t(k bigint, ts timestamptz, s numeric, n bigint);
SELECT fs_register_view('aacc_mine', 'aacc_events', entity => 'aacc_key', event_time => 'ts',
                        aggregations => ARRAY['count(*)']);
RESET ROLE;

-- column privileges on what is aggregated suffice without a filter; a filter may read any column
SET ROLE regress_agg_cols;
SELECT (fs_online(fs_entity('aacc_key', 1), 'aacc_sum') -> 'aacc_sum' ->> 'n')::int > 0 AS served;
SELECT count(*) FROM fs_point_in_time_join('aacc_spine', '{aacc_sum:*}', 'ts') AS t(k bigint, ts timestamptz, s numeric, n bigint);
SELECT fs_online(fs_entity('aacc_key', 1), 'aacc_filtered');
RESET ROLE;

-- the owner's answers equal the superuser's
SET ROLE regress_agg_owner;
SELECT fs_online(fs_entity('aacc_key', 2), 'aacc_sum') AS owner_sees \gset
RESET ROLE;
SELECT fs_online(fs_entity('aacc_key', 2), 'aacc_sum') = :'owner_sees'::jsonb AS same_answer;

-- a column the filter reads renamed after registration: a clear error naming the filter
ALTER TABLE aacc_events RENAME COLUMN secret TO secret2;
SELECT count(*) FROM fs_point_in_time_join('aacc_spine', '{aacc_filtered:*}', 'ts') AS t(k bigint, ts timestamptz, n bigint);
SELECT fs_online(fs_entity('aacc_key', 1), 'aacc_filtered');
ALTER TABLE aacc_events RENAME COLUMN secret2 TO secret;
SELECT count(*) FROM fs_point_in_time_join('aacc_spine', '{aacc_filtered:*}', 'ts') AS t(k bigint, ts timestamptz, n bigint);

-- row-level security on the source: refused, not filtered
ALTER TABLE aacc_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY aacc_some ON aacc_events FOR SELECT USING (k < 3);
SET ROLE regress_agg_owner;
SELECT fs_online(fs_entity('aacc_key', 1), 'aacc_sum');
RESET ROLE;
ALTER TABLE aacc_events DISABLE ROW LEVEL SECURITY;

-- stream mode puts the key triggers of cached answers on the source: the view's owner needs the
-- TRIGGER privilege on it, as for CREATE TRIGGER; dropping the view removes them (no NOTICE)
SET ROLE regress_agg_owner;
SELECT fs_set_online_mode('aacc_sum', 'stream');
RESET ROLE;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'aacc_events'::regclass;
GRANT TRIGGER ON aacc_events TO regress_agg_owner;
SET ROLE regress_agg_owner;
SELECT fs_set_online_mode('aacc_sum', 'stream');
RESET ROLE;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'aacc_events'::regclass;
SELECT fs_drop_view('aacc_sum');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'aacc_events'::regclass;
SELECT fs_drop_view('aacc_filtered');
REVOKE CREATE ON SCHEMA public FROM regress_agg_owner;
DROP TABLE aacc_events, aacc_spine;
DROP ROLE regress_agg_owner, regress_agg_reader, regress_agg_cols;

-- Leave the database as found: the next tests create the extension themselves.
DROP EXTENSION feature_store;
