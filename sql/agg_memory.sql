-- Training with aggregation views keeps its events within the memory limit: with a small
-- work_mem a read gives up its highest cache partitions (read again later: partial reads > 0)
-- or, with one partition, is split by key hash range (aggregation splits > 0), and the result is
-- the same, row for row, as with room enough for one read.
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';
CREATE TABLE amem_events (k bigint, ts timestamptz, x float8, s text);
INSERT INTO amem_events
SELECT g % 2000, '2026-01-01'::timestamptz + (g % 997) * interval '7 minutes', (g % 1013) / 7.0, 'v' || (g % 37)
FROM generate_series(1, 60000) g;
CREATE INDEX ON amem_events (k, ts);
CREATE TABLE amem_spine AS
SELECT g AS row_id, (g * 7919) % 2100 AS k, '2026-01-02'::timestamptz + (g % 500) * interval '13 minutes' AS ts
FROM generate_series(1, 5000) g;
SELECT fs_register_entity('amem_key', 'k');
SELECT fs_register_view('amem', 'amem_events', entity => 'amem_key', event_time => 'ts',
  aggregations => ARRAY['sum(x) over ''1 day'' as sx', 'count(*) over ''6 hours'' as n', 'max(s) as ms', 'avg(x) as ax']);

CREATE FUNCTION amem_digest() RETURNS text LANGUAGE sql AS $$
  SELECT md5(string_agg(t::text, ',' ORDER BY row_id))
  FROM fs_point_in_time_join('amem_spine', '{amem:*}', 'ts')
    AS t(row_id int, k int, ts timestamptz, sx float8, n bigint, ms text, ax float8)
$$;

SET work_mem = '64MB';
SELECT amem_digest() AS roomy \gset
SELECT substring(detail FROM '(\d+) aggregation splits')::int AS splits_roomy FROM fs_point_in_time_join_stats();
SET work_mem = '64kB';
SET hash_mem_multiplier = 1;
SELECT amem_digest() = :'roomy' AS same_when_split;
SELECT substring(detail FROM '(\d+) aggregation splits')::int > 0 AS split, batches > 1 AS batched
FROM fs_point_in_time_join_stats();
-- small cache partitions: reads give up partitions instead
SET feature_store.join_partition_size = '1kB';
SELECT amem_digest() = :'roomy' AS same_when_partial;
SELECT substring(detail FROM '(\d+) partial aggregation reads')::int > 0 AS partial, batches > 1 AS batched
FROM fs_point_in_time_join_stats();
RESET feature_store.join_partition_size;
SET work_mem = '64kB';
-- and against the brute-force oracle on a sample of rows
SELECT count(*) AS checked,
       count(*) FILTER (WHERE t.n IS DISTINCT FROM (SELECT count(*) FROM amem_events e WHERE e.k = t.k
                          AND e.ts >= t.ts - interval '6 hours' AND e.ts < t.ts)
                       OR t.ms IS DISTINCT FROM (SELECT max(s) FROM amem_events e WHERE e.k = t.k AND e.ts < t.ts)) AS mismatches
FROM fs_point_in_time_join('amem_spine', '{amem:*}', 'ts')
  AS t(row_id int, k int, ts timestamptz, sx float8, n bigint, ms text, ax float8)
WHERE row_id % 10 = 0;
RESET work_mem;
RESET hash_mem_multiplier;

-- Leave the database as found: the next tests create the extension themselves.
DROP FUNCTION amem_digest;
DROP TABLE amem_events, amem_spine;
DROP EXTENSION feature_store;
