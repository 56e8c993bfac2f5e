-- Aggregation views' registration: fs_register_view(..., aggregations, filter, hop) records
-- kind 'aggregate', the deparsed filter and the hop in fs_views and each aggregation in
-- fs_features (fn(arg) over 'W'); default names are fn_arg_window (window label: the largest exact
-- unit of d/h/m/s, else us; 'lifetime' without a window); result types are PostgreSQL's own.
-- An identical definition (however spelled) keeps its version; a changed window, filter, hop,
-- function or argument makes version N+1. Every bad input gives its SQLSTATE and message, and
-- registers nothing.
SET client_min_messages = warning;
SET timezone = 'UTC';
SET intervalstyle = 'postgres';
CREATE EXTENSION IF NOT EXISTS feature_store;

\i sql/include/errd.sql
-- snapshot() summarizes the whole registry, to prove failed calls changed nothing.
CREATE FUNCTION pg_temp.snapshot() RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat_ws('|',
    (SELECT string_agg(e::text, ',' ORDER BY name) FROM feature_store.entity e),
    (SELECT string_agg(v::text, ',' ORDER BY view_id) FROM feature_store.feature_view v),
    (SELECT string_agg(f::text, ',' ORDER BY view_id, position) FROM feature_store.view_feature f)))
$$;

CREATE TABLE ar_purchases (user_id bigint, ts timestamptz, created timestamptz, amount numeric, qty int,
                           big bigint, small smallint, price float8, ratio real, category text, pt point,
                           doc json, docb jsonb, flag bool, day date, "Odd Col" int,
                           a_column_with_a_rather_long_name_for_default_names_xxxxxxxxx int);
SELECT fs_register_entity('ar_user', 'user_id');

-- 1. The documented example: an aggregation view with a filter.
SELECT fs_register_view('ar_user_purchases', 'ar_purchases', entity => 'ar_user', event_time => 'ts',
                        created_time => 'created',
                        aggregations => ARRAY['avg(amount) over ''7 days'' as avg_purchase_7d', 'count(*) over ''1 day'' as n_1d',
                                              'max(amount) over ''1 hour''', 'last(category) over ''30 days''',
                                              'sum(amount) as lifetime_spend'],
                        filter => 'amount > 0', hop => NULL) AS version;
SELECT name, version, is_latest, source, entity, event_time, created_time, ttl, n_features, kind, filter, hop
FROM fs_views WHERE name = 'ar_user_purchases';
SELECT position, feature, type, aggregation, reference FROM fs_features WHERE view = 'ar_user_purchases' ORDER BY position;
-- a latest-value view of the same source, for comparison
SELECT fs_register_view('ar_latest', 'ar_purchases', entity => 'ar_user', event_time => 'ts', features => '{amount}') AS version;
SELECT name, kind, filter, hop, n_features FROM fs_views WHERE name = 'ar_latest';
SELECT feature, type, aggregation FROM fs_features WHERE view = 'ar_latest';

-- 2. Default names, window labels and spellings (quoted interval, bare words, ISO 8601, upper
-- case, spaces, quoted identifiers), and the result types.
SELECT fs_register_view('ar_defaults', 'ar_purchases', 'ar_user', event_time => 'ts', aggregations => ARRAY[
    'count(*)', 'count(*) over ''1 day''', 'count(qty) over ''36 hours''', 'count(amount) over ''24 hours''',
    'count(user_id)', 'sum(amount)', 'max(amount) over ''1 hour''', 'min(price) over ''90 minutes''',
    'avg(qty) over ''45 seconds''', 'first(category) over ''1500 milliseconds''', 'last(category) over 7 days',
    'sum(big) over ''1 day 1 hour''', 'avg(small) over ''2 weeks''', 'max(ratio) over ''PT2H''',
    'MIN(day) OVER ''1 minute''', 'last(flag)', 'first(docb)', 'max(ts) over ''10 minutes''',
    '  SUM ( "Odd Col" )  OVER  ''1 hour''  AS odd_1h', 'count(*) as "Mixed_Case"',
    'sum(qty)', 'sum(small)', 'sum(big)', 'sum(price)', 'sum(ratio)',
    'avg(qty)', 'avg(small)', 'avg(big)', 'avg(amount)', 'avg(price)', 'avg(ratio)']) AS version;
SELECT position, feature, type, aggregation FROM fs_features WHERE view = 'ar_defaults' ORDER BY position;
-- the types are those PostgreSQL's own aggregates give (first and last: the column's type)
CREATE FUNCTION pg_temp.pg_result_type(agg text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    e text := regexp_replace(agg, ' over .*$', '');
    t text;
BEGIN
    IF e ~ '^(first|last)\(' THEN
        EXECUTE format('SELECT pg_typeof((SELECT %s FROM ar_purchases LIMIT 1))::text', regexp_replace(e, '^(first|last)\((.*)\)$', '\2'))
        INTO t;
    ELSE
        EXECUTE format('SELECT pg_typeof(%s)::text FROM ar_purchases', e) INTO t;
    END IF;
    RETURN t;
END $$;
SELECT count(*) AS features, count(*) FILTER (WHERE type::text = pg_temp.pg_result_type(aggregation)) AS postgres_types
FROM fs_features WHERE view = 'ar_defaults';

-- 3. Versions. An identical definition keeps the version, however it is spelled (the filter is
-- compared deparsed, windows and hops as durations); the description is metadata.
CREATE FUNCTION pg_temp.reg(aggs text[], filter text DEFAULT 'amount > 0', hop interval DEFAULT NULL,
                            descr text DEFAULT NULL) RETURNS int LANGUAGE sql AS $$
  SELECT fs_register_view('ar_user_purchases', 'ar_purchases', entity => 'ar_user', event_time => 'ts',
                          created_time => 'created', aggregations => aggs, filter => filter, hop => hop,
                          description => descr) $$;
SELECT pg_temp.reg(ARRAY['avg(amount) over ''7 days'' as avg_purchase_7d', 'count(*) over ''1 day'' as n_1d',
                         'max(amount) over ''1 hour''', 'last(category) over ''30 days''',
                         'sum(amount) as lifetime_spend']) AS same;
SELECT pg_temp.reg(ARRAY['AVG(amount) OVER 7 days AS avg_purchase_7d', 'count( * ) over ''24 hours'' as n_1d',
                         'max("amount") over ''60 minutes'' as max_amount_1h', 'last(category) over ''720 hours''',
                         'sum(amount) AS lifetime_spend'],
                   filter => '(amount>0)', descr => 'respelled') AS respelled;
-- each change makes a new version
SELECT pg_temp.reg(ARRAY['avg(amount) over ''7 days'' as avg_purchase_7d', 'count(*) over ''2 days'' as n_1d',
                         'max(amount) over ''1 hour''', 'last(category) over ''30 days''',
                         'sum(amount) as lifetime_spend']) AS window_changed;
SELECT pg_temp.reg(ARRAY['avg(amount) over ''7 days'' as avg_purchase_7d', 'count(*) over ''2 days'' as n_1d',
                         'max(amount) over ''1 hour''', 'last(category) over ''30 days''',
                         'sum(amount) as lifetime_spend'], filter => 'amount >= 0') AS filter_changed;
SELECT pg_temp.reg(ARRAY['avg(amount) over ''7 days'' as avg_purchase_7d', 'count(*) over ''2 days'' as n_1d',
                         'max(amount) over ''1 hour''', 'last(category) over ''30 days''',
                         'sum(amount) as lifetime_spend'], filter => 'amount >= 0', hop => '1 hour') AS hop_added;
SELECT pg_temp.reg(ARRAY['avg(amount) over ''7 days'' as avg_purchase_7d', 'count(*) over ''2 days'' as n_1d',
                         'max(amount) over ''1 hour''', 'last(category) over ''30 days''',
                         'sum(amount) as lifetime_spend'], filter => 'amount >= 0', hop => '60 minutes') AS hop_respelled;
SELECT pg_temp.reg(ARRAY['avg(amount) over ''7 days'' as avg_purchase_7d', 'count(*) over ''2 days'' as n_1d',
                         'max(amount) over ''1 hour''', 'last(category) over ''30 days''',
                         'sum(amount) as lifetime_spend'], filter => 'amount >= 0', hop => '30 minutes') AS hop_changed;
SELECT pg_temp.reg(ARRAY['avg(amount) over ''7 days'' as avg_purchase_7d', 'count(*) over ''2 days'' as n_1d',
                         'min(amount) over ''1 hour'' as max_amount_1h', 'last(category) over ''30 days''',
                         'sum(amount) as lifetime_spend'], filter => 'amount >= 0', hop => '30 minutes') AS function_changed;
SELECT pg_temp.reg(ARRAY['avg(amount) over ''7 days'' as avg_purchase_7d', 'count(amount) over ''2 days'' as n_1d',
                         'min(amount) over ''1 hour'' as max_amount_1h', 'last(category) over ''30 days''',
                         'sum(amount) as lifetime_spend'], filter => 'amount >= 0', hop => '30 minutes') AS argument_changed;
SELECT pg_temp.reg(ARRAY['avg(amount) over ''7 days'' as avg_purchase_7d', 'count(amount) over ''2 days'' as n_1d',
                         'min(amount) over ''1 hour'' as max_amount_1h', 'last(category) over ''30 days''',
                         'sum(amount) over ''400 days'' as lifetime_spend'], filter => 'amount >= 0', hop => '30 minutes') AS lifetime_to_window;
SELECT pg_temp.reg(ARRAY['avg(amount) over ''7 days'' as avg_purchase_7d', 'count(amount) over ''2 days'' as n_1d',
                         'min(amount) over ''1 hour'' as max_amount_1h', 'last(category) over ''30 days''',
                         'sum(amount) over ''400 days'' as lifetime_spend'], filter => NULL, hop => '30 minutes') AS filter_dropped;
SELECT pg_temp.reg(ARRAY['avg(amount) over ''7 days'' as avg_purchase_7d', 'count(amount) over ''2 days'' as n_1d',
                         'min(amount) over ''1 hour'' as max_amount_1h', 'last(category) over ''30 days''',
                         'sum(amount) over ''400 days'' as lifetime_spend'], filter => NULL, hop => NULL) AS hop_dropped;
SELECT pg_temp.reg(ARRAY['count(amount) over ''2 days'' as n_1d', 'avg(amount) over ''7 days'' as avg_purchase_7d',
                         'min(amount) over ''1 hour'' as max_amount_1h', 'last(category) over ''30 days''',
                         'sum(amount) over ''400 days'' as lifetime_spend'], filter => NULL, hop => NULL) AS reordered;
SELECT pg_temp.reg(ARRAY['count(amount) over ''2 days'' as n_2d', 'avg(amount) over ''7 days'' as avg_purchase_7d',
                         'min(amount) over ''1 hour'' as max_amount_1h', 'last(category) over ''30 days''',
                         'sum(amount) over ''400 days'' as lifetime_spend'], filter => NULL, hop => NULL) AS renamed;
-- the same name as a latest-value view and back: new versions each time
SELECT fs_register_view('ar_user_purchases', 'ar_purchases', entity => 'ar_user', event_time => 'ts',
                        created_time => 'created', features => '{amount, category}') AS to_latest;
SELECT pg_temp.reg(ARRAY['count(*)'], filter => NULL) AS back_to_aggregate;
-- and the first definition again: compared with the latest version only, so a new one
SELECT pg_temp.reg(ARRAY['avg(amount) over ''7 days'' as avg_purchase_7d', 'count(*) over ''1 day'' as n_1d',
                         'max(amount) over ''1 hour''', 'last(category) over ''30 days''',
                         'sum(amount) as lifetime_spend']) AS first_again;
SELECT version, is_latest, kind, filter, hop, n_features, description
FROM fs_views WHERE name = 'ar_user_purchases' ORDER BY version;
SELECT version, string_agg(feature || ' = ' || coalesce(aggregation, '(latest)'), ', ' ORDER BY position) AS features
FROM fs_features WHERE view = 'ar_user_purchases' GROUP BY version ORDER BY version;

-- 4. Bad inputs: each its error; nothing registered (a new name, or a new version of an existing one).
CREATE TEMP TABLE ar_before AS SELECT pg_temp.snapshot() AS s, (SELECT count(*) FROM fs_views) AS views;
CREATE FUNCTION pg_temp.bad(n text, aggs text[], filter text DEFAULT NULL, hop interval DEFAULT NULL) RETURNS text
LANGUAGE sql AS $$
  SELECT format('SELECT fs_register_view(%L, ''ar_purchases'', ''ar_user'', event_time => ''ts'', aggregations => %L, filter => %L, hop => %L)',
                n, aggs, filter, hop) $$;
SELECT n, e.* FROM (VALUES
  -- the argument
  (1, pg_temp.bad('ar_bad', ARRAY['sum(nope)'])),
  (2, pg_temp.bad('ar_user_purchases', ARRAY['count(nope) over ''1 day'''])),
  (3, pg_temp.bad('ar_bad', ARRAY['sum(category)'])),
  (4, pg_temp.bad('ar_bad', ARRAY['avg(category) over ''1 day'''])),
  (5, pg_temp.bad('ar_bad', ARRAY['sum(day)'])),
  (6, pg_temp.bad('ar_bad', ARRAY['min(pt)'])),
  (7, pg_temp.bad('ar_bad', ARRAY['max(doc) over ''1 hour'''])),
  (8, pg_temp.bad('ar_bad', ARRAY['first(pt)'])),
  (9, pg_temp.bad('ar_bad', ARRAY['last(doc)'])),
  -- the window
  (10, pg_temp.bad('ar_bad', ARRAY['count(*) over ''1 month'''])),
  (11, pg_temp.bad('ar_bad', ARRAY['count(*) over ''1 year'''])),
  (12, pg_temp.bad('ar_bad', ARRAY['count(*) over ''-1 hour'''])),
  (13, pg_temp.bad('ar_bad', ARRAY['count(*) over ''0 seconds'''])),
  (14, pg_temp.bad('ar_bad', ARRAY['count(*) over ''1 day -24 hours'''])),
  (15, pg_temp.bad('ar_bad', ARRAY['count(*) over ''200000000 days'''])),
  (16, pg_temp.bad('ar_bad', ARRAY['sum(amount) over ''nonsense'''])),
  -- names
  (17, pg_temp.bad('ar_bad', ARRAY['count(*) over ''1 day''', 'count(*) over ''24 hours'''])),
  (18, pg_temp.bad('ar_bad', ARRAY['sum(qty) as x', 'max(qty) as x'])),
  (19, pg_temp.bad('ar_bad', ARRAY['count(*) as "bad name"'])),
  (20, pg_temp.bad('ar_bad', ARRAY['sum("Odd Col")'])),
  (21, pg_temp.bad('ar_bad', ARRAY['first(a_column_with_a_rather_long_name_for_default_names_xxxxxxxxx) over ''1500 milliseconds'''])),
  -- the function and the syntax
  (22, pg_temp.bad('ar_bad', ARRAY['median(amount)'])),
  (23, pg_temp.bad('ar_bad', ARRAY['sum(*)'])),
  (24, pg_temp.bad('ar_bad', ARRAY['count(*'])),
  (25, pg_temp.bad('ar_bad', ARRAY['count'])),
  (26, pg_temp.bad('ar_bad', ARRAY['count(amount, qty)'])),
  (27, pg_temp.bad('ar_bad', ARRAY['count(*) over'])),
  (28, pg_temp.bad('ar_bad', ARRAY['count(*) as'])),
  (29, pg_temp.bad('ar_bad', ARRAY['count(*) as x y'])),
  (30, pg_temp.bad('ar_bad', ARRAY['count(*) over ''1 day'' junk'])),
  (31, pg_temp.bad('ar_bad', ARRAY['count(*) over ''1 day'])),
  (32, pg_temp.bad('ar_bad', ARRAY[''])),
  (33, pg_temp.bad('ar_bad', ARRAY['count(*) over ''1 day'' as 1d'])),
  -- the array
  (34, pg_temp.bad('ar_bad', '{}')),
  (35, pg_temp.bad('ar_bad', ARRAY['count(*)', NULL])),
  (36, pg_temp.bad('ar_bad', '{{count(*)}, {sum(qty)}}')),
  -- the filter
  (37, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'amount')),
  (38, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'NULL')),
  (39, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'random() > 0.5')),
  (40, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'amount > (SELECT 1)')),
  (41, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'EXISTS (SELECT 1 FROM ar_purchases)')),
  (42, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'true; drop table x')),
  (43, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'true) FROM pg_class WHERE (true')),
  (44, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'true), (false')),
  (45, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'amount > 0 --')),
  (46, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'sum(amount) > 0')),
  (47, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'row_number() over () > 1')),
  (48, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'generate_series(1, 2) > 0')),
  (49, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'nope > 0')),
  (50, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => '')),
  (50.1, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'ts > now() - interval ''1 day''')),
  (50.2, pg_temp.bad('ar_bad', ARRAY['count(*)'], filter => 'ts::date > ''2026-01-01''')),
  -- the hop
  (51, pg_temp.bad('ar_bad', ARRAY['count(*)'], hop => '0 s')),
  (52, pg_temp.bad('ar_bad', ARRAY['count(*)'], hop => '-1 hour')),
  (53, pg_temp.bad('ar_bad', ARRAY['count(*)'], hop => '1 month')),
  -- parameters of latest-value views, or aggregation parameters without aggregations
  (54, $$SELECT fs_register_view('ar_bad', 'ar_purchases', 'ar_user', event_time => 'ts', aggregations => '{count(*)}', features => '{qty}')$$),
  (55, $$SELECT fs_register_view('ar_bad', 'ar_purchases', 'ar_user', event_time => 'ts', aggregations => '{count(*)}', ttl => '1 day')$$),
  (56, $$SELECT fs_register_view('ar_bad', 'ar_purchases', 'ar_user', event_time => 'ts', aggregations => '{count(*)}', checks => '{"count_lifetime": {"min": 0}}')$$),
  (57, $$SELECT fs_register_view('ar_bad', 'ar_purchases', 'ar_user', event_time => 'ts', filter => 'amount > 0')$$),
  (58, $$SELECT fs_register_view('ar_bad', 'ar_purchases', 'ar_user', event_time => 'ts', hop => '1 hour')$$),
  (59, $$SELECT fs_register_view('ar_user_purchases', 'ar_purchases', 'ar_user', event_time => 'ts', features => '{qty}', filter => 'amount > 0', hop => '1 hour')$$)
) AS q(n, sql), LATERAL pg_temp.errd(q.sql) e ORDER BY n;
SELECT s = pg_temp.snapshot() AS nothing_registered, views, (SELECT count(*) FROM fs_views) AS views_now
FROM ar_before;

-- Leave the database as found: the next tests create the extension themselves.
DROP TABLE ar_purchases;
DROP EXTENSION feature_store;
