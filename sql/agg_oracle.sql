-- Aggregation views' training path against a brute-force oracle on randomized, seeded datasets.
-- For spine row (key k, time t) and aggregate fn(arg) over W (docs/semantics.md, "Aggregation
-- views"), the oracle is
--   fn(arg) FILTER (WHERE filter) over the source rows r with r.key = k AND t - W <= r.event_ts < t
-- (lifetime: r.event_ts < t only; a day is 86,400 s, so windows are written in microseconds),
-- with as_of_created also r.created_ts <= t for views with a created time (NULL never counts),
-- and with a hop t = date_bin(hop, t, '1970-01-01 00:00+00') in both bounds. first/last are
-- (array_agg(x ORDER BY event_ts, created_ts NULLS FIRST, x) FILTER (WHERE x IS NOT NULL))[1]
-- and its DESC mirror. A NULL spine key or time gives NULL for every aggregate, count included.
-- The oracle is generated from the specification table agg_specs, one LEFT JOIN LATERAL per view;
-- every column of the join is compared with it (float sums and averages within 1e-12 of the sum
-- of the absolute values, for their order of addition; everything else exactly).
-- Times on a 10-minute grid, so that equal event times, events exactly at t - W and exactly at t
-- are common; some 1 µs off; some long before the spine, some after every spine time; NULL keys,
-- event times, created times and values; duplicate rows. The session time zone has daylight
-- saving time, and two datasets straddle a change (a day is still 86,400 s).
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'America/New_York';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';

-- Source A: a plain table, bigint key, created time, every argument type.
CREATE TABLE agg_hist_a (user_id bigint, ts timestamptz, created timestamptz, v_int int, v_big bigint,
                         v_num numeric, v_flt float8, v_txt text, v_small smallint, v_real real);
CREATE INDEX ON agg_hist_a (user_id, ts);
-- the same rows through a SQL view (the hop views read it)
CREATE VIEW agg_hist_a_v AS SELECT * FROM agg_hist_a;
-- Source B: a partitioned table, composite key, timestamp (without time zone) event times, no
-- created time, physically reordered columns in one partition, a dropped column.
CREATE TABLE agg_hist_b (merchant_id int, dropped int, ts timestamp, user_id bigint, w_int int,
                         w_num numeric(12, 2), w_txt text COLLATE "C")
    PARTITION BY RANGE (ts);
ALTER TABLE agg_hist_b DROP COLUMN dropped;
CREATE TABLE agg_hist_b_1 PARTITION OF agg_hist_b FOR VALUES FROM (MINVALUE) TO ('2026-03-01');
CREATE TABLE agg_hist_b_2 (w_txt text COLLATE "C", w_num numeric(12, 2), w_int int, user_id bigint,
                           ts timestamp, merchant_id int);
ALTER TABLE agg_hist_b ATTACH PARTITION agg_hist_b_2 FOR VALUES FROM ('2026-03-01') TO ('2026-06-01');
CREATE TABLE agg_hist_b_def PARTITION OF agg_hist_b DEFAULT;
CREATE INDEX ON agg_hist_b (user_id, merchant_id, ts);
-- Source C: text keys, through a SQL view over source A.
CREATE VIEW agg_hist_c AS SELECT 'u' || user_id AS user_name, ts, created, v_int, v_num, v_txt FROM agg_hist_a;
CREATE INDEX ON agg_hist_a (('u' || user_id));
CREATE TABLE agg_spine (row_id bigint, user_id bigint, merchant_id int, ts timestamptz, user_name text);

SELECT fs_register_entity('agg_user', 'user_id');
SELECT fs_register_entity('agg_um', ARRAY['user_id', 'merchant_id']);
SELECT fs_register_entity('agg_name', 'user_name');

-- The views: source, keys, event and created time, filter, hop.
CREATE TABLE agg_vdefs (view text PRIMARY KEY, src text, entity text, keys text[], ev text, cr text,
                        filter text, hop interval);
INSERT INTO agg_vdefs VALUES
  ('agg_a', 'agg_hist_a', 'agg_user', '{user_id}', 'ts', 'created', NULL, NULL),
  ('agg_af', 'agg_hist_a', 'agg_user', '{user_id}', 'ts', 'created', 'v_num > 0 AND v_txt <> ''c''', NULL),
  ('agg_ah', 'agg_hist_a_v', 'agg_user', '{user_id}', 'ts', 'created', NULL, '25 minutes'),
  ('agg_ad', 'agg_hist_a_v', 'agg_user', '{user_id}', 'ts', 'created', 'v_int % 2 = 0', '1 day'),
  ('agg_b', 'agg_hist_b', 'agg_um', '{user_id,merchant_id}', 'ts', NULL, NULL, NULL),
  ('agg_c', 'agg_hist_c', 'agg_name', '{user_name}', 'ts', 'created', 'v_txt IS NOT NULL', NULL);
-- The aggregations: the declaration as registered (in several spellings) and what it means.
CREATE TABLE agg_specs (view text, pos int, decl text, fn text, arg text, w interval);
INSERT INTO agg_specs (view, decl, fn, arg, w)
SELECT v, d, f, a, w::interval FROM (VALUES
  ('agg_a', 'count(*) over ''1 hour''', 'count', NULL, '1 hour'),
  ('agg_a', 'count(*)', 'count', NULL, NULL),
  ('agg_a', 'count(v_int) over 1 day', 'count', 'v_int', '1 day'),
  ('agg_a', 'count(v_txt) over ''90 minutes''', 'count', 'v_txt', '90 minutes'),
  ('agg_a', 'count(*) over ''59 minutes 59.999999 seconds''', 'count', NULL, '59 minutes 59.999999 seconds'),
  ('agg_a', 'sum(v_int) over ''90 minutes''', 'sum', 'v_int', '90 minutes'),
  ('agg_a', 'sum(v_big)', 'sum', 'v_big', NULL),
  ('agg_a', 'sum(v_big) over ''1 hour''', 'sum', 'v_big', '1 hour'),
  ('agg_a', 'sum(v_num) over ''1 day''', 'sum', 'v_num', '1 day'),
  ('agg_a', 'sum(v_flt) over ''36 hours''', 'sum', 'v_flt', '36 hours'),
  ('agg_a', 'sum(v_small) over ''1 hour''', 'sum', 'v_small', '1 hour'),
  ('agg_a', 'sum(v_real) over ''1 day''', 'sum', 'v_real', '1 day'),
  ('agg_a', 'avg(v_int) over ''1 day''', 'avg', 'v_int', '1 day'),
  ('agg_a', 'avg(v_big) over ''1 hour''', 'avg', 'v_big', '1 hour'),
  ('agg_a', 'avg(v_num)', 'avg', 'v_num', NULL),
  ('agg_a', 'avg(v_flt) over ''90 minutes''', 'avg', 'v_flt', '90 minutes'),
  ('agg_a', 'avg(v_real) over ''36 hours''', 'avg', 'v_real', '36 hours'),
  ('agg_a', 'avg(v_small)', 'avg', 'v_small', NULL),
  ('agg_a', 'min(v_int) over ''1 hour''', 'min', 'v_int', '1 hour'),
  ('agg_a', 'min(v_txt) over ''1 day''', 'min', 'v_txt', '1 day'),
  ('agg_a', 'min(v_num)', 'min', 'v_num', NULL),
  ('agg_a', 'min(v_flt) over ''36 hours''', 'min', 'v_flt', '36 hours'),
  ('agg_a', 'min(created) over ''1 day''', 'min', 'created', '1 day'),
  ('agg_a', 'max(v_big) over ''90 minutes''', 'max', 'v_big', '90 minutes'),
  ('agg_a', 'max(v_txt)', 'max', 'v_txt', NULL),
  ('agg_a', 'max(v_flt) over ''1 day''', 'max', 'v_flt', '1 day'),
  ('agg_a', 'max(v_num) over ''1 hour''', 'max', 'v_num', '1 hour'),
  ('agg_a', 'MAX(created) OVER ''10 minutes'' AS max_created_10m', 'max', 'created', '10 minutes'),
  ('agg_a', 'first(v_txt) over ''1 day''', 'first', 'v_txt', '1 day'),
  ('agg_a', 'first(v_int)', 'first', 'v_int', NULL),
  ('agg_a', 'first(v_num) over ''1 hour''', 'first', 'v_num', '1 hour'),
  ('agg_a', 'first(v_flt) over ''36 hours''', 'first', 'v_flt', '36 hours'),
  ('agg_a', 'first(v_real) over 1 day', 'first', 'v_real', '1 day'),
  ('agg_a', 'last(v_txt) over ''90 minutes''', 'last', 'v_txt', '90 minutes'),
  ('agg_a', 'last(v_big) over ''1 day''', 'last', 'v_big', '1 day'),
  ('agg_a', 'last(v_num)', 'last', 'v_num', NULL),
  ('agg_a', 'last(v_int) over ''1 hour''', 'last', 'v_int', '1 hour'),
  ('agg_a', 'last(v_flt)', 'last', 'v_flt', NULL),
  ('agg_a', 'last(v_small) over ''36 hours''', 'last', 'v_small', '36 hours'),
  ('agg_a', 'last(created) over ''1 hour'' as last_created', 'last', 'created', '1 hour'),
  ('agg_af', 'count(*) over ''1 day'' as f_n_1d', 'count', NULL, '1 day'),
  ('agg_af', 'count(v_flt) over ''1 hour'' as f_nflt_1h', 'count', 'v_flt', '1 hour'),
  ('agg_af', 'sum(v_num) over ''1 hour'' as f_sum_1h', 'sum', 'v_num', '1 hour'),
  ('agg_af', 'sum(v_big) over ''36 hours'' as f_big_36h', 'sum', 'v_big', '36 hours'),
  ('agg_af', 'avg(v_int) as f_avg_life', 'avg', 'v_int', NULL),
  ('agg_af', 'avg(v_flt) over ''1 day'' as f_avgflt_1d', 'avg', 'v_flt', '1 day'),
  ('agg_af', 'min(v_txt) over ''90 minutes'' as f_min_90m', 'min', 'v_txt', '90 minutes'),
  ('agg_af', 'max(v_int) over ''1 day'' as f_max_1d', 'max', 'v_int', '1 day'),
  ('agg_af', 'first(v_big) over ''90 minutes'' as f_first_90m', 'first', 'v_big', '90 minutes'),
  ('agg_af', 'last(v_txt) as f_last_life', 'last', 'v_txt', NULL),
  ('agg_af', 'last(v_flt) over ''1 day'' as f_lastflt_1d', 'last', 'v_flt', '1 day'),
  ('agg_ah', 'count(*) over ''1 hour''', 'count', NULL, '1 hour'),
  ('agg_ah', 'count(*)', 'count', NULL, NULL),
  ('agg_ah', 'sum(v_int) over ''1 day''', 'sum', 'v_int', '1 day'),
  ('agg_ah', 'avg(v_flt) over ''36 hours''', 'avg', 'v_flt', '36 hours'),
  ('agg_ah', 'min(v_num) over ''90 minutes''', 'min', 'v_num', '90 minutes'),
  ('agg_ah', 'max(v_txt) over ''1 hour''', 'max', 'v_txt', '1 hour'),
  ('agg_ah', 'first(v_txt)', 'first', 'v_txt', NULL),
  ('agg_ah', 'last(v_num) over ''90 minutes''', 'last', 'v_num', '90 minutes'),
  ('agg_ah', 'last(v_int) over ''1 day''', 'last', 'v_int', '1 day'),
  ('agg_ad', 'count(*) over ''1 day''', 'count', NULL, '1 day'),
  ('agg_ad', 'sum(v_num) over ''36 hours''', 'sum', 'v_num', '36 hours'),
  ('agg_ad', 'last(v_txt) over ''1 hour''', 'last', 'v_txt', '1 hour'),
  ('agg_ad', 'first(v_big)', 'first', 'v_big', NULL),
  ('agg_b', 'count(*) over ''1 hour''', 'count', NULL, '1 hour'),
  ('agg_b', 'count(w_txt)', 'count', 'w_txt', NULL),
  ('agg_b', 'sum(w_int) over ''1 day''', 'sum', 'w_int', '1 day'),
  ('agg_b', 'sum(w_num) over ''90 minutes''', 'sum', 'w_num', '90 minutes'),
  ('agg_b', 'avg(w_num) over ''36 hours''', 'avg', 'w_num', '36 hours'),
  ('agg_b', 'avg(w_int) over ''1 hour''', 'avg', 'w_int', '1 hour'),
  ('agg_b', 'min(w_txt) over ''1 day''', 'min', 'w_txt', '1 day'),
  ('agg_b', 'max(w_num)', 'max', 'w_num', NULL),
  ('agg_b', 'max(ts) over ''1 day''', 'max', 'ts', '1 day'),
  ('agg_b', 'first(w_int) over ''36 hours''', 'first', 'w_int', '36 hours'),
  ('agg_b', 'first(w_txt)', 'first', 'w_txt', NULL),
  ('agg_b', 'last(w_txt) over ''1 hour''', 'last', 'w_txt', '1 hour'),
  ('agg_b', 'last(w_num) over ''90 minutes''', 'last', 'w_num', '90 minutes'),
  ('agg_c', 'count(*) over ''1 hour''', 'count', NULL, '1 hour'),
  ('agg_c', 'sum(v_int) over ''90 minutes''', 'sum', 'v_int', '90 minutes'),
  ('agg_c', 'avg(v_num) over ''1 day''', 'avg', 'v_num', '1 day'),
  ('agg_c', 'min(v_txt)', 'min', 'v_txt', NULL),
  ('agg_c', 'first(v_int) over ''1 hour''', 'first', 'v_int', '1 hour'),
  ('agg_c', 'last(v_num) over ''36 hours''', 'last', 'v_num', '36 hours')
) s(v, d, f, a, w);
UPDATE agg_specs s SET pos = o.pos
FROM (SELECT ctid, row_number() OVER (PARTITION BY view ORDER BY ctid) AS pos FROM agg_specs) o
WHERE s.ctid = o.ctid;

DO $$
DECLARE d record;
BEGIN
    FOR d IN SELECT * FROM agg_vdefs ORDER BY view LOOP
        PERFORM fs_register_view(d.view, d.src::regclass, d.entity, event_time => d.ev, created_time => d.cr,
                                 aggregations => (SELECT array_agg(decl ORDER BY pos) FROM agg_specs WHERE view = d.view),
                                 filter => d.filter, hop => d.hop);
    END LOOP;
END
$$;
-- the registered features are the specified ones, in order
SELECT v.view, count(*) AS features,
       count(*) FILTER (WHERE f.aggregation = s.fn || '(' || coalesce(s.arg, '*') || ')'
                                              || coalesce(' over ''' || s.w || '''', '')) AS as_specified
FROM agg_vdefs v JOIN agg_specs s USING (view) JOIN fs_features f ON f.view = v.view AND f.position = s.pos
GROUP BY v.view ORDER BY v.view;
-- A latest-value view of source A, for the mixed join.
SELECT fs_register_view('agg_latest', 'agg_hist_a', 'agg_user', event_time => 'ts', created_time => 'created',
                        features => '{v_txt, v_int}');

-- The oracle's query for the join's columns (full names), as_of_created = as_of.
CREATE FUNCTION agg_oracle_sql(views text[], as_of boolean) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d record;
    sp record;
    q text := 'SELECT s.*';
    j text := '';
    exprs text;
    win text;
    ord text;
    keyeq text;
    keyok text;
    n int := 0;
BEGIN
    FOR d IN SELECT * FROM agg_vdefs WHERE view = ANY (views) ORDER BY array_position(views, view) LOOP
        n := n + 1;
        exprs := NULL;
        FOR sp IN SELECT s.*, f.feature FROM agg_specs s JOIN fs_features f ON f.view = s.view AND f.position = s.pos
                  WHERE s.view = d.view ORDER BY s.pos LOOP
            -- t - W <= event_ts (W in microseconds: a day is 86,400 s, whatever the time zone)
            win := CASE WHEN sp.w IS NULL THEN 'true'
                        ELSE format('h.%I >= o.t - interval ''1 microsecond'' * %s', d.ev,
                                    (extract(epoch FROM sp.w) * 1000000)::bigint) END;
            -- ORDER BY event time, created time (first: NULL oldest), then the value
            -- (a timestamp event time is read in the session time zone: ordered as timestamptz)
            ord := format('h.%I::timestamptz%s, %s', d.ev, '%1$s', CASE WHEN d.cr IS NULL THEN '' ELSE format('h.%I%s, ', d.cr, '%2$s') END);
            exprs := concat_ws(', ', exprs, CASE
                WHEN sp.fn = 'count' AND sp.arg IS NULL THEN format('count(*) FILTER (WHERE %s)', win)
                WHEN sp.fn IN ('count', 'sum', 'avg', 'min', 'max') THEN format('%s(h.%I) FILTER (WHERE %s)', sp.fn, sp.arg, win)
                WHEN sp.fn = 'first' THEN format('(array_agg(h.%1$I ORDER BY %2$s h.%1$I) FILTER (WHERE %3$s AND h.%1$I IS NOT NULL))[1]',
                                                 sp.arg, format(ord, '', ' NULLS FIRST'), win)
                WHEN sp.fn = 'last' THEN format('(array_agg(h.%1$I ORDER BY %2$s h.%1$I DESC) FILTER (WHERE %3$s AND h.%1$I IS NOT NULL))[1]',
                                                sp.arg, format(ord, ' DESC', ' DESC NULLS LAST'), win)
                END || format(' AS %I', d.view || '__' || sp.feature));
            q := q || format(', v%s.%I', n, d.view || '__' || sp.feature);
            -- the scale of a sum or average, for the float tolerance: the same of absolute values
            IF sp.fn IN ('sum', 'avg') THEN
                exprs := exprs || format(', %s(abs(h.%I)) FILTER (WHERE %s) AS %I', sp.fn, sp.arg, win,
                                         d.view || '__' || sp.feature || '__scale');
                q := q || format(', v%s.%I', n, d.view || '__' || sp.feature || '__scale');
            END IF;
        END LOOP;
        SELECT string_agg(format('h.%1$I = s.%1$I', k), ' AND '), string_agg(format('s.%I IS NOT NULL', k), ' AND ')
        INTO keyeq, keyok FROM unnest(d.keys) k;
        j := j || format(E'\nLEFT JOIN LATERAL (SELECT %s\n  FROM (SELECT %s AS t) o JOIN %I h ON %s AND h.%I < o.t%s%s) v%s ON %s AND s.ts IS NOT NULL',
                         exprs,
                         CASE WHEN d.hop IS NULL THEN 's.ts'
                              ELSE format('date_bin(%L::interval, s.ts, timestamptz ''1970-01-01 00:00+00'')', d.hop) END,
                         d.src, keyeq, d.ev,
                         CASE WHEN d.filter IS NULL THEN '' ELSE format(' AND (%s)', d.filter) END,
                         CASE WHEN as_of AND d.cr IS NOT NULL THEN format(' AND h.%I <= o.t', d.cr) ELSE '' END,
                         n, keyok);
    END LOOP;
    RETURN q || E'\nFROM agg_spine s' || j;
END
$$;

-- Generates dataset `seed`: n_keys keys (skewed: low keys have many events), n_a events of
-- source A and n_b of source B on a 10-minute grid of `span` from `base`, n_spine spine rows;
-- text values padded to pad characters.
CREATE FUNCTION agg_gen(seed float8, n_keys int, n_a int, n_b int, n_spine int, base timestamptz, span interval,
                        pad int DEFAULT 0) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    npts int := extract(epoch FROM span)::int / 600;
    ka bigint[]; ta timestamptz[]; ca timestamptz[];
    kb bigint[]; mb int[]; tb timestamptz[];
    ws interval[] := '{1 hour, 90 minutes, 24 hours, 36 hours, 10 minutes, 00:59:59.999999, 0}';
BEGIN
    PERFORM setseed(seed);
    TRUNCATE agg_hist_a, agg_hist_b, agg_spine;
    INSERT INTO agg_hist_a
    SELECT CASE WHEN random() < 0.02 THEN NULL ELSE 1 + floor(n_keys * random() ^ 2)::bigint END,
           ev,
           CASE WHEN r < 0.10 THEN NULL WHEN r < 0.50 THEN ev WHEN r < 0.55 THEN ev - interval '10 minutes'
                ELSE ev + floor(1 + random() * 6) * interval '10 minutes' END,
           CASE WHEN random() < 0.05 THEN NULL WHEN random() < 0.03 THEN 2000000000 - floor(random() * 3)::int
                ELSE floor(random() * 21 - 10)::int END,
           CASE WHEN random() < 0.05 THEN NULL WHEN random() < 0.05 THEN (4000000000000000000 + floor(random() * 1000)::bigint) * (1 - 2 * floor(random() * 1.3)::int)
                ELSE floor(random() * 2001 - 1000)::bigint END,
           CASE WHEN random() < 0.05 THEN NULL WHEN random() < 0.004 THEN 'NaN'::numeric
                ELSE round((random() * 200 - 100)::numeric, floor(random() * 4)::int) END,
           CASE WHEN random() < 0.05 THEN NULL WHEN random() < 0.002 THEN 'NaN'::float8
                ELSE floor(random() * 2001 - 1000) / 10 END,
           CASE WHEN random() < 0.05 THEN NULL
                ELSE (ARRAY['a', 'B', 'c', 'b', 'A', 'ä', '_z', ''])[1 + floor(random() * 8)::int] || repeat('.', pad) END,
           CASE WHEN random() < 0.05 THEN NULL ELSE floor(random() * 201 - 100)::smallint END,
           CASE WHEN random() < 0.05 THEN NULL ELSE (floor(random() * 41 - 20) / 4)::real END
    FROM (SELECT CASE WHEN q < 0.02 THEN NULL
                      WHEN q < 0.023 THEN '-infinity' WHEN q < 0.026 THEN 'infinity'
                      WHEN q < 0.05 THEN base - interval '30 days' + floor(random() * npts) * interval '10 minutes'
                      WHEN q < 0.08 THEN base + span + interval '10 days' + floor(random() * npts) * interval '10 minutes'
                      ELSE base + floor(random() * npts) * interval '10 minutes'
                           + CASE WHEN random() < 0.05 THEN (floor(random() * 2) * 2 - 1) * interval '1 microsecond' ELSE interval '0' END
                 END AS ev, random() AS r
          FROM (SELECT random() AS q FROM generate_series(1, n_a)) g) g;
    -- duplicate rows
    INSERT INTO agg_hist_a SELECT * FROM agg_hist_a WHERE random() < 0.05;
    -- source B: local times on the grid (across a DST change some fall into its gap or overlap)
    INSERT INTO agg_hist_b (user_id, merchant_id, ts, w_int, w_num, w_txt)
    SELECT CASE WHEN random() < 0.02 THEN NULL ELSE 1 + floor(n_keys * random() ^ 2)::bigint END,
           CASE WHEN random() < 0.02 THEN NULL ELSE 1 + floor(random() * 3)::int END,
           CASE WHEN q < 0.02 THEN NULL
                WHEN q < 0.023 THEN '-infinity' WHEN q < 0.026 THEN 'infinity'
                WHEN q < 0.05 THEN (base at time zone 'America/New_York') - interval '30 days' + floor(random() * npts) * interval '10 minutes'
                WHEN q < 0.08 THEN (base at time zone 'America/New_York') + span + interval '10 days' + floor(random() * npts) * interval '10 minutes'
                ELSE (base at time zone 'America/New_York') + floor(random() * npts) * interval '10 minutes' END,
           CASE WHEN random() < 0.05 THEN NULL ELSE floor(random() * 21 - 10)::int END,
           CASE WHEN random() < 0.05 THEN NULL ELSE round((random() * 200 - 100)::numeric, 2) END,
           CASE WHEN random() < 0.05 THEN NULL ELSE (ARRAY['p', 'Q', 'q', 'r', 'P'])[1 + floor(random() * 5)::int] END
    FROM (SELECT random() AS q FROM generate_series(1, n_b)) g;
    INSERT INTO agg_hist_b SELECT * FROM agg_hist_b WHERE random() < 0.05;
    SELECT array_agg(user_id ORDER BY user_id, ts, created), array_agg(ts ORDER BY user_id, ts, created),
           array_agg(created ORDER BY user_id, ts, created)
    INTO ka, ta, ca FROM agg_hist_a
    WHERE user_id IS NOT NULL AND ts BETWEEN base AND base + span;
    SELECT array_agg(user_id ORDER BY user_id, merchant_id, ts), array_agg(merchant_id ORDER BY user_id, merchant_id, ts),
           array_agg(ts::timestamptz ORDER BY user_id, merchant_id, ts)
    INTO kb, mb, tb FROM agg_hist_b
    WHERE user_id IS NOT NULL AND merchant_id IS NOT NULL AND ts BETWEEN base::timestamp - interval '1 day' AND base::timestamp + span;
    -- spine: keys and times of events with a window added (events exactly at t - W, exactly at t
    -- when W = 0), or 1 µs either side; at created times; on the grid; off the hop grid; before
    -- all history; after all history but before the future-dated events; NULL keys and times;
    -- keys without any event (n_keys + 1 ..).
    INSERT INTO agg_spine
    SELECT i,
           CASE WHEN random() < 0.03 THEN NULL
                WHEN k < 0.40 THEN ka[ja] WHEN k < 0.55 THEN kb[jb] WHEN k < 0.65 THEN ka[ja]
                ELSE 1 + floor((n_keys + 20) * random())::bigint END,
           CASE WHEN random() < 0.03 THEN NULL WHEN k >= 0.40 AND k < 0.55 THEN mb[jb]
                ELSE 1 + floor(random() * 3)::int END,
           CASE WHEN random() < 0.03 THEN NULL
                WHEN k < 0.40 THEN ta[ja] + ws[1 + floor(random() * 7)::int] + d
                WHEN k < 0.55 THEN tb[jb] + ws[1 + floor(random() * 7)::int] + d
                WHEN k < 0.65 THEN ca[ja] + d
                WHEN k < 0.80 THEN base + floor(random() * (npts + 12)) * interval '10 minutes'
                WHEN k < 0.88 THEN base + floor(random() * (npts * 10)) * interval '1 minute' + d
                WHEN k < 0.93 THEN base - interval '60 days'
                ELSE base + span + interval '2 days' END,
           NULL
    FROM (SELECT i, random() AS k, 1 + floor(random() * cardinality(ka))::int AS ja,
                 1 + floor(random() * cardinality(kb))::int AS jb,
                 CASE WHEN random() < 0.6 THEN interval '0' ELSE (floor(random() * 2) * 2 - 1) * interval '1 microsecond' END AS d
          FROM generate_series(1, n_spine) i) g;
    UPDATE agg_spine SET user_name = 'u' || user_id;
    ANALYZE agg_hist_a, agg_hist_b, agg_spine;
END
$$;

-- The comparison of column c of the join (r) with the oracle's (e): exact, except float sums
-- and averages (those with a column c__scale), whose order of addition is unspecified: within
-- 1e-12 of the sum (average) of the absolute values. Numeric sums and averages must also print
-- the same (the same scale).
CREATE FUNCTION agg_cmp(c name, t regtype) RETURNS text LANGUAGE sql AS $$
SELECT format(CASE WHEN NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('agg_exp') AND attname = c || '__scale')
                   THEN 'r.%1$I IS DISTINCT FROM e.%1$I'
                   WHEN t IN ('float8'::regtype, 'float4'::regtype)
                   THEN 'NOT (r.%1$I IS NOT DISTINCT FROM e.%1$I OR abs(r.%1$I - e.%1$I) <= 1e-12 * e.%2$I)'
                   ELSE 'r.%1$I::text IS DISTINCT FROM e.%1$I::text' END, c, c || '__scale')
$$;

-- Compares the join of `views` (every feature, full names) with the oracle; returns the
-- mismatching rows, the columns that mismatch (with their counts) and the row counts.
CREATE FUNCTION agg_check(views text[], as_of boolean, spine_query text DEFAULT NULL, OUT spine_rows bigint,
                          OUT result_rows bigint, OUT mismatches bigint, OUT bad_columns text, OUT features int,
                          OUT trivial text[])
LANGUAGE plpgsql AS $$
DECLARE
    feats text[] := ARRAY(SELECT v || ':*' FROM unnest(views) v);
    cols text;
    cmp text;
    c record;
    k bigint;
BEGIN
    IF spine_query IS NULL THEN
        cols := fs_training_columns('agg_spine', feats, 'ts', full_names => true);
        EXECUTE format('CREATE TEMP TABLE agg_res ON COMMIT DROP AS SELECT * FROM fs_point_in_time_join(%L, %L, %L, full_names => true, as_of_created => %L) AS t(%s)',
                       'agg_spine', feats, 'ts', as_of, cols);
    ELSE
        cols := fs_training_columns(features => feats, spine_time => 'ts', full_names => true, spine_query => spine_query);
        EXECUTE format('CREATE TEMP TABLE agg_res ON COMMIT DROP AS SELECT * FROM fs_point_in_time_join(features => %L, spine_time => %L, full_names => true, as_of_created => %L, spine_query => %L) AS t(%s)',
                       feats, 'ts', as_of, spine_query, cols);
    END IF;
    EXECUTE 'CREATE TEMP TABLE agg_exp ON COMMIT DROP AS ' || agg_oracle_sql(views, as_of);
    SELECT string_agg(agg_cmp(a.attname, a.atttypid), ' OR ' ORDER BY a.attnum),
           count(*) FILTER (WHERE a.attname LIKE '%\_\_%')
    INTO cmp, features
    FROM pg_attribute a WHERE a.attrelid = 'agg_res'::regclass AND a.attnum > 0;
    spine_rows := (SELECT count(*) FROM agg_spine);
    result_rows := (SELECT count(*) FROM agg_res);
    EXECUTE 'SELECT count(*) FROM agg_res r FULL JOIN agg_exp e ON r.row_id = e.row_id '
            'WHERE r.row_id IS NULL OR e.row_id IS NULL OR ' || cmp
    INTO mismatches;
    -- the features whose oracle values are all NULL or all equal in this run
    FOR c IN SELECT a.attname FROM pg_attribute a
             WHERE a.attrelid = 'agg_res'::regclass AND a.attnum > 0 AND a.attname LIKE '%\_\_%' LOOP
        EXECUTE format('SELECT count(DISTINCT e.%I) FROM agg_exp e', c.attname) INTO k;
        IF k < 2 THEN
            trivial := trivial || c.attname::text;
        END IF;
    END LOOP;
    IF mismatches > 0 THEN
        FOR c IN SELECT a.attname, a.atttypid FROM pg_attribute a
                 WHERE a.attrelid = 'agg_res'::regclass AND a.attnum > 0 ORDER BY a.attnum LOOP
            EXECUTE 'SELECT count(*) FROM agg_res r JOIN agg_exp e USING (row_id) WHERE ' || agg_cmp(c.attname, c.atttypid)
            INTO k;
            IF k > 0 THEN
                bad_columns := concat_ws(', ', bad_columns, c.attname || ' (' || k || ')');
            END IF;
        END LOOP;
    END IF;
    DROP TABLE agg_res, agg_exp;
END
$$;

-- How much of each edge a dataset exercises (computed from the data alone).
CREATE FUNCTION agg_coverage(OUT spine_null_key bigint, OUT spine_null_time bigint, OUT spine_key_without_events bigint,
                             OUT spine_before_history bigint, OUT rows_with_events_1h bigint,
                             OUT events_at_t bigint, OUT events_at_t_minus_1h bigint, OUT events_at_t_minus_90m bigint,
                             OUT events_at_t_minus_1d bigint, OUT events_at_t_minus_36h bigint,
                             OUT b_events_at_t_minus_1h bigint, OUT created_after_t bigint, OUT created_at_t bigint,
                             OUT hop_moved_rows bigint, OUT hop_events_between bigint,
                             OUT first_last_value_ties bigint, OUT future_events bigint, OUT infinite_events bigint,
                             OUT big_sums_over_int64 bigint,
                             OUT nan_events bigint, OUT null_event_times bigint, OUT b_times_near_dst_change bigint)
LANGUAGE sql AS $$
SELECT (SELECT count(*) FROM agg_spine WHERE user_id IS NULL),
       (SELECT count(*) FROM agg_spine WHERE ts IS NULL),
       (SELECT count(*) FROM agg_spine s WHERE s.user_id IS NOT NULL AND s.ts IS NOT NULL
                                            AND NOT EXISTS (SELECT 1 FROM agg_hist_a h WHERE h.user_id = s.user_id)),
       (SELECT count(*) FROM agg_spine s WHERE s.ts < (SELECT min(ts) FROM agg_hist_a WHERE isfinite(ts))),
       (SELECT count(*) FROM agg_spine s WHERE EXISTS (SELECT 1 FROM agg_hist_a h WHERE h.user_id = s.user_id AND h.ts >= s.ts - interval '1 hour' AND h.ts < s.ts)),
       (SELECT count(*) FROM agg_spine s WHERE EXISTS (SELECT 1 FROM agg_hist_a h WHERE h.user_id = s.user_id AND h.ts = s.ts)),
       (SELECT count(*) FROM agg_spine s WHERE EXISTS (SELECT 1 FROM agg_hist_a h WHERE h.user_id = s.user_id AND h.ts = s.ts - interval '1 hour')),
       (SELECT count(*) FROM agg_spine s WHERE EXISTS (SELECT 1 FROM agg_hist_a h WHERE h.user_id = s.user_id AND h.ts = s.ts - interval '90 minutes')),
       (SELECT count(*) FROM agg_spine s WHERE EXISTS (SELECT 1 FROM agg_hist_a h WHERE h.user_id = s.user_id AND h.ts = s.ts - interval '24 hours')),
       (SELECT count(*) FROM agg_spine s WHERE EXISTS (SELECT 1 FROM agg_hist_a h WHERE h.user_id = s.user_id AND h.ts = s.ts - interval '36 hours')),
       (SELECT count(*) FROM agg_spine s WHERE EXISTS (SELECT 1 FROM agg_hist_b h WHERE h.user_id = s.user_id AND h.merchant_id = s.merchant_id
                                                       AND h.ts::timestamptz = s.ts - interval '1 hour')),
       (SELECT count(*) FROM agg_spine s WHERE EXISTS (SELECT 1 FROM agg_hist_a h WHERE h.user_id = s.user_id AND h.ts < s.ts AND h.created > s.ts)),
       (SELECT count(*) FROM agg_spine s WHERE EXISTS (SELECT 1 FROM agg_hist_a h WHERE h.user_id = s.user_id AND h.ts < s.ts AND h.created = s.ts)),
       (SELECT count(*) FROM agg_spine s WHERE date_bin('25 minutes', s.ts, timestamptz '1970-01-01 00:00+00') <> s.ts),
       (SELECT count(*) FROM agg_spine s WHERE EXISTS (SELECT 1 FROM agg_hist_a h WHERE h.user_id = s.user_id AND h.ts < s.ts
                                                       AND h.ts >= date_bin('25 minutes', s.ts, timestamptz '1970-01-01 00:00+00'))),
       (SELECT count(*) FROM (SELECT 1 FROM agg_hist_a WHERE ts IS NOT NULL AND user_id IS NOT NULL
                              GROUP BY user_id, ts, created HAVING count(DISTINCT v_txt) > 1 AND count(DISTINCT v_int) > 1) x),
       (SELECT count(*) FROM agg_hist_a WHERE isfinite(ts) AND ts > (SELECT max(ts) FROM agg_spine)),
       (SELECT count(*) FROM agg_hist_a WHERE NOT isfinite(ts)),
       (SELECT count(*) FROM (SELECT user_id FROM agg_hist_a GROUP BY user_id
                              HAVING abs(sum(v_big)) > 9223372036854775807) x),
       (SELECT count(*) FROM agg_hist_a WHERE v_num = 'NaN' OR v_flt = 'NaN'),
       (SELECT count(*) FROM agg_hist_a WHERE ts IS NULL),
       (SELECT count(*) FROM agg_hist_b WHERE isfinite(ts) AND (ts::timestamptz::timestamp <> ts
                                           OR (ts + interval '1 hour')::timestamptz - ts::timestamptz <> interval '1 hour'))
$$;

CREATE TEMP TABLE agg_runs (dataset int, as_of boolean, spine_rows bigint, result_rows bigint, mismatches bigint,
                            bad_columns text, features int, trivial text[], batches int);
CREATE TEMP TABLE agg_cov AS SELECT 0 AS dataset, * FROM agg_coverage() WITH NO DATA;
DO $$
DECLARE
    views text[] := '{agg_a, agg_af, agg_ah, agg_ad, agg_b, agg_c}';
BEGIN
    FOR i IN 1..4 LOOP
        CASE i
            -- across the start of daylight saving time (2026-03-08 07:00 UTC)
            WHEN 1 THEN PERFORM agg_gen(0.11, 300, 4000, 2000, 1500, '2026-03-07 00:00+00', '3 days');
            -- one dense day
            WHEN 2 THEN PERFORM agg_gen(0.22, 200, 5000, 2500, 1500, '2026-01-10 00:00+00', '1 day');
            -- many keys, twelve hours
            WHEN 3 THEN PERFORM agg_gen(0.33, 500, 3000, 1500, 1500, '2026-04-01 06:00+00', '12 hours');
            -- sparse, five days across the end of daylight saving time (2026-11-01 06:00 UTC)
            WHEN 4 THEN PERFORM agg_gen(0.44, 300, 3000, 1500, 1500, '2026-10-29 00:00+00', '5 days');
        END CASE;
        INSERT INTO agg_cov SELECT i, * FROM agg_coverage();
        FOR as_of IN 0..1 LOOP
            INSERT INTO agg_runs SELECT i, as_of = 1, c.*, (SELECT batches FROM fs_point_in_time_join_stats())
            FROM agg_check(views, as_of = 1) c;
        END LOOP;
    END LOOP;
END
$$;

-- Every row of every run equals the oracle's, one row per spine row, every feature compared.
SELECT count(DISTINCT dataset) AS datasets, count(*) AS runs, sum(mismatches) AS mismatches,
       string_agg(DISTINCT bad_columns, '; ') AS bad_columns,
       bool_and(result_rows = spine_rows) AS one_row_per_spine_row,
       min(features) AS features_compared,
       (SELECT count(*) FROM (SELECT f FROM agg_runs, unnest(trivial) f GROUP BY f
                              HAVING count(*) = (SELECT count(*) FROM agg_runs)) x) AS features_trivial_in_every_run
FROM agg_runs;
-- The edges each dataset exercises (counts of spine rows, events or groups).
SELECT * FROM agg_cov ORDER BY dataset \gx

-- Long text values (the events of a batch exceed the aggregation read's memory budget: the key
-- hash range is read again in parts), the spine as a query in another order, spine batches far
-- smaller than the spine (tiny work_mem), and many small cache partitions.
TRUNCATE agg_runs;
DO $$
DECLARE
    views text[] := '{agg_a, agg_ah, agg_b, agg_c}';
BEGIN
    PERFORM agg_gen(0.55, 300, 4000, 1000, 1500, '2026-02-01 00:00+00', '2 days', pad => 1500);
    INSERT INTO agg_runs SELECT 5, false, c.*, (SELECT batches FROM fs_point_in_time_join_stats())
    FROM agg_check(views, false) c;
    INSERT INTO agg_runs SELECT 5, true, c.*, (SELECT batches FROM fs_point_in_time_join_stats())
    FROM agg_check(views, true, 'SELECT * FROM agg_spine ORDER BY ts DESC NULLS FIRST, row_id') c;
    SET LOCAL work_mem = '64kB';
    INSERT INTO agg_runs SELECT 5, true, c.*, (SELECT batches FROM fs_point_in_time_join_stats())
    FROM agg_check(views, true) c;
    -- cache partitions of 1 kB: keys are grouped partition by partition, reads give up partitions
    SET LOCAL work_mem = '1MB';
    SET LOCAL feature_store.join_partition_size = '1kB';
    INSERT INTO agg_runs SELECT 5, false, c.*, (SELECT batches FROM fs_point_in_time_join_stats())
    FROM agg_check(views, false) c;
END
$$;
SELECT count(*) AS runs, sum(mismatches) AS mismatches, string_agg(DISTINCT bad_columns, '; ') AS bad_columns,
       bool_and(result_rows = spine_rows) AS one_row_per_spine_row,
       count(*) FILTER (WHERE batches > 1) AS runs_in_several_batches,
       (SELECT count(*) FROM agg_hist_a WHERE length(v_txt) > 1500) AS long_values
FROM agg_runs;

-- A mixed join (an aggregation view with a filter, a latest-value view, one feature each of the
-- composite-key view and a hop view) and fs_create_training_set: the same rows; the aggregates
-- are the oracle's, the latest values the latest-value oracle's (event_ts <= t, both bounds as
-- of created, ties by the features).
SELECT agg_gen(0.66, 250, 3000, 1500, 1200, '2026-05-01 00:00+00', '1 day');
SELECT fs_training_columns('agg_spine', '{agg_af:*, agg_latest:*, agg_b:count_1h, agg_ah:first_v_txt_lifetime}', 'ts');
CREATE TEMP TABLE agg_mixed AS
SELECT * FROM fs_point_in_time_join('agg_spine', '{agg_af:*, agg_latest:*, agg_b:count_1h, agg_ah:first_v_txt_lifetime}', 'ts',
                                    as_of_created => true)
  AS t(row_id bigint, user_id bigint, merchant_id integer, ts timestamp with time zone, user_name text, f_n_1d bigint, f_nflt_1h bigint,
       f_sum_1h numeric, f_big_36h numeric, f_avg_life numeric, f_avgflt_1d double precision, f_min_90m text,
       f_max_1d integer, f_first_90m bigint, f_last_life text, f_lastflt_1d double precision, v_txt text, v_int integer,
       count_1h bigint, first_v_txt_lifetime text);
SELECT fs_create_training_set('agg_mixed_ts', 'agg_spine',
                              '{agg_af:*, agg_latest:*, agg_b:count_1h, agg_ah:first_v_txt_lifetime}', 'ts',
                              as_of_created => true) AS training_rows;
SELECT count(*) AS rows, count(DISTINCT row_id) AS row_ids, count(*) FILTER (WHERE m::text IS DISTINCT FROM t::text) AS differences
FROM agg_mixed m FULL JOIN agg_mixed_ts t USING (row_id);
DO $$ BEGIN
    EXECUTE 'CREATE TEMP TABLE agg_mixed_ora AS ' || agg_oracle_sql('{agg_af, agg_b, agg_ah}', true);
END $$;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (m.f_n_1d, m.f_nflt_1h, m.f_sum_1h, m.f_big_36h, m.f_avg_life, m.f_min_90m, m.f_max_1d,
                               m.f_first_90m, m.f_last_life, m.f_lastflt_1d, m.count_1h, m.first_v_txt_lifetime)
                              IS DISTINCT FROM
                              (o.agg_af__f_n_1d, o.agg_af__f_nflt_1h, o.agg_af__f_sum_1h, o.agg_af__f_big_36h,
                               o.agg_af__f_avg_life, o.agg_af__f_min_90m, o.agg_af__f_max_1d, o.agg_af__f_first_90m,
                               o.agg_af__f_last_life, o.agg_af__f_lastflt_1d, o.agg_b__count_1h, o.agg_ah__first_v_txt_lifetime)
                           OR NOT (m.f_avgflt_1d IS NOT DISTINCT FROM o.agg_af__f_avgflt_1d
                                   OR abs(m.f_avgflt_1d - o.agg_af__f_avgflt_1d) <= 1e-12 * o.agg_af__f_avgflt_1d__scale))
         AS aggregate_mismatches,
       count(*) FILTER (WHERE (m.v_txt, m.v_int) IS DISTINCT FROM (l.v_txt, l.v_int)) AS latest_mismatches,
       count(*) FILTER (WHERE o.agg_af__f_n_1d > 0) AS rows_with_filtered_events,
       count(*) FILTER (WHERE l.v_txt IS NOT NULL) AS rows_with_latest_values,
       count(*) FILTER (WHERE o.agg_b__count_1h > 0) AS rows_with_b_events
FROM agg_mixed m JOIN agg_mixed_ora o USING (row_id)
LEFT JOIN LATERAL (SELECT h.v_txt, h.v_int FROM agg_hist_a h
                   WHERE h.user_id = m.user_id AND h.ts <= m.ts AND h.created <= m.ts
                   ORDER BY h.ts DESC, h.created DESC NULLS LAST, h.v_txt, h.v_int LIMIT 1) l ON true;

-- Spine times -infinity and infinity, next to finite ones of the same keys; events at both and a
-- created time at infinity. A spine time of -infinity sees no event (date_bin(hop, -infinity) is
-- -infinity too), infinity every event before it; the finite rows of the same keys are as ever.
TRUNCATE agg_runs;
DO $$
DECLARE
    views text[] := '{agg_a, agg_af, agg_ah, agg_ad, agg_b, agg_c}';
BEGIN
    PERFORM agg_gen(0.77, 200, 3000, 1500, 800, '2026-07-01 00:00+00', '1 day');
    INSERT INTO agg_hist_a (user_id, ts, created, v_int, v_num, v_txt)
    SELECT user_id, ts, 'infinity', 4, 1.5, 'c' FROM agg_hist_a WHERE isfinite(ts) AND v_int = 0;
    INSERT INTO agg_spine
    SELECT row_id + 100000, user_id, merchant_id, CASE WHEN row_id % 10 < 3 THEN '-infinity'::timestamptz ELSE 'infinity' END,
           user_name
    FROM agg_spine WHERE row_id % 10 < 6;
    FOR as_of IN 0..1 LOOP
        INSERT INTO agg_runs SELECT 7, as_of = 1, c.*, (SELECT batches FROM fs_point_in_time_join_stats())
        FROM agg_check(views, as_of = 1) c;
    END LOOP;
END
$$;
SELECT count(*) AS runs, sum(mismatches) AS mismatches, string_agg(DISTINCT bad_columns, '; ') AS bad_columns,
       bool_and(result_rows = spine_rows) AS one_row_per_spine_row,
       (SELECT count(*) FROM agg_spine WHERE NOT isfinite(ts)) AS infinite_spine_times,
       (SELECT count(*) FROM agg_hist_a WHERE created = 'infinity') AS created_at_infinity
FROM agg_runs;

-- Leave the database as found.
DROP EXTENSION feature_store CASCADE;
DROP VIEW agg_hist_a_v, agg_hist_c;
DROP TABLE agg_hist_a, agg_hist_b, agg_spine, agg_vdefs, agg_specs, agg_mixed_ts CASCADE;
DROP FUNCTION agg_oracle_sql, agg_gen, agg_cmp, agg_check, agg_coverage;
